package postgis_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit/rollupcheck"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// republished splits a batch's roll-ups into those of the windows it
// changed (changed holds their keys) and the others it returns to publish
// again, each in the batch's order. It fails t unless the roll-ups of each
// subject of ROLLUPS (unit, layer, window length) come in time order, each
// window once, so that the last published is the latest.
func republished(t *testing.T, rs []postgis.Rollup, changed map[string]bool) (own, again []postgis.Rollup) {
	t.Helper()
	last := map[string]time.Time{}
	for _, r := range rs {
		subject := r.UnitCode + "|" + r.Layer + "|" + r.Window
		if prev, ok := last[subject]; ok && !r.WindowStart.After(prev) {
			t.Fatalf("roll-up %s comes after the window of %v of its subject", r.Key(), prev)
		}
		last[subject] = r.WindowStart
		if changed[r.Key()] {
			own = append(own, r)
		} else {
			again = append(again, r)
		}
	}
	return own, again
}

// windowKeys are the keys of the roll-ups of units of layer holding at in
// each window.
func windowKeys(layer string, at time.Time, units ...string) map[string]bool {
	out := map[string]bool{}
	day := at.Add(7 * time.Hour).Truncate(24 * time.Hour).Add(-7 * time.Hour)
	for _, u := range units {
		for _, w := range []struct {
			name  string
			start time.Time
		}{{"1m", at.Truncate(time.Minute)}, {"15m", at.Truncate(15 * time.Minute)}, {"1h", at.Truncate(time.Hour)}, {"1d", day}} {
			out[postgis.Rollup{UnitCode: u, Layer: layer, Window: w.name, WindowStart: w.start}.Key()] = true
		}
	}
	return out
}

// TestRollupLatestRepublished: a batch that corrects an earlier window (a
// late observation, an alert sent in the past) returns after its own
// roll-ups the stored roll-up of the latest window of each unit, layer and
// window length it corrected an earlier window of, as stored, with its known
// figures and (alerts) its gauges as the batch left them; a batch of the
// latest windows returns none.
func TestRollupLatestRepublished(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	rollupTree(t, pool)
	s := postgis.NewStore(pool)
	ctx := context.Background()
	units := []string{"W2", "01", "VN", "G1"} // W2 in 01 under VN, and in the group G1
	now := time.Date(2025, 8, 1, 3, 10, 30, 0, time.UTC)
	row := func(station string, at time.Time) postgis.AirRow {
		r := airRow(station, at, 10)
		r.UnitCode, r.ReceivedAt = "W2", now
		return r
	}
	write := func(what string, rows ...postgis.AirRow) postgis.Result {
		t.Helper()
		res, err := s.WriteBatch(ctx, postgis.Batch{Air: rows})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return res
	}

	res := write("first", row("st1", now))
	if own, latest := republished(t, res.Rollups, windowKeys("air", now, units...)); len(own) != 16 || len(latest) != 0 {
		t.Fatalf("first batch: %d roll-ups of its windows and %d republished; want 16 and none", len(own), len(latest))
	}

	// 20 minutes late, within the lateness: its minute, quarter and hour
	// are earlier windows; its day is the latest.
	late := now.Add(-20 * time.Minute)
	res = write("late", row("st2", late))
	own, latest := republished(t, res.Rollups, windowKeys("air", late, units...))
	if len(own) != 16 {
		t.Fatalf("late batch: %d roll-ups of its windows; want 16", len(own))
	}
	want := windowKeys("air", now, units...)
	for k := range windowKeys("air", late, units...) {
		delete(want, k) // the day
	}
	got := map[string]bool{}
	for _, r := range latest {
		if got[r.Key()] {
			t.Fatalf("late batch: %s republished twice", r.Key())
		}
		got[r.Key()] = true
		var n int64
		if err := pool.QueryRow(ctx, `SELECT n FROM rollup WHERE unit_code = $1 AND layer = $2 AND win = $3 AND window_start = $4`,
			r.UnitCode, r.Layer, r.Window, r.WindowStart).Scan(&n); err != nil {
			t.Fatalf("reading %s: %v", r.Key(), err)
		}
		if r.N != 1 || n != 1 || r.Province == "" || r.UpdatedAt.IsZero() {
			t.Errorf("republished %s: n %d (stored %d), province %q, updated %v; want the stored row, n 1", r.Key(), r.N, n, r.Province, r.UpdatedAt)
		}
		if r.Known != 2 { // st1 and st2, both in W2
			t.Errorf("republished %s: %d stations known; want 2", r.Key(), r.Known)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("late batch republished %v; want the minute, quarter and hour of %s of every unit: %v", got, now, want)
	}

	// Another observation in the latest windows: nothing to republish.
	res = write("current", row("st3", now.Add(10*time.Second)))
	if own, latest := republished(t, res.Rollups, windowKeys("air", now, units...)); len(own) != 16 || len(latest) != 0 {
		t.Fatalf("batch of the latest windows: %d roll-ups of its windows and %d republished; want 16 and none", len(own), len(latest))
	}
	rollupcheck.Check(t, pool)
}

// TestRollupLatestRepublishedGauges: an alert sent two hours before the
// latest windows of its units counts in its own windows, and the latest
// windows, republished, carry it in their gauges, as the store reads them
// (RollupContext) and as plain SQL gives them.
func TestRollupLatestRepublishedGauges(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	alertRollupTree(t, pool)
	s := postgis.NewStore(pool)
	ctx := context.Background()
	now := time.Date(2025, 8, 1, 3, 0, 0, 0, time.UTC)
	units := []string{"W1", "W2", "01", "VN", "G1"}
	for _, a := range []postgis.AlertRow{severeAlert("now", now), severeAlert("past", now.Add(-2*time.Hour))} {
		res, err := s.WriteBatch(ctx, postgis.Batch{Alerts: []postgis.AlertRow{a}})
		if err != nil {
			t.Fatal(err)
		}
		own, latest := republished(t, res.Rollups, windowKeys("alert", a.Sent, units...))
		if len(own) != 20 {
			t.Fatalf("alert %s: %d roll-ups of its windows; want 20", a.EventID, len(own))
		}
		if a.EventID == "now" {
			if len(latest) != 0 {
				t.Fatalf("alert now: %d roll-ups republished; want none", len(latest))
			}
			continue
		}
		if len(latest) != 15 { // the minute, quarter and hour of now of 5 units; the day is the alert's
			t.Fatalf("alert past: %d roll-ups republished; want 15", len(latest))
		}
		fresh := make([]postgis.Rollup, len(latest))
		for i, r := range latest {
			if !windowKeys("alert", now, units...)[r.Key()] {
				t.Fatalf("alert past republished %s; want a window of %s", r.Key(), now)
			}
			fresh[i] = postgis.Rollup{UnitCode: r.UnitCode, Layer: r.Layer, Window: r.Window, WindowStart: r.WindowStart}
		}
		if err := s.RollupContext(ctx, fresh); err != nil {
			t.Fatal(err)
		}
		for i, r := range latest {
			if want := [postgis.Grades]int64{0, 0, 0, 2, 0}; r.AlertsActive != want || fresh[i].AlertsActive != want {
				t.Errorf("republished %s: alerts active %v (read again %v); want %v", r.Key(), r.AlertsActive, fresh[i].AlertsActive, want)
			}
		}
	}
	checkGauges(t, pool, s, "alert", 0)
}

// severeAlert is an Alert (capAlert) of severity Severe over the area of
// alertRollupTree's wards W1 and W2, without an expiry: active until
// cancelled, whatever the hub's clock.
func severeAlert(id string, sent time.Time) postgis.AlertRow {
	a := capAlert(id, "Alert", sent)
	a.Info, a.Area, a.Expires = []byte(`[{"severity":"Severe"}]`), alertAreas[3], nil
	return a
}

// TestRollupRedeliveryRepublished: a batch redelivered after its first
// delivery committed (and, say, crashed before publishing) changes no
// roll-up and returns the roll-ups of its windows as stored, with their
// known figures and gauges, so that the stream catches up; a report stored
// before counts in the gauge reports open once. The same batch resent (not
// redelivered) returns none.
func TestRollupRedeliveryRepublished(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	rollupTree(t, pool)
	s := postgis.NewStore(pool)
	ctx := context.Background()
	at := time.Date(2025, 8, 1, 3, 0, 0, 0, time.UTC)
	rep := postgis.ReportRow{SourceID: "rep", EventID: "r1", Province: "01", UnitCode: "W2", Category: "flooding",
		Lon: 105.5, Lat: 20.5, ReportedAt: at, ReceivedAt: at.Add(time.Second)}
	air := airRow("st1", at, 10)
	air.UnitCode = "W2"
	b := postgis.Batch{Air: []postgis.AirRow{air}, Reports: []postgis.ReportRow{rep}}
	byKey := func(rs []postgis.Rollup) map[string]string {
		out := map[string]string{}
		for _, r := range rs {
			out[r.Key()] = fmt.Sprintf("n %d late %d known %d open %d", r.N, r.Late, r.Known, r.ReportsOpen)
		}
		return out
	}
	first, err := s.WriteBatch(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	resent, err := s.WriteBatch(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(resent.Rollups) != 0 {
		t.Fatalf("a resend returned %d roll-ups; want none: they were published when its rows were first stored", len(resent.Rollups))
	}
	b.Redelivered = true
	again, err := s.WriteBatch(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if again.Air.New != 0 || again.Reports.New != 0 {
		t.Fatalf("redelivery stored %d air rows and %d reports; want none", again.Air.New, again.Reports.New)
	}
	want := byKey(first.Rollups)
	if len(want) != 32 { // W2, 01, VN, G1; air and report; 4 windows
		t.Fatalf("first delivery: %d roll-ups; want 32", len(want))
	}
	if got := byKey(again.Rollups); len(again.Rollups) != len(want) || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("redelivery returned %v; want the first delivery's %v", got, want)
	}
	for _, r := range again.Rollups {
		if r.Layer == "report" && r.ReportsOpen != 1 {
			t.Errorf("redelivery: %s has %d reports open; want 1", r.Key(), r.ReportsOpen)
		}
	}

	// The same rows with a new one an hour later: the new row's windows
	// changed, then the others of the rows stored before as stored.
	later := airRow("st2", at.Add(time.Hour), 20)
	later.UnitCode = "W2"
	mixed, err := s.WriteBatch(ctx, postgis.Batch{Air: []postgis.AirRow{air, later}, Reports: []postgis.ReportRow{rep}, Redelivered: true})
	if err != nil {
		t.Fatal(err)
	}
	changed := windowKeys("air", later.ObservedAt, "W2", "01", "VN", "G1")
	own, rest := republished(t, mixed.Rollups, changed)
	if len(own) != 16 || len(rest) != 12+16 {
		t.Fatalf("a new row beside the redelivered ones: %d roll-ups changed and %d again; want 16 and 28", len(own), len(rest))
	}
	for _, r := range rest {
		if want[r.Key()] == "" || changed[r.Key()] {
			t.Errorf("a new row beside the redelivered ones: %s returned again; want the redelivered rows' other windows", r.Key())
		}
		stored := want[r.Key()]
		if r.Layer == "air" {
			stored = strings.Replace(stored, "known 1", "known 2", 1) // st2 is known now
		}
		if got := byKey([]postgis.Rollup{r})[r.Key()]; got != stored {
			t.Errorf("%s returned again as %s; want %s", r.Key(), got, stored)
		}
	}
	rollupcheck.Check(t, pool)
	checkGauges(t, pool, s, "report", 0)
}

// TestRollupRedeliveryRepublishedAlerts: a redelivered Cancel changes
// nothing and returns the roll-ups of the windows of its alert's activation
// and end (the alert it refers to, as stored), then the latest windows after
// them (another alert's), with their gauges; resent without being
// redelivered, it returns none.
func TestRollupRedeliveryRepublishedAlerts(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	alertRollupTree(t, pool)
	s := postgis.NewStore(pool)
	ctx := context.Background()
	sent := time.Date(2025, 8, 1, 3, 0, 0, 0, time.UTC)
	a := severeAlert("a", sent)
	c := capAlert("a-c", "Cancel", sent.Add(90*time.Minute), "kttv,a,"+sent.Format(time.RFC3339))
	c.Expires = nil
	later := severeAlert("b", sent.Add(3*time.Hour)) // the latest windows are its
	units := []string{"W1", "W2", "01", "VN", "G1"}
	for _, b := range []postgis.Batch{{Alerts: []postgis.AlertRow{a}}, {Alerts: []postgis.AlertRow{c}}, {Alerts: []postgis.AlertRow{later}}} {
		if _, err := s.WriteBatch(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	cancel := postgis.Batch{Alerts: []postgis.AlertRow{c}}
	res, err := s.WriteBatch(ctx, cancel)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rollups) != 0 {
		t.Fatalf("the Cancel resent returned %d roll-ups; want none", len(res.Rollups))
	}
	cancel.Redelivered = true
	res, err = s.WriteBatch(ctx, cancel)
	if err != nil {
		t.Fatal(err)
	}
	want := windowKeys("alert", sent, units...)
	for _, at := range []time.Time{c.Sent, later.Sent} { // the end, then the latest windows after
		for k := range windowKeys("alert", at, units...) {
			want[k] = true
		}
	}
	_, again := republished(t, res.Rollups, nil)
	fresh := make([]postgis.Rollup, len(again))
	got := map[string]bool{}
	for i, r := range again {
		got[r.Key()] = true
		fresh[i] = postgis.Rollup{UnitCode: r.UnitCode, Layer: r.Layer, Window: r.Window, WindowStart: r.WindowStart}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the Cancel redelivered returned %v; want the windows of the alert's activation and end %v", got, want)
	}
	if err := s.RollupContext(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	for i, r := range again {
		var act, end int64
		if err := pool.QueryRow(ctx, `SELECT activated3_n, ended3_n FROM rollup WHERE unit_code = $1 AND layer = 'alert' AND win = $2 AND window_start = $3`,
			r.UnitCode, r.Window, r.WindowStart).Scan(&act, &end); err != nil {
			t.Fatal(err)
		}
		if r.Activated[3] != act || r.Ended[3] != end || r.AlertsActive != fresh[i].AlertsActive {
			t.Errorf("returned %s: activated %d ended %d active %v; stored %d, %d, active %v",
				r.Key(), r.Activated[3], r.Ended[3], r.AlertsActive, act, end, fresh[i].AlertsActive)
		}
	}
	checkDiff(t, pool, "alert roll-up", 0, sqlAlertRollupDiff)
	checkGauges(t, pool, s, "alert", 0)
}
