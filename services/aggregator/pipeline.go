package aggregator

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/deadletter"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// The feed consumer is a pipeline of five goroutines joined by bounded
// channels, so that the database is kept busy with one batch while the next
// is fetched and decoded and the last one's states are published:
//
//	reader:    fetch, decode (dead-letter what does not), build the rows
//	preparer:  the kinds' prepare (alarm levels; VN_AQI of the stations no
//	           batch in flight has), while the batch before is written
//	committer: the kinds' settle (the rest of the VN_AQI), WriteBatch (or,
//	           under a backlog, the next batch's COPY started while one
//	           commits: overlap.go), commit hooks, expiry ticks
//	publisher: STATE and ROLLUPS published without waiting
//	acker:     wait for those publish acks, then ack the batch on FEEDS
//
// Batches go through every stage in order, one at a time but for the
// committer's overlap (whose statements and commits stay in order): the
// database sees them in fetch order, STATE gets them in commit order (one connection
// publishes them, in order), and a FEEDS message is acked only after its
// batch committed and its states were acked by STATE. A failure naks the
// batch (redelivered and deduplicated by the store, which publishes the
// states again); newer batches behind it are not held up, and the store's
// "a stored newer state wins" keeps each entity's newest state when the
// redelivery comes after them. At shutdown batches not yet committed are
// naked for a prompt redelivery; those committed whose states were all sent
// are acked once STATE acks them (ackSent, bounded), and the others are left
// to AckWait, as a crash would leave them.

// Sizes of the pipeline, in batches. Every batch in it is unacked on FEEDS,
// so the consumer's MaxAckPending allows them all (maxAckBatches): one being
// decoded, one queued to prepare, one being prepared, one queued to commit,
// two committing (one finishing, the next copying its rows: overlap.go),
// one queued to publish, one publishing, publishWindow-1
// queued to the acker and one it waits for; and ahead of them what the
// reader has pulled and not taken yet (consume.go): two batches' worth held
// by nats.go and one in the handler's channel.
const (
	// decodedAhead is how many batches wait between the reader and the
	// preparer, and between the preparer and the committer.
	decodedAhead = 1
	// publishWindow bounds the batches whose STATE and ROLLUPS publishes are
	// outstanding (sent, not acked) at once, the acker's included.
	publishWindow = 2
	// maxAckBatches × BatchSize is the consumer's MaxAckPending.
	maxAckBatches = 14
)

// committedBatch is a batch the database committed, on its way to STATE and
// to its acks on FEEDS.
type committedBatch struct {
	p   *pending
	res postgis.Result
	// futures are the acks of its STATE and ROLLUPS publishes; err is set
	// when publishing failed before all were sent.
	futures []jetstream.PubAckFuture
	err     error
}

// pipeline runs the feed consumer until ctx is done (see above); the calling
// goroutine is the committer.
func (s *Service) pipeline(ctx context.Context, cons jetstream.Consumer, open func(context.Context) (jetstream.Consumer, error)) {
	decoded := make(chan *pending, decodedAhead)
	prepared := make(chan *pending, decodedAhead)
	committed := make(chan *committedBatch, 1)
	published := make(chan *committedBatch, publishWindow-1)
	var wg sync.WaitGroup
	wg.Go(func() { s.reader(ctx, cons, open, decoded) })
	wg.Go(func() { s.preparer(ctx, decoded, prepared) })
	wg.Go(func() { s.publisher(ctx, committed, published) })
	wg.Go(func() { s.acker(ctx, published) })

	var tick <-chan time.Time
	if s.cfg.ExpiryInterval > 0 {
		s.tick(ctx)
		t := time.NewTicker(s.cfg.ExpiryInterval)
		defer t.Stop()
		tick = t.C
	}
	s.committer(ctx, prepared, committed, tick)
	for p := range prepared { // the preparer closes it once ctx is done
		s.nak(p.msgs)
		s.release(p)
	}
	close(committed)
	wg.Wait()
	// The naks above are sent without waiting for the server: make sure it
	// has them before Run returns (a lost server is not waited for long;
	// the messages then come again after AckWait).
	if nc := s.js.Conn(); nc != nil {
		if err := nc.FlushTimeout(2 * time.Second); err != nil {
			s.log.Warn("flushing the naks of the batches not written failed", "err", err)
		}
	}
}

// tick runs the kinds' periodic work (the expiry of alerts).
func (s *Service) tick(ctx context.Context) {
	for _, k := range kinds {
		if k.tick == nil {
			continue
		}
		if err := k.tick(ctx, s); err != nil && ctx.Err() == nil {
			s.m.errors.WithLabelValues("expire").Inc()
			s.log.Error("a kind's periodic work failed", "kind", k.name, "err", err)
		}
	}
}

// ackSent acks, while the service stops, a batch whose states and roll-ups
// were all sent, once JetStream has acked them (by stopBy):
// its items are stored and published, and a restart (or the rules engine's
// wait for the aggregator at its start) should not wait AckWait for them.
// A batch whose publishes failed or are not acked in time is left to
// AckWait, as a crash would leave it.
func (s *Service) ackSent(ctx context.Context, stopBy time.Time, cb *committedBatch) {
	if cb.err != nil {
		return
	}
	wctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), stopBy)
	defer cancel()
	if _, err := s.waitAcks(wctx, cb.futures); err != nil {
		return
	}
	for _, m := range cb.p.msgs {
		if err := m.Ack(); err != nil {
			s.log.Warn("acking feed message failed", "subject", m.Subject(), "err", err)
		}
	}
}

// preparer runs the kinds' prepare on each batch of in, in order, and hands
// it to out until in is closed, then closes out.
func (s *Service) preparer(ctx context.Context, in <-chan *pending, out chan<- *pending) {
	defer close(out)
	for p := range in {
		if ctx.Err() != nil {
			s.nak(p.msgs)
			continue
		}
		for _, k := range kinds {
			if k.prepare != nil && len(p.items[k]) > 0 {
				k.prepare(ctx, s, p, p.start)
			}
		}
		select {
		case out <- p:
		case <-ctx.Done():
			s.nak(p.msgs)
			s.release(p)
		}
	}
}

// release runs the kinds' release hooks of p.
func (s *Service) release(p *pending) {
	for _, k := range kinds {
		if k.release != nil && len(p.items[k]) > 0 {
			k.release(s, p)
		}
	}
}

// decodeBatch decodes msgs into one pending batch, dead-lettering those
// that do not decode.
func (s *Service) decodeBatch(ctx context.Context, msgs []jetstream.Msg) *pending {
	p := &pending{start: time.Now()}
	p.msgs = make([]jetstream.Msg, 0, len(msgs))
	for _, m := range msgs {
		d, err := decode(m.Subject(), m.Headers(), m.Data(), p.start)
		if err != nil {
			s.m.errors.WithLabelValues("decode").Inc()
			s.deadLetter(ctx, m, deadletter.StageDecode, err)
			continue
		}
		if v := m.Headers()[headerStreamSource]; len(v) > 0 {
			if err := s.checkEdgeItem(ctx, &d, v[0]); errors.Is(err, errEdgeItem) {
				s.m.errors.WithLabelValues("edge").Inc()
				s.deadLetter(ctx, m, deadletter.StageDecode, err)
				continue
			} else if err != nil {
				s.m.errors.WithLabelValues("edge").Inc()
				s.log.Warn("checking an edge's item failed; retrying", "subject", m.Subject(), "err", err)
				s.retryAll(ctx, []jetstream.Msg{m}, err)
				continue
			}
		}
		p.add(d, m)
	}
	return p
}

// nak naks msgs, fetched but not committed, for a prompt redelivery.
func (s *Service) nak(msgs []jetstream.Msg) {
	for _, m := range msgs {
		if err := m.Nak(); err != nil {
			s.log.Warn("naking feed message failed", "subject", m.Subject(), "err", err)
		}
	}
}

// commit writes one prepared batch and hands it, committed, to out. A batch
// the database rejects (not a connection or transient failure) or cancels
// at its statement_timeout is written again message by message when split
// is set, so that one poisonous message is dead-lettered instead of blocking
// the stream; a message the database rejects on its own is dead-lettered at
// once, one that times out on its own at its second delivery. Any other
// failure naks the batch to be retried after RetryDelay.
func (s *Service) commit(ctx context.Context, p *pending, split bool, out chan<- *committedBatch) {
	s.withActivity(p)
	res, err := s.db.WriteBatch(ctx, p.batch)
	s.written(ctx, p, res, err, split, out, nil)
}

// withActivity sets what p's transaction records of its sources' activity,
// from what it stored (freshness.go).
func (s *Service) withActivity(p *pending) {
	p.batch.Activity = func(res postgis.Result) []postgis.SourceActivity { return sourceActivity(p, res) }
	p.batch.ActivityAt = s.now()
}

// written hands p, committed (err nil), to out, or deals with its failure
// (commit). When out has no room, beforeWait, if set, runs before the wait
// for it (the committer gives up a batch started beside p: its transaction
// would stay open the while).
func (s *Service) written(ctx context.Context, p *pending, res postgis.Result, err error, split bool, out chan<- *committedBatch, beforeWait func()) {
	if err != nil {
		if ctx.Err() != nil {
			s.nak(p.msgs) // shutting down: redelivered at once (and deduplicated if it did commit)
			return
		}
		if errors.Is(err, postgis.ErrFenced) {
			// Another aggregator took the partition: the batch is its own now.
			s.m.errors.WithLabelValues("fenced").Inc()
			s.log.Warn("partition taken by another aggregator; batch left to it", "messages", len(p.msgs), "err", err)
			s.nak(p.msgs)
			if s.fenced != nil {
				s.fenced()
			}
			return
		}
		s.m.errors.WithLabelValues("write").Inc()
		if rejected(err) || postgis.ServerTimedOut(err) {
			if split && len(p.msgs) > 1 {
				s.log.Warn("database rejected a batch; storing its messages one by one", "messages", len(p.msgs), "err", err)
				for _, dm := range p.all() {
					one := &pending{start: time.Now()}
					one.add(dm.d, dm.msg)
					s.commit(ctx, one, false, out)
				}
				return
			}
			if len(p.msgs) == 1 && (rejected(err) || s.timedOutTwice(p.msgs[0])) {
				s.deadLetter(ctx, p.msgs[0], deadletter.StageStore, err)
				return
			}
		}
		s.log.Error("storing batch failed; retrying", "messages", len(p.msgs), "err", err)
		s.retryAll(ctx, p.msgs, err)
		sleep(ctx, s.cfg.RetryDelay)
		return
	}
	now := time.Now()
	for _, k := range kinds {
		if k.committed != nil && len(p.items[k]) > 0 {
			k.committed(s, p, res, now)
		}
	}
	cb := &committedBatch{p: p, res: res}
	if beforeWait != nil {
		select {
		case out <- cb:
			return
		default:
			beforeWait()
		}
	}
	select {
	case out <- cb:
	case <-ctx.Done(): // committed but not acked: the redelivery republishes the state
	}
}

// publisher publishes the states and roll-ups of each committed batch
// without waiting for their acks, which
// it hands to the acker through out (bounded: publishWindow). It closes out
// when in is closed.
func (s *Service) publisher(ctx context.Context, in <-chan *committedBatch, out chan<- *committedBatch) {
	defer close(out)
	for cb := range in {
		if ctx.Err() != nil {
			continue // committed but not acked: the redelivery republishes the state
		}
		if s.cfg.afterCommit != nil {
			s.cfg.afterCommit()
		}
		if ctx.Err() != nil {
			continue
		}
		cb.futures, cb.err = s.publishStates(cb.p, cb.res)
		select {
		case out <- cb:
		case <-ctx.Done():
		}
	}
}

// acker waits for the publishes of each batch in turn, then acks the batch
// on FEEDS; when a publish failed it naks the batch, to be retried after
// RetryDelay (the store then drops the events it has and publishes the
// states again).
func (s *Service) acker(ctx context.Context, in <-chan *committedBatch) {
	var stopBy time.Time // set once ctx is done: the bound of the acks still made
	for cb := range in {
		if s.cfg.beforeAck != nil {
			s.cfg.beforeAck()
		}
		if ctx.Err() != nil {
			if stopBy.IsZero() {
				stopBy = time.Now().Add(stopWait)
			}
			s.ackSent(ctx, stopBy, cb)
			continue
		}
		published, err := 0, cb.err
		if err == nil {
			published, err = s.waitAcks(ctx, cb.futures)
		}
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			s.m.errors.WithLabelValues("publish").Inc()
			s.log.Error("publishing state failed; retrying the batch", "messages", len(cb.p.msgs), "err", err)
			s.retryAll(ctx, cb.p.msgs, err)
			sleep(ctx, s.cfg.RetryDelay)
			continue
		}
		for _, m := range cb.p.msgs {
			if err := m.Ack(); err != nil {
				// Lost acks mean a redelivery, which the store absorbs.
				s.m.errors.WithLabelValues("ack").Inc()
				s.log.Warn("acking feed message failed", "subject", m.Subject(), "err", err)
			}
		}
		res := cb.res
		s.m.observe(res, published, time.Since(cb.p.start))
		s.log.Debug("batch stored", "messages", len(cb.p.msgs), "air", res.Air.New, "traffic", res.Traffic.New,
			"alerts", res.Alerts.New, "states", published)
	}
}
