package aggregator

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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
// Consume keeps at most two batches' worth of messages (and batchBytes
// bytes) pulled ahead, so that under a backlog a full batch is there when
// the reader comes back for one (nats.go pulls again once half is taken). Its handler hands them, one at a time, to a channel of BatchSize;
// the reader takes the first that comes and then whatever is already there
// (up to BatchSize messages and batchBytes bytes), without waiting for
// more: a quiet stream is stored at once, a busy one in large batches, and
// nothing lingers on the latency path.

// feedIn is the reader's side of the subscription: what the handler hands
// over, and the one message a batch had no room for.
type feedIn struct {
	msgs  chan jetstream.Msg
	carry jetstream.Msg
	bytes int // the byte bound of a batch (Service.batchBytes)
	size  int // the count bound of a batch (Config.BatchSize)
}

// consume starts the subscription of in on cons; the handler gives up a
// message (naks it) once ctx is done. It returns a function that stops the
// subscription, waits for it to end and naks what it handed over and was
// not taken, or an error when the subscription could not start.
func (s *Service) consume(ctx context.Context, cons jetstream.Consumer, in *feedIn) (stop func(), done <-chan struct{}, err error) {
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case in.msgs <- m:
		case <-ctx.Done():
			s.nak([]jetstream.Msg{m})
		}
	},
		jetstream.PullMaxMessagesWithBytesLimit(2*in.size, in.bytes),
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
		// Drain hands what nats.go holds to the handler, which naks it now
		// that ctx is done (the reader stops only then, or when the
		// subscription ended on its own).
		// A server out of reach would hold the drain up to the
		// connection's drain timeout: give it stopWait, then stop (what
		// nats.go held then comes again after AckWait, as after a crash).
		cc.Drain()
		t := time.NewTimer(stopWait)
		defer t.Stop()
		select {
		case <-cc.Closed():
		case <-t.C:
			cc.Stop()
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
		s.nak([]jetstream.Msg{in.carry})
		in.carry = nil
	}
	for {
		select {
		case m := <-in.msgs:
			s.nak([]jetstream.Msg{m})
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
	first := in.carry
	in.carry = nil
	if first == nil {
		select {
		case first = <-in.msgs:
		case <-ctx.Done():
			return nil
		case <-ended:
			return nil
		}
	}
	batch := []jetstream.Msg{first}
	bytes := msgBytes(first)
	for len(batch) < in.size {
		select {
		case m := <-in.msgs:
			n := msgBytes(m)
			if bytes+n > in.bytes {
				in.carry = m
				return batch
			}
			batch = append(batch, m)
			bytes += n
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
// A subscription that ends on its own (its consumer deleted) is started
// again after RetryDelay.
func (s *Service) reader(ctx context.Context, cons jetstream.Consumer, out chan<- *pending) {
	defer close(out)
	in := &feedIn{msgs: make(chan jetstream.Msg, s.cfg.BatchSize), bytes: s.batchBytes(), size: s.cfg.BatchSize}
	for ctx.Err() == nil {
		stop, ended, err := s.consume(ctx, cons, in)
		if err != nil {
			s.m.errors.WithLabelValues("fetch").Inc()
			s.log.Warn("starting to consume feed messages failed", "err", err)
			sleep(ctx, s.cfg.RetryDelay)
			continue
		}
		s.read(ctx, in, ended, out)
		stop()
		if ctx.Err() == nil {
			s.m.errors.WithLabelValues("fetch").Inc()
			s.log.Warn("feed subscription ended; starting it again", "after", s.cfg.RetryDelay)
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
