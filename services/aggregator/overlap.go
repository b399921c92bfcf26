package aggregator

import (
	"context"
	"time"

	"github.com/iochub/iochub/services/aggregator/postgis"
)

// The committer keeps up to two batches' transactions in flight
// (postgis.Started): while one batch's states and roll-ups are applied and
// committed, the next one's rows are already being copied, on a connection
// of their own. The server then works on both, and the commit stage is no
// longer one round of COPY, statements and COMMIT after another.
// Everything else stays in order: a batch's reads and statements come after
// the batch before committed, its commit after that one's, its committed
// hooks and its states too. A batch is started beside the one before only
// when nothing it was prepared with waits for that one's commit (ready: the
// VN_AQI of a station the batch before has rows of is rated after it), and
// only when the store is a *postgis.Store.

// inflight is a batch in the committer: started (st) or to be written.
type inflight struct {
	p  *pending
	st *postgis.Started
}

// committer writes the batches of prepared, in order, handing them committed
// to out, and runs the periodic work on tick, until prepared is closed or
// ctx is done.
func (s *Service) committer(ctx context.Context, prepared <-chan *pending, out chan<- *committedBatch, tick <-chan time.Time) {
	store, _ := s.db.(*postgis.Store)
	var prev *inflight // started, not finished
	finishPrev := func() {
		if prev != nil {
			s.finish(ctx, prev, nil, out)
			prev = nil
		}
	}
	defer finishPrev()
	for {
		var p *pending
		var ok bool
		if prev != nil {
			// A batch is in flight: take the next one if it is there,
			// else finish it now (a quiet stream waits for nothing).
			select {
			case p, ok = <-prepared:
			case <-tick:
				finishPrev()
				s.tick(ctx)
				continue
			default:
				finishPrev()
				continue
			}
		} else {
			select {
			case p, ok = <-prepared:
			case <-tick:
				s.tick(ctx)
				continue
			case <-ctx.Done():
				return
			}
		}
		if !ok {
			return
		}
		if s.cfg.beforeWrite != nil {
			s.cfg.beforeWrite(p.batch)
		}
		if prev != nil && !s.ready(p) {
			finishPrev()
		}
		// Ready beside a batch in flight: p's settle waits for nothing,
		// unless that batch's commit changes the book (below).
		beside := prev != nil
		s.settle(ctx, p)
		s.withActivity(p)
		cur := &inflight{p: p}
		if store != nil && ctx.Err() == nil && (prev != nil || len(prepared) > 0) {
			var after *postgis.Started
			if prev != nil {
				after = prev.st
			}
			cur.st = store.StartBatch(ctx, p.batch, after)
		}
		if f := prev; f != nil {
			prev = nil
			if cur.st != nil {
				s.m.overlapped.Inc()
			}
			s.finish(ctx, f, cur, out)
		}
		if beside && !s.ready(p) {
			// The batch before's commit changed what p was rated with (a
			// sweep of the stations' book): p is rated again, and written
			// after it.
			if cur.st != nil {
				cur.st.Abort(ctx)
				cur.st = nil
			}
			s.settle(ctx, p)
		}
		if cur.st == nil {
			s.commit(ctx, p, true, out)
			s.release(p)
			continue
		}
		prev = cur
	}
}

// settle runs the kinds' settle on p.
func (s *Service) settle(ctx context.Context, p *pending) {
	for _, k := range kinds {
		if k.settle != nil && len(p.items[k]) > 0 {
			k.settle(ctx, s, p, p.start)
		}
	}
}

// ready reports whether p may be started before the batch before it
// committed: no kind's settle waits for that commit.
func (s *Service) ready(p *pending) bool {
	for _, k := range kinds {
		if k.settle != nil && len(p.items[k]) > 0 && (k.ready == nil || !k.ready(s, p)) {
			return false
		}
	}
	return true
}

// finish completes f, a started batch, and hands it committed to out (or
// deals with its failure, as commit). next, when set, is the batch started
// after f: when f must be written again, next is given up first (its rows
// could hold f's inserts up) and is then written after f by the caller.
func (s *Service) finish(ctx context.Context, f *inflight, next *inflight, out chan<- *committedBatch) {
	stop := func() {
		if next != nil && next.st != nil {
			next.st.Abort(ctx)
			next.st = nil
		}
	}
	res, err := f.st.Finish(ctx, stop)
	if err != nil {
		stop()
	}
	s.written(ctx, f.p, res, err, true, out, stop)
	s.release(f.p)
}
