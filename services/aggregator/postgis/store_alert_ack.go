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

// sqlAlertPlace is where alert $1 lies: its province, its unit and the
// units its area touches. The row is locked, so the place checked is the
// place of the alert acknowledged.
const sqlAlertPlace = `SELECT a.province, a.unit_code,
    ARRAY(SELECT u.unit_code FROM alert_unit u WHERE u.alert_id = a.id ORDER BY 1)
FROM alert a WHERE a.id = $1 FOR UPDATE OF a`

// AlertPlace is where an alert lies, to check an actor's scope against.
type AlertPlace struct {
	Province, Unit string
	// Units are the units its area touches.
	Units []string
}

// AlertPlaceOf returns where alert id lies, read in tx and locked until tx
// ends. ErrNotFound when there is no such alert.
func AlertPlaceOf(ctx context.Context, tx pgx.Tx, id string) (AlertPlace, error) {
	var p AlertPlace
	err := tx.QueryRow(ctx, sqlAlertPlace, id).Scan(&p.Province, &p.Unit, &p.Units)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, fmt.Errorf("alert %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("reading where alert %s lies: %w", id, err)
	}
	return p, nil
}

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
