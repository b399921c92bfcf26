package postgis_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twpayne/go-geom"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

func f64(v float64) *float64 { return &v }

var t0 = time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)

func airRow(station string, at time.Time, pm25 float64) postgis.AirRow {
	return postgis.AirRow{
		SourceID:   "src-a",
		EventID:    station + "@" + at.Format(time.RFC3339),
		StationID:  station,
		Name:       "Station " + station,
		Province:   "01",
		UnitCode:   "00070",
		ObservedAt: at,
		ReceivedAt: at.Add(time.Second),
		Location:   geom.NewPointFlat(geom.XY, []float64{105.85, 21.03}),
		PM25:       f64(pm25),
		NO2:        f64(12),
		Extra:      map[string]any{"temperature": 28.5},
	}
}

func trafficRow(segment string, at time.Time, speed float64) postgis.TrafficRow {
	congested := speed < 10
	return postgis.TrafficRow{
		SourceID:            "src-t",
		EventID:             segment + "@" + at.Format(time.RFC3339),
		SegmentID:           segment,
		Province:            "01",
		UnitCode:            "00070",
		ObservedAt:          at,
		ReceivedAt:          at,
		Geom:                geom.NewLineStringFlat(geom.XY, []float64{105.80, 21.00, 105.81, 21.01}),
		Intensity:           f64(120),
		AverageVehicleSpeed: f64(speed),
		Congested:           &congested,
		Extra:               map[string]any{"laneDirection": "forward"},
	}
}

// stagedRow is a row of a registered kind, which has no direct way: a batch
// that holds it is written through staging tables (all new, or the exact
// way), and it changes no other kind's states or roll-ups.
func stagedRow(n int, at time.Time) postgis.GenericRow {
	return postgis.GenericRow{Kind: "noise", SourceID: "src-g", EventID: fmt.Sprintf("staged-%d", n), EntityID: "g",
		Province: "01", UnitCode: "00070", ObservedAt: at, ReceivedAt: at, Values: map[string]float64{"db": 50}}
}

func count(t *testing.T, pool *pgxpool.Pool, q string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// changedIndexes returns the batch indexes of the changed entities, sorted.
func changedIndexes(cs []postgis.Changed) []int {
	var out []int
	for _, c := range cs {
		out = append(out, c.Index)
	}
	slices.Sort(out)
	return out
}

func TestWriteBatchAir(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	s := postgis.NewStore(pool)
	ctx := context.Background()

	first := postgis.Batch{Air: []postgis.AirRow{
		airRow("st1", t0, 10),
		airRow("st1", t0.Add(time.Hour), 20), // newest of st1
		airRow("st2", t0, 30),
		airRow("st1", t0, 10), // the same event again in the batch
	}}
	res, err := s.WriteBatch(ctx, first)
	if err != nil {
		t.Fatalf("WriteBatch: %v", err)
	}
	if res.Air.New != 3 || res.Air.Duplicates != 1 {
		t.Errorf("new, duplicates = %d, %d; want 3, 1", res.Air.New, res.Air.Duplicates)
	}
	if got, want := changedIndexes(res.Air.Changed), []int{1, 2}; !slices.Equal(got, want) {
		t.Errorf("changed = %v; want %v", got, want)
	}
	if n := count(t, pool, "SELECT count(*) FROM air_observation"); n != 3 {
		t.Errorf("air_observation rows = %d; want 3", n)
	}

	var (
		event    string
		observed time.Time
		pm25     float64
		temp     float64
		loc      geom.T
		name     string
	)
	err = pool.QueryRow(ctx, `SELECT last_event_id, last_observed_at, (last_values->>'pm25')::float8,
		(last_values->>'temperature')::float8, location, name FROM sensor WHERE kind = 'air' AND id = 'st1'`).
		Scan(&event, &observed, &pm25, &temp, &loc, &name)
	if err != nil {
		t.Fatalf("reading sensor st1: %v", err)
	}
	if want := first.Air[1].EventID; event != want || !observed.Equal(t0.Add(time.Hour)) || pm25 != 20 || temp != 28.5 {
		t.Errorf("sensor st1 = %s %v pm25 %v temp %v; want %s %v pm25 20 temp 28.5", event, observed, pm25, temp, want, t0.Add(time.Hour))
	}
	if p, ok := loc.(*geom.Point); !ok || p.X() != 105.85 || p.Y() != 21.03 || p.SRID() != postgis.SRID {
		t.Errorf("sensor st1 location = %#v; want POINT(105.85 21.03) postgis.SRID 4326", loc)
	}
	if name != "Station st1" {
		t.Errorf("sensor name = %q; want %q", name, "Station st1")
	}

	// Redelivery of the whole batch: nothing new, the state is written again (a tie).
	res, err = s.WriteBatch(ctx, first)
	if err != nil {
		t.Fatalf("WriteBatch again: %v", err)
	}
	if res.Air.New != 0 || res.Air.Duplicates != 4 {
		t.Errorf("again: new, duplicates = %d, %d; want 0, 4", res.Air.New, res.Air.Duplicates)
	}
	if got, want := changedIndexes(res.Air.Changed), []int{1, 2}; !slices.Equal(got, want) {
		t.Errorf("again: changed = %v; want %v", got, want)
	}

	// A late observation is stored but does not overwrite the newer state.
	res, err = s.WriteBatch(ctx, postgis.Batch{Air: []postgis.AirRow{airRow("st1", t0.Add(30*time.Minute), 99)}})
	if err != nil {
		t.Fatalf("WriteBatch late: %v", err)
	}
	if res.Air.New != 1 || len(res.Air.Changed) != 0 {
		t.Errorf("late: new %d, changed %v; want 1, none", res.Air.New, res.Air.Changed)
	}
	if n := count(t, pool, "SELECT count(*) FROM sensor WHERE id = 'st1' AND (last_values->>'pm25')::float8 = 20"); n != 1 {
		t.Errorf("late observation overwrote the state of st1")
	}
	if n := count(t, pool, "SELECT count(*) FROM air_observation"); n != 4 {
		t.Errorf("air_observation rows = %d; want 4", n)
	}
}

func TestWriteBatchTraffic(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	s := postgis.NewStore(pool)
	ctx := context.Background()
	b := postgis.Batch{Traffic: []postgis.TrafficRow{trafficRow("seg1", t0, 40), trafficRow("seg1", t0.Add(time.Minute), 5)}}
	res, err := s.WriteBatch(ctx, b)
	if err != nil {
		t.Fatalf("WriteBatch: %v", err)
	}
	if res.Traffic.New != 2 || res.Traffic.Duplicates != 0 {
		t.Errorf("new, duplicates = %d, %d; want 2, 0", res.Traffic.New, res.Traffic.Duplicates)
	}
	if got, want := changedIndexes(res.Traffic.Changed), []int{1}; !slices.Equal(got, want) {
		t.Errorf("changed = %v; want %v", got, want)
	}
	var (
		speed     float64
		congested bool
		dir       string
		g         geom.T
	)
	err = pool.QueryRow(ctx, `SELECT (last_values->>'averageVehicleSpeed')::float8, (last_values->>'congested')::bool,
		last_values->>'laneDirection', geom FROM road_segment WHERE id = 'seg1'`).Scan(&speed, &congested, &dir, &g)
	if err != nil {
		t.Fatalf("reading road_segment: %v", err)
	}
	if speed != 5 || !congested || dir != "forward" {
		t.Errorf("seg1 state = speed %v congested %v dir %q; want 5 true forward", speed, congested, dir)
	}
	if ls, ok := g.(*geom.LineString); !ok || ls.NumCoords() != 2 {
		t.Errorf("seg1 geom = %#v; want a LineString of 2 points", g)
	}
}

func TestWriteBatchPartitions(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	s := postgis.NewStore(pool)
	ctx := context.Background()
	b := postgis.Batch{
		Air: []postgis.AirRow{
			airRow("st1", time.Date(2026, 10, 31, 23, 59, 59, 0, time.UTC), 1),
			airRow("st1", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), 2),
			airRow("st1", time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC), 3),
		},
		Traffic: []postgis.TrafficRow{trafficRow("seg1", time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), 40)},
	}
	if _, err := s.WriteBatch(ctx, b); err != nil {
		t.Fatalf("WriteBatch: %v", err)
	}
	rows, err := pool.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname IN ('air_observation', 'traffic_observation') ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"air_observation_p202610", "air_observation_p202611", "air_observation_p202701", "traffic_observation_p202611"}
	if !slices.Equal(got, want) {
		t.Errorf("partitions = %v; want %v", got, want)
	}
	if n := count(t, pool, "SELECT count(*) FROM air_observation_p202611"); n != 1 {
		t.Errorf("rows in air_observation_p202611 = %d; want 1", n)
	}
	// A second store (another aggregator, a restart) finds them already there.
	if _, err := postgis.NewStore(pool).WriteBatch(ctx, b); err != nil {
		t.Fatalf("WriteBatch from a second store: %v", err)
	}
}

// insertUnit adds a current admin_unit whose boundary is the square
// [x0,x0+1]×[y0,y0+1].
func insertUnit(t *testing.T, pool *pgxpool.Pool, code, level, parent string, x0, y0 float64) {
	t.Helper()
	ring := []float64{x0, y0, x0, y0 + 1, x0 + 1, y0 + 1, x0 + 1, y0, x0, y0}
	mp := geom.NewMultiPolygonFlat(geom.XY, ring, [][]int{{len(ring)}}).SetSRID(postgis.SRID)
	_, err := pool.Exec(context.Background(), `INSERT INTO admin_unit (code, level, parent_code, name_vi, boundary, valid_from)
		VALUES ($1, $2, NULLIF($3, ''), $1, $4, '2025-07-01')`, code, level, parent, mp)
	if err != nil {
		t.Fatalf("inserting unit %s: %v", code, err)
	}
}

func TestWriteBatchAlerts(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	s := postgis.NewStore(pool)
	ctx := context.Background()
	insertUnit(t, pool, "01", "province", "", 105, 20)
	insertUnit(t, pool, "02", "province", "", 106, 20)
	insertUnit(t, pool, "03", "province", "", 108, 20)
	// A closed unit never counts.
	_, err := pool.Exec(ctx, `UPDATE admin_unit SET valid_to = '2025-08-01' WHERE code = '03'`)
	if err != nil {
		t.Fatal(err)
	}

	square := func(x0, y0, d float64) *geom.Polygon {
		return geom.NewPolygonFlat(geom.XY, []float64{x0, y0, x0 + d, y0, x0 + d, y0 + d, x0, y0 + d, x0, y0}, []int{10})
	}
	future := time.Now().Add(time.Hour)
	past := time.Now().Add(-time.Hour)
	across := geom.NewGeometryCollection()
	if err := across.Push(square(105.9, 20.5, 0.2)); err != nil { // over the border of 01 and 02
		t.Fatal(err)
	}
	if err := across.Push(geom.NewPointFlat(geom.XY, []float64{108.5, 20.5})); err != nil { // only in closed 03
		t.Fatal(err)
	}
	alerts := []postgis.AlertRow{
		{SourceID: "src", EventID: "a1", Identifier: "a1", Sender: "kttv", Sent: t0, Status: "Actual", MsgType: "Alert",
			Scope: "Public", Info: []byte(`[{"language":"vi-VN","event":"Lũ"}]`), Area: across, Expires: &future,
			Province: "01", UnitCode: "01", ReceivedAt: t0},
		{SourceID: "src", EventID: "a2", Identifier: "a2", Sender: "kttv", Sent: t0, Status: "Actual", MsgType: "Alert",
			Scope: "Public", Area: square(105.2, 20.2, 0.1), Expires: &past, Province: "01", UnitCode: "01", ReceivedAt: t0},
		{SourceID: "src", EventID: "a3", Identifier: "a3", Sender: "kttv", Sent: t0, Status: "Actual", MsgType: "Alert",
			Scope: "Public", Refs: []string{"kttv,a1," + t0.Format(time.RFC3339)}, Province: "01", UnitCode: "01", ReceivedAt: t0},
	}
	res, err := s.WriteBatch(ctx, postgis.Batch{Alerts: alerts})
	if err != nil {
		t.Fatalf("WriteBatch: %v", err)
	}
	if res.Alerts.New != 3 || res.Alerts.Duplicates != 0 || !slices.Equal(slices.Sorted(slices.Values(res.Alerts.Inserted)), []int{0, 1, 2}) {
		t.Errorf("new, duplicates, inserted = %d, %d, %v; want 3, 0, [0 1 2]", res.Alerts.New, res.Alerts.Duplicates, res.Alerts.Inserted)
	}
	type got struct {
		state string
		units []string
	}
	want := map[int]got{
		0: {"active", []string{"01", "02"}},
		1: {"expired", []string{"01"}},
		2: {"active", nil},
	}
	check := func(label string, cs []postgis.Changed) {
		t.Helper()
		if len(cs) != len(want) {
			t.Errorf("%s: changed %d alerts; want %d", label, len(cs), len(want))
		}
		for _, c := range cs {
			w := want[c.Index]
			if c.State != w.state || !slices.Equal(c.Units, w.units) {
				t.Errorf("%s: alert %d = %s %v; want %s %v", label, c.Index, c.State, c.Units, w.state, w.units)
			}
		}
	}
	check("first", res.Alerts.Changed)
	if n := count(t, pool, "SELECT count(*) FROM alert_unit WHERE alert_id = 'src/a1'"); n != 2 {
		t.Errorf("alert_unit rows of src/a1 = %d; want 2", n)
	}
	var refs []string
	if err := pool.QueryRow(ctx, "SELECT refs FROM alert WHERE id = 'src/a3'").Scan(&refs); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(refs, alerts[2].Refs) {
		t.Errorf("refs = %v; want %v", refs, alerts[2].Refs)
	}

	// Redelivered: nothing new, the same units again.
	res, err = s.WriteBatch(ctx, postgis.Batch{Alerts: alerts})
	if err != nil {
		t.Fatalf("WriteBatch again: %v", err)
	}
	if res.Alerts.New != 0 || res.Alerts.Duplicates != 3 || len(res.Alerts.Inserted) != 0 {
		t.Errorf("again: new, duplicates, inserted = %d, %d, %v; want 0, 3, none", res.Alerts.New, res.Alerts.Duplicates, res.Alerts.Inserted)
	}
	check("again", res.Alerts.Changed)
	if n := count(t, pool, "SELECT count(*) FROM alert_unit"); n != 3 {
		t.Errorf("alert_unit rows = %d; want 3", n)
	}

	// An older copy of an alert (sent earlier) changes nothing.
	old := alerts[0]
	old.Sent = t0.Add(-time.Hour)
	old.Area = square(106.5, 20.5, 0.1)
	res, err = s.WriteBatch(ctx, postgis.Batch{Alerts: []postgis.AlertRow{old}})
	if err != nil {
		t.Fatalf("WriteBatch old: %v", err)
	}
	if len(res.Alerts.Changed) != 0 || res.Alerts.Duplicates != 1 {
		t.Errorf("old: changed %v, duplicates %d; want none, 1", res.Alerts.Changed, res.Alerts.Duplicates)
	}
	if n := count(t, pool, "SELECT count(*) FROM alert_unit WHERE alert_id = 'src/a1'"); n != 2 {
		t.Errorf("alert_unit rows of src/a1 after an older copy = %d; want 2", n)
	}
}

func TestWriteBatchRollsBack(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	s := postgis.NewStore(pool)
	ctx := context.Background()
	bad := trafficRow("seg1", t0, 40)
	bad.Geom = nil
	b := postgis.Batch{
		Air:     []postgis.AirRow{airRow("st1", t0, 10)},
		Traffic: []postgis.TrafficRow{bad},
	}
	// A segment without geometry breaks the constraint added here: the whole
	// batch fails and nothing of it stays.
	if _, err := pool.Exec(ctx, `ALTER TABLE road_segment ADD CONSTRAINT test_no_null_geom CHECK (geom IS NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteBatch(ctx, b); err == nil {
		t.Fatal("WriteBatch of a row breaking a constraint: got nil error")
	}
	if n := count(t, pool, "SELECT count(*) FROM air_observation"); n != 0 {
		t.Errorf("air_observation rows after a failed batch = %d; want 0", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM sensor"); n != 0 {
		t.Errorf("sensor rows after a failed batch = %d; want 0", n)
	}
}

// benchRuns numbers the runs of WriteBatch's sub-benchmarks in the test
// process, which -count and the search for b.N repeat on one database.
var benchRuns atomic.Int64

// benchBase returns the first iteration of a run of a loop of
// BenchmarkWriteBatch: one the loops of earlier runs did not reach, so that
// each run writes new rows (about a year of observations per run).
func benchBase() int { return int(benchRuns.Add(1)) << 16 }

// benchRows returns n air observations of 50 stations, unique for iteration it.
func benchRows(it, n int) []postgis.AirRow {
	out := make([]postgis.AirRow, n)
	for i := range out {
		at := t0.Add(time.Duration(it*n+i) * time.Second)
		out[i] = airRow(fmt.Sprintf("st%d", i%50), at, float64(i))
	}
	return out
}

// BenchmarkWriteBatch measures WriteBatch (COPY to staging, insert with
// conflict check, state upsert, roll-ups of the ward, its province and VN)
// against a raw COPY of the same rows into the same table, the floor any
// batched writer can reach, and roll-ups on against off. All report rows/s.
func BenchmarkWriteBatch(b *testing.B) {
	const n = 500
	pool := testenv.PostGIS(b).Pool
	ctx := context.Background()
	for _, u := range [][2]string{{"VN", ""}, {"01", "VN"}, {"00070", "01"}} {
		level := map[string]string{"VN": "national", "01": "province", "00070": "commune"}[u[0]]
		ring := []float64{105, 20, 105, 21, 106, 21, 106, 20, 105, 20}
		mp := geom.NewMultiPolygonFlat(geom.XY, ring, [][]int{{len(ring)}}).SetSRID(postgis.SRID)
		if _, err := pool.Exec(ctx, `INSERT INTO admin_unit (code, level, parent_code, name_vi, boundary, valid_from)
			VALUES ($1, $2, NULLIF($3, ''), $1, $4, '2020-01-01')`, u[0], level, u[1], mp); err != nil {
			b.Fatal(err)
		}
	}
	s := postgis.NewStore(pool)
	off, err := postgis.NewStoreWith(pool, postgis.StoreConfig{NoRollups: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("store", func(b *testing.B) {
		base := benchBase()
		for i := 0; b.Loop(); i++ {
			if _, err := s.WriteBatch(ctx, postgis.Batch{Air: benchRows(base+i, n)}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "rows/s")
	})
	// The store as the aggregator drives it under a backlog (each batch's
	// rows copied while the one before is finished: StartBatch, Finish),
	// roll-ups on, against the raw COPY of the same rows, in turns of ten
	// batches each so that the machine's load weighs on both alike;
	// store/raw is the ratio of their rates. The raw COPY is pgx's
	// CopyFrom, as a program would write it; a second baseline sends the
	// same rows encoded as the store encodes them, before its clock starts
	// (the server's own floor: no encoding at all), and store/raw_bytes is
	// the store's rate against it.
	b.Run("store_vs_raw", func(b *testing.B) {
		base, rawBase, bytesBase := benchBase(), benchBase(), benchBase()
		warmRaw(b, s, base)
		warmRaw(b, off, rawBase)
		warmRaw(b, off, bytesBase)
		const turn = 10
		var storeT, rawT, bytesT time.Duration
		b.ResetTimer()
		for i := 0; i < b.N; i += turn {
			k := min(turn, b.N-i)
			start := time.Now()
			bs := make([]postgis.Batch, k)
			for j := range bs {
				bs[j] = postgis.Batch{Air: benchRows(base+i+j, n)}
			}
			if _, started := overlapped(b, s, bs); started != k {
				b.Fatalf("%d of %d batches of air rows in known partitions started", started, k)
			}
			storeT += time.Since(start)
			start = time.Now()
			for j := range k {
				rawCopy(b, pool, rawBase+i+j)
			}
			rawT += time.Since(start)
			b.StopTimer()
			data := make([][]byte, k)
			var sql string
			for j := range k {
				rows := benchRows(bytesBase+i+j, n)
				for r := range rows {
					rows[r].SourceID = "raw-bytes"
				}
				var err error
				if data[j], sql, err = postgis.AirCopy(rows); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
			start = time.Now()
			for j := range k {
				rawBytes(b, pool, sql, data[j])
			}
			bytesT += time.Since(start)
		}
		b.ReportMetric(float64(b.N*n)/storeT.Seconds(), "store_rows/s")
		b.ReportMetric(float64(b.N*n)/rawT.Seconds(), "raw_rows/s")
		b.ReportMetric(rawT.Seconds()/storeT.Seconds(), "store/raw")
		b.ReportMetric(bytesT.Seconds()/storeT.Seconds(), "store/raw_bytes")
	})
	// The same for traffic rows (segments' lines, a congested flag, a lane)
	// and for batches of the four observation kinds, a quarter each (what a
	// province's FEEDS holds): the store as the aggregator drives it under
	// a backlog against pgx's CopyFrom of the same rows into the same
	// tables, a batch in one transaction.
	for _, kinds := range []struct {
		name  string
		batch func(it int) postgis.Batch
	}{
		{"traffic_vs_raw", func(it int) postgis.Batch { return postgis.Batch{Traffic: benchTrafficRows(it, n)} }},
		{"mixed_vs_raw", func(it int) postgis.Batch { return benchMixed(it, n) }},
	} {
		b.Run(kinds.name, func(b *testing.B) {
			base, rawBase := benchBase(), benchBase()
			for _, w := range []struct {
				s    *postgis.Store
				base int
			}{{s, base}, {off, rawBase}} {
				var warm postgis.Batch // a row of each kind in each month of 65,536 iterations, as warmRaw
				for it := 0; it < 1<<16; it += 4000 {
					warm = appendFirsts(warm, kinds.batch(w.base+it), "warm")
				}
				if _, err := w.s.WriteBatch(ctx, warm); err != nil {
					b.Fatal(err)
				}
			}
			const turn = 10
			var storeT, rawT time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i += turn {
				k := min(turn, b.N-i)
				start := time.Now()
				bs := make([]postgis.Batch, k)
				for j := range bs {
					bs[j] = kinds.batch(base + i + j)
				}
				if _, started := overlapped(b, s, bs); started != k {
					b.Fatalf("%d of %d batches in known partitions started (written straight)", started, k)
				}
				storeT += time.Since(start)
				start = time.Now()
				for j := range k {
					rawCopyBatch(b, pool, kinds.batch(rawBase+i+j))
				}
				rawT += time.Since(start)
			}
			b.ReportMetric(float64(b.N*n)/storeT.Seconds(), "store_rows/s")
			b.ReportMetric(float64(b.N*n)/rawT.Seconds(), "raw_rows/s")
			b.ReportMetric(rawT.Seconds()/storeT.Seconds(), "store/raw")
		})
	}
	// Roll-ups on and off, batch for batch in one loop, so that the load of
	// the machine weighs on both alike; on_rows/s ÷ off_rows/s is the ratio.
	b.Run("rollups_on_off", func(b *testing.B) {
		// Other iterations for each store, so nothing conflicts.
		onBase, offBase := benchBase(), benchBase()
		var on, offT time.Duration
		for i := 0; b.Loop(); i++ {
			start := time.Now()
			if _, err := s.WriteBatch(ctx, postgis.Batch{Air: benchRows(onBase+i, n)}); err != nil {
				b.Fatal(err)
			}
			mid := time.Now()
			if _, err := off.WriteBatch(ctx, postgis.Batch{Air: benchRows(offBase+i, n)}); err != nil {
				b.Fatal(err)
			}
			on, offT = on+mid.Sub(start), offT+time.Since(mid)
		}
		b.ReportMetric(float64(b.N*n)/on.Seconds(), "on_rows/s")
		b.ReportMetric(float64(b.N*n)/offT.Seconds(), "off_rows/s")
		b.ReportMetric(offT.Seconds()/on.Seconds(), "on/off")
	})
	b.Run("raw_copy", func(b *testing.B) {
		base := benchBase()
		warmRaw(b, off, base)
		for i := 0; b.Loop(); i++ {
			rawCopy(b, pool, base+i)
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "rows/s")
	})
}

// benchTrafficRows returns n traffic observations of 50 segments, unique
// for iteration it.
func benchTrafficRows(it, n int) []postgis.TrafficRow {
	out := make([]postgis.TrafficRow, n)
	for i := range out {
		at := t0.Add(time.Duration(it*n+i) * time.Second)
		out[i] = trafficRow(fmt.Sprintf("seg%d", i%50), at, float64(i%60))
		lane := int32(i % 4)
		out[i].LaneID, out[i].Occupancy = &lane, f64(float64(i%100)/100)
	}
	return out
}

// benchMixed returns n observations, a quarter of each kind (air, traffic,
// water, weather), unique for iteration it: observed at the instants
// benchRows(it, n) gives its first quarter, so that no iteration of
// another sub-benchmark (another base) has one of them.
func benchMixed(it, n int) postgis.Batch {
	q := n / 4
	b := postgis.Batch{Air: benchRows(it*n/q, q), Traffic: benchTrafficRows(it*n/q, q)}
	for i := range q {
		at := t0.Add(time.Duration(it*n+i) * time.Second)
		b.Water = append(b.Water, waterRow(fmt.Sprintf("st%d", i%25), at, float64(i)/10, int16(i%4)))
		b.Weather = append(b.Weather, weatherRow(fmt.Sprintf("st%d", i%25), at, float64(i%40)))
	}
	return b
}

// appendFirsts appends to to the first row of each kind of b, from source.
func appendFirsts(to, b postgis.Batch, source string) postgis.Batch {
	if len(b.Air) > 0 {
		r := b.Air[0]
		r.SourceID = source
		to.Air = append(to.Air, r)
	}
	if len(b.Traffic) > 0 {
		r := b.Traffic[0]
		r.SourceID = source
		to.Traffic = append(to.Traffic, r)
	}
	if len(b.Water) > 0 {
		r := b.Water[0]
		r.SourceID = source
		to.Water = append(to.Water, r)
	}
	if len(b.Weather) > 0 {
		r := b.Weather[0]
		r.SourceID = source
		to.Weather = append(to.Weather, r)
	}
	return to
}

// rawCopyBatch copies the rows of b, as source "raw", with pgx's CopyFrom
// into their tables, in one transaction: the floor of a batched writer.
func rawCopyBatch(b *testing.B, pool *pgxpool.Pool, bt postgis.Batch) {
	b.Helper()
	ctx := context.Background()
	copies := []struct {
		table string
		cols  []string
		n     int
		row   func(j int) []any
	}{
		{"air_observation", rawCols, len(bt.Air), func(j int) []any {
			r := &bt.Air[j]
			return []any{"raw", r.EventID, r.ObservedAt, r.ReceivedAt, r.StationID, r.Province, r.UnitCode,
				r.Location.SetSRID(postgis.SRID), r.PM25, r.PM10, r.NO2, r.O3, r.CO, r.SO2, r.Extra}
		}},
		{"traffic_observation", []string{"source_id", "event_id", "observed_at", "received_at", "segment_id", "province", "unit_code",
			"geom", "intensity", "occupancy", "average_vehicle_speed", "congested", "lane_id", "extra"}, len(bt.Traffic), func(j int) []any {
			r := &bt.Traffic[j]
			return []any{"raw", r.EventID, r.ObservedAt, r.ReceivedAt, r.SegmentID, r.Province, r.UnitCode,
				r.Geom.SetSRID(postgis.SRID), r.Intensity, r.Occupancy, r.AverageVehicleSpeed, r.Congested, r.LaneID, r.Extra}
		}},
		{"water_observation", []string{"source_id", "event_id", "observed_at", "received_at", "station_id", "province", "unit_code",
			"location", "water_level", "alarm_level_1", "alarm_level_2", "alarm_level_3", "water_alarm", "flow",
			"temperature", "ph", "conductivity", "turbidity", "dissolved_oxygen", "extra"}, len(bt.Water), func(j int) []any {
			r := &bt.Water[j]
			return []any{"raw", r.EventID, r.ObservedAt, r.ReceivedAt, r.StationID, r.Province, r.UnitCode,
				r.Location.SetSRID(postgis.SRID), r.WaterLevel, r.AlarmLevel1, r.AlarmLevel2, r.AlarmLevel3, r.WaterAlarm, r.Flow,
				r.Temperature, r.PH, r.Conductivity, r.Turbidity, r.DissolvedOxygen, r.Extra}
		}},
		{"weather_observation", []string{"source_id", "event_id", "observed_at", "received_at", "station_id", "province", "unit_code",
			"location", "temperature", "relative_humidity", "precipitation", "wind_speed", "wind_direction",
			"atmospheric_pressure", "extra"}, len(bt.Weather), func(j int) []any {
			r := &bt.Weather[j]
			return []any{"raw", r.EventID, r.ObservedAt, r.ReceivedAt, r.StationID, r.Province, r.UnitCode,
				r.Location.SetSRID(postgis.SRID), r.Temperature, r.RelativeHumidity, r.Precipitation, r.WindSpeed,
				r.WindDirection, r.AtmosphericPressure, r.Extra}
		}},
	}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, c := range copies {
			if c.n == 0 {
				continue
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromSlice(c.n, func(j int) ([]any, error) {
				return c.row(j), nil
			})); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// rawCols are the columns BenchmarkWriteBatch's raw COPY writes.
var rawCols = []string{"source_id", "event_id", "observed_at", "received_at", "station_id", "province", "unit_code",
	"location", "pm25", "pm10", "no2", "o3", "co", "so2", "extra"}

// warmRaw makes, through store, the partitions (by month) of the rows of
// 65,536 iterations from base: a raw COPY does not create them, nor does a
// store's StartBatch.
func warmRaw(b *testing.B, store *postgis.Store, base int) {
	b.Helper()
	var warm []postgis.AirRow
	for it := 0; it < 1<<16; it += 4000 { // 4,000 iterations: 23 days
		warm = append(warm, airRow("warm", benchRows(base+it, 500)[0].ObservedAt, 0))
	}
	if _, err := store.WriteBatch(context.Background(), postgis.Batch{Air: warm}); err != nil {
		b.Fatal(err)
	}
}

// rawCopy copies iteration it's rows (benchRows) into air_observation in
// one transaction, as source "raw", so that nothing conflicts with the
// store's rows.
func rawCopy(b *testing.B, pool *pgxpool.Pool, it int) {
	b.Helper()
	const n = 500
	ctx := context.Background()
	rows := benchRows(it, n)
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"air_observation"}, rawCols, pgx.CopyFromSlice(n, func(j int) ([]any, error) {
			r := &rows[j]
			return []any{"raw", r.EventID, r.ObservedAt, r.ReceivedAt, r.StationID, r.Province, r.UnitCode,
				r.Location.SetSRID(postgis.SRID), r.PM25, r.PM10, r.NO2, r.O3, r.CO, r.SO2, r.Extra}, nil
		}))
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}

// rawBytes sends data, rows encoded for the COPY sql, in one transaction.
func rawBytes(b *testing.B, pool *pgxpool.Pool, sql string, data []byte) {
	b.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(data), sql)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}

func capAlert(id, msgType string, sent time.Time, refs ...string) postgis.AlertRow {
	future := sent.Add(24 * time.Hour)
	return postgis.AlertRow{SourceID: "src", EventID: id, Identifier: id, Sender: "kttv", Sent: sent, Status: "Actual",
		MsgType: msgType, Scope: "Public", Refs: refs, Expires: &future, Province: "01", UnitCode: "01",
		ReceivedAt: sent, Body: []byte("body of " + id)}
}

func ref(id string, sent time.Time) string { return "kttv," + id + "," + sent.Format(time.RFC3339) }

func TestWriteBatchAlertReferences(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	s := postgis.NewStore(pool)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	write := func(rows ...postgis.AlertRow) postgis.Result {
		t.Helper()
		res, err := s.WriteBatch(ctx, postgis.Batch{Alerts: rows})
		if err != nil {
			t.Fatalf("WriteBatch: %v", err)
		}
		return res
	}
	states := func(as []postgis.AlertState) map[string]string {
		m := map[string]string{}
		for _, a := range as {
			m[a.ID] = a.State
		}
		return m
	}
	stored := func(id string) string {
		t.Helper()
		var st string
		if err := pool.QueryRow(ctx, "SELECT state FROM alert WHERE id = $1", id).Scan(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	tests := []struct {
		name     string
		rows     []postgis.AlertRow
		changed  map[int]string    // batch index → state
		referred map[string]string // alert id → state
	}{
		{"alert", []postgis.AlertRow{capAlert("a1", "Alert", now)}, map[int]string{0: "active"}, map[string]string{}},
		{"update supersedes", []postgis.AlertRow{capAlert("u1", "Update", now.Add(time.Minute), ref("a1", now))},
			map[int]string{0: "active"}, map[string]string{"src/a1": "superseded"}},
		{"cancel cancels both", []postgis.AlertRow{capAlert("c1", "Cancel", now.Add(2*time.Minute), ref("a1", now), ref("u1", now))},
			map[int]string{0: "cancelled"}, map[string]string{"src/a1": "cancelled", "src/u1": "cancelled"}},
		{"cancelled is final", []postgis.AlertRow{capAlert("u2", "Update", now.Add(3*time.Minute), ref("a1", now))},
			map[int]string{0: "active"}, map[string]string{"src/a1": "cancelled"}},
		{"cancel before its alert", []postgis.AlertRow{capAlert("c3", "Cancel", now.Add(time.Minute), ref("b3", now))},
			map[int]string{0: "cancelled"}, map[string]string{}},
		{"the alert after its cancel", []postgis.AlertRow{capAlert("b3", "Alert", now)}, map[int]string{0: "cancelled"}, map[string]string{}},
		{"alert and update in one batch", []postgis.AlertRow{capAlert("a4", "Alert", now), capAlert("u4", "Update", now.Add(time.Minute), ref("a4", now))},
			map[int]string{1: "active"}, map[string]string{"src/a4": "superseded"}},
		{"an ack is never in force", []postgis.AlertRow{capAlert("k5", "Ack", now.Add(time.Minute), ref("a4", now))},
			map[int]string{0: "closed"}, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := write(tt.rows...)
			got := map[int]string{}
			for _, c := range res.Alerts.Changed {
				got[c.Index] = c.State
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.changed) {
				t.Errorf("changed = %v; want %v", got, tt.changed)
			}
			if g := states(res.Referenced); fmt.Sprint(g) != fmt.Sprint(tt.referred) {
				t.Errorf("referenced = %v; want %v", g, tt.referred)
			}
			for id, st := range tt.referred {
				if got := stored(id); got != st {
					t.Errorf("stored state of %s = %s; want %s", id, got, st)
				}
			}
			for _, r := range res.Referenced {
				if want := "body of " + r.ID[len("src/"):]; string(r.Body) != want {
					t.Errorf("body of %s = %q; want %q", r.ID, r.Body, want)
				}
			}
		})
	}
}

func TestDueAlerts(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	s := postgis.NewStore(pool)
	ctx := context.Background()
	insertUnit(t, pool, "01", "province", "", 105, 20)
	now := time.Now().UTC()
	a := capAlert("e1", "Alert", now)
	a.Area = geom.NewPointFlat(geom.XY, []float64{105.5, 20.5})
	b := capAlert("e2", "Alert", now)
	b.Province = "02"
	if _, err := s.WriteBatch(ctx, postgis.Batch{Alerts: []postgis.AlertRow{a, b, capAlert("e3", "Alert", now)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "UPDATE alert SET expires = now() - interval '1 minute' WHERE id IN ('src/e1', 'src/e2')"); err != nil {
		t.Fatal(err)
	}
	due, err := s.DueAlerts(ctx, "01", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].ID != "src/e1" || due[0].State != "expired" || string(due[0].Body) != "body of e1" ||
		!slices.Equal(due[0].Units, []string{"01"}) {
		t.Fatalf("due in 01 = %+v; want src/e1 expired with units [01]", due)
	}
	if all, err := s.DueAlerts(ctx, "", 100); err != nil || len(all) != 2 {
		t.Fatalf("due everywhere = %+v, %v; want 2", all, err)
	}
	if _, err := s.MarkExpired(ctx, []string{"src/e1"}, due[0].UpdatedAt); err != nil {
		t.Fatal(err)
	}
	if again, err := s.DueAlerts(ctx, "01", 100); err != nil || len(again) != 0 {
		t.Errorf("due after MarkExpired = %+v, %v; want none", again, err)
	}
	var st string
	if err := pool.QueryRow(ctx, "SELECT state FROM alert WHERE id = 'src/e1'").Scan(&st); err != nil || st != "expired" {
		t.Errorf("state of src/e1 = %q, %v; want expired", st, err)
	}
}

// TestEntityNotTakenAcrossProvinces: a station's or segment's state moves
// only with an observation of its own source or of its province. The same
// id from a source of another province is stored as an observation of that
// province, and leaves the state where it is (an audit moved 01's station
// into 79, and so its history into 79's scope, with one item).
func TestEntityNotTakenAcrossProvinces(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	s := postgis.NewStore(pool)
	ctx := context.Background()
	from := func(r postgis.AirRow, source, province, unit string) postgis.AirRow {
		r.SourceID, r.Province, r.UnitCode = source, province, unit
		r.EventID = source + "/" + r.EventID
		return r
	}
	state := func() (source, province string) {
		t.Helper()
		if err := pool.QueryRow(ctx, `SELECT source_id, province FROM sensor WHERE kind = 'air' AND id = 'st-x'`).Scan(&source, &province); err != nil {
			t.Fatal(err)
		}
		return source, province
	}
	for i, step := range []struct {
		row                      postgis.AirRow
		changed                  bool
		wantSource, wantProvince string
	}{
		{airRow("st-x", t0, 10), true, "src-a", "01"},
		{from(airRow("st-x", t0.Add(time.Hour), 99), "src-b", "79", "79"), false, "src-a", "01"},     // another province's source
		{from(airRow("st-x", t0.Add(2*time.Hour), 20), "src-c", "01", "00070"), true, "src-c", "01"}, // the province's
		{airRow("st-x", t0.Add(3*time.Hour), 30), true, "src-a", "01"},
	} {
		res, err := s.WriteBatch(ctx, postgis.Batch{Air: []postgis.AirRow{step.row}})
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if res.Air.New != 1 || (len(res.Air.Changed) == 1) != step.changed {
			t.Errorf("step %d: new %d, changed %v; want 1 new, changed %v", i, res.Air.New, res.Air.Changed, step.changed)
		}
		if src, prov := state(); src != step.wantSource || prov != step.wantProvince {
			t.Errorf("step %d: state of st-x from %s in %s; want %s in %s", i, src, prov, step.wantSource, step.wantProvince)
		}
	}
	if n := count(t, pool, "SELECT count(*) FROM air_observation WHERE station_id = 'st-x' AND province = '79'"); n != 1 {
		t.Errorf("the other province's observation: %d rows; want it stored", n)
	}
	// A newer row of another province in the owner's batch does not hide
	// the owner's: written straight (air alone) and through the staging
	// tables (with an alert).
	for i, withAlert := range []bool{false, true} {
		at := t0.Add(time.Duration(4+2*i) * time.Hour)
		b := postgis.Batch{Air: []postgis.AirRow{
			from(airRow("st-x", at, 40), "src-a", "01", "00070"),
			from(airRow("st-x", at.Add(time.Hour), 99), "src-b", "79", "79"),
		}}
		if withAlert {
			b.Alerts = []postgis.AlertRow{capAlert(fmt.Sprintf("al-%d", i), "Alert", time.Now().UTC())}
		}
		res, err := s.WriteBatch(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if got := changedIndexes(res.Air.Changed); !slices.Equal(got, []int{0}) {
			t.Errorf("alert %v: changed %v; want the owner's row 0", withAlert, got)
		}
		var observed time.Time
		if err := pool.QueryRow(ctx, `SELECT last_observed_at FROM sensor WHERE kind = 'air' AND id = 'st-x'`).Scan(&observed); err != nil || !observed.Equal(at) {
			t.Errorf("alert %v: st-x's state observed at %v (%v); want the owner's %v", withAlert, observed, err, at)
		}
	}

	seg := trafficRow("seg-x", t0, 40)
	if _, err := s.WriteBatch(ctx, postgis.Batch{Traffic: []postgis.TrafficRow{seg}}); err != nil {
		t.Fatal(err)
	}
	other := trafficRow("seg-x", t0.Add(time.Hour), 5)
	other.SourceID, other.Province, other.UnitCode, other.EventID = "src-u", "79", "79", "src-u/"+other.EventID
	res, err := s.WriteBatch(ctx, postgis.Batch{Traffic: []postgis.TrafficRow{other}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Traffic.New != 1 || len(res.Traffic.Changed) != 0 {
		t.Errorf("segment from another province: new %d, changed %v; want stored, state kept", res.Traffic.New, res.Traffic.Changed)
	}
	if n := count(t, pool, "SELECT count(*) FROM road_segment WHERE id = 'seg-x' AND province = '01' AND source_id = 'src-t'"); n != 1 {
		t.Error("the segment's state moved to another province's source")
	}
	// Nor does a segment's, written straight (traffic alone) and through
	// the staging tables (with a registered kind's row); of the owner's two
	// rows at one instant the later in the batch is the state.
	for i, staged := range []bool{false, true} {
		at := t0.Add(time.Duration(2+2*i) * time.Hour)
		own, tie := trafficRow("seg-x", at, 41), trafficRow("seg-x", at, 42)
		tie.EventID += "#tie"
		foreign := trafficRow("seg-x", at.Add(time.Hour), 5)
		foreign.SourceID, foreign.Province, foreign.UnitCode, foreign.EventID = "src-u", "79", "79", fmt.Sprintf("src-u/%s#%d", foreign.EventID, i)
		b := postgis.Batch{Traffic: []postgis.TrafficRow{own, tie, foreign}}
		if staged {
			b.Generic = []postgis.GenericRow{stagedRow(i, at)}
		}
		res, err := s.WriteBatch(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if got := changedIndexes(res.Traffic.Changed); !slices.Equal(got, []int{1}) {
			t.Errorf("staged %v: changed %v; want the owner's later row 1", staged, got)
		}
		var observed time.Time
		var event string
		if err := pool.QueryRow(ctx, `SELECT last_observed_at, last_event_id FROM road_segment WHERE id = 'seg-x'`).Scan(&observed, &event); err != nil ||
			!observed.Equal(at) || event != tie.EventID {
			t.Errorf("staged %v: seg-x's state %s observed at %v (%v); want the owner's %s at %v", staged, event, observed, err, tie.EventID, at)
		}
	}
}
