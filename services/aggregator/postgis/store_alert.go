package postgis

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// alertStore upserts CAP alerts with the units their areas touch, and
// resolves the alerts their Updates and Cancels refer to (Result.Referenced).
// In a redelivered batch (roll-ups on) it also reads the active periods of
// its alerts and of those they refer to, whose roll-ups are published again
// (Result.alertPeriods).
var alertStore = kindStore{
	rows: func(b Batch) int { return len(b.Alerts) },
	staging: &staging{"alert_staging", sqlCreateAlertStaging, alertStagingColumns,
		func(b Batch, i int) []any { return alertValues(i, &b.Alerts[i]) }},
	queue:  queueAlerts,
	write:  writeAlertChanges,
	result: func(res *Result) *KindResult { return &res.Alerts },
}

// queueAlerts queues the upsert of the staged alerts, of their units, the
// record of the alerts activated and the resolution of their references;
// its finish gives each changed alert its units and drops the changed
// alerts that a reference resolved. With roll-ups on, the alerts that became
// active or stopped being so are recorded in res for writeAlertChanges.
func queueAlerts(pb *pgx.Batch, b Batch, res *Result, ro rollupOptions) func() {
	units := map[int][]string{} // by index of the alert row
	pb.Queue(sqlUpsertAlert).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var c Changed
			var inserted bool
			var prev string
			var ch alertChange
			var ackedAt *time.Time
			if err := rows.Scan(&c.Index, &c.State, &c.UpdatedAt, &inserted, &prev, &ch.province, &ch.grade,
				&ch.from, &ch.until, &ch.units, &c.AckedBy, &ackedAt); err != nil {
				return err
			}
			if ackedAt != nil {
				c.AckedAt = *ackedAt
			}
			if inserted {
				res.Alerts.New++
				res.Alerts.Inserted = append(res.Alerts.Inserted, c.Index)
			}
			res.Alerts.Changed = append(res.Alerts.Changed, c)
			// Rewritten out of the active state (its activations come from
			// sqlActivateAlerts, once its units are known).
			if ro.on && prev == "active" && c.State != "active" && ch.ended() {
				res.alertChanges = append(res.alertChanges, ch)
			}
		}
		return rows.Err()
	})
	pb.Queue(sqlDeleteAlertUnits)
	byID := make(map[string]int, len(b.Alerts))
	pb.Queue(sqlInsertAlertUnits).Query(func(rows pgx.Rows) error {
		// The alert rows changed are known by now: statements of a batch
		// run, and their results are read, in order.
		for _, c := range res.Alerts.Changed {
			byID[b.Alerts[c.Index].ID()] = c.Index
		}
		for rows.Next() {
			var id, code string
			if err := rows.Scan(&id, &code); err != nil {
				return err
			}
			if i, ok := byID[id]; ok {
				units[i] = append(units[i], code)
			}
		}
		return rows.Err()
	})
	pb.Queue(sqlActivateAlerts).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var ch alertChange
			if err := rows.Scan(&ch.province, &ch.grade, &ch.from, &ch.units); err != nil {
				return err
			}
			if ro.on && ch.grade != nil && ch.from != nil {
				res.alertChanges = append(res.alertChanges, ch)
			}
		}
		return rows.Err()
	})
	if ro.on && b.Redelivered {
		ids := make([]string, len(b.Alerts))
		for i := range b.Alerts {
			ids[i] = b.Alerts[i].ID()
		}
		pb.Queue(sqlAlertPeriods, ids).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var ch alertChange
				if err := rows.Scan(&ch.province, &ch.grade, &ch.from, &ch.until, &ch.units); err != nil {
					return err
				}
				res.alertPeriods = append(res.alertPeriods, ch)
			}
			return rows.Err()
		})
	}
	pb.Queue(sqlResolveReferences).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var a AlertState
			var ended bool
			var ch alertChange
			if err := rows.Scan(&a.ID, &a.State, &a.UpdatedAt, &a.Province, &a.UnitCode, &a.Body, &a.Units,
				&ended, &ch.grade, &ch.from, &ch.until, &ch.units); err != nil {
				return err
			}
			res.Referenced = append(res.Referenced, a)
			if ro.on && ended && ch.ended() {
				ch.province = a.Province
				res.alertChanges = append(res.alertChanges, ch)
			}
		}
		return rows.Err()
	})
	return func() {
		referenced := make(map[string]bool, len(res.Referenced))
		for _, r := range res.Referenced {
			referenced[r.ID] = true
		}
		changed := res.Alerts.Changed[:0]
		for _, c := range res.Alerts.Changed {
			if referenced[b.Alerts[c.Index].ID()] {
				continue // its state is the one resolved after the upsert
			}
			c.Units = units[c.Index]
			slices.Sort(c.Units)
			changed = append(changed, c)
		}
		res.Alerts.Changed = changed
	}
}

// ApplyAlertDefaultTTL gives the active alerts of province (empty means
// every province) that name no expiry, except those of the sources exempt,
// the expiry sent + ttl, marked as the hub's default (AlertRow.ExpiresDefault);
// ttl <= 0 takes the default expiry off them, which keeps them active until
// a Cancel or Update. It returns how many alerts it changed; a second call
// with the same arguments changes none.
func (s *Store) ApplyAlertDefaultTTL(ctx context.Context, province string, ttl time.Duration, exempt []string) (int64, error) {
	if exempt == nil {
		exempt = []string{}
	}
	tag, err := s.pool.Exec(ctx, sqlApplyAlertDefaultTTL, province, ttl.Seconds(), exempt)
	if err != nil {
		return 0, fmt.Errorf("applying the default lifetime %s to stored alerts: %w", ttl, err)
	}
	return tag.RowsAffected(), nil
}
