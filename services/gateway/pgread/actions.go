package pgread

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ActionView is how an operator action ended, as the aggregator recorded it
// (action_done): applied, or refused with the reason.
type ActionView struct {
	ID         string     `json:"id"`
	Type       string     `json:"type"`
	Actor      string     `json:"actor"`
	Province   string     `json:"province"`
	TargetKind string     `json:"targetKind"`
	Target     string     `json:"target"`
	At         *time.Time `json:"at,omitempty"`
	Result     string     `json:"result"`
	Reason     string     `json:"reason,omitempty"`
	DoneAt     time.Time  `json:"doneAt"`
}

// SQLAction selects one recorded action.
const SQLAction = `SELECT id, type, actor, province, target_kind, target, at, result, reason, done_at FROM action_done WHERE id = $1`

// Action reads the record of action id; found is false while it has not
// been applied or refused (or never was queued).
func (s *Store) Action(ctx context.Context, id string) (v ActionView, found bool, err error) {
	err = s.pool.QueryRow(ctx, SQLAction, id).Scan(&v.ID, &v.Type, &v.Actor, &v.Province, &v.TargetKind, &v.Target, &v.At,
		&v.Result, &v.Reason, &v.DoneAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return ActionView{}, false, nil
	}
	if err != nil {
		return ActionView{}, false, fmt.Errorf("reading action %s: %w", id, err)
	}
	return v, true, nil
}
