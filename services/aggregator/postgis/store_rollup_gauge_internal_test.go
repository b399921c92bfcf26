package postgis

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iochub/iochub/internal/testenv"
)

// TestRollupGaugesReadAfterWindow: a gauge is the unit's total of changes
// less the changes after its window, read from the rows after the window
// only: with 400 days of history before it, the read of a current window's
// gauge scans the one row after it (EXPLAIN ANALYZE), not the days before.
// The gauges of the current and earlier windows, of every length, are the
// prefix sums of the changes. The totals' trigger adds the changes of a
// writer that does not add them itself, and only those.
func TestRollupGaugesReadAfterWindow(t *testing.T) {
	db := testenv.PostGIS(t)
	ctx := context.Background()
	const days = 400
	last := time.Date(2026, 11, 30, 17, 0, 0, 0, time.UTC) // a day in Asia/Ho_Chi_Minh
	// A report opened every day before the last; on the last, one opened
	// 10 h 10 min into the day and one closed at 10 h 20 min (their 1m, 1h
	// and 1d rows).
	if _, err := db.Pool.Exec(ctx, `INSERT INTO rollup (unit_code, layer, win, window_start, province, open_n, closed_n)
		SELECT 'G1', 'report', '1d', $1::timestamptz - d * interval '24 hours', '01', 1, 0 FROM generate_series(1, $2::int) d
		UNION ALL VALUES ('G1', 'report', '1d', $1::timestamptz, '01', 1, 1),
			('G1', 'report', '1m', $1::timestamptz + interval '10 hours 10 minutes', '01', 1, 0),
			('G1', 'report', '1m', $1::timestamptz + interval '10 hours 20 minutes', '01', 0, 1),
			('G1', 'report', '1h', $1::timestamptz + interval '10 hours', '01', 1, 1)`, last, days); err != nil {
		t.Fatal(err)
	}
	// Written as a writer that does not add its changes to the totals
	// itself (an aggregator of the release before 00037): the trigger adds
	// them, the 1d rows' only.
	total := func() int64 {
		t.Helper()
		var open int64
		if err := db.Pool.QueryRow(ctx, `SELECT coalesce(sum(open_n), 0) FROM rollup_gauge_total WHERE unit_code = 'G1' AND layer = 'report'`).Scan(&open); err != nil {
			t.Fatal(err)
		}
		return open
	}
	if got := total(); got != days {
		t.Fatalf("reports open in G1's totals after the rows written: %d; want %d", got, days)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE rollup SET open_n = open_n + 2 WHERE unit_code = 'G1' AND win = '1d' AND window_start = $1`, last); err != nil {
		t.Fatal(err)
	}
	if got := total(); got != days+2 {
		t.Fatalf("reports open in G1's totals after a row's update: %d; want %d", got, days+2)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE rollup SET open_n = open_n - 2 WHERE unit_code = 'G1' AND win = '1d' AND window_start = $1`, last); err != nil {
		t.Fatal(err)
	}
	// A writer that adds its changes itself (gaugeTotals) says so for
	// its transaction: the trigger leaves them out.
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlGaugeTotalsByBatch); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO rollup (unit_code, layer, win, window_start, province, open_n)
			VALUES ('G2', 'report', '1d', $1, '01', 5)`, last)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var g2 int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM rollup_gauge_total WHERE unit_code = 'G2'`).Scan(&g2); err != nil {
		t.Fatal(err)
	}
	if got := total(); got != days || g2 != 0 {
		t.Fatalf("totals after a batch that adds its own: G1 %d, %d rows of G2; want %d and none", got, g2, days)
	}
	key := func(win string, start time.Time) rollupKey { return rollupKey{"G1", reportLayer, win, start.Unix()} }
	keys := []rollupKey{
		key("1m", last.Add(10*time.Hour+10*time.Minute)), // the open counted, the close not yet
		key("1m", last.Add(10*time.Hour+20*time.Minute)), // both
		key("1m", last.Add(9*time.Hour)),                 // neither: a window without changes
		key("1h", last.Add(10*time.Hour)),
		key("1d", last),
		key("1d", last.Add(-100*24*time.Hour)), // 300 days before it
	}
	want := []int64{days + 1, days, days, days, days, days - 99}
	var pb pgx.Batch
	got := queueRollupGauges(&pb, keys)
	if err := db.Pool.SendBatch(ctx, &pb).Close(); err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if g := got[k]; g.open != want[i] {
			t.Errorf("reports open at the end of %s %v: %d; want %d", k.window, time.Unix(k.start, 0).UTC(), g.open, want[i])
		}
	}

	// The read of the first window's gauge alone, as a batch of current
	// events has it.
	start := time.Unix(keys[0].start, 0).UTC()
	var plan []struct {
		Plan planNode `json:"Plan"`
	}
	var raw []byte
	if err := db.Pool.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+sqlRollupGauges,
		[]string{"G1"}, []string{reportLayer}, []string{"1m"}, []time.Time{start}, []time.Time{last}).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &plan); err != nil || len(plan) != 1 {
		t.Fatalf("reading the plan: %v (%d plans)", err, len(plan))
	}
	if n := plan[0].Plan.rowsOf("rollup"); n != 1 {
		t.Errorf("the gauge's read took %v rows of rollup; want 1 (the window after it in its day), not its history:\n%s", n, raw)
	}
}

// planNode is a node of EXPLAIN (ANALYZE, FORMAT JSON).
type planNode struct {
	Relation string     `json:"Relation Name"`
	Rows     float64    `json:"Actual Rows"`
	Loops    float64    `json:"Actual Loops"`
	Plans    []planNode `json:"Plans"`
}

// rowsOf is the number of rows the scans of relation returned in the plan
// under n.
func (n planNode) rowsOf(relation string) float64 {
	var sum float64
	if n.Relation == relation {
		sum += n.Rows * n.Loops
	}
	for _, c := range n.Plans {
		sum += c.rowsOf(relation)
	}
	return sum
}

// TestGaugeTotalsOf: a batch's changes to the totals are its 1d alert and
// report roll-ups' (not the other windows' nor layers'), summed per unit
// and layer over their days, in key order; a unit whose changes sum to
// zero is left out, and still tells the trigger that the batch adds its
// own.
func TestGaugeTotalsOf(t *testing.T) {
	d1, d2 := time.Date(2026, 11, 29, 17, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 17, 0, 0, 0, time.UTC)
	acc := map[rollupKey]*Rollup{}
	var order []rollupKey
	add := func(unit, layer, win string, start time.Time, r Rollup) {
		k := rollupKey{unit, layer, win, start.Unix()}
		acc[k] = &r
		order = append(order, k)
	}
	add("01", alertLayer, "1d", d1, Rollup{Figures: Figures{Activated: [Grades]int64{0, 0, 0, 2, 0}}})
	add("01", alertLayer, "1d", d2, Rollup{Figures: Figures{Activated: [Grades]int64{1}, Ended: [Grades]int64{0, 0, 0, 1, 0}}})
	add("01", alertLayer, "1h", d2, Rollup{Figures: Figures{Activated: [Grades]int64{7}}}) // counted in its 1d row already
	add("01", "air", "1d", d2, Rollup{N: 5})
	add("01", reportLayer, "1d", d1, Rollup{Figures: Figures{OpenN: 1}})
	add("01", reportLayer, "1d", d2, Rollup{Figures: Figures{ClosedN: 1}}) // opened one day, closed the next: zero
	add("VN", reportLayer, "1d", d2, Rollup{Figures: Figures{OpenN: 3, ClosedN: 1}})
	slices.SortFunc(order, cmpRollupKey)
	got := gaugeTotalsOf(order, acc)
	if !got.some || !slices.Equal(got.units, []string{"01", "VN"}) || !slices.Equal(got.layers, []string{alertLayer, reportLayer}) ||
		!slices.Equal(got.active[0], []int64{1, 0}) || !slices.Equal(got.active[3], []int64{1, 0}) || !slices.Equal(got.open, []int64{0, 2}) {
		t.Errorf("totals %+v; want 01/alert (grade 0 +1, grade 3 +1) and VN/report (open +2)", got)
	}

	zero := map[rollupKey]*Rollup{{"01", reportLayer, "1d", d2.Unix()}: {Figures: Figures{OpenN: 1, ClosedN: 1}}}
	if got := gaugeTotalsOf([]rollupKey{{"01", reportLayer, "1d", d2.Unix()}}, zero); !got.some || len(got.units) != 0 {
		t.Errorf("a batch whose changes sum to zero: %+v; want no totals, and some", got)
	}
	air := map[rollupKey]*Rollup{{"01", "air", "1d", d2.Unix()}: {N: 1}}
	if got := gaugeTotalsOf([]rollupKey{{"01", "air", "1d", d2.Unix()}}, air); got.some || len(got.units) != 0 {
		t.Errorf("a batch of air only: %+v; want nothing", got)
	}
}
