package postgis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Fence names the partition a writer holds and the epoch it got when it
// took it (AcquirePartition).
type Fence struct {
	Partition string
	Epoch     int64
}

type fenceKey struct{}

// WithFence returns ctx carrying f: every write transaction the store opens
// under it (WriteBatch, BeginFunc and what calls it) first checks, in the
// statement that sets its timeout, that f.Partition is still held at
// f.Epoch, and fails with ErrFenced otherwise. The fence travels with the
// context, as a deadline does, because it belongs to the caller's lease and
// not to the store, which the partitions of an instance share.
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FenceOf returns the fence ctx carries, if any.
func FenceOf(ctx context.Context) (Fence, bool) {
	f, ok := ctx.Value(fenceKey{}).(Fence)
	return f, ok
}

// sqlstateFenced is the SQLSTATE iochub_partition_fence raises.
const sqlstateFenced = "55F01"

// beginStatement is the first statement of a write transaction under ctx:
// its statement timeout, and its fence when ctx carries one.
func (s *Store) beginStatement(ctx context.Context) (string, []any) {
	if f, ok := FenceOf(ctx); ok {
		return sqlSetStatementTimeoutFenced, []any{s.timeout, f.Partition, f.Epoch}
	}
	return sqlSetStatementTimeout, []any{s.timeout}
}

// fenced marks err with ErrFenced when the fence refused the transaction.
func fenced(err error) error {
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == sqlstateFenced {
		return fmt.Errorf("%w: %w", ErrFenced, err)
	}
	return err
}

// AcquirePartition makes holder the writer of partition and returns the
// partition's new epoch, to write under with WithFence. It waits up to
// lockTimeout (rounded up to a millisecond; 0 means no bound) for the write
// transactions of the previous holder to end; from its commit on, the
// previous holder's transactions fail with ErrFenced.
func (s *Store) AcquirePartition(ctx context.Context, partition, holder string, lockTimeout time.Duration) (int64, error) {
	var epoch int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		ms := (lockTimeout + time.Millisecond - 1) / time.Millisecond
		if _, err := tx.Exec(ctx, sqlSetLockTimeout, fmt.Sprintf("%dms", ms)); err != nil {
			return err
		}
		return tx.QueryRow(ctx, sqlAcquirePartition, partition, holder).Scan(&epoch)
	})
	if err != nil {
		return 0, fmt.Errorf("bumping the epoch of partition %s: %w", partition, err)
	}
	return epoch, nil
}

// CurrentProvinces lists the codes of the provinces valid now, sorted: the
// partitions of the aggregator.
func (s *Store) CurrentProvinces(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, sqlCurrentProvinces)
	if err != nil {
		return nil, fmt.Errorf("listing the current provinces: %w", err)
	}
	codes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("listing the current provinces: %w", err)
	}
	return codes, nil
}
