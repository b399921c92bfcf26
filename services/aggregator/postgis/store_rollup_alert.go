package postgis

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// Roll-ups of alerts and the gauges (docs/rollups.md, "Alerts and gauges"):
// an alert counts as activated when it becomes active and as ended when it
// stops, per severity grade, each change once, in the transaction that makes
// it; the gauges alerts active and reports open are prefix sums of the
// changes, read when a roll-up is published.

// alertLayer is the roll-up layer of CAP alerts.
const alertLayer = "alert"

// Grades is the number of CAP severity grades: Unknown 0, Minor 1,
// Moderate 2, Severe 3, Extreme 4 (iochub_alert_grade, migration 00023).
const Grades = 5

// alertChange is an alert that became active (until nil) or stopped being
// active (until set) in a statement, with its active period as its row
// records it.
type alertChange struct {
	province    string
	grade       *int16
	from, until *time.Time
	// units are the units the alert touched when it became active.
	units []string
}

// ended reports whether c is a complete active period: one that ended.
func (c alertChange) ended() bool { return c.grade != nil && c.from != nil && c.until != nil }

// contribution is what c adds to the roll-ups: one activated or ended of
// its grade, at its start or end, toward its units, their ancestors and
// groups as valid at the start, each once.
func (c alertChange) contribution(tree unitTree) contribution {
	k := contribution{layer: alertLayer, province: c.province, change: true, units: tree.walkUnits(c.units, c.province, *c.from)}
	g := min(max(int(*c.grade), 0), Grades-1)
	if c.until != nil {
		k.observed = *c.until
		k.figures.Ended[g] = 1
	} else {
		k.observed = *c.from
		k.figures.Activated[g] = 1
	}
	k.received = k.observed
	// The units are those of the start; the province token of each is the
	// one it has at the time of the change (a unit gone by then keeps its
	// token of the start).
	for i, a := range k.units {
		if p, ok := tree.provinceAt(a.code, k.observed); ok {
			k.units[i].province = p
		}
	}
	return k
}

// provinceAt is the province token of the roll-ups of unit code at time at:
// its own code for the national unit, a province and a custom group, else
// the code of the province above it then; false when the unit or one of
// its ancestors below the province has no version valid then.
func (t unitTree) provinceAt(code string, at time.Time) (string, bool) {
	for depth := 0; code != "" && depth < maxDepth; depth++ {
		v, ok := t.at(code, at)
		if !ok {
			return "", false
		}
		switch v.level {
		case "national", "province", "custom":
			return code, true
		}
		code = v.parent
	}
	return "", false
}

// walkUnits returns the units touched and their ancestors and groups valid
// at at, each once, with the province token of each: the code of the
// province above the touched unit (province when none is known), the unit's
// own code for the national unit and a custom group.
func (t unitTree) walkUnits(touched []string, province string, at time.Time) []ancestor {
	out := []ancestor{}
	for _, u := range touched {
		p := t.walk(u, province, at)
		prov := province
		for _, a := range p.units {
			if v, ok := t.at(a.code, p.at); ok && v.level == "province" {
				prov = a.code
				break
			}
		}
		for _, a := range p.units {
			if a.province != a.code { // neither national nor a group
				if v, ok := t.at(a.code, p.at); ok && v.level == "custom" {
					a.province = a.code
				} else {
					a.province = prov
				}
			}
			if !slices.ContainsFunc(out, func(o ancestor) bool { return o.code == a.code }) {
				out = append(out, a)
			}
		}
	}
	return out
}

// readTree reads the versions of units and their ancestors, and their
// groups, in tx.
func readTree(ctx context.Context, tx pgx.Tx, units []string) (unitTree, error) {
	slices.Sort(units)
	units = slices.Compact(units)
	var tree unitTree
	rows, err := tx.Query(ctx, sqlUnitVersions, units)
	if err != nil {
		return tree, fmt.Errorf("reading the tree of %d units: %w", len(units), err)
	}
	err = collectTree(&tree)(rows)
	rows.Close()
	if err != nil {
		return tree, fmt.Errorf("reading the tree of %d units: %w", len(units), err)
	}
	return tree, nil
}

// alertContributions are the contributions of changes, on the tree read in tx.
func alertContributions(ctx context.Context, tx pgx.Tx, changes []alertChange) ([]contribution, error) {
	var units []string
	for _, c := range changes {
		units = append(units, c.units...)
	}
	tree, err := readTree(ctx, tx, units)
	if err != nil {
		return nil, err
	}
	out := make([]contribution, 0, len(changes))
	for _, c := range changes {
		out = append(out, c.contribution(tree))
	}
	return out, nil
}

// writeAlertChanges is the alert store's write hook: it turns the alerts the
// batch activated or ended (res.alertChanges, recorded with roll-ups on) into
// changes that writeRollups adds with the rest of the batch, and the stored
// periods of a redelivered batch's alerts (res.alertPeriods: an activation,
// and an end when the period ended) into the contributions whose roll-ups
// are published again (res.again), on one read of the tree.
func writeAlertChanges(ctx context.Context, tx pgx.Tx, _ Batch, res *Result) error {
	if len(res.alertChanges)+len(res.alertPeriods) == 0 {
		return nil
	}
	all := slices.Clone(res.alertChanges)
	for _, p := range res.alertPeriods {
		all = append(all, alertChange{province: p.province, grade: p.grade, from: p.from, units: p.units})
		if p.ended() {
			all = append(all, p)
		}
	}
	cs, err := alertContributions(ctx, tx, all)
	if err != nil {
		return fmt.Errorf("rolling up %d alert changes: %w", len(all), err)
	}
	n := len(res.alertChanges)
	res.changes = append(res.changes, cs[:n]...)
	res.again = append(res.again, cs[n:]...)
	return nil
}

// MarkExpired records the alerts ids as expired at the given time (those
// still active: a second call changes nothing) and, in the same transaction,
// adds each alert it expired to the alerts ended of its units at its
// expires. It returns the roll-ups written, to publish.
func (s *Store) MarkExpired(ctx context.Context, ids []string, at time.Time) ([]Rollup, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var out []Rollup
	err := s.BeginFunc(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sqlMarkExpired, ids, at)
		if err != nil {
			return err
		}
		var changes []alertChange
		for rows.Next() {
			var c alertChange
			if err := rows.Scan(&c.province, &c.grade, &c.from, &c.until, &c.units); err != nil {
				rows.Close()
				return err
			}
			if c.ended() {
				changes = append(changes, c)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if !s.rollups.on || len(changes) == 0 {
			return nil
		}
		cs, err := alertContributions(ctx, tx, changes)
		if err != nil {
			return err
		}
		res := Result{changes: cs}
		if err := writeRollups(ctx, tx, Batch{}, &res, s.rollups, rollupInput{}); err != nil {
			return err
		}
		out = res.Rollups
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("marking %d alerts expired: %w", len(ids), err)
	}
	return out, nil
}

// gauges are the gauges of a roll-up: alerts active per grade (layer
// alert) and reports open (layer report).
type gauges struct {
	active [Grades]int64
	open   int64
}

// queueRollupGauges queues on pb the read of the gauges of the alert and
// report roll-ups of keys as at the end of their windows, filled into the map
// it returns when pb is sent: alerts active per grade, Σ (activated −
// ended), and reports open, Σ (open − closed), over every change of the unit
// and layer up to the end of the window. They are read as the totals of the
// changes (rollup_gauge_total) less the changes after the window: the 1d
// roll-ups of later days and the roll-ups of the window's length later in
// its day. A batch queues it after the upsert and the totals' addition, so
// that it sees the changes the batch wrote; it reads what came after the
// window, not the history before it. Nothing is queued when keys have no
// such roll-up.
func queueRollupGauges(pb *pgx.Batch, keys []rollupKey) map[rollupKey]gauges {
	out := map[rollupKey]gauges{}
	var ks []rollupKey
	var units, layers, wins []string
	var starts, days []time.Time
	for _, k := range keys {
		if k.layer != alertLayer && k.layer != reportLayer {
			continue
		}
		start := time.Unix(k.start, 0).UTC()
		ks = append(ks, k)
		units, layers, wins = append(units, k.unit), append(layers, k.layer), append(wins, k.window)
		starts, days = append(starts, start), append(days, dayWindow.start(start))
	}
	if len(ks) == 0 {
		return out
	}
	pb.Queue(sqlRollupGauges, units, layers, wins, starts, days).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var ord int
			var g gauges
			if err := rows.Scan(&ord, &g.active[0], &g.active[1], &g.active[2], &g.active[3], &g.active[4], &g.open); err != nil {
				return fmt.Errorf("reading the gauges of %d roll-ups: %w", len(ks), err)
			}
			out[ks[ord-1]] = g
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading the gauges of %d roll-ups: %w", len(ks), err)
		}
		return nil
	})
	return out
}

// gaugeTotals are the changes a batch adds to the gauges' totals
// (rollup_gauge_total), per unit and layer, in key order: those of its 1d
// roll-ups, where every change counts once.
type gaugeTotals struct {
	// some says that the batch writes 1d roll-ups of alerts or reports,
	// whose changes it adds itself (queue): the totals' trigger (migration
	// 00037) must leave them out.
	some          bool
	units, layers []string
	active        [Grades][]int64
	open          []int64
}

// gaugeTotalsOf sums the changes of the 1d alert and report roll-ups of acc
// (keys in order: one lock order for every writer) per unit and layer,
// leaving out units whose changes sum to zero.
func gaugeTotalsOf(order []rollupKey, acc map[rollupKey]*Rollup) gaugeTotals {
	type unitTotal struct {
		unit, layer string
		d           [Grades + 1]int64 // active per grade, then open
	}
	var us []unitTotal
	var t gaugeTotals
	for _, k := range order {
		if k.window != dayWindow.name || (k.layer != alertLayer && k.layer != reportLayer) {
			continue
		}
		t.some = true
		if n := len(us); n == 0 || us[n-1].unit != k.unit || us[n-1].layer != k.layer {
			us = append(us, unitTotal{unit: k.unit, layer: k.layer})
		}
		u, r := &us[len(us)-1], acc[k]
		for g := range Grades {
			u.d[g] += r.Activated[g] - r.Ended[g]
		}
		u.d[Grades] += r.OpenN - r.ClosedN
	}
	for _, u := range us {
		if u.d == [Grades + 1]int64{} {
			continue
		}
		t.units, t.layers, t.open = append(t.units, u.unit), append(t.layers, u.layer), append(t.open, u.d[Grades])
		for g := range t.active {
			t.active[g] = append(t.active[g], u.d[g])
		}
	}
	return t
}

// queueByBatch queues, when the batch writes 1d alert or report roll-ups,
// the setting that tells the totals' trigger that the batch adds their
// changes itself: before the roll-ups' upsert.
func (t *gaugeTotals) queueByBatch(pb *pgx.Batch) {
	if t.some {
		pb.Queue(sqlGaugeTotalsByBatch)
	}
}

// queue queues the addition of the changes to the totals: after the
// roll-ups' upsert (the last lock of the batch's transaction) and before the
// gauges' read.
func (t *gaugeTotals) queue(pb *pgx.Batch) {
	if len(t.units) == 0 {
		return
	}
	pb.Queue(sqlAddGaugeTotals, t.units, t.layers, t.active[0], t.active[1], t.active[2], t.active[3], t.active[4], t.open)
}

// setRollupGauges sets the gauges of the alert and report roll-ups of rs
// from gs.
func setRollupGauges(rs []Rollup, gs map[rollupKey]gauges) {
	for i := range rs {
		r := &rs[i]
		g, ok := gs[rollupKey{r.UnitCode, r.Layer, r.Window, r.WindowStart.Unix()}]
		if !ok {
			continue
		}
		if r.Layer == alertLayer {
			r.AlertsActive = g.active
		} else {
			r.ReportsOpen = g.open
		}
	}
}
