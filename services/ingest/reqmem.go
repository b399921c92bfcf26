package ingest

import (
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/iochub/iochub/internal/ce"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// reqMem is the memory one request's items are read and sent from: its
// body, its events' bytes, their messages and headers. A request takes one
// from the service's pool and gives it back only when JetStream acked every
// item it sent (publisher.clean): until an item's last answer, JetStream may
// send its message again (a retry after "no responders"), so the memory of a
// request that stopped waiting, or whose items failed, is left to the
// collector. Between requests the header maps are cleared, not freed.
//
// Written here, not taken from a library: the lifetime is JetStream's, which
// only this package sees.
type reqMem struct {
	body    []byte
	arena   []byte
	msgs    []nats.Msg
	headers []nats.Header
	pends   []pending
	results []Result
	// values back the header maps' values (ce.Event.SetOnIn).
	values []string
	// origins are the last block of the events' Origin messages.
	origins []iocv1.Origin
	// items and kept are the fast path's items and their members
	// (fastArrayInto); keptNeed is how many members the last request kept.
	items    []rawItem
	kept     []member
	keptNeed int
}

// maxPooledBytes bounds a buffer given back to the pool, so that one large
// request does not keep its memory for the small ones after it.
const maxPooledBytes = 4 << 20

// maxPooledItems bounds the messages (and results, items, origins) a pooled
// reqMem keeps, and 16 times it its members and header values: a pooled
// reqMem holds at most ~17 MB (8 in its two byte buffers, 3 in header maps); a larger
// request's memory goes to the collector.
const maxPooledItems = 4096

var reqMemPool = sync.Pool{New: func() any { return new(reqMem) }}

func getReqMem() *reqMem { return reqMemPool.Get().(*reqMem) }

// putReqMem gives m back for another request. The caller no longer holds
// anything of m: its body, events, messages or pendings.
func putReqMem(m *reqMem) {
	m.reset()
	reqMemPool.Put(m)
}

// reset empties m, keeping what is not too large for the next request.
func (m *reqMem) reset() {
	if cap(m.body) > maxPooledBytes {
		m.body = nil
	}
	if cap(m.arena) > maxPooledBytes {
		m.arena = nil
	}
	if cap(m.msgs) > maxPooledItems {
		m.msgs, m.headers, m.pends = nil, nil, nil
	}
	if cap(m.items) > maxPooledItems || cap(m.kept) > 16*maxPooledItems {
		m.items, m.kept, m.keptNeed = nil, nil, 0
	}
	m.body, m.arena = m.body[:0], m.arena[:0]
	clear(m.items[:cap(m.items)])
	m.items = m.items[:0]
	clear(m.kept[:cap(m.kept)])
	m.kept = m.kept[:0]
	for i := range m.msgs {
		m.msgs[i] = nats.Msg{}
	}
	m.msgs = m.msgs[:0]
	for _, h := range m.headers {
		clear(h)
	}
	if cap(m.results) > maxPooledItems {
		m.results = nil
	}
	clear(m.results[:cap(m.results)])
	m.results = m.results[:0]
	if cap(m.values) > 16*maxPooledItems {
		m.values = nil
	}
	clear(m.values[:cap(m.values)])
	m.values = m.values[:0]
	if cap(m.origins) > maxPooledItems {
		m.origins = nil
	}
	for i := range m.origins {
		m.origins[i].Reset()
	}
	m.origins = m.origins[:0]
	clear(m.pends[:cap(m.pends)])
	m.pends = m.pends[:0]
}

// reserve readies m for a request of n items: its messages and pendings
// are never grown while items are sent (each is pointed to until its answer).
func (m *reqMem) reserve(n int) {
	if cap(m.msgs) < n {
		m.msgs = make([]nats.Msg, 0, n)
	}
	if cap(m.pends) < n {
		m.pends = make([]pending, 0, n)
	}
}

// headerRoom is the headers of a feed message: the CloudEvents
// attributes, the feed source and the message id JetStream adds (a map made
// for them is never grown).
const headerRoom = ce.HeaderValues + 2

// msg returns the next message of m with a header map (cleared, or new);
// at most as many as reserved.
func (m *reqMem) msg() *nats.Msg {
	m.msgs = m.msgs[:len(m.msgs)+1]
	i := len(m.msgs) - 1
	if i >= len(m.headers) {
		m.headers = append(m.headers, make(nats.Header, headerRoom))
	}
	msg := &m.msgs[i]
	msg.Header = m.headers[i]
	return msg
}

// resultsFor returns n zero results of m.
func (m *reqMem) resultsFor(n int) []Result {
	if cap(m.results) < n {
		m.results = make([]Result, n)
	}
	m.results = m.results[:n]
	return m.results
}

// headerValues returns room for n header values of m: a slice of one block
// per request, which the header maps' values point to until putReqMem.
func (m *reqMem) headerValues(n int) []string {
	if cap(m.values)-len(m.values) < n {
		// A new block, twice the last (the values before keep theirs).
		m.values = make([]string, 0, max(1024, n, 2*cap(m.values)))
	}
	v := m.values[len(m.values) : len(m.values) : len(m.values)+n]
	m.values = m.values[:len(m.values)+n]
	return v
}

// originsFor returns m's block of Origin messages, empty, with room for n
// (a new one if it has less).
func originsFor(m *reqMem, n int) []iocv1.Origin {
	if cap(m.origins) < n {
		return make([]iocv1.Origin, 0, n)
	}
	return m.origins[:0]
}
