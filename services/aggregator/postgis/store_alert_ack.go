package postgis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// sqlAckAlert records the acknowledgement of alert $1 by $2 at $3, unless it
// has one, and returns the alert as it now is (with the earlier
// acknowledgement when there was one) and whether this call set it.
const sqlAckAlert = `WITH cur AS (
    SELECT id FROM alert WHERE id = $1 FOR UPDATE
), upd AS (
    UPDATE alert a SET acked_by = $2, acked_at = $3, updated_at = now()
    FROM cur WHERE a.id = cur.id AND a.acked_by IS NULL
    RETURNING a.id, a.acked_by, a.acked_at, a.updated_at
)
SELECT a.id, a.state, coalesce(upd.updated_at, a.updated_at), a.province, a.unit_code, a.body,
    ARRAY(SELECT u.unit_code FROM alert_unit u WHERE u.alert_id = a.id ORDER BY 1),
    coalesce(upd.acked_by, a.acked_by), coalesce(upd.acked_at, a.acked_at), upd.id IS NOT NULL
FROM alert a JOIN cur ON cur.id = a.id LEFT JOIN upd ON upd.id = a.id`

// AckAlert records in tx that actor acknowledged alert id at at, once: an
// alert acknowledged already keeps its first acknowledgement and set is
// false. ErrNotFound when there is no such alert.
func AckAlert(ctx context.Context, tx pgx.Tx, id, actor string, at time.Time) (a AlertState, set bool, err error) {
	var by *string
	var ackedAt *time.Time
	err = tx.QueryRow(ctx, sqlAckAlert, id, actor, at).Scan(&a.ID, &a.State, &a.UpdatedAt, &a.Province, &a.UnitCode,
		&a.Body, &a.Units, &by, &ackedAt, &set)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, false, fmt.Errorf("alert %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return a, false, fmt.Errorf("acknowledging alert %s: %w", id, err)
	}
	if by != nil && ackedAt != nil {
		a.AckedBy, a.AckedAt = *by, *ackedAt
	}
	return a, set, nil
}
