package postgis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultLateness is the Lateness of a zero StoreConfig.
const DefaultLateness = 2 * time.Hour

// Rollup is one roll-up row as a batch left it: the mergeable parts of the
// figures of a unit's layer in one window (migration 00017, docs/rollups.md).
type Rollup struct {
	UnitCode    string
	Layer       string
	Window      string // 1m, 15m, 1h or 1d
	WindowStart time.Time
	Province    string // the province's subject token (the national unit's own code)
	N           int64  // observations counted
	Late        int64  // observations stored but received after the window's end plus the lateness
	Figures
	// Members counts the distinct stations (air, water) or segments
	// (traffic) that reported in the window; GradeN[g] those whose worst
	// grade there was g (air: band 1–6, 0 without one; water: alarm level
	// 0–3; traffic: 1 congested, 0 not).
	Members int64
	GradeN  [7]int64
	// Known counts the stations (air, water, weather) or road segments
	// (traffic) of the layer in the unit and its descendants in the current
	// tree; Stale the stale source and unit pairs there. Both are read when
	// the batch's roll-ups are written, not kept in rollup.
	Known int64
	Stale int64
	// AlertsActive (layer alert, per severity grade) and ReportsOpen (layer
	// report) are the gauges at the window's end, read when the roll-up is
	// written (store_rollup_alert.go), not kept in rollup.
	AlertsActive [Grades]int64
	ReportsOpen  int64
	UpdatedAt    time.Time
}

// Figures are the mergeable parts of a roll-up's figures: sums, counts and
// maxima that add up over rows, batches and redeliveries alike.
type Figures struct {
	// Air: count, sum and max of the hourly VN_AQI, the worst band, and the
	// dominant pollutant of the observation of the max.
	AQIN     int64
	AQISum   float64
	AQIMax   *int32
	BandMax  *int16
	Dominant *string
	// Traffic: sum of intensity (weight) and of intensity × speed over the
	// observations with a speed, congested observations among those that say,
	// and vehicles counted (sum of intensity).
	SpeedW         float64
	SpeedWSum      float64
	CongestedN     int64
	CongestedKnown int64
	Vehicles       float64
	// Water: the highest level, the highest alarm level reached, and the
	// observations at alarm level 1, 2 and 3.
	LevelMax *float64
	AlarmMax *int16
	AlarmN   [3]int64
	// Weather: count and sum of temperatures, sum of precipitation, max wind speed.
	TempN     int64
	TempSum   float64
	PrecipSum float64
	WindMax   *float64
	// Reports (changes, not observations; docs/rollups.md): resolved in the
	// window, those of them by their SLA deadline, and gone overdue.
	ResolvedN, ResolvedInSLAN, OverdueN int64
	// Changes of the gauges (migration 00023): alerts that became active and
	// that stopped being so, per severity grade; reports opened whatever
	// their lateness, closed (resolved or rejected, toward the units of the
	// report as at its reported_at) and rejected.
	Activated, Ended          [Grades]int64
	OpenN, ClosedN, RejectedN int64
}

// maxOf returns the greater of two optional values, nil when both are.
func maxOf[T int16 | float64](a, b *T) *T {
	if a == nil || (b != nil && *b > *a) {
		return b
	}
	return a
}

// add merges o, the figures of later rows, into f.
func (f *Figures) add(o *Figures) {
	f.AQIN += o.AQIN
	f.AQISum += o.AQISum
	if o.AQIMax != nil && (f.AQIMax == nil || *o.AQIMax > *f.AQIMax) {
		f.AQIMax, f.Dominant = o.AQIMax, o.Dominant
	}
	f.BandMax = maxOf(f.BandMax, o.BandMax)
	f.SpeedW += o.SpeedW
	f.SpeedWSum += o.SpeedWSum
	f.CongestedN += o.CongestedN
	f.CongestedKnown += o.CongestedKnown
	f.Vehicles += o.Vehicles
	f.LevelMax, f.AlarmMax, f.WindMax = maxOf(f.LevelMax, o.LevelMax), maxOf(f.AlarmMax, o.AlarmMax), maxOf(f.WindMax, o.WindMax)
	for i := range f.AlarmN {
		f.AlarmN[i] += o.AlarmN[i]
	}
	f.TempN += o.TempN
	f.TempSum += o.TempSum
	f.PrecipSum += o.PrecipSum
	f.ResolvedN += o.ResolvedN
	f.ResolvedInSLAN += o.ResolvedInSLAN
	f.OverdueN += o.OverdueN
	for g := range Grades {
		f.Activated[g] += o.Activated[g]
		f.Ended[g] += o.Ended[g]
	}
	f.OpenN += o.OpenN
	f.ClosedN += o.ClosedN
	f.RejectedN += o.RejectedN
}

// Key is the roll-up's identity: unit, layer, window and its start.
func (r Rollup) Key() string {
	return fmt.Sprintf("%s|%s|%s|%s", r.UnitCode, r.Layer, r.Window, r.WindowStart.UTC().Format(time.RFC3339))
}

// contribution is what one inserted row adds to the roll-ups of its unit
// and the unit's ancestors.
type contribution struct {
	layer, unit, province string
	observed, received    time.Time
	figures               Figures
	// change marks the change of an entity (a report resolved or gone
	// overdue), not an observation: it counts in its figures only, not in
	// n, and is never late.
	change bool
	// entity, when set, is the station or segment counted once per window
	// with its worst grade.
	entity string
	grade  int16
	// units, when not nil, are the roll-up units of a change walked by its
	// maker (an alert counts once per unit, however many units it touches;
	// store_rollup_alert.go); unit and the tree are not used then.
	units []ancestor
}

// memberKey identifies a row of rollup_member_day: an entity's windows of
// one day (start in Unix seconds) in a unit and layer.
type memberKey struct {
	layer, entity string
	day           int64
	unit          string
}

// rowBytes is the length of a rollup_member_day row's grades: the slots of
// the day, its 24 hours, 96 quarters and 1,440 minutes (1,561), then
// padding (0), so that PostgreSQL stores every version compressed (migration
// 00027: a value is compressed only in a row longer than about 2 kB).
const rowBytes = 2048

// dayWindow is the 1d window, whose start is a member row's day.
var dayWindow = windows[len(windows)-1]

// slot is the slot of w's window starting at start in the row of day.
func (w window) slot(start, day time.Time) int {
	return w.base + int(start.Sub(day)/w.length)
}

// slotWindow is the window of slot s of the row of day: its length's name
// and its start.
func slotWindow(s int, day time.Time) (string, time.Time) {
	for _, w := range windows { // the shortest first: the highest base
		if s >= w.base {
			return w.name, day.Add(time.Duration(s-w.base) * w.length)
		}
	}
	return "", time.Time{}
}

// dayMembers are the members a batch adds to one rollup_member_day row:
// the slots it touched with the worst grade + 1 in each (a handful: the
// day, an hour or two, a quarter or two, the minutes of the batch).
type dayMembers struct {
	slots []memberSlot
	// first holds slots until it is full: a batch with one observation of
	// the entity that day touches a slot of each window.
	first [len(windows)]memberSlot
}

// newDayMembers returns an empty dayMembers whose slots are its first.
func newDayMembers() *dayMembers {
	d := &dayMembers{}
	d.slots = d.first[:0]
	return d
}

// memberSlot is a window slot of a member row and a grade + 1 in it.
type memberSlot struct {
	slot  int
	grade byte
}

// add records grade + 1 g in slot s, keeping the worst.
func (d *dayMembers) add(s int, g byte) {
	for i := range d.slots {
		if d.slots[i].slot == s {
			d.slots[i].grade = max(d.slots[i].grade, g)
			return
		}
	}
	d.slots = append(d.slots, memberSlot{s, g})
}

// rollupOptions are what the roll-ups need of the store.
type rollupOptions struct {
	// on says whether the kinds add roll-up contributions.
	on       bool
	lateness time.Duration
	// known keeps the known sensors and stale sources of the units read
	// last (contextCache); every store has one (NewStoreWith).
	known *contextCache
}

// window is a roll-up window: its name, its length, and its first slot in a
// day's member row (rollup_member_day: the day 0, its hours 1…24, quarters
// 25…120, minutes 121…1560).
type window struct {
	name   string
	length time.Duration
	base   int
}

// windows are the roll-up windows, the shortest first. 1m, 15m and 1h are
// aligned on UTC (as on Vietnam's time, UTC+7); 1d is the day in
// Asia/Ho_Chi_Minh, which has been UTC+7 without daylight saving since
// 1975, so a day is 24 h from 17:00 UTC.
var windows = [...]window{{"1m", time.Minute, 121}, {"15m", 15 * time.Minute, 25}, {"1h", time.Hour, 1}, {"1d", 24 * time.Hour, 0}}

// vnOffset is Asia/Ho_Chi_Minh's offset from UTC.
const vnOffset = 7 * time.Hour

// start is the start of the window of w holding t.
func (w window) start(t time.Time) time.Time {
	if w.name == "1d" {
		return t.Add(vnOffset).Truncate(w.length).Add(-vnOffset).UTC()
	}
	return t.Truncate(w.length).UTC()
}

// unitVersion is one version of a unit in the tree.
type unitVersion struct {
	parent, level string
	from          time.Time
	to            *time.Time
}

// unitTree holds the versions of the units of a batch and their ancestors,
// and their memberships of custom groups (by member; parent is the group).
type unitTree struct {
	versions map[string][]unitVersion
	groups   map[string][]unitVersion
}

// at returns the version of code valid at t.
func (t unitTree) at(code string, at time.Time) (unitVersion, bool) {
	for _, v := range t.versions[code] {
		if !v.from.After(at) && (v.to == nil || v.to.After(at)) {
			return v, true
		}
	}
	return unitVersion{}, false
}

// maxDepth bounds the walk up the tree (a cycle in parent_code ends there).
const maxDepth = 16

// collectTree reads the rows of sqlUnitVersions into *t.
func collectTree(t *unitTree) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		*t = unitTree{versions: map[string][]unitVersion{}, groups: map[string][]unitVersion{}}
		for rows.Next() {
			var kind, code string
			var v unitVersion
			if err := rows.Scan(&kind, &code, &v.parent, &v.level, &v.from, &v.to); err != nil {
				return err
			}
			m := t.versions
			if kind == "g" {
				m = t.groups
			}
			m[code] = append(m[code], v)
		}
		return rows.Err()
	}
}

// rollupUnits are the distinct units of the rows of b that have roll-ups.
func rollupUnits(b Batch) []string {
	var out []string
	for _, k := range kindStores {
		if k.units != nil && k.rows(b) > 0 {
			out = k.units(b, out)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// rollupKey identifies a roll-up row (start in Unix seconds).
type rollupKey struct {
	unit, layer, window string
	start               int64
}

func cmpRollupKey(a, b rollupKey) int {
	return cmp.Or(strings.Compare(a.unit, b.unit), strings.Compare(a.layer, b.layer), strings.Compare(a.window, b.window), cmp.Compare(a.start, b.start))
}

// ancestor is a unit on the path from an event's unit up, with the
// province token of its roll-ups.
type ancestor struct{ code, province string }

// path is the walk up the tree from one unit, valid for observation times in
// [from, to) (the intersection of the versions it went through).
type path struct {
	from, to time.Time // to zero: open
	units    []ancestor
	// at is the instant the tree was walked at: the observation time, or
	// the reference time of a unit with no version then (walk).
	at time.Time
}

// walk returns the units from code up at time at, the event's province
// standing for every unit below the national one, and the times the same
// walk holds for.
//
// A unit with no version valid at at (the ingest places a ward source's
// backlog from before its ward existed on the current map) is walked, with
// its ancestors and groups, as at the start of its first version after at,
// else at the last instant of its last version before: the event counts up
// to VN, as the ingest attributed it, and the same walk holds for the whole
// gap between those versions.
func (t unitTree) walk(code, province string, at time.Time) path {
	if _, known := t.at(code, at); known || len(t.versions[code]) == 0 {
		return t.walkAt(code, province, at)
	}
	var gap path
	t.narrowToGap(code, at, &gap)
	ref := gap.to
	if ref.IsZero() {
		ref = gap.from.Add(-time.Microsecond) // PostgreSQL's precision: no version starts in between
	}
	p := t.walkAt(code, province, ref)
	p.from, p.to = gap.from, gap.to
	return p
}

// narrowToGap narrows p's times to the gap around at in which code has no
// version: from the end of its last version before at to the start of its
// first version after.
func (t unitTree) narrowToGap(code string, at time.Time, p *path) {
	for _, o := range t.versions[code] {
		if o.from.After(at) && (p.to.IsZero() || o.from.Before(p.to)) {
			p.to = o.from
		}
		if o.to != nil && !o.to.After(at) && o.to.After(p.from) {
			p.from = *o.to
		}
	}
}

// walkAt is walk at the instant at, stopping at a unit with no version
// valid then.
func (t unitTree) walkAt(code, province string, at time.Time) path {
	p := path{at: at}
	for depth := 0; code != "" && depth < maxDepth; depth++ {
		v, known := t.at(code, at)
		prov := province
		if known && v.level == "national" {
			prov = code
		}
		p.units = append(p.units, ancestor{code, prov})
		if !known {
			t.narrowToGap(code, at, &p)
			break
		}
		if v.from.After(p.from) {
			p.from = v.from
		}
		if v.to != nil && (p.to.IsZero() || v.to.Before(p.to)) {
			p.to = *v.to
		}
		code = v.parent
	}
	// The custom groups holding a unit of the path count the event too (each
	// once, and only there: a group's roll-ups do not go up to its parent).
	// Their province token is the group's own code.
	n := len(p.units)
	for _, a := range p.units[:n] {
		for _, m := range t.groups[a.code] {
			switch {
			case m.to != nil && !m.to.After(at):
				if m.to.After(p.from) {
					p.from = *m.to
				}
			case m.from.After(at):
				if p.to.IsZero() || m.from.Before(p.to) {
					p.to = m.from
				}
			default:
				if m.from.After(p.from) {
					p.from = m.from
				}
				if m.to != nil && (p.to.IsZero() || m.to.Before(p.to)) {
					p.to = *m.to
				}
				if !slices.ContainsFunc(p.units[n:], func(g ancestor) bool { return g.code == m.parent }) {
					p.units = append(p.units, ancestor{m.parent, m.parent})
				}
			}
		}
	}
	return p
}

// holds reports whether p is the walk at time at.
func (p path) holds(at time.Time) bool {
	return !at.Before(p.from) && (p.to.IsZero() || at.Before(p.to))
}

// writeRollups adds the contributions of the rows b inserted (res, by each
// kind's contribute hook) to rollup and their members to rollup_member_day
// (countMembers) and records the roll-ups written in res.Rollups, in one
// round trip of its own (queueRollups). in holds the units of b's rows and
// their ancestors, and the member rows apply locked.
func writeRollups(ctx context.Context, tx pgx.Tx, b Batch, res *Result, ro rollupOptions, in rollupInput) error {
	var pb pgx.Batch
	done, err := queueRollups(ctx, tx, &pb, b, res, ro, in)
	if err != nil || pb.Len() == 0 {
		return err
	}
	if err := tx.SendBatch(ctx, &pb).Close(); err != nil {
		return fmt.Errorf("adding roll-ups: %w", err)
	}
	done()
	return nil
}

// queueRollups queues on pb the statements that add the contributions of
// the rows of b that res says were inserted (and res's changes) to rollup
// and rollup_member_day, and read back the roll-ups written into
// res.Rollups; once pb is sent (and its results read without error), done
// sets their known, stale and gauge figures. It sends a round trip of its
// own only to create the member rows that do not exist yet (about once per
// entity and day; never when in.members is optimistic). pb is left as
// it was when there is nothing to add.
func queueRollups(ctx context.Context, tx pgx.Tx, pb *pgx.Batch, b Batch, res *Result, ro rollupOptions, in rollupInput) (done func(), err error) {
	done = func() {}
	tree := in.tree
	acc := map[rollupKey]*Rollup{}
	var order []rollupKey
	// The members of the batch by day row, each once per window with its
	// worst grade.
	// Sized for rows in a ward under a province under VN, the common case.
	members := make(map[memberKey]*dayMembers, 3*b.Len())
	morder := make([]memberKey, 0, 3*b.Len())
	paths := map[[2]string][]path{} // by unit and province: the walks met so far
	// The roll-ups the last contribution added to, per window, and the
	// member rows of the contribution's entity, per unit.
	type windowCache struct {
		units []ancestor
		layer string
		start time.Time
		rs    []*Rollup
	}
	wcache := make([]windowCache, len(windows))
	var dms []*dayMembers
	unitsOf := func(c contribution) []ancestor {
		if c.units != nil {
			return c.units
		}
		pk := [2]string{c.unit, c.province}
		for i := range paths[pk] {
			if paths[pk][i].holds(c.observed) {
				return paths[pk][i].units
			}
		}
		paths[pk] = append(paths[pk], tree.walk(c.unit, c.province, c.observed))
		return paths[pk][len(paths[pk])-1].units
	}
	emit := func(c contribution) {
		units := unitsOf(c)
		day := dayWindow.start(c.observed)
		if c.entity != "" {
			dms = append(dms[:0], make([]*dayMembers, len(units))...)
		}
		for wi, w := range windows {
			start := w.start(c.observed)
			late := !c.change && (c.received.After(start.Add(w.length+ro.lateness)) || day.Before(in.horizon))
			// The roll-ups of the window and units, as the previous
			// contribution's when the same (rows come in runs of a unit and
			// window): one map look-up per unit and window otherwise.
			wc := &wcache[wi]
			if len(units) == 0 || len(wc.rs) != len(units) || &wc.units[0] != &units[0] || wc.layer != c.layer || !wc.start.Equal(start) {
				wc.units, wc.layer, wc.start, wc.rs = units, c.layer, start, wc.rs[:0]
				for _, a := range units {
					k := rollupKey{a.code, c.layer, w.name, start.Unix()}
					r := acc[k]
					if r == nil {
						r = &Rollup{UnitCode: a.code, Layer: c.layer, Window: w.name, WindowStart: start, Province: a.province}
						acc[k] = r
						order = append(order, k)
					}
					wc.rs = append(wc.rs, r)
				}
			}
			for i, r := range wc.rs {
				if late {
					r.Late++
					continue
				}
				if !c.change {
					r.N++
				}
				r.add(&c.figures)
				if c.entity != "" {
					dm := dms[i]
					if dm == nil {
						mk := memberKey{c.layer, c.entity, day.Unix(), units[i].code}
						if dm = members[mk]; dm == nil {
							dm = newDayMembers()
							members[mk] = dm
							morder = append(morder, mk)
						}
						dms[i] = dm
					}
					dm.add(w.slot(start, day), byte(c.grade+1))
				}
			}
		}
	}
	for _, k := range kindStores {
		if k.contribute != nil && k.rows(b) > 0 {
			k.contribute(b, res, emit)
		}
	}
	for _, c := range res.changes {
		emit(c)
	}
	// The windows of the rows stored before, in a redelivery (of a batch
	// that may have committed and not published), not changed by the
	// batch: read back and published again.
	var again []rollupKey
	for k := range againKeys(b, res, unitsOf) {
		if acc[k] == nil {
			again = append(again, k)
		}
	}
	slices.SortFunc(again, cmpRollupKey)
	if len(order) == 0 {
		if len(again) == 0 {
			return done, nil
		}
		queueReadRollups(pb, again, res)
		return queueReturned(pb, again, res, ro, nil), nil
	}
	if err := countMembers(ctx, tx, pb, acc, members, morder, in.members); err != nil {
		return done, err
	}
	// One lock order for every writer, as the member rows: concurrent
	// batches (the province partitions) share their ancestors' roll-ups.
	slices.SortFunc(order, cmpRollupKey)
	n := len(order)
	var (
		units, layers, wins, provs, doms  = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]*string, n)
		starts                            = make([]time.Time, n)
		ns, lates, aqiNs, congNs, congKs  = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		aqiSums, speedWs, speedWSums      = make([]float64, n), make([]float64, n), make([]float64, n)
		vehicles, tempSums, precips       = make([]float64, n), make([]float64, n), make([]float64, n)
		aqiMaxs                           = make([]*int32, n)
		bandMaxs, alarmMaxs               = make([]*int16, n), make([]*int16, n)
		levelMaxs, windMaxs               = make([]*float64, n), make([]*float64, n)
		alarm1s, alarm2s, alarm3s, tempNs = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		resolvedNs, inSLANs, overdueNs    = make([]int64, n), make([]int64, n), make([]int64, n)
		memberNs                          = make([]int64, n)
		gradeNs                           [7][]int64
		activated, ended                  [Grades][]int64
		openNs, closedNs, rejectedNs      = make([]int64, n), make([]int64, n), make([]int64, n)
	)
	for g := range gradeNs {
		gradeNs[g] = make([]int64, n)
	}
	for g := range Grades {
		activated[g], ended[g] = make([]int64, n), make([]int64, n)
	}
	for i, k := range order {
		r := acc[k]
		units[i], layers[i], wins[i], starts[i], provs[i] = r.UnitCode, r.Layer, r.Window, r.WindowStart, r.Province
		ns[i], lates[i] = r.N, r.Late
		aqiNs[i], aqiSums[i], aqiMaxs[i], bandMaxs[i], doms[i] = r.AQIN, r.AQISum, r.AQIMax, r.BandMax, r.Dominant
		speedWs[i], speedWSums[i], congNs[i], congKs[i], vehicles[i] = r.SpeedW, r.SpeedWSum, r.CongestedN, r.CongestedKnown, r.Vehicles
		levelMaxs[i], alarmMaxs[i], alarm1s[i], alarm2s[i], alarm3s[i] = r.LevelMax, r.AlarmMax, r.AlarmN[0], r.AlarmN[1], r.AlarmN[2]
		tempNs[i], tempSums[i], precips[i], windMaxs[i] = r.TempN, r.TempSum, r.PrecipSum, r.WindMax
		resolvedNs[i], inSLANs[i], overdueNs[i] = r.ResolvedN, r.ResolvedInSLAN, r.OverdueN
		memberNs[i] = r.Members
		for g := range gradeNs {
			gradeNs[g][i] = r.GradeN[g]
		}
		for g := range Grades {
			activated[g][i], ended[g][i] = r.Activated[g], r.Ended[g]
		}
		openNs[i], closedNs[i], rejectedNs[i] = r.OpenN, r.ClosedN, r.RejectedN
	}
	// One round trip: the members' rows, the roll-ups, then the known and
	// stale figures of their units and the gauges of the alert and report
	// roll-ups.
	totals := gaugeTotalsOf(order, acc)
	totals.queueByBatch(pb)
	// A layer fills a few of the figures: the others go as NULL arrays, not
	// as arrays of zeros to encode, send and decode.
	pb.Queue(sqlUpsertRollups, units, layers, wins, starts, provs, ns, orNil(lates),
		orNil(aqiNs), orNil(aqiSums), orNil(aqiMaxs), orNil(bandMaxs), orNil(doms),
		orNil(speedWs), orNil(speedWSums), orNil(congNs), orNil(congKs), orNil(vehicles),
		orNil(levelMaxs), orNil(alarmMaxs), orNil(alarm1s), orNil(alarm2s), orNil(alarm3s),
		orNil(tempNs), orNil(tempSums), orNil(precips), orNil(windMaxs),
		orNil(resolvedNs), orNil(inSLANs), orNil(overdueNs), orNil(memberNs),
		orNil(gradeNs[0]), orNil(gradeNs[1]), orNil(gradeNs[2]), orNil(gradeNs[3]), orNil(gradeNs[4]), orNil(gradeNs[5]), orNil(gradeNs[6]),
		orNil(activated[0]), orNil(activated[1]), orNil(activated[2]), orNil(activated[3]), orNil(activated[4]),
		orNil(ended[0]), orNil(ended[1]), orNil(ended[2]), orNil(ended[3]), orNil(ended[4]),
		orNil(openNs), orNil(closedNs), orNil(rejectedNs),
	).Query(collectRollups(&res.Rollups))
	queueReadRollups(pb, again, res)
	all := order
	if len(again) > 0 {
		all = slices.SortedFunc(slices.Values(append(slices.Clone(order), again...)), cmpRollupKey)
	}
	return queueReturned(pb, all, res, ro, &totals), nil
}

// queueReturned queues on pb, after a batch's writes and its reads of
// roll-ups stored before (queueReadRollups), what completes the roll-ups it
// returns in res.Rollups, whose keys are keys (sorted by cmpRollupKey): the
// known and stale figures of their units, the totals' addition (totals,
// when the batch changed roll-ups), their gauges and the latest windows after
// them (queueLatestRollups). Once pb is sent, done sets the figures and puts
// the roll-ups in the order to publish them.
func queueReturned(pb *pgx.Batch, keys []rollupKey, res *Result, ro rollupOptions, totals *gaugeTotals) (done func()) {
	units := make([]string, 0, len(keys)) // held by the queued statement until pb is sent
	for i, k := range keys {
		if i == 0 || k.unit != keys[i-1].unit { // sorted by unit first
			units = append(units, k.unit)
		}
	}
	counts := queueRollupContextCached(pb, units, ro.known)
	// The gauges last: they read the changes the upsert and the totals'
	// addition just wrote.
	if totals != nil {
		totals.queue(pb)
	}
	gauges := queueRollupGauges(pb, keys)
	queueLatestRollups(pb, keys, time.Now(), res)
	return func() {
		setRollupContext(res.Rollups, counts)
		setRollupGauges(res.Rollups, gauges)
		sortForPublish(res.Rollups)
	}
}

// sortForPublish orders rs by unit, layer, window and start, so that
// published in that order each subject of ROLLUPS (which has no window
// start) gets its windows in time order and keeps the latest.
func sortForPublish(rs []Rollup) {
	slices.SortFunc(rs, func(a, b Rollup) int {
		return cmpRollupKey(rollupKey{a.UnitCode, a.Layer, a.Window, a.WindowStart.Unix()}, rollupKey{b.UnitCode, b.Layer, b.Window, b.WindowStart.Unix()})
	})
}

// againKeys returns, for a redelivered batch, the roll-up keys of the rows
// of b with roll-ups that res says were not inserted (stored before) and of
// the changes of its alerts as stored (res.again), their units found by
// unitsOf.
func againKeys(b Batch, res *Result, unitsOf func(contribution) []ancestor) map[rollupKey]bool {
	if !b.Redelivered {
		return nil
	}
	keys := map[rollupKey]bool{}
	add := func(c contribution) {
		for _, a := range unitsOf(c) {
			for _, w := range windows {
				keys[rollupKey{a.code, c.layer, w.name, w.start(c.observed).Unix()}] = true
			}
		}
	}
	for _, c := range res.again {
		add(c)
	}
	var dup Result
	for _, k := range kindStores {
		ins := k.insertedOf(res)
		if ins == nil || len(*ins) == k.rows(b) {
			continue
		}
		inserted := make([]bool, k.rows(b))
		for _, i := range *ins {
			inserted[i] = true
		}
		not := k.insertedOf(&dup)
		for i, in := range inserted {
			if !in {
				*not = append(*not, i)
			}
		}
		k.contribute(b, &dup, add)
	}
	return keys
}

// queueReadRollups queues on pb the read of the stored roll-ups of keys
// into res.Rollups (a key with no row is left out).
func queueReadRollups(pb *pgx.Batch, keys []rollupKey, res *Result) {
	if len(keys) == 0 {
		return
	}
	units, layers, wins, starts := make([]string, len(keys)), make([]string, len(keys)), make([]string, len(keys)), make([]time.Time, len(keys))
	for i, k := range keys {
		units[i], layers[i], wins[i], starts[i] = k.unit, k.layer, k.window, time.Unix(k.start, 0).UTC()
	}
	pb.Queue(sqlReadRollups, units, layers, wins, starts).Query(collectRollups(&res.Rollups))
}

// collectRollups appends to out the roll-ups of rows (rollupColumns).
func collectRollups(out *[]Rollup) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		for rows.Next() {
			var r Rollup
			if err := scanRollup(rows, &r); err != nil {
				return fmt.Errorf("reading roll-ups: %w", err)
			}
			*out = append(*out, r)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading roll-ups: %w", err)
		}
		return nil
	}
}

// scanRollup reads into r a row of rollupColumns, then into more the row's
// columns after them.
func scanRollup(rows pgx.Rows, r *Rollup, more ...any) error {
	var grades []int64
	dst := append([]any{&r.UnitCode, &r.Layer, &r.Window, &r.WindowStart, &r.Province, &r.N, &r.Late,
		&r.AQIN, &r.AQISum, &r.AQIMax, &r.BandMax, &r.Dominant,
		&r.SpeedW, &r.SpeedWSum, &r.CongestedN, &r.CongestedKnown, &r.Vehicles,
		&r.LevelMax, &r.AlarmMax, &r.AlarmN[0], &r.AlarmN[1], &r.AlarmN[2], &r.TempN, &r.TempSum, &r.PrecipSum, &r.WindMax,
		&r.ResolvedN, &r.ResolvedInSLAN, &r.OverdueN, &r.Members, &grades, &r.UpdatedAt,
		&r.Activated[0], &r.Activated[1], &r.Activated[2], &r.Activated[3], &r.Activated[4],
		&r.Ended[0], &r.Ended[1], &r.Ended[2], &r.Ended[3], &r.Ended[4], &r.OpenN, &r.ClosedN, &r.RejectedN}, more...)
	if err := rows.Scan(dst...); err != nil {
		return err
	}
	copy(r.GradeN[:], grades)
	return nil
}

// queueLatestRollups queues on pb, after a batch's roll-up upsert and its
// gauge totals' addition, the read of the roll-ups that the batch's
// changes to earlier windows left behind on the stream: for each unit,
// layer and window length of keys (sorted by cmpRollupKey), when the
// batch's latest window of them ended by now, the stored roll-up of a later
// window, if any, appended to res.Rollups when pb is sent. Published after
// the batch's own of the same subject (sortForPublish), they keep the latest
// window the last value of its subject on ROLLUPS, which has no window start
// (docs/rollups.md, "Stream and live view"), and carry its gauges as the
// batch changed them (an alert sent an hour ago is active in the current
// window too). A batch of current events queues nothing: its latest windows
// have not ended.
func queueLatestRollups(pb *pgx.Batch, keys []rollupKey, now time.Time, res *Result) {
	var units, layers, wins []string
	var starts []time.Time
	for i, k := range keys {
		if i+1 < len(keys) && keys[i+1].unit == k.unit && keys[i+1].layer == k.layer && keys[i+1].window == k.window {
			continue // not the batch's latest window of its unit, layer and length
		}
		start := time.Unix(k.start, 0).UTC()
		if i := slices.IndexFunc(windows[:], func(w window) bool { return w.name == k.window }); i < 0 || start.Add(windows[i].length).After(now) {
			continue // unknown, or not ended: the latest there is
		}
		units, layers, wins, starts = append(units, k.unit), append(layers, k.layer), append(wins, k.window), append(starts, start)
	}
	if len(units) == 0 {
		return
	}
	pb.Queue(sqlLatestRollups, units, layers, wins, starts).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var r Rollup
			var g gauges
			if err := scanRollup(rows, &r, &g.active[0], &g.active[1], &g.active[2], &g.active[3], &g.active[4], &g.open); err != nil {
				return fmt.Errorf("reading the latest windows of %d roll-ups: %w", len(units), err)
			}
			switch r.Layer {
			case alertLayer:
				r.AlertsActive = g.active
			case reportLayer:
				r.ReportsOpen = g.open
			}
			res.Rollups = append(res.Rollups, r)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading the latest windows of %d roll-ups: %w", len(units), err)
		}
		return nil
	})
}

// orNil returns s, or nil (NULL) when every value of s is the zero value
// (0 or nil).
func orNil[T comparable](s []T) []T {
	var zero T
	for _, v := range s {
		if v != zero {
			return s
		}
	}
	return nil
}

// countMembers adds the batch's members (by unit, entity and day:
// members, keys in order) to rollup_member_day and counts them into the
// Members and GradeN of their roll-ups in acc: a member new in its window
// counts once there and in its grade; one already counted at a better grade
// moves from that grade to its new one; any other counts nothing.
//
// An entity day's members are kept in one shared row (unit_code empty) for all the
// units of its path as long as every batch adds the same members to each of
// them (the entity walked one path that day), else in a row per unit
// (docs/rollups.md, "Distinct counts"); a batch that meets a shared row that
// does not fit splits it into rows per unit (sqlSplitMemberDays) and counts
// unit by unit from then on.
//
// Locked rows (rows.optimistic false): the rows missing are created empty
// (ON CONFLICT DO NOTHING) and locked first, in round trips of their own, so
// that two writers meeting on an entity day (two province partitions) count
// a member once: the second reads the first's rows after its commit. Rows
// from the store's memory (memberCache) or read without a lock are not
// locked: their write checks that their version is still the one read, a
// row not found is created by the write, and rows.written says how many rows
// the write must find (rows.updated). The writes are queued on out.
func countMembers(ctx context.Context, tx pgx.Tx, out *pgx.Batch, acc map[rollupKey]*Rollup, members map[memberKey]*dayMembers,
	order []memberKey, rows *memberRows) error {
	if len(order) == 0 {
		return nil
	}
	if rows == nil {
		return fmt.Errorf("%d member rows not read: %w", len(order), ErrMemberRow)
	}
	slices.SortFunc(order, cmpMemberKey) // one lock order for every writer
	var groups [][]memberKey             // order by entity day
	for i := 0; i < len(order); {
		j := i + 1
		for j < len(order) && order[j].entityDay() == order[i].entityDay() {
			j++
		}
		groups = append(groups, order[i:j])
		i = j
	}
	if !rows.optimistic {
		if err := createMemberRows(ctx, tx, groups, members, rows); err != nil {
			return err
		}
	}
	split := rows.splitDays()
	var w memberWrites
	for _, g := range groups {
		ed := g[0].entityDay()
		sk := memberKey{ed.layer, ed.entity, ed.day, ""}
		shared := rows.grades[sk]
		// The rows of units that are missing are created by the write
		// (not locked: as taken empty), or, locked, when the batch splits
		// the shared row: it holds that row, and no unit has a row of its
		// own while it is not retired.
		create := rows.optimistic
		switch {
		case split[ed] && shared != nil && len(shared.units) > 0:
			return fmt.Errorf("member rows of %s/%s of %v: shared and per unit: %w", ed.layer, ed.entity, time.Unix(ed.day, 0).UTC(), ErrMemberRow)
		case split[ed]:
		case shared != nil && fits(g, members, shared.units):
			if err := w.count(acc, sk, shared, members[g[0]], shared.units); err != nil {
				return err
			}
			continue
		case shared != nil: // another path that day: a row per unit from now on
			w.split(ed, shared, rows.grades)
			create = true
		case !rows.optimistic:
			return fmt.Errorf("member rows of %s/%s of %v: not created: %w", ed.layer, ed.entity, time.Unix(ed.day, 0).UTC(), ErrMemberRow)
		case fits(g, members, nil): // the entity day's first members: one shared row
			r := emptyMemberRow()
			r.units = make([]string, len(g))
			for i, k := range g {
				r.units[i] = k.unit
			}
			rows.grades[sk] = r
			if err := w.count(acc, sk, r, members[g[0]], r.units); err != nil {
				return err
			}
			continue
		default: // different members in different units already: a retired shared row, a row per unit
			r := emptyMemberRow()
			r.units = []string{}
			rows.grades[sk] = r
			w.create(sk, r)
		}
		for _, k := range g {
			r := rows.grades[k]
			if r == nil && !create {
				return fmt.Errorf("member row %s/%s/%s of %v: %w", k.unit, k.layer, k.entity, time.Unix(k.day, 0).UTC(), ErrMemberRow)
			} else if r == nil {
				r = emptyMemberRow() // created with the batch's grades by the write
				rows.grades[k] = r
			}
			if err := w.count(acc, k, r, members[k], []string{k.unit}); err != nil {
				return err
			}
		}
	}
	rows.written = w.queue(out, &rows.updated)
	return nil
}

// emptyMemberRow is a member row not stored yet (version -1), created by the
// batch's write.
func emptyMemberRow() *memberRow {
	g := make([]byte, headSlots+minutesPerDay)
	return &memberRow{head: g[:headSlots:headSlots], minutes: g[headSlots:], version: -1, whole: g}
}

// fits reports whether the members of keys g (one entity day, by unit) are
// the same in every unit, and those units are units (when not nil): then
// one shared row holds them.
func fits(g []memberKey, members map[memberKey]*dayMembers, units []string) bool {
	if units != nil && len(units) != len(g) {
		return false
	}
	first := members[g[0]].slots
	for i, k := range g {
		if (units != nil && units[i] != k.unit) || !slices.Equal(members[k].slots, first) {
			return false
		}
	}
	return true
}

// splitDays are the entity days of m counted unit by unit: those with a
// row of a unit, or a retired shared row.
func (m *memberRows) splitDays() map[entityDay]bool {
	var out map[entityDay]bool
	for k, r := range m.grades {
		if k.unit != "" || len(r.units) == 0 {
			if out == nil {
				out = map[entityDay]bool{}
			}
			out[k.entityDay()] = true
		}
	}
	return out
}

// createMemberRows creates, empty, and locks the member rows that the
// groups of keys (by entity day) need and rows (locked) lacks: a shared row
// for an entity day without rows (retired when its members differ between
// units: its rows per unit come in the next pass, once the batch holds that
// shared row, not one another writer made meanwhile), a row per unit
// missing from a split entity day. Another writer may create rows of the
// same entity days meanwhile (waited for, then read): each pass decides on
// what the last one read, up to four passes.
func createMemberRows(ctx context.Context, tx pgx.Tx, groups [][]memberKey, members map[memberKey]*dayMembers, rows *memberRows) error {
	for pass := 0; ; pass++ {
		split := rows.splitDays()
		var (
			layers, entities, units, shared []string
			days                            []time.Time
			rowOf                           []int64
			lockLayers, lockEntities        []string
			lockDays                        []time.Time
			los, his                        []int32
		)
		add := func(k memberKey) {
			layers, entities, days, units = append(layers, k.layer), append(entities, k.entity), append(days, time.Unix(k.day, 0).UTC()), append(units, k.unit)
		}
		for _, g := range groups {
			ed := g[0].entityDay()
			sk := memberKey{ed.layer, ed.entity, ed.day, ""}
			n := len(layers)
			switch {
			case split[ed]:
				for _, k := range g {
					if rows.grades[k] == nil {
						add(k)
					}
				}
			case rows.grades[sk] != nil: // a shared row: split, if need be, under its lock
			case fits(g, members, nil):
				add(sk)
				for _, k := range g {
					shared, rowOf = append(shared, k.unit), append(rowOf, int64(len(layers)))
				}
			default:
				add(sk) // retired
			}
			if len(layers) > n {
				r, ok := rows.ranges[ed]
				if !ok {
					return fmt.Errorf("member rows of %s/%s of %v: no minutes read: %w", ed.layer, ed.entity, time.Unix(ed.day, 0).UTC(), ErrMemberRow)
				}
				lockLayers, lockEntities, lockDays = append(lockLayers, ed.layer), append(lockEntities, ed.entity), append(lockDays, time.Unix(ed.day, 0).UTC())
				los, his = append(los, r.lo), append(his, r.hi)
			}
		}
		if len(layers) == 0 {
			return nil
		}
		if pass == 3 {
			return fmt.Errorf("member rows of %d entity days still missing after %d passes: %w", len(lockLayers), pass, ErrMemberRow)
		}
		var pb pgx.Batch
		pb.Queue(sqlInsertMemberDays, layers, entities, days, units, make([]byte, rowBytes), shared, rowOf)
		pb.Queue(sqlLockEntityDays, lockLayers, lockEntities, lockDays, los, his).Query(rows.collect)
		if err := tx.SendBatch(ctx, &pb).Close(); err != nil {
			return fmt.Errorf("locking the members of %d entity days: %w", len(lockLayers), err)
		}
	}
}

// memberWrites are the writes of member rows a batch queues: rows updated
// at the version read, rows created, shared rows split.
type memberWrites struct {
	// Updated: keys, the head, the minutes changed from lo, members upgraded,
	// the version read.
	uLayers, uEntities, uUnits []string
	uDays                      []time.Time
	uHeads, uMinutes           [][]byte
	uLos, uUpgrades            []int32
	uVersions                  []int64
	// Created: keys, grades, and the units of the shared ones (by row
	// number, 1-based).
	cLayers, cEntities, cUnits []string
	cDays                      []time.Time
	cGrades                    [][]byte
	cShared                    []string
	cRowOf                     []int64
	// Split: the shared rows' entity days and versions, and the rows per
	// unit made of them.
	sLayers, sEntities         []string
	sDays                      []time.Time
	sVersions                  []int64
	pLayers, pEntities, pUnits []string
	pDays                      []time.Time
}

// count counts the members d into the roll-ups of units in acc from row r
// (key k), changing r's grades, and queues r's write when it changed.
func (w *memberWrites) count(acc map[rollupKey]*Rollup, k memberKey, r *memberRow, d *dayMembers, units []string) error {
	day := time.Unix(k.day, 0).UTC()
	changed, upgrades := false, int32(0)
	lo, hi := int32(minutesPerDay), int32(-1) // the minutes changed
	for _, ms := range d.slots {
		s, now := ms.slot, ms.grade
		b := r.at(s)
		if b == nil {
			return fmt.Errorf("member row %s/%s/%s of %v: slot %d not read: %w", k.unit, k.layer, k.entity, day, s, ErrMemberRow)
		}
		was := *b
		if now <= was {
			continue
		}
		if r.borrowed { // the cache's bytes: the batch changes its own copy
			r.own()
			b = r.at(s)
		}
		name, start := slotWindow(s, day)
		for _, u := range units {
			ru := acc[rollupKey{u, k.layer, name, start.Unix()}]
			if ru == nil {
				return fmt.Errorf("member row %s/%s/%s of %v: no roll-up of %s in slot %d: %w", k.unit, k.layer, k.entity, day, u, s, ErrMemberRow)
			}
			if was == 0 {
				ru.Members++
			} else {
				ru.GradeN[was-1]--
			}
			ru.GradeN[now-1]++
		}
		if was != 0 {
			upgrades++
		}
		*b, changed = now, true
		if m := int32(s - headSlots); m >= 0 {
			lo, hi = min(lo, m), max(hi, m)
		}
	}
	switch {
	case changed && r.version < 0:
		w.create(k, r)
	case changed:
		r.written = true
		mins := r.minutes[:0]
		if hi >= lo {
			mins = r.minutes[lo-r.lo : hi-r.lo+1]
		} else {
			lo = 0
		}
		w.uLayers, w.uEntities, w.uDays, w.uUnits = append(w.uLayers, k.layer), append(w.uEntities, k.entity), append(w.uDays, day), append(w.uUnits, k.unit)
		w.uHeads, w.uMinutes = append(w.uHeads, r.head), append(w.uMinutes, mins)
		w.uLos, w.uUpgrades, w.uVersions = append(w.uLos, lo), append(w.uUpgrades, upgrades), append(w.uVersions, r.version)
	}
	return nil
}

// create queues the creation of row r (key k, not stored yet) with its
// grades, at version 0.
func (w *memberWrites) create(k memberKey, r *memberRow) {
	r.written = true
	w.cLayers, w.cEntities, w.cDays, w.cUnits = append(w.cLayers, k.layer), append(w.cEntities, k.entity), append(w.cDays, time.Unix(k.day, 0).UTC()), append(w.cUnits, k.unit)
	grades := make([]byte, rowBytes)
	copy(grades[copy(grades, r.head):], r.minutes)
	w.cGrades = append(w.cGrades, grades)
	for _, u := range r.units {
		w.cShared, w.cRowOf = append(w.cShared, u), append(w.cRowOf, int64(len(w.cLayers)))
	}
}

// split queues the split of the shared row r of entity day ed into a row
// per unit, at version 0 with r's grades, which it adds to grades (sharing
// r's bytes until one changes); r is retired (no units, version + 1).
func (w *memberWrites) split(ed entityDay, r *memberRow, grades map[memberKey]*memberRow) {
	day := time.Unix(ed.day, 0).UTC()
	w.sLayers, w.sEntities, w.sDays, w.sVersions = append(w.sLayers, ed.layer), append(w.sEntities, ed.entity), append(w.sDays, day), append(w.sVersions, r.version)
	for _, u := range r.units {
		w.pLayers, w.pEntities, w.pDays, w.pUnits = append(w.pLayers, ed.layer), append(w.pEntities, ed.entity), append(w.pDays, day), append(w.pUnits, u)
		grades[memberKey{ed.layer, ed.entity, ed.day, u}] = &memberRow{head: r.head, minutes: r.minutes, lo: r.lo, whole: r.whole, borrowed: true}
	}
	r.units, r.written = []string{}, true
}

// queue queues the writes on out (the splits first: the rows they create
// are updated after) and returns the number of rows they must find.
//
// memberPlans: the reads and writes of member rows by arrays of keys are
// planned generic (sqlGenericPlans), where unnest is estimated at a few
// rows and each row is a look-up of the primary key. Planned for the
// arrays given (a batch's 500 keys), the writes hashed the whole table
// instead: one row per entity and day, kept for the member retention (14
// days by default, or forever), so from about 20,000 rows (ten days of 2,000
// stations) the update of a batch's 500 rows took 24–45 ms against 6–9 ms
// by the key (EXPLAIN ANALYZE, docs/benchmarks.md), and grew with the days
// kept.
func (w *memberWrites) queue(out *pgx.Batch, found *int) int {
	if len(w.sLayers)+len(w.uLayers) > 0 {
		queueGeneric(out, func() {
			if len(w.sLayers) > 0 {
				out.Queue(sqlSplitMemberDays, w.sLayers, w.sEntities, w.sDays, w.sVersions, w.pLayers, w.pEntities, w.pDays, w.pUnits).Query(countRows(found))
			}
			if len(w.uLayers) > 0 {
				out.Queue(sqlUpdateMemberDays, w.uLayers, w.uEntities, w.uDays, w.uUnits, w.uHeads, w.uLos, w.uMinutes, w.uUpgrades, w.uVersions).Query(countRows(found))
			}
		})
	}
	if len(w.cLayers) > 0 {
		out.Queue(sqlCreateMemberDays, w.cLayers, w.cEntities, w.cDays, w.cUnits, w.cGrades, w.cShared, w.cRowOf).Query(countRows(found))
	}
	return len(w.pLayers) + len(w.uLayers) + len(w.cLayers)
}

// minutesPerDay is the number of minute slots of a member row.
const minutesPerDay = 24 * 60

// rollupInput is what the roll-ups read in apply's round trip (writeAllNew:
// before the inserts, in stage's): the unit tree of the batch's rows and the
// batch's member rows, locked (writeAllNew: taken from the store's memory or
// read without a lock).
type rollupInput struct {
	tree    unitTree
	members *memberRows
	// horizon is the first day whose windows are open (rollup_member_horizon;
	// zero: all): an observation of an earlier day counts as late.
	horizon time.Time
}

// headSlots are the slots of a member row read and written whole: the day,
// its hours and its quarters. Of the minutes, only the range the batch's
// observations fall in (minuteRange) is read and written back.
const headSlots = 1 + 24 + 96

// entityDay is an entity of a layer in a day (start in Unix seconds).
type entityDay struct {
	layer, entity string
	day           int64
}

func (k memberKey) entityDay() entityDay { return entityDay{k.layer, k.entity, k.day} }

// minuteRange is the first and last minute of the day (0…1439) of the
// observations of an entity day in a batch.
type minuteRange struct{ lo, hi int32 }

// memberRows are the member rows a batch read, locked, or took from the
// store's memory: the parts read of each row and the minutes read of each
// entity day.
type memberRows struct {
	grades map[memberKey]*memberRow
	ranges map[entityDay]minuteRange
	// optimistic says that the rows were not locked (writeAllNew): a row
	// not read does not exist (or did not when read) and is created by the
	// write, the rows read are written only at their version.
	optimistic bool
	// written is the number of rows the batch writes back; updated, once
	// the write is sent, the number it found at the version read.
	written, updated int
}

// errMemberVersion is the answer of a batch some of whose member rows,
// taken from the store's memory, changed since (memberCache).
var errMemberVersion = errors.New("a roll-up member row changed since it was read")

// check reports errMemberVersion when the write of the rows found fewer of
// them than it wrote.
func (m *memberRows) check() error {
	if m != nil && m.updated != m.written {
		return fmt.Errorf("%d of %d member rows at the version read: %w", m.updated, m.written, errMemberVersion)
	}
	return nil
}

// memberRow is what a batch read of a member row: its first headSlots
// slots, and its minutes from minute lo; and the row's version when read.
type memberRow struct {
	head, minutes []byte
	lo            int32
	version       int64
	// written says that the batch writes the row back (at version + 1).
	written bool
	// whole, when not nil, holds head and minutes, one after the other (a
	// row taken from or made for memberCache), which it may keep.
	whole []byte
	// borrowed says that the bytes are another row's (memberCache's, or
	// the shared row a split copied), never to be changed: own makes them
	// the row's first.
	borrowed bool
	// units are a shared row's (unit '') units; none when it is retired.
	units []string
}

// own gives a row that borrows its bytes a copy of its own.
func (r *memberRow) own() {
	if r.whole == nil { // read in part
		r.head, r.minutes, r.borrowed = slices.Clone(r.head), slices.Clone(r.minutes), false
		return
	}
	g := slices.Clone(r.whole)
	r.head, r.minutes, r.whole, r.borrowed = g[:headSlots:headSlots], g[headSlots:len(g):len(g)], g, false
}

// at returns the byte of slot s, nil when it was not read.
func (r *memberRow) at(s int) *byte {
	if s < headSlots {
		return &r.head[s]
	}
	if i := s - headSlots - int(r.lo); i >= 0 && i < len(r.minutes) {
		return &r.minutes[i]
	}
	return nil
}

// collect reads rows of sqlLockEntityDays or sqlReadEntityDays into m.
func (m *memberRows) collect(rows pgx.Rows) error {
	for rows.Next() {
		var k memberKey
		var day time.Time
		var head, minutes []byte
		var units []string
		var version int64
		if err := rows.Scan(&k.layer, &k.entity, &day, &k.unit, &units, &version, &head, &minutes); err != nil {
			return err
		}
		k.day = day.Unix()
		r, ok := m.ranges[k.entityDay()]
		if !ok || len(head) != headSlots || len(minutes) != int(r.hi-r.lo+1) {
			return fmt.Errorf("member row %s/%s/%s of %v: %w", k.unit, k.layer, k.entity, day, ErrMemberRow)
		}
		m.grades[k] = &memberRow{head: head, minutes: minutes, lo: r.lo, version: version, units: units}
	}
	return rows.Err()
}

// queueMemberLock queues on pb the lock and read of the rows of
// rollup_member_day of every station and segment of b's rows in the days of
// their observation times, the shared row and every unit's (the units are
// not known yet; a superset of the rows the batch will touch), in key order: their day, hour
// and quarter slots and the range of minutes of the batch's observations.
// The rows are in what it returns once pb is sent; nil when b has no
// station or segment.
//
// With cache (writeAllNew), the rows are not locked (their write checks
// their versions instead), the entity days the cache holds are taken from
// it, not read, and the others read whole while the cache takes more.
func queueMemberLock(pb *pgx.Batch, b Batch, cache *memberCache) *memberRows {
	all := allInserted(b) // every row as if inserted
	m := &memberRows{ranges: make(map[entityDay]minuteRange, b.Len())}
	var keys []entityDay
	for _, k := range kindStores {
		if k.result == nil || k.contribute == nil || k.rows(b) == 0 {
			continue
		}
		k.contribute(b, &all, func(c contribution) {
			if c.entity == "" {
				return
			}
			day := dayWindow.start(c.observed)
			ed := entityDay{c.layer, c.entity, day.Unix()}
			minute := int32(c.observed.Sub(day) / time.Minute)
			r, ok := m.ranges[ed]
			if !ok {
				keys = append(keys, ed)
				r = minuteRange{minute, minute}
			}
			m.ranges[ed] = minuteRange{min(r.lo, minute), max(r.hi, minute)}
		})
	}
	if len(keys) == 0 {
		return nil
	}
	// A row per entity day most often (shared by the units of its path).
	m.grades = make(map[memberKey]*memberRow, len(keys))
	lock := sqlLockEntityDays
	if cache != nil {
		m.optimistic, lock = true, sqlReadEntityDays
		if !cache.full() {
			for _, k := range keys {
				m.ranges[k] = minuteRange{0, minutesPerDay - 1}
			}
		}
		keys = cache.take(keys, m.grades)
		if len(keys) == 0 {
			return m
		}
	}
	slices.SortFunc(keys, func(a, b entityDay) int {
		return cmpMemberKey(memberKey{a.layer, a.entity, a.day, ""}, memberKey{b.layer, b.entity, b.day, ""})
	})
	n := len(keys)
	layers, entities, days, los, his := make([]string, n), make([]string, n), make([]time.Time, n), make([]int32, n), make([]int32, n)
	for i, k := range keys {
		r := m.ranges[k]
		layers[i], entities[i], days[i], los[i], his[i] = k.layer, k.entity, time.Unix(k.day, 0).UTC(), r.lo, r.hi
	}
	// A generic plan (sqlGenericPlans): a look-up of the primary key per
	// entity day, however many rows the table has (memberPlans).
	queueGeneric(pb, func() { pb.Queue(lock, layers, entities, days, los, his).Query(m.collect) })
	return m
}

// cmpMemberKey orders member rows as their primary key does.
func cmpMemberKey(a, b memberKey) int {
	switch {
	case a.layer != b.layer:
		return strings.Compare(a.layer, b.layer)
	case a.entity != b.entity:
		return strings.Compare(a.entity, b.entity)
	case a.day != b.day:
		return cmp.Compare(a.day, b.day)
	}
	return strings.Compare(a.unit, b.unit)
}

// RollupContext sets the Known and Stale figures and the gauges of rs as a
// batch writing them would (for reading roll-ups back from the table).
func (s *Store) RollupContext(ctx context.Context, rs []Rollup) error {
	return s.BeginFunc(ctx, func(tx pgx.Tx) error { return rollupContext(ctx, tx, rs) })
}

// rollupContext sets the Known and Stale figures of rs from the current
// tree, sensors and source_stats, and the gauges of the alert and report
// roll-ups from rollup, in one round trip.
func rollupContext(ctx context.Context, tx pgx.Tx, rs []Rollup) error {
	if len(rs) == 0 {
		return nil
	}
	units := make([]string, 0, len(rs))
	keys := make([]rollupKey, 0, len(rs))
	for _, r := range rs {
		units = append(units, r.UnitCode)
		keys = append(keys, rollupKey{r.UnitCode, r.Layer, r.Window, r.WindowStart.Unix()})
	}
	slices.Sort(units)
	var pb pgx.Batch
	counts := queueRollupContext(&pb, slices.Compact(units))
	gauges := queueRollupGauges(&pb, keys)
	if err := tx.SendBatch(ctx, &pb).Close(); err != nil {
		return err
	}
	setRollupContext(rs, counts)
	setRollupGauges(rs, gauges)
	return nil
}

// kindKey is a unit and a kind of sensor ("" for stale sources).
type kindKey struct{ unit, kind string }

// queueRollupContext queues on pb the read of the known sensors and stale
// sources of units (sorted, distinct), filled into the map it returns when
// pb is sent.
func queueRollupContext(pb *pgx.Batch, units []string) map[kindKey]int64 {
	counts := map[kindKey]int64{}
	collect := func(rows pgx.Rows) error {
		for rows.Next() {
			var k kindKey
			var n int64
			if err := rows.Scan(&k.unit, &k.kind, &n); err != nil {
				return fmt.Errorf("reading sensors and stale sources: %w", err)
			}
			counts[k] = n
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading sensors and stale sources of %d units: %w", len(units), err)
		}
		return nil
	}
	queueGeneric(pb, func() { pb.Queue(sqlRollupContext, units).Query(collect) })
	return counts
}

// setRollupContext sets the Known and Stale figures of rs from counts.
func setRollupContext(rs []Rollup, counts map[kindKey]int64) {
	for i := range rs {
		rs[i].Known = counts[kindKey{rs[i].UnitCode, rs[i].Layer}]
		rs[i].Stale = counts[kindKey{rs[i].UnitCode, ""}]
	}
}
