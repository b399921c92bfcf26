package postgis

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Started is a direct batch (writeDirect) written in two steps, so that a
// writer of consecutive batches keeps two transactions in flight: the
// server copies one batch's rows while it applies the batch before's
// states and roll-ups and commits it. StartBatch begins the batch's
// transaction, on a connection of its own, and copies its rows; Finish,
// called once the batch before it has committed or was given up, makes the
// roll-ups' reads, applies the states and roll-ups and commits.
//
// What may run beside the batch before is the COPY alone, which reads
// nothing the batch before writes. The reads whose values the batch's
// statements depend on (the unit tree, the member rows' versions, the
// sources' activity) come after the batch before committed, as they would
// in a WriteBatch made after it; so do the states' upserts and the
// roll-ups, in the same order as WriteBatch's. A row of the batch already
// in the batch before waits in the COPY for that batch's end, then fails
// the primary key: Finish then writes the batch again the exact way.
type Started struct {
	s    *Store
	b    Batch
	done chan struct{} // closed once the COPY ended
	conn *pgxpool.Conn
	// open is set while conn is in the transaction.
	open bool
	err  error // of the BEGIN or the COPY
}

// StartBatch starts writing b beside after, the batch before it, if any
// (see Started), or returns nil when b is not written directly or needs a
// partition not made yet: the caller then writes it with WriteBatch once
// the batch before is done. The transaction is begun and the rows copied in
// a goroutine, on ctx; Finish or Abort must follow.
//
// It takes its connection only once after's COPY has ended, so after has
// its own by then: a batch holding a connection while the batch before
// waits for one would wait for it forever on a pool with none to spare.
// Nor do two COPYs run at once: each could wait on a row the other copied,
// and the batch before would then wait for this one's commit, which waits
// for its own.
func (s *Store) StartBatch(ctx context.Context, b Batch, after *Started) *Started {
	if b.Len() == 0 || !directOnly(b) || len(s.parts.missing(b)) > 0 {
		return nil
	}
	st := &Started{s: s, b: b, done: make(chan struct{})}
	go func() {
		defer close(st.done)
		st.err = st.begin(ctx, after)
	}()
	return st
}

// begin, once after's COPY has ended, begins st's transaction (with the
// statement timeout) and copies its rows. The partition's fence is checked
// by Finish: its share lock, taken here, would leave a new holder's
// AcquirePartition no moment between the batches' transactions.
func (st *Started) begin(ctx context.Context, after *Started) error {
	rows, err := encodeDirect(st.b) // while the batch before copies
	if err != nil {
		return err
	}
	defer rows.release()
	if after != nil {
		select {
		case <-after.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c, err := st.s.pool.Acquire(ctx)
	if err != nil {
		return timedOut(ctx, fmt.Errorf("beginning transaction: %w", err))
	}
	st.conn, st.open = c, true
	var pb pgx.Batch
	pb.Queue("BEGIN")
	pb.Queue(sqlSetStatementTimeout, st.s.timeout)
	if err := c.Conn().SendBatch(ctx, &pb).Close(); err != nil {
		return timedOut(ctx, fmt.Errorf("beginning transaction: %w", err))
	}
	return timedOut(ctx, st.s.copyDirect(ctx, c.Conn(), rows))
}

// end rolls st's transaction back if it is still open and gives its
// connection back (the pool closes one a failed rollback left in a
// transaction).
func (st *Started) end(ctx context.Context) {
	if st.conn == nil {
		return
	}
	if st.open {
		_, _ = st.conn.Conn().Exec(ctx, "ROLLBACK")
		st.open = false
	}
	st.conn.Release()
	st.conn = nil
}

// Abort gives st up: it waits for its COPY to end and rolls it back.
// Nothing of st's batch is stored.
func (st *Started) Abort(ctx context.Context) {
	<-st.done
	st.end(ctx)
}

// Finish completes st once the batch before it has committed or was given
// up, and returns what WriteBatch would. When the batch must be written
// again the exact way (a row stored before, a member row changed, a
// partition gone), Finish first calls stop, which must end (Abort) every
// batch started after st: the exact way's inserts would wait on their
// rows. On an error it returns, the caller must do the same before it
// writes st's batch again.
func (st *Started) Finish(ctx context.Context, stop func()) (Result, error) {
	<-st.done
	s, b := st.s, st.b
	w := s.newDirectWrite(b)
	err := st.err
	if err == nil {
		err = timedOut(ctx, st.apply(ctx, w))
	}
	st.end(ctx)
	copyTimedOut := errors.Is(st.err, ErrStatementTimeout)
	err = s.settleOptimistic(w.in, err)
	switch {
	case err == nil:
		s.allNew.Add(1)
		return w.res, nil
	case (errors.Is(err, errNotAllNew) || copyTimedOut) && ctx.Err() == nil:
		// A COPY that ran out of time may have waited on a row of the
		// batch before, which it repeats: not this batch's own cost. The
		// exact way tells (and times out in its turn if it is).
		stop()
		return s.partitionRetry(ctx, b, s.writeAgain)
	case noPartition(err) && ctx.Err() == nil:
		stop()
		s.parts.forgetBatch(b)
		return s.WriteBatch(ctx, b)
	}
	return Result{}, fmt.Errorf("writing batch: %w", err)
}

// apply makes the roll-ups' reads (roll-ups on), applies the states and
// roll-ups and commits.
func (st *Started) apply(ctx context.Context, w *directWrite) error {
	conn := st.conn.Conn()
	var pb pgx.Batch
	if f, ok := FenceOf(ctx); ok {
		pb.Queue(sqlPartitionFence, f.Partition, f.Epoch)
	}
	w.queueReads(&pb)
	if pb.Len() > 0 {
		if err := conn.SendBatch(ctx, &pb).Close(); err != nil {
			return fenced(fmt.Errorf("checking the partition's fence, reading the roll-ups' units and members: %w", err))
		}
	}
	if err := w.build(ctx); err != nil {
		return err
	}
	if err := w.apply(ctx, conn); err != nil {
		return err
	}
	tag, err := conn.Exec(ctx, "COMMIT")
	if err != nil {
		return fmt.Errorf("committing transaction: %w", err)
	}
	st.open = false
	if tag.String() != "COMMIT" { // the server rolled back a failed transaction
		return fmt.Errorf("committing transaction: %w", pgx.ErrTxCommitRollback)
	}
	return nil
}
