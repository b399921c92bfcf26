package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// pending is a valid item waiting for its PubAck.
type pending struct {
	idx int
	msg *nats.Msg
	// id is the message id (Nats-Msg-Id) that JetStream deduplicates on.
	id string
	// answered, status and err are set under the batch's lock by the
	// answer (or by the request giving up on it).
	answered bool
	// status is StatusAccepted or StatusDuplicate once acked.
	status string
	err    error
	b      *batchAcks
}

// batchAcks counts the answers a request still waits for: one wait per
// request, not one per message.
type batchAcks struct {
	mu     sync.Mutex
	left   int           // sent and not answered yet
	sealed bool          // every send is done: done closes at left == 0
	closed bool          // the request stopped waiting: late answers are dropped
	failed bool          // an answer was an error (JetStream may still hold its message)
	done   chan struct{} // closed once sealed with nothing left
}

func (b *batchAcks) answer(pd *pending, ack *jetstream.PubAck, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.failed = true
	}
	if !b.closed && !pd.answered {
		pd.answered = true
		switch {
		case err != nil:
			pd.err = fmt.Errorf("publishing %s: %w", pd.msg.Subject, err)
		case ack.Duplicate:
			pd.status = StatusDuplicate
		default:
			pd.status = StatusAccepted
		}
	}
	b.left--
	if b.sealed && b.left == 0 {
		close(b.done)
	}
}

// ackRouter hands JetStream's async answers (ack and error callbacks, which
// carry the message as sent) to the pending of the request that sent it.
type ackRouter struct {
	mu sync.Mutex
	m  map[*nats.Msg]*pending
}

func newAckRouter() *ackRouter { return &ackRouter{m: make(map[*nats.Msg]*pending)} }

func (r *ackRouter) add(pd *pending) {
	r.mu.Lock()
	r.m[pd.msg] = pd
	r.mu.Unlock()
}

// take removes and returns the pending of msg, nil if none (answered already).
func (r *ackRouter) take(msg *nats.Msg) *pending {
	r.mu.Lock()
	pd := r.m[msg]
	delete(r.m, msg)
	r.mu.Unlock()
	return pd
}

// onAck and onErr run on the connection's ack goroutine: they must not block.
func (r *ackRouter) onAck(_ jetstream.JetStream, msg *nats.Msg, ack *jetstream.PubAck) {
	if pd := r.take(msg); pd != nil {
		pd.b.answer(pd, ack, nil)
	}
}

func (r *ackRouter) onErr(_ jetstream.JetStream, msg *nats.Msg, err error) {
	if pd := r.take(msg); pd != nil {
		pd.b.answer(pd, nil, err)
	}
}

// publisher sends a request's items asynchronously (the window is bounded
// by Config.MaxPending across the service) and then waits, up to
// Config.PublishTimeout from the first send, for every answer. Answers come
// through the service's ackRouter (JetStream's ack and error callbacks, the
// async timeout included), so a request waits once, on its batch, whatever
// its size.
type publisher struct {
	s        *Service
	ctx      context.Context
	cancel   context.CancelFunc
	started  bool
	deadline time.Time
	b        batchAcks
	// down is the connection status when NATS was found unavailable; nothing is sent then.
	down string
}

func (s *Service) newPublisher(ctx context.Context) *publisher {
	p := &publisher{s: s, ctx: ctx, cancel: func() {}}
	p.b.done = make(chan struct{})
	return p
}

func (p *publisher) close() { p.cancel() }

func (p *publisher) send(pd *pending) {
	if !p.started {
		p.started = true
		if st := p.s.js.Conn().Status(); st != nats.CONNECTED {
			p.down = st.String()
		}
		p.deadline = time.Now().Add(p.s.cfg.PublishTimeout)
		p.ctx, p.cancel = context.WithDeadline(p.ctx, p.deadline)
	}
	if p.down != "" {
		return
	}
	wait := time.Until(p.deadline)
	if wait <= 0 {
		pd.err = errors.New("timed out before sending")
		return
	}
	pd.b = &p.b
	p.b.mu.Lock()
	p.b.left++
	p.b.mu.Unlock()
	// Registered first: the answer may come before PublishMsgAsync returns.
	p.s.acks.add(pd)
	if _, err := p.s.js.PublishMsgAsync(pd.msg, jetstream.WithMsgID(pd.id), jetstream.WithStallWait(wait)); err != nil {
		// No callback comes for a publish that did not leave.
		if p.s.acks.take(pd.msg) != nil {
			pd.b.answer(pd, nil, err)
		}
	}
}

// clean reports whether JetStream holds nothing the request sent: every
// message sent was acked. Until a message's last answer JetStream may send
// it again (a retry after "no responders"), and an error answer may race
// such a retry, so a request still waiting for an answer, or with an error,
// is not clean (its memory is not reused: reqMem).
func (p *publisher) clean() bool {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	return p.b.left == 0 && !p.b.failed
}

// wait collects the answers and returns how many acks arrived; an item
// without an answer by the deadline gets err.
func (p *publisher) wait(items []pending) int {
	b := &p.b
	b.mu.Lock()
	b.sealed = true
	if b.left == 0 {
		close(b.done)
	}
	b.mu.Unlock()
	select {
	case <-b.done:
	case <-p.ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true // what arrives from now on is not waited for
	acked := 0
	for i := range items {
		pd := &items[i]
		switch {
		case pd.b == nil: // not sent: err says why
		case !pd.answered:
			pd.err = fmt.Errorf("no JetStream ack within %s", p.s.cfg.PublishTimeout)
		case pd.err == nil:
			acked++
		}
	}
	return acked
}
