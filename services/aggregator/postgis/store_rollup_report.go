package postgis

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// Roll-ups of report changes (docs/rollups.md): a report resolved counts at
// the time of its resolution, one gone overdue at its SLA deadline, in the
// transaction that makes the change, so each counts once.

// reportLayer is the roll-up layer of citizen reports.
const reportLayer = "report"

// changeRollups adds the contributions of entity changes to rollup in tx,
// on the unit tree valid at their times, and returns the roll-ups written
// (nil with roll-ups off).
func (s *Store) changeRollups(ctx context.Context, tx pgx.Tx, changes []contribution) ([]Rollup, error) {
	if !s.rollups.on || len(changes) == 0 {
		return nil, nil
	}
	units := make([]string, 0, len(changes))
	for _, c := range changes {
		units = append(units, c.unit)
	}
	slices.Sort(units)
	units = slices.Compact(units)
	var tree unitTree
	rows, err := tx.Query(ctx, sqlUnitVersions, units)
	if err != nil {
		return nil, fmt.Errorf("reading the tree of %d units: %w", len(units), err)
	}
	err = collectTree(&tree)(rows)
	rows.Close()
	if err != nil {
		return nil, fmt.Errorf("reading the tree of %d units: %w", len(units), err)
	}
	res := Result{changes: changes}
	if err := writeRollups(ctx, tx, Batch{}, &res, s.rollups, rollupInput{tree: tree}); err != nil {
		return nil, err
	}
	return res.Rollups, nil
}

// resolvedChange is the contribution of report r resolved at r.UpdatedAt.
func resolvedChange(r ReportState) contribution {
	c := contribution{layer: reportLayer, unit: r.UnitCode, province: r.Province, observed: r.UpdatedAt, received: r.UpdatedAt, change: true}
	c.figures.ResolvedN = 1
	if !r.UpdatedAt.After(r.Deadline) {
		c.figures.ResolvedInSLAN = 1
	}
	return c
}

// openedChange is the change of the gauge reports open of report r stored
// for the first time: one opened at its reported_at, whatever its lateness.
func openedChange(r *ReportRow) contribution {
	c := contribution{layer: reportLayer, unit: r.UnitCode, province: r.Province, observed: r.ReportedAt, received: r.ReportedAt, change: true}
	c.figures.OpenN = 1
	return c
}

// ReportClosedRollups adds, in tx, report r (as SetReportStatus in tx
// returned it, at its UpdatedAt) to the roll-ups of its unit and ancestors
// when r is resolved or rejected (both final): resolved (and within the SLA
// when by its deadline) or rejected, toward the units valid at the change;
// and closed, the change of the gauge reports open, toward the units it was
// opened in (valid at its reported_at). It returns the roll-ups written, to
// publish after the commit. The caller calls it once, in the transaction
// that closes r. A report in another status adds nothing.
func (s *Store) ReportClosedRollups(ctx context.Context, tx pgx.Tx, r ReportState) ([]Rollup, error) {
	if !s.rollups.on || (r.Status != "resolved" && r.Status != "rejected") {
		return nil, nil
	}
	flow := resolvedChange(r)
	if r.Status == "rejected" {
		flow.figures = Figures{RejectedN: 1}
	}
	tree, err := readTree(ctx, tx, []string{r.UnitCode})
	if err != nil {
		return nil, fmt.Errorf("rolling up report %s %s: %w", r.ID, r.Status, err)
	}
	closed := contribution{layer: reportLayer, province: r.Province, observed: r.UpdatedAt, received: r.UpdatedAt, change: true,
		units: tree.walk(r.UnitCode, r.Province, r.ReportedAt).units}
	closed.figures.ClosedN = 1
	res := Result{changes: []contribution{flow, closed}}
	if err := writeRollups(ctx, tx, Batch{}, &res, s.rollups, rollupInput{tree: tree}); err != nil {
		return nil, fmt.Errorf("rolling up report %s %s: %w", r.ID, r.Status, err)
	}
	return res.Rollups, nil
}

// MarkReportsOverdue records that the reports ids were published overdue at
// at (history and audit rows included) and, in the same transaction, adds
// each report it marked (not one marked before) to the reports gone overdue
// of its unit and ancestors at its SLA deadline. It returns the roll-ups
// written, to publish.
func (s *Store) MarkReportsOverdue(ctx context.Context, ids []string, at time.Time) ([]Rollup, error) {
	var out []Rollup
	err := s.BeginFunc(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sqlMarkOverdue, ids, at)
		if err != nil {
			return err
		}
		var changes []contribution
		for rows.Next() {
			c := contribution{layer: reportLayer, change: true}
			if err := rows.Scan(&c.province, &c.unit, &c.observed); err != nil {
				rows.Close()
				return err
			}
			c.received, c.figures.OverdueN = c.observed, 1
			changes = append(changes, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		out, err = s.changeRollups(ctx, tx, changes)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("marking %d reports overdue: %w", len(ids), err)
	}
	return out, nil
}
