package ingest

import (
	"sync"

	"github.com/nats-io/nats.go"
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
	// items and kept are the fast path's items and their members
	// (fastArrayInto); keptNeed is how many members the last request kept.
	items    []rawItem
	kept     []member
	keptNeed int
}

// maxPooledBytes bounds a buffer given back to the pool, so that one large
// request does not keep its memory for the small ones after it.
const maxPooledBytes = 4 << 20

// maxPooledItems bounds the messages a pooled reqMem keeps.
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
	if cap(m.items) > maxPooledItems || cap(m.kept) > 64*maxPooledItems {
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

// msg returns the next message of m with a header map (cleared, or new
// with room for n headers); at most as many as reserved.
func (m *reqMem) msg(n int) *nats.Msg {
	m.msgs = m.msgs[:len(m.msgs)+1]
	i := len(m.msgs) - 1
	if i >= len(m.headers) {
		m.headers = append(m.headers, make(nats.Header, n))
	}
	msg := &m.msgs[i]
	msg.Header = m.headers[i]
	return msg
}
