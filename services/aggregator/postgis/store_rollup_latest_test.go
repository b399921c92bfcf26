package postgis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// republished splits a batch's roll-ups where the latest windows it
// republishes begin: those whose window is not one the batch changed
// (changed holds the keys of the windows the batch's rows fall in). It fails
// t when a changed roll-up follows a republished one.
func republished(t *testing.T, rs []postgis.Rollup, changed map[string]bool) (own, latest []postgis.Rollup) {
	t.Helper()
	for i, r := range rs {
		if !changed[r.Key()] {
			latest = rs[i:]
			own = rs[:i]
			break
		}
		own = rs[:i+1]
	}
	for _, r := range latest {
		if changed[r.Key()] {
			t.Fatalf("roll-up %s the batch changed comes after a republished one", r.Key())
		}
	}
	return own, latest
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
	checkRollupInvariant(t, pool)
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
	alert := func(id string, sent time.Time) postgis.AlertRow {
		return postgis.AlertRow{SourceID: "src", EventID: id, Identifier: id, Sender: "kttv", Sent: sent, Status: "Actual",
			MsgType: "Alert", Scope: "Public", Info: []byte(`[{"severity":"Severe"}]`), Area: alertAreas[3],
			Province: "01", UnitCode: "01", ReceivedAt: now}
	}
	units := []string{"W1", "W2", "01", "VN", "G1"}
	for _, a := range []postgis.AlertRow{alert("now", now), alert("past", now.Add(-2*time.Hour))} {
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
