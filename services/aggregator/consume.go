package aggregator

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/semaphore"

	"github.com/iochub/iochub/internal/natsx"
)

// The reader takes FEEDS through one pull subscription that lives as long
// as the service (jetstream's Consume), not through a fetch per batch.
//
// A fetch is a pull request on an inbox of its own, and nats.go drops that
// inbox as soon as the request is done: when the server says so (408
// Request Timeout, 409 Batch Completed) or the fetch has its count. On a
// replicated consumer the server sends a delivery only once its replicas
// agree that it was delivered, while it sends those statuses at once, so a
// status can overtake the deliveries it closes. Those deliveries then reach
// an inbox nobody listens to, and come again only after AckWait: on a
// 3-node cluster a run at 2,000 events/s lost a quarter of its deliveries
// so, and the hub fell seconds behind. A subscription that stays takes the
// late deliveries as any others.
//
// Consume keeps two batches' worth of messages pulled ahead (nats.go pulls
// again once half is taken), so that under a backlog a full batch is there
// when the reader comes back for one; each pull asks for at most half of
// batchBytes, so nats.go holds about batchBytes at most. Its handler hands
// the messages, one at a time, to a channel that holds at most BatchSize
// messages and batchBytes bytes (the handler waits for room); the reader
// takes the first that comes and then whatever is already there (up to
// BatchSize messages and batchBytes bytes), without waiting for more: a
// quiet stream is stored at once, a busy one in full batches, and nothing
// lingers on the latency path.

// feedIn is the reader's side of the subscription: what the handler hands
// over, the bytes of it in the channel (room), and the one message a batch
// had no room for.
type feedIn struct {
	msgs  chan sizedMsg
	room  *semaphore.Weighted // batchBytes, less the bytes in msgs
	carry *sizedMsg
	bytes int // the byte bound of a batch (Service.batchBytes)
	size  int // the count bound of a batch (Config.BatchSize)
}

// sizedMsg is a message handed over with its size (msgBytes, counted once
// by the handler), no more than the channel's room (batchBytes is at least
// twice the server's max payload, so that bound never bites).
type sizedMsg struct {
	m jetstream.Msg
	n int
}

func newFeedIn(size, bytes int) *feedIn {
	return &feedIn{msgs: make(chan sizedMsg, size), room: semaphore.NewWeighted(int64(bytes)), bytes: bytes, size: size}
}

// sized is m with its size.
func (in *feedIn) sized(m jetstream.Msg) sizedMsg {
	return sizedMsg{m: m, n: min(msgBytes(m), in.bytes)}
}

// take is what the reader does with each message it receives from the
// channel: give back its room.
func (in *feedIn) take(sm sizedMsg) sizedMsg {
	in.room.Release(int64(sm.n))
	return sm
}

// consume starts the subscription of in on cons; once ctx is done the
// handler naks what it is given. It returns a function that stops the
// subscription and naks what it handed over and was not taken, and a
// channel closed when the subscription has ended (stopped, or on its own),
// or an error when the subscription could not start.
func (s *Service) consume(ctx context.Context, cons jetstream.Consumer, in *feedIn) (stop func(), ended <-chan struct{}, err error) {
	cc, err := cons.Consume(func(m jetstream.Msg) {
		sm := in.sized(m)
		if ctx.Err() != nil || in.room.Acquire(ctx, int64(sm.n)) != nil {
			s.nak([]jetstream.Msg{m})
			return
		}
		select {
		case in.msgs <- sm:
		case <-ctx.Done():
			in.room.Release(int64(sm.n))
			s.nak([]jetstream.Msg{m})
		}
	},
		jetstream.PullMaxMessagesWithBytesLimit(2*in.size, in.bytes/2),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if ctx.Err() != nil {
				return
			}
			s.m.errors.WithLabelValues("fetch").Inc()
			s.log.Warn("consuming feed messages", "err", err)
		}))
	if err != nil {
		return nil, nil, err
	}
	return func() {
		// Drain unsubscribes and hands what nats.go holds to the handler,
		// which naks it now that ctx is done (the reader stops only then,
		// or when the subscription ended on its own). Deliveries still on
		// their way when the unsubscribe reaches the server come again
		// after AckWait, as after a crash. A server out of reach holds the
		// drain up to nats.go's flush timeout (10 s): give it stopWait,
		// then leave it; the handler naks whatever it is still given.
		cc.Drain()
		t := time.NewTimer(stopWait)
		defer t.Stop()
		select {
		case <-cc.Closed():
		case <-t.C:
		}
		in.nakAll(s)
	}, cc.Closed(), nil
}

// stopWait bounds how long stopping the subscription waits for nats.go to
// hand over what it holds.
const stopWait = 5 * time.Second

// nakAll naks what was handed over and not taken.
func (in *feedIn) nakAll(s *Service) {
	if in.carry != nil {
		s.nak([]jetstream.Msg{in.carry.m})
		in.carry = nil
	}
	for {
		select {
		case sm := <-in.msgs:
			s.nak([]jetstream.Msg{in.take(sm).m})
		default:
			return
		}
	}
}

// next returns the next batch: the message left over from the last one, or
// the first to come (waiting for it until ctx or ended is done), then those
// already handed over, within the batch's bounds. It returns none when ctx
// or ended is done first.
func (in *feedIn) next(ctx context.Context, ended <-chan struct{}) []jetstream.Msg {
	var first sizedMsg
	if in.carry != nil {
		first, in.carry = *in.carry, nil
	} else {
		select {
		case sm := <-in.msgs:
			first = in.take(sm)
		case <-ctx.Done():
			return nil
		case <-ended:
			return nil
		}
	}
	batch := []jetstream.Msg{first.m}
	bytes := first.n
	for len(batch) < in.size {
		select {
		case sm := <-in.msgs:
			in.take(sm)
			if bytes+sm.n > in.bytes {
				in.carry = &sm
				return batch
			}
			batch = append(batch, sm.m)
			bytes += sm.n
		default:
			return batch
		}
	}
	return batch
}

// msgBytes is a message's size as the server counts it against a pull's
// byte bound.
func msgBytes(m jetstream.Msg) int {
	return len(m.Subject()) + len(m.Reply()) + natsx.WireSize(m.Headers(), m.Data())
}

// reader consumes FEEDS and decodes its batches into out until ctx is done,
// then closes out. A message that does not decode is dead-lettered here.
// A subscription that ends on its own (its consumer deleted, the
// connection closed) is started again after RetryDelay, on the consumer
// open makes again (a deleted durable comes back).
func (s *Service) reader(ctx context.Context, cons jetstream.Consumer, open func(context.Context) (jetstream.Consumer, error), out chan<- *pending) {
	defer close(out)
	in := newFeedIn(s.cfg.BatchSize, s.batchBytes())
	for ctx.Err() == nil {
		if cons == nil {
			var err error
			if cons, err = open(ctx); err != nil {
				if ctx.Err() == nil {
					s.m.errors.WithLabelValues("fetch").Inc()
					s.log.Warn("creating the feed consumer again failed", "err", err)
					sleep(ctx, s.cfg.RetryDelay)
				}
				continue
			}
		}
		stop, ended, err := s.consume(ctx, cons, in)
		if err != nil {
			s.m.errors.WithLabelValues("fetch").Inc()
			s.log.Warn("starting to consume feed messages failed", "err", err)
			cons = nil
			sleep(ctx, s.cfg.RetryDelay)
			continue
		}
		s.read(ctx, in, ended, out)
		stop()
		if ctx.Err() == nil {
			s.m.errors.WithLabelValues("fetch").Inc()
			s.log.Warn("feed subscription ended; starting it again", "after", s.cfg.RetryDelay)
			cons = nil
			sleep(ctx, s.cfg.RetryDelay)
		}
	}
}

// read hands batches of in to out until ctx or ended is done.
func (s *Service) read(ctx context.Context, in *feedIn, ended <-chan struct{}, out chan<- *pending) {
	for {
		msgs := in.next(ctx, ended)
		if len(msgs) == 0 {
			return
		}
		if ctx.Err() != nil {
			s.nak(msgs)
			return
		}
		p := s.decodeBatch(ctx, msgs)
		if len(p.msgs) == 0 {
			continue
		}
		select {
		case out <- p:
		case <-ctx.Done():
			s.nak(p.msgs)
			return
		}
	}
}
