package ingest

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/ce"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// TestReqMemReset: a request's memory comes back empty (no message, header,
// pending, item or member of the last request shows through) and keeps its
// capacity, unless it grew past the bounds.
func TestReqMemReset(t *testing.T) {
	m := new(reqMem)
	m.reserve(3)
	for i := range 3 {
		msg := m.msg()
		msg.Subject, msg.Data = "ioc.feed.01.00070.air", []byte{byte(i)}
		msg.Header.Set("Ce-Subject", "station-a")
		m.pends = append(m.pends, pending{idx: i, msg: msg, id: "x"})
	}
	m.body = append(m.body, `[{"id":"a"}]`...)
	m.arena = append(m.arena, 1, 2, 3)
	m.items = append(m.items, rawItem{members: []member{{key: "id"}}}, rawItem{err: "bad"})
	m.kept = append(m.kept, member{key: "id", raw: m.body[2:5]})
	m.resultsFor(2)[1] = Result{ID: "a", Status: StatusAccepted}
	v := m.headerValues(ce.HeaderValues)
	ce.Event{ID: "a@t", Source: "s", Type: "t"}.SetOnIn(m.msgs[0].Header, v)
	m.origins = append(originsFor(m, 2), iocv1.Origin{})
	m.origins[0].SourceId, m.origins[0].Unit = "hk", "00070"
	m.reset()

	if len(m.body) != 0 || len(m.arena) != 0 || len(m.msgs) != 0 || len(m.pends) != 0 || len(m.items) != 0 || len(m.kept) != 0 {
		t.Fatalf("not emptied: body %d, arena %d, msgs %d, pends %d, items %d, kept %d",
			len(m.body), len(m.arena), len(m.msgs), len(m.pends), len(m.items), len(m.kept))
	}
	if cap(m.body) == 0 || cap(m.msgs) < 3 || cap(m.pends) < 3 || cap(m.items) < 2 {
		t.Errorf("capacity not kept: body %d, msgs %d, pends %d, items %d", cap(m.body), cap(m.msgs), cap(m.pends), cap(m.items))
	}
	for i, msg := range m.msgs[:cap(m.msgs)] {
		if msg.Subject != "" || msg.Data != nil || msg.Header != nil {
			t.Errorf("message %d not cleared: %+v", i, msg)
		}
	}
	for i, pd := range m.pends[:cap(m.pends)] {
		if pd.msg != nil || pd.id != "" {
			t.Errorf("pending %d not cleared: %+v", i, pd)
		}
	}
	for i, it := range m.items[:cap(m.items)] {
		if it.members != nil || it.err != "" {
			t.Errorf("item %d not cleared: %+v", i, it)
		}
	}
	for i, mb := range m.kept[:cap(m.kept)] {
		if mb.key != "" || mb.raw != nil {
			t.Errorf("member %d not cleared: %+v", i, mb)
		}
	}
	if r := m.resultsFor(2); r[1] != (Result{}) {
		t.Errorf("result not cleared: %+v", r[1])
	}
	for i, v := range m.values[:cap(m.values)] {
		if v != "" {
			t.Fatalf("header value %d not cleared: %q", i, v)
		}
	}
	if o := originsFor(m, 1)[:1]; o[0].GetSourceId() != "" || o[0].GetUnit() != "" {
		t.Errorf("origin not cleared: %v", &o[0])
	}
	// The header maps stay, empty, for the next request's messages.
	m.reserve(3)
	for i := range 3 {
		if h := m.msg().Header; h == nil || len(h) != 0 {
			t.Errorf("message %d of the next request: header %v; want an empty map", i, h)
		}
	}

	big := new(reqMem)
	big.body = make([]byte, maxPooledBytes+1)
	big.arena = make([]byte, maxPooledBytes+1)
	big.reserve(maxPooledItems + 1)
	big.reset()
	if big.body != nil || big.arena != nil || big.msgs != nil || big.pends != nil {
		t.Error("a request's memory past the bounds was kept")
	}
}

// TestPublisherClean: a request's memory is reused only once JetStream
// answered every message it sent with an ack; an error answer (which may
// race a retry of its message) or a missing answer keeps it from reuse.
func TestPublisherClean(t *testing.T) {
	ack := &jetstream.PubAck{Stream: "FEEDS"}
	newPub := func(sent int) (*publisher, []pending) {
		p := &publisher{}
		p.b.done = make(chan struct{})
		pds := make([]pending, sent)
		for i := range pds {
			pds[i] = pending{idx: i, msg: &nats.Msg{Subject: "s"}, b: &p.b}
			p.b.left++
		}
		p.b.sealed = true
		return p, pds
	}
	if p, _ := newPub(0); !p.clean() {
		t.Error("nothing sent: not clean")
	}
	p, pds := newPub(2)
	pds[0].b.answer(&pds[0], ack, nil)
	if p.clean() {
		t.Error("one answer of two: clean")
	}
	pds[1].b.answer(&pds[1], ack, nil)
	if !p.clean() {
		t.Error("every message acked: not clean")
	}
	p, pds = newPub(2)
	pds[0].b.answer(&pds[0], ack, nil)
	pds[1].b.answer(&pds[1], nil, jetstream.ErrNoStreamResponse)
	if p.clean() {
		t.Error("an error answer: clean")
	}
	// A request that stopped waiting, answered late with acks, is clean again.
	p, pds = newPub(1)
	p.b.closed = true
	if p.clean() {
		t.Error("waiting for an answer: clean")
	}
	pds[0].b.answer(&pds[0], ack, nil)
	if !p.clean() {
		t.Error("late ack: not clean")
	}
}
