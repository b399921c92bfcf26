package postgis

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// CloseMemberDays closes the roll-ups' days before the day (Asia/Ho_Chi_Minh)
// holding before, if they are not closed yet (migration 00036): it moves the
// member horizon there under the lock every roll-up batch holds shared, so
// that the batches still running finish first and every later one counts an
// observation of a closed day as late; then it deletes the member rows of
// the closed days, which no batch writes any more. It returns the day it
// closed the days before and the rows deleted; none when the horizon was
// already there or later (rows a crash left between the two steps go with
// the next day's close).
func (s *Store) CloseMemberDays(ctx context.Context, before time.Time) (time.Time, int64, error) {
	day := dayWindow.start(before)
	// Read first without the lock: most sweeps (every hour, by every
	// aggregator that runs them) find the day closed, and the lock waits for
	// every batch in flight and holds back the batches after it.
	var horizon *time.Time
	if err := s.pool.QueryRow(ctx, sqlMemberHorizon).Scan(&horizon); err != nil {
		return day, 0, fmt.Errorf("reading the member horizon: %w", err)
	}
	if horizon != nil && !horizon.Before(day) {
		return day, 0, nil
	}
	moved := false
	err := s.BeginFunc(ctx, func(tx pgx.Tx) error {
		// A batch holds the lock for its transaction (tens of milliseconds):
		// a wait much longer than that means something else holds it; try
		// again at the next sweep rather than hold the batches back.
		if _, err := tx.Exec(ctx, sqlCloseLockTimeout); err != nil {
			return fmt.Errorf("setting the lock timeout: %w", err)
		}
		if _, err := tx.Exec(ctx, sqlLockMemberDays); err != nil {
			return fmt.Errorf("locking the member rows' days: %w", err)
		}
		tag, err := tx.Exec(ctx, sqlCloseMemberDays, day)
		if err != nil {
			return fmt.Errorf("moving the member horizon to %s: %w", day.Format(time.DateOnly), err)
		}
		moved = tag.RowsAffected() > 0 // none: another close got there first
		return nil
	})
	if err != nil || !moved {
		return day, 0, err
	}
	// Outside the write transactions' statement timeout: the first close of
	// a table that was never pruned deletes many days at once.
	tag, err := s.pool.Exec(ctx, sqlDeleteMemberDays, day)
	if err != nil {
		return day, 0, fmt.Errorf("deleting the member rows before %s: %w", day.Format(time.DateOnly), err)
	}
	return day, tag.RowsAffected(), nil
}
