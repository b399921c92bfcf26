package postgis_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twpayne/go-geom"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit/rollupcheck"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// rollupTree is the unit tree of the roll-up tests: VN above the old
// province OLD (until 2025-07-01) and the new province 01 (from then); the
// ward W1 belongs to OLD before and to 01 after; the ward W2 to 01 only; the
// custom group G1 holds OLD, then W2.
func rollupTree(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	insertUnits(t, pool, []treeUnit{
		{"VN", "national", "", "2020-01-01", nil},
		{"OLD", "province", "VN", "2020-01-01", "2025-07-01"},
		{"01", "province", "VN", "2025-07-01", nil},
		{"W1", "commune", "OLD", "2020-01-01", "2025-07-01"},
		{"W1", "commune", "01", "2025-07-01", nil},
		{"W2", "commune", "01", "2025-07-01", nil},
		{"G1", "custom", "VN", "2020-01-01", nil},
	})
	// The custom group G1 holds the old province until 2025-07-01, then W2.
	_, err := pool.Exec(context.Background(), `INSERT INTO unit_group_member (group_code, member_code, valid_from, valid_to)
		VALUES ('G1', 'OLD', '2020-01-01', '2025-07-01'), ('G1', 'W2', '2025-07-01', NULL)`)
	if err != nil {
		t.Fatalf("inserting group members: %v", err)
	}
}

// treeUnit is a version of a unit of a test's tree: valid from from until
// to (nil: still valid), under parent ("" for none).
type treeUnit struct {
	code, level, parent, from string
	to                        any
}

// insertUnits stores the versions us in admin_unit, each with the same
// square boundary.
func insertUnits(t *testing.T, pool *pgxpool.Pool, us []treeUnit) {
	t.Helper()
	ring := []float64{105, 20, 105, 21, 106, 21, 106, 20, 105, 20}
	mp := geom.NewMultiPolygonFlat(geom.XY, ring, [][]int{{len(ring)}}).SetSRID(postgis.SRID)
	for _, u := range us {
		if _, err := pool.Exec(context.Background(), `INSERT INTO admin_unit (code, level, parent_code, name_vi, boundary, valid_from, valid_to)
			VALUES ($1, $2, NULLIF($3, ''), $1, $4, $5, $6)`, u.code, u.level, u.parent, mp, u.from, u.to); err != nil {
			t.Fatalf("inserting unit %s: %v", u.code, err)
		}
	}
}

// randomRollupRows are n air and n traffic rows in W1 and W2 on 2025-06-01
// and 2025-08-01, some received late.
func randomRollupRows(rng *rand.Rand, n int) ([]postgis.AirRow, []postgis.TrafficRow, []postgis.WaterRow, []postgis.WeatherRow) {
	days := []time.Time{time.Date(2025, 6, 1, 16, 50, 0, 0, time.UTC), time.Date(2025, 8, 1, 16, 50, 0, 0, time.UTC)}
	pick := func() (unit, province string, at, received time.Time) {
		day := days[rng.IntN(2)]
		at = day.Add(time.Duration(rng.IntN(40*60)) * time.Second) // across a day boundary in Asia/Ho_Chi_Minh (17:00Z)
		received = at.Add(time.Duration(rng.IntN(60)) * time.Second)
		if rng.IntN(10) == 0 {
			received = at.Add(3 * time.Hour) // late for every window but the day
		}
		unit, province = "W1", "01"
		if day.Month() == time.June {
			province = "OLD"
		} else if rng.IntN(2) == 0 {
			unit = "W2"
		}
		return unit, province, at, received
	}
	var air []postgis.AirRow
	var traffic []postgis.TrafficRow
	var water []postgis.WaterRow
	var weather []postgis.WeatherRow
	for i := range n {
		unit, prov, at, rec := pick()
		r := airRow(fmt.Sprintf("st%d", rng.IntN(5)), at, float64(rng.IntN(200)))
		r.EventID = fmt.Sprintf("a%d", i)
		r.UnitCode, r.Province, r.ReceivedAt = unit, prov, rec
		if rng.IntN(5) > 0 {
			v := int32(rng.IntN(300))
			r.AQI = postgis.AQI{Value: &v, Band: int16(1 + rng.IntN(6)), Dominant: []string{"pm25", "pm10", "o3"}[rng.IntN(3)]}
		}
		air = append(air, r)

		unit, prov, at, rec = pick()
		tr := trafficRow(fmt.Sprintf("seg%d", rng.IntN(5)), at, float64(rng.IntN(60)))
		tr.EventID = fmt.Sprintf("t%d", i)
		tr.UnitCode, tr.Province, tr.ReceivedAt = unit, prov, rec
		tr.Intensity = f64(float64(rng.IntN(100)))
		if rng.IntN(5) == 0 {
			tr.AverageVehicleSpeed, tr.Congested = nil, nil
		}
		traffic = append(traffic, tr)

		unit, prov, at, rec = pick()
		wa := waterRow(fmt.Sprintf("w%d", rng.IntN(3)), at, float64(rng.IntN(1200))/100, int16(rng.IntN(4)))
		wa.EventID = fmt.Sprintf("w%d", i)
		wa.UnitCode, wa.Province, wa.ReceivedAt = unit, prov, rec
		if rng.IntN(5) == 0 {
			wa.WaterLevel = nil
		}
		water = append(water, wa)

		unit, prov, at, rec = pick()
		we := weatherRow(fmt.Sprintf("m%d", rng.IntN(3)), at, float64(rng.IntN(400))/10)
		we.EventID = fmt.Sprintf("m%d", i)
		we.UnitCode, we.Province, we.ReceivedAt = unit, prov, rec
		we.Precipitation, we.WindSpeed = f64(float64(rng.IntN(50))/2), f64(float64(rng.IntN(30)))
		if rng.IntN(5) == 0 {
			we.Temperature, we.WindSpeed = nil, nil
		}
		weather = append(weather, we)
	}
	return air, traffic, water, weather
}

// TestRollupInvariant writes random batches with duplicates inside a batch,
// redeliveries of whole batches, late rows and batches that fail mid-way
// (their transaction cancelled, then redelivered), in a random order, and
// checks after each step that every stored roll-up equals plain SQL over
// the raw rows.
func TestRollupInvariant(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	rollupTree(t, pool)
	s := postgis.NewStore(pool)
	ctx := context.Background()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))

	air, traffic, water, weather := randomRollupRows(rng, 300)
	reports := randomRollupReports(rng, 300)
	var written []postgis.Batch
	for step := 0; len(air)+len(traffic)+len(water)+len(weather)+len(reports) > 0; step++ {
		var b postgis.Batch
		switch {
		case len(written) > 0 && rng.IntN(4) == 0: // a redelivery of an earlier batch
			b = written[rng.IntN(len(written))]
		default:
			na, nt := min(len(air), 1+rng.IntN(40)), min(len(traffic), 1+rng.IntN(40))
			b.Air, air = append([]postgis.AirRow(nil), air[:na]...), air[na:]
			b.Traffic, traffic = append([]postgis.TrafficRow(nil), traffic[:nt]...), traffic[nt:]
			nw, nm := min(len(water), rng.IntN(40)), min(len(weather), rng.IntN(40))
			b.Water, water = append([]postgis.WaterRow(nil), water[:nw]...), water[nw:]
			b.Weather, weather = append([]postgis.WeatherRow(nil), weather[:nm]...), weather[nm:]
			b.Reports, reports = takeReports(rng, reports)
			if len(b.Air) > 1 { // a duplicate inside the batch
				b.Air = append(b.Air, b.Air[rng.IntN(len(b.Air))])
			}
			rng.Shuffle(len(b.Air), func(i, j int) { b.Air[i], b.Air[j] = b.Air[j], b.Air[i] })
			rng.Shuffle(len(b.Traffic), func(i, j int) { b.Traffic[i], b.Traffic[j] = b.Traffic[j], b.Traffic[i] })
		}
		if b.Len() > 0 && rng.IntN(6) == 0 { // the aggregator dies before the commit: nothing counts (an empty batch writes nothing at all)
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := s.WriteBatch(cctx, b); err == nil || !errors.Is(err, context.Canceled) {
				t.Fatalf("step %d: WriteBatch with a cancelled context: %v; want context.Canceled", step, err)
			}
		}
		res, err := s.WriteBatch(ctx, b)
		if err != nil {
			t.Fatalf("step %d: WriteBatch: %v", step, err)
		}
		if n := res.Air.New + res.Traffic.New + res.Water.New + res.Weather.New + res.Reports.New; n > 0 && len(res.Rollups) == 0 {
			t.Fatalf("step %d: %d new rows changed no roll-up", step, n)
		}
		written = append(written, b)
		rollupcheck.Check(t, pool)
	}
	if n := count(t, pool, `SELECT count(*) FROM rollup WHERE late > 0`); n == 0 {
		t.Fatal("no roll-up counted a late row; the test lost its late rows")
	}
	if n := count(t, pool, `SELECT count(DISTINCT layer) FROM rollup`); n != 5 {
		t.Fatalf("roll-ups of %d layers; want air, traffic, water, weather and report", n)
	}
	if n := count(t, pool, `SELECT count(DISTINCT layer) FROM rollup WHERE members > 1`); n != 3 {
		t.Fatalf("roll-ups of %d layers count several members; want air, traffic and water", n)
	}
}

// TestRollupAttribution: an observation of 2025-06-01 rolls up into the old
// province (and the group G1 holding it then), one of 2025-08-01 into the new
// one (G1 holds W2, not W1, then); both into VN. A row of a unit with no
// version at its time rolls up as the unit stood nearest to it.
func TestRollupAttribution(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	rollupTree(t, pool)
	s := postgis.NewStore(pool)
	june, aug := time.Date(2025, 6, 1, 3, 0, 0, 0, time.UTC), time.Date(2025, 8, 1, 3, 0, 0, 0, time.UTC)
	a1, a2 := airRow("st1", june, 10), airRow("st1", aug, 10)
	a1.UnitCode, a1.Province, a2.UnitCode, a2.Province = "W1", "OLD", "W1", "01"
	// A ward source's backlog from before its ward existed (W2 from
	// 2025-07-01), placed by the ingest on the current map: it counts up to
	// VN as W2 stood at its start (under 01, in G1). And a row of OLD after
	// it was gone: as OLD stood at its end.
	a3, a4 := airRow("st2", june, 10), airRow("st3", aug, 10)
	a3.UnitCode, a3.Province, a4.UnitCode, a4.Province = "W2", "01", "OLD", "OLD"
	res, err := s.WriteBatch(context.Background(), postgis.Batch{Air: []postgis.AirRow{a1, a2, a3, a4}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, r := range res.Rollups {
		if r.Window == "1h" {
			got[r.UnitCode+"@"+r.WindowStart.UTC().Format("01-02")+"/"+r.Province] = r.N
		}
	}
	want := map[string]int64{"W1@06-01/OLD": 1, "OLD@06-01/OLD": 1, "VN@06-01/VN": 2, "G1@06-01/G1": 2, "W1@08-01/01": 1, "01@08-01/01": 1, "VN@08-01/VN": 2,
		"W2@06-01/01": 1, "01@06-01/01": 1, "OLD@08-01/OLD": 1, "G1@08-01/G1": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("hourly roll-ups %v; want %v", got, want)
	}
	rollupcheck.Check(t, pool)
}

// TestRollupDeepTree: before 1 July 2025 a commune sat under a district
// under its province; an observation then counts in all four levels up to
// VN, one after the reform (the commune under the province directly) in
// three, as plain SQL over the same tree gives.
func TestRollupDeepTree(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	insertUnits(t, pool, []treeUnit{
		{"VN", "national", "", "2020-01-01", nil},
		{"P1", "province", "VN", "2020-01-01", nil},
		{"D1", "district", "P1", "2020-01-01", "2025-07-01"},
		{"C1", "commune", "D1", "2020-01-01", "2025-07-01"},
		{"C1", "commune", "P1", "2025-07-01", nil},
	})
	june, aug := time.Date(2025, 6, 1, 3, 0, 0, 0, time.UTC), time.Date(2025, 8, 1, 3, 0, 0, 0, time.UTC)
	a1, a2 := airRow("st1", june, 10), airRow("st1", aug, 10)
	a1.UnitCode, a1.Province, a2.UnitCode, a2.Province = "C1", "P1", "C1", "P1"
	res, err := postgis.NewStore(pool).WriteBatch(context.Background(), postgis.Batch{Air: []postgis.AirRow{a1, a2}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range res.Rollups {
		if r.Window == "1h" {
			got = append(got, r.UnitCode+"@"+r.WindowStart.UTC().Format("01-02")+"/"+r.Province)
		}
	}
	slices.Sort(got)
	want := []string{"C1@06-01/P1", "C1@08-01/P1", "D1@06-01/P1", "P1@06-01/P1", "P1@08-01/P1", "VN@06-01/VN", "VN@08-01/VN"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("hourly roll-ups %v; want %v", got, want)
	}
	rollupcheck.Check(t, pool)
}

// TestRollupsOff: with NoRollups the batches write no roll-up.
func TestRollupsOff(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	rollupTree(t, pool)
	s, err := postgis.NewStoreWith(pool, postgis.StoreConfig{NoRollups: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.WriteBatch(context.Background(), postgis.Batch{Air: []postgis.AirRow{airRow("st1", t0, 10)}, Traffic: []postgis.TrafficRow{trafficRow("s", t0, 5)}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Air.New != 1 || res.Traffic.New != 1 || len(res.Air.Inserted) != 1 || len(res.Rollups) != 0 {
		t.Fatalf("result %+v; want one new row of each kind and no roll-up", res)
	}
	if n := count(t, pool, `SELECT count(*) FROM rollup`); n != 0 {
		t.Fatalf("%d roll-ups stored with roll-ups off", n)
	}
}

// TestRollupKnownAndStale: the roll-ups a batch writes carry the stations
// known in the unit's current subtree and the stale sources there.
func TestRollupKnownAndStale(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	rollupTree(t, pool)
	s := postgis.NewStore(pool)
	at := time.Date(2025, 8, 1, 3, 0, 0, 0, time.UTC)
	row := func(station, unit string, at time.Time) postgis.AirRow {
		r := airRow(station, at, 10)
		r.EventID, r.UnitCode, r.Province, r.ReceivedAt = station+at.Format(time.RFC3339), unit, "01", at
		return r
	}
	if _, err := s.WriteBatch(context.Background(), postgis.Batch{Air: []postgis.AirRow{row("st1", "W1", at), row("st2", "W2", at)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(context.Background(), `INSERT INTO source_stats (source_id, unit_code, province, last_event_at, last_seen_at, first_seen_at, stale_since)
		VALUES ('x', 'W2', '01', $1, $1, $1, $1), ('y', 'W2', '01', $1, $1, $1, NULL)`, at); err != nil {
		t.Fatal(err)
	}
	res, err := s.WriteBatch(context.Background(), postgis.Batch{Air: []postgis.AirRow{row("st1", "W1", at.Add(time.Minute))}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range res.Rollups {
		if r.Window == "1h" {
			got[r.UnitCode] = fmt.Sprintf("known %d stale %d members %d", r.Known, r.Stale, r.Members)
		}
	}
	want := map[string]string{
		"W1": "known 1 stale 0 members 1",
		"01": "known 2 stale 1 members 2",
		"VN": "known 2 stale 1 members 2",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("hourly roll-ups %v; want %v", got, want)
	}
}

// TestRollupStaleSourceReturns: a batch from a stale source counts it fresh
// in its own roll-ups (its transaction makes the pair fresh, its alert to be
// cancelled, its deadline past now); another stale pair of the unit stays
// counted, a pair not in the batch is not touched; the direct and the exact
// way alike (the second batch holds a row stored before).
func TestRollupStaleSourceReturns(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	rollupTree(t, pool)
	s := postgis.NewStore(pool)
	at := time.Date(2025, 8, 1, 3, 0, 0, 0, time.UTC)
	row := func(source, station string, at time.Time) postgis.AirRow {
		r := airRow(station, at, 10)
		r.SourceID, r.EventID, r.UnitCode, r.Province, r.ReceivedAt = source, station+at.Format(time.RFC3339), "W2", "01", at
		return r
	}
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO source_stats (source_id, unit_code, province, last_event_at, last_seen_at, first_seen_at, stale_since, interval_s, stale_at)
		VALUES ('x', 'W2', '01', $1, $1, $1, $1, 60, $1), ('y', 'W2', '01', $1, $1, $1, $1, 60, $1), ('z', 'W2', '01', $1, $1, $1, $1, NULL, NULL)`, at); err != nil {
		t.Fatal(err)
	}
	stale := func(res postgis.Result) string {
		got := map[string]int64{}
		for _, r := range res.Rollups {
			if r.Window == "1h" {
				got[r.UnitCode] = r.Stale
			}
		}
		return fmt.Sprint(got)
	}
	// x returns: y and z stay stale.
	res, err := s.WriteBatch(ctx, postgis.Batch{Air: []postgis.AirRow{row("x", "st1", at.Add(time.Minute))},
		Sources: []postgis.SourceUnit{{SourceID: "x", UnitCode: "W2"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := stale(res), "map[01:2 G1:2 VN:2 W2:2]"; got != want {
		t.Fatalf("stale figures %s; want %s", got, want)
	}
	var pending bool
	var staleAt time.Time
	if err := pool.QueryRow(ctx, `SELECT clear_pending, stale_at FROM source_stats WHERE source_id = 'x' AND stale_since IS NULL`).Scan(&pending, &staleAt); err != nil {
		t.Fatalf("x not fresh: %v", err)
	}
	if !pending || !staleAt.After(time.Now()) {
		t.Fatalf("x: clear_pending %v, stale_at %v; want its alert to cancel and a deadline after now", pending, staleAt)
	}
	// z returns beside x's row stored before (the exact way): only y is left.
	res, err = s.WriteBatch(ctx, postgis.Batch{Air: []postgis.AirRow{row("x", "st1", at.Add(time.Minute)), row("z", "st2", at.Add(2*time.Minute))},
		Sources: []postgis.SourceUnit{{SourceID: "x", UnitCode: "W2"}, {SourceID: "z", UnitCode: "W2"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := stale(res), "map[01:1 G1:1 VN:1 W2:1]"; got != want {
		t.Fatalf("stale figures %s; want %s", got, want)
	}
	if n := count(t, pool, `SELECT count(*) FROM source_stats WHERE stale_since IS NOT NULL`); n != 1 {
		t.Fatalf("%d stale pairs; want y alone", n)
	}
	rollupcheck.Check(t, pool)
}

// TestLatestRollupsOf: the latest roll-up of each layer and window length of
// a unit and of the units above it now (its province, VN, the group holding
// it), as plain SQL finds them, with the stale figure of their subtrees.
func TestLatestRollupsOf(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	rollupTree(t, pool)
	s := postgis.NewStore(pool)
	ctx := context.Background()
	at := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour)
	w1, w2 := airRow("st1", at, 10), airRow("st2", at.Add(70*time.Minute), 10)
	w1.UnitCode, w2.UnitCode = "W1", "W2"
	tr := trafficRow("seg1", at.Add(20*time.Minute), 30)
	tr.UnitCode = "W1"
	if _, err := s.WriteBatch(ctx, postgis.Batch{Air: []postgis.AirRow{w1, w2}, Traffic: []postgis.TrafficRow{tr}}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO source_stats (source_id, unit_code, province, last_event_at, last_seen_at, first_seen_at, stale_since)
		VALUES ('x', 'W2', '01', $1, $1, $1, $1)`, at); err != nil {
		t.Fatal(err)
	}
	rs, err := s.LatestRollupsOf(ctx, []string{"W2"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rs {
		got = append(got, fmt.Sprintf("%s/%s/%s@%s stale %d", r.UnitCode, r.Layer, r.Window, r.WindowStart.UTC().Format("15:04"), r.Stale))
	}
	var want []string
	rows, err := pool.Query(ctx, `SELECT unit_code || '/' || layer || '/' || win || '@' || to_char(max(window_start) AT TIME ZONE 'UTC', 'HH24:MI') || ' stale 1'
		FROM rollup WHERE unit_code IN ('W2', '01', 'VN', 'G1') GROUP BY unit_code, layer, win ORDER BY unit_code, layer, win`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var x string
		if err := rows.Scan(&x); err != nil {
			t.Fatal(err)
		}
		want = append(want, x)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(want) != 24 { // air in 4 units, traffic in 01 and VN (W1's), 4 windows each
		t.Fatalf("plain SQL found %d latest roll-ups: %v", len(want), want)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("latest roll-ups\n%v\nwant\n%v", got, want)
	}
	off, err := postgis.NewStoreWith(pool, postgis.StoreConfig{NoRollups: true})
	if err != nil {
		t.Fatal(err)
	}
	if rs, err := off.LatestRollupsOf(ctx, []string{"W2"}); err != nil || rs != nil {
		t.Fatalf("roll-ups off: %v, %v; want none", rs, err)
	}
}

// TestRollupMembersConcurrent: four writers (as province partitions
// meeting in VN, or an aggregator and its successor) add the same stations
// in random bands and random wards (W1 or W2: shared member rows split under
// them) to the same windows of two days at once, two of them with a memory
// of member rows too small for a day (rows read in part), a third of the
// batches the exact way (each holding a row stored before); the distinct
// counts still equal plain SQL over the raw rows, and no batch fails but
// for a deadlock the server broke (which the aggregator retries too).
func TestRollupMembersConcurrent(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	rollupTree(t, pool)
	at := time.Date(2025, 8, 1, 3, 0, 0, 0, time.UTC)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := postgis.NewStore(pool)
			if w%2 == 1 {
				s.SetMemberCacheBound(3)
			}
			rng := rand.New(rand.NewPCG(uint64(w), seed))
			var stored postgis.AirRow
			for i := range 40 {
				var b postgis.Batch
				for j := range 1 + rng.IntN(4) {
					day := time.Duration(rng.IntN(2)) * 24 * time.Hour
					r := airRow(fmt.Sprintf("st%d", rng.IntN(4)), at.Add(day+time.Duration(rng.IntN(7200))*time.Second), 10)
					v := int32(rng.IntN(300))
					r.AQI = postgis.AQI{Value: &v, Band: int16(1 + rng.IntN(6))}
					r.EventID = fmt.Sprintf("c%d-%d-%d", w, i, j)
					r.UnitCode, r.Province, r.ReceivedAt = []string{"W1", "W2"}[rng.IntN(2)], "01", r.ObservedAt
					b.Air = append(b.Air, r)
				}
				if i > 0 && rng.IntN(3) == 0 {
					b.Air = append(b.Air, stored) // stored before: the exact way
				}
				for try := 0; ; try++ {
					_, err := s.WriteBatch(context.Background(), b)
					var pg *pgconn.PgError
					if err != nil && errors.As(err, &pg) && strings.HasPrefix(pg.Code, "40") && try < 10 {
						continue // deadlock or serialization failure: the aggregator retries too
					}
					if err != nil {
						t.Errorf("writer %d batch %d: %v", w, i, err)
						return
					}
					break
				}
				stored = b.Air[0]
			}
		}()
	}
	wg.Wait()
	rollupcheck.Check(t, pool)
	if n := count(t, pool, `SELECT coalesce(sum(upgrades), 0) FROM rollup_member_day WHERE unit_code = 'VN' OR 'VN' = ANY(units)`); n == 0 {
		t.Fatal("no member of VN was upgraded; the test lost its upgrades")
	}
	// Every row version is stored compressed (migration 00027): its grades
	// take a few dozen bytes, not 2,048.
	if n := count(t, pool, `SELECT max(pg_column_size(grades)) FROM rollup_member_day`); n == 0 || n > 256 {
		t.Errorf("largest stored grades of rollup_member_day = %d bytes; want compressed, 1…256", n)
	}
}

// TestRollupSomeRowsNotNew: a batch of observations only is written with its
// roll-ups in the round trip of its inserts, as if all its rows were new
// (straight into its tables when it holds air and traffic alone, else
// through staging tables: a registered kind's row sends it that way); when some are not
// (stored by an earlier batch, or twice in the batch), it is written again
// the exact way: only the rows new to the database count, and a redelivery
// counts nothing.
func TestRollupSomeRowsNotNew(t *testing.T) {
	for _, staged := range []bool{false, true} {
		t.Run(fmt.Sprintf("staged=%v", staged), func(t *testing.T) { rollupSomeRowsNotNew(t, staged) })
	}
}

func rollupSomeRowsNotNew(t *testing.T, staged bool) {
	pool := testenv.PostGIS(t).Pool
	rollupTree(t, pool)
	s := postgis.NewStore(pool)
	ctx := context.Background()
	at := time.Date(2025, 8, 1, 3, 0, 0, 0, time.UTC)
	// staging adds, when staged, a registered kind's row i to b (it has no
	// roll-ups).
	staging := func(b postgis.Batch, i int) postgis.Batch {
		if staged {
			b.Generic = []postgis.GenericRow{stagedRow(i, at.Add(time.Duration(i)*time.Second))}
		}
		return b
	}
	// windows is how many roll-ups a batch of air and traffic rows changes:
	// air W1, 01, VN; traffic W2, 01, VN, G1; four windows each.
	windows := (3 + 4) * 4
	air := func(from, to int) []postgis.AirRow {
		var out []postgis.AirRow
		for i := from; i < to; i++ {
			r := airRow(fmt.Sprintf("st%d", i%3), at.Add(time.Duration(i)*time.Second), 10)
			v := int32(10 * i)
			r.AQI = postgis.AQI{Value: &v, Band: int16(1 + i%6), Dominant: "pm25"}
			r.UnitCode, r.Province, r.ReceivedAt = "W1", "01", r.ObservedAt
			out = append(out, r)
		}
		return out
	}
	traffic := func(from, to int) []postgis.TrafficRow {
		var out []postgis.TrafficRow
		for i := from; i < to; i++ {
			r := trafficRow(fmt.Sprintf("seg%d", i%2), at.Add(time.Duration(i)*time.Second), float64(i))
			r.Intensity, r.Congested = f64(float64(i)), new(i%2 == 0)
			r.UnitCode, r.Province, r.ReceivedAt = "W2", "01", r.ObservedAt
			out = append(out, r)
		}
		return out
	}
	// sums is what the rollup table holds, summed over every row.
	sums := func() string {
		var n, members int64
		var aqi float64
		if err := pool.QueryRow(ctx, `SELECT coalesce(sum(n), 0), coalesce(sum(members), 0), coalesce(sum(aqi_sum), 0) FROM rollup`).Scan(&n, &members, &aqi); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("n %d members %d aqi %v", n, members, aqi)
	}
	step := func(name string, b postgis.Batch, wantNew, wantAllNew, wantRewritten int) postgis.Result {
		t.Helper()
		res, err := s.WriteBatch(ctx, b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n, d := res.Air.New+res.Traffic.New, res.Air.Duplicates+res.Traffic.Duplicates; n != wantNew || n+d != len(b.Air)+len(b.Traffic) {
			t.Fatalf("%s: %d new and %d duplicate rows of %d; want %d new", name, n, d, len(b.Air)+len(b.Traffic), wantNew)
		}
		if len(res.Air.Inserted) != res.Air.New || len(res.Traffic.Inserted) != res.Traffic.New {
			t.Fatalf("%s: inserted %v and %v for %d and %d new rows", name, res.Air.Inserted, res.Traffic.Inserted, res.Air.New, res.Traffic.New)
		}
		if allNew, rewritten := s.WrittenAllNew(); allNew != int64(wantAllNew) || rewritten != int64(wantRewritten) {
			t.Fatalf("%s: %d batches written as all new, %d again the exact way; want %d and %d", name, allNew, rewritten, wantAllNew, wantRewritten)
		}
		// Every roll-up the batch returns is as stored, with its known figure.
		for _, r := range res.Rollups {
			var n, members int64
			if err := pool.QueryRow(ctx, `SELECT n, members FROM rollup WHERE unit_code = $1 AND layer = $2 AND win = $3 AND window_start = $4`,
				r.UnitCode, r.Layer, r.Window, r.WindowStart).Scan(&n, &members); err != nil {
				t.Fatalf("%s: roll-up %s: %v", name, r.Key(), err)
			}
			if r.N != n || r.Members != members {
				t.Fatalf("%s: roll-up %s returned n %d members %d; stored %d and %d", name, r.Key(), r.N, r.Members, n, members)
			}
			if r.UnitCode == "VN" && r.Known != map[string]int64{"air": 3, "traffic": 2}[r.Layer] {
				t.Fatalf("%s: roll-up %s knows %d sensors", name, r.Key(), r.Known)
			}
		}
		rollupcheck.Check(t, pool)
		return res
	}

	res := step("all new", staging(postgis.Batch{Air: air(0, 10), Traffic: traffic(0, 4)}, 0), 14, 1, 0)
	if len(res.Rollups) != windows {
		t.Fatalf("all new: %d roll-ups; want %d", len(res.Rollups), windows)
	}
	half := staging(postgis.Batch{Air: air(5, 15), Traffic: traffic(0, 8)}, 1)
	step("half new", half, 9, 1, 1)
	before := sums()
	// A resend changes nothing and returns nothing; a redelivery changes
	// nothing and returns its windows' roll-ups as stored (step checks
	// them), to publish again: the first delivery may have committed
	// without publishing.
	if res := step("resent", half, 0, 1, 2); len(res.Rollups) != 0 {
		t.Fatalf("resent: %d roll-ups returned; want none (published when first stored)", len(res.Rollups))
	}
	half.Redelivered = true
	if res := step("redelivered", half, 0, 1, 3); len(res.Rollups) != windows {
		t.Fatalf("redelivered: %d roll-ups returned; want its %d windows as stored", len(res.Rollups), windows)
	}
	if after := sums(); after != before {
		t.Fatalf("redelivered: roll-ups %s; were %s", after, before)
	}
	twice := staging(postgis.Batch{Air: append(air(15, 20), air(17, 18)...)}, 2)
	step("a row twice in the batch", twice, 5, 1, 4)
	step("all new again", staging(postgis.Batch{Air: air(20, 30)}, 3), 10, 2, 4)
	var n int64
	if err := pool.QueryRow(ctx, `SELECT n FROM rollup WHERE unit_code = 'VN' AND layer = 'air' AND win = '1d'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 30 {
		t.Fatalf("VN's air day counts %d observations; want 30", n)
	}
}

// TestRollupMembersStaleCopy: a store keeps the member rows its batches
// wrote and counts the next batch's members from its copies; when another
// writer changed a row since, the batch's write of it fails its version
// check, and the batch is written again the exact way: the distinct counts
// still equal plain SQL over the raw rows.
func TestRollupMembersStaleCopy(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	rollupTree(t, pool)
	ctx := context.Background()
	s1, s2 := postgis.NewStore(pool), postgis.NewStore(pool)
	at := time.Date(2025, 8, 1, 3, 0, 0, 0, time.UTC)
	i := 0
	row := func(station string, band int16) postgis.AirRow {
		i++
		r := airRow(station, at.Add(time.Duration(i)*time.Second), 10)
		v := int32(50 * band)
		r.AQI = postgis.AQI{Value: &v, Band: band}
		r.UnitCode, r.Province, r.ReceivedAt = "W1", "01", r.ObservedAt
		return r
	}
	step := func(name string, s *postgis.Store, b postgis.Batch, wantAllNew, wantRewritten int64) {
		t.Helper()
		if _, err := s.WriteBatch(ctx, b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if allNew, rewritten := s.WrittenAllNew(); allNew != wantAllNew || rewritten != wantRewritten {
			t.Fatalf("%s: %d batches written as all new, %d again the exact way; want %d and %d", name, allNew, rewritten, wantAllNew, wantRewritten)
		}
		rollupcheck.Check(t, pool)
	}
	step("s1 creates the rows", s1, postgis.Batch{Air: []postgis.AirRow{row("st1", 1), row("st2", 2)}}, 1, 0)
	step("s2 reads and upgrades them", s2, postgis.Batch{Air: []postgis.AirRow{row("st1", 3)}}, 1, 0)
	step("s1's copy of st1 is stale", s1, postgis.Batch{Air: []postgis.AirRow{row("st1", 2), row("st2", 3)}}, 1, 1)
	step("s1 read them again", s1, postgis.Batch{Air: []postgis.AirRow{row("st1", 5), row("st2", 4)}}, 2, 1)
	step("s2's copy is stale", s2, postgis.Batch{Air: []postgis.AirRow{row("st1", 6)}}, 1, 1)
	// A stale copy that holds a grade as bad as the batch's writes nothing:
	// the stored grade can only be worse still.
	step("s1's stale copy, nothing to write", s1, postgis.Batch{Air: []postgis.AirRow{row("st1", 5), row("st3", 1)}}, 3, 1)
	if n := count(t, pool, `SELECT members FROM rollup WHERE unit_code = 'VN' AND layer = 'air' AND win = '1h'`); n != 3 {
		t.Fatalf("VN's hour counts %d stations; want 3", n)
	}
	if n := count(t, pool, `SELECT grade_n[7] FROM rollup WHERE unit_code = 'VN' AND layer = 'air' AND win = '1h'`); n != 1 {
		t.Fatalf("VN's hour counts %d stations at band 6; want 1", n)
	}
}

// TestRollupMembersCacheFull: a store whose memory of member rows is full
// reads the rows it lacks in part, keeps an entity day's rows all or none,
// and drops the older days for a new one; the batches still take the all-new
// way and the distinct counts still equal plain SQL.
func TestRollupMembersCacheFull(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	rollupTree(t, pool)
	ctx := context.Background()
	s := postgis.NewStore(pool)
	s.SetMemberCacheBound(2) // two stations' rows (one each, shared by W1, 01 and VN), not three
	day1 := time.Date(2025, 8, 1, 3, 0, 0, 0, time.UTC)
	i := 0
	batch := func(at time.Time, stations ...string) postgis.Batch {
		var b postgis.Batch
		for _, st := range stations {
			i++
			r := airRow(st, at.Add(time.Duration(i)*time.Second), 10)
			v := int32(40 * (i%6 + 1))
			r.AQI = postgis.AQI{Value: &v, Band: int16(i%6 + 1)}
			r.UnitCode, r.Province, r.ReceivedAt = "W1", "01", r.ObservedAt
			b.Air = append(b.Air, r)
		}
		return b
	}
	for n, step := range []struct {
		b    postgis.Batch
		rows int // kept in memory after
	}{
		{batch(day1, "st1", "st2", "st3"), 2},
		{batch(day1.Add(time.Minute), "st1", "st2", "st3"), 2}, // full: the third station's rows read in part
		{batch(day1.Add(time.Hour), "st3", "st1"), 2},
		{batch(day1.Add(24*time.Hour), "st1"), 1}, // a new day: day 1's rows go for its new rows
		{batch(day1.Add(24*time.Hour+time.Minute), "st2", "st1"), 2},
		{batch(day1.Add(24*time.Hour+2*time.Minute), "st2", "st1", "st3"), 2},
	} {
		if _, err := s.WriteBatch(ctx, step.b); err != nil {
			t.Fatalf("batch %d: %v", n, err)
		}
		if got := s.MemberCacheRows(); got != step.rows {
			t.Fatalf("batch %d: %d member rows kept; want %d", n, got, step.rows)
		}
		if allNew, rewritten := s.WrittenAllNew(); allNew != int64(n+1) || rewritten != 0 {
			t.Fatalf("batch %d: %d batches written as all new, %d again; want %d and 0", n, allNew, rewritten, n+1)
		}
		rollupcheck.Check(t, pool)
	}
}

// TestRollupMembersShared: an entity day's members are kept in one row for
// all the units of its path (unit_code empty, its units listed) while every
// batch walks that path; the first batch that walks another (the station
// reported from W2 after W1 the same day) splits it into a row per unit,
// which count alone from then on; an entity day whose first batch walks two
// paths starts split. Written all new and the exact way (each batch then
// holds a row stored before), the distinct counts equal plain SQL after
// every batch.
func TestRollupMembersShared(t *testing.T) {
	for _, exact := range []bool{false, true} {
		t.Run(map[bool]string{false: "all new", true: "exact"}[exact], func(t *testing.T) {
			pool := testenv.PostGIS(t).Pool
			rollupTree(t, pool)
			ctx := context.Background()
			s := postgis.NewStore(pool)
			at := time.Date(2025, 8, 1, 3, 0, 0, 0, time.UTC)
			i := 0
			row := func(station, unit string, band int16) postgis.AirRow {
				i++
				return bandRow(station, unit, at.Add(time.Duration(i)*time.Minute), band)
			}
			seed := row("st9", "W1", 1)
			if _, err := s.WriteBatch(ctx, postgis.Batch{Air: []postgis.AirRow{seed}}); err != nil {
				t.Fatal(err)
			}
			// layout is the member rows of a station: unit (- for the
			// shared row) and the units a shared row stands for.
			layout := func(station string) string {
				rows, err := pool.Query(ctx, `SELECT CASE WHEN unit_code = '' THEN '-' ELSE unit_code END, units
					FROM rollup_member_day WHERE entity = $1 ORDER BY unit_code`, station)
				if err != nil {
					t.Fatal(err)
				}
				defer rows.Close()
				var out []string
				for rows.Next() {
					var unit string
					var units []string
					if err := rows.Scan(&unit, &units); err != nil {
						t.Fatal(err)
					}
					if units != nil {
						unit += "[" + strings.Join(units, " ") + "]"
					}
					out = append(out, unit)
				}
				if err := rows.Err(); err != nil {
					t.Fatal(err)
				}
				return strings.Join(out, " ")
			}
			for n, step := range []struct {
				name    string
				rows    []postgis.AirRow
				station string
				want    string
			}{
				{"first report", []postgis.AirRow{row("st1", "W1", 2)}, "st1", "-[01 VN W1]"},
				{"worse band, same path", []postgis.AirRow{row("st1", "W1", 4), row("st1", "W1", 3)}, "st1", "-[01 VN W1]"},
				{"another ward", []postgis.AirRow{row("st1", "W2", 1)}, "st1", "-[] 01 G1 VN W1 W2"},
				{"back in W1", []postgis.AirRow{row("st1", "W1", 6), row("st1", "W2", 5)}, "st1", "-[] 01 G1 VN W1 W2"},
				{"two wards in its first batch", []postgis.AirRow{row("st2", "W1", 3), row("st2", "W2", 2)}, "st2", "-[] 01 G1 VN W1 W2"},
				{"a third station", []postgis.AirRow{row("st3", "W2", 3), row("st3", "W2", 5)}, "st3", "-[01 G1 VN W2]"},
			} {
				b := postgis.Batch{Air: step.rows}
				if exact {
					b.Air = append(b.Air, seed) // stored before: the batch is written again the exact way
				}
				if _, err := s.WriteBatch(ctx, b); err != nil {
					t.Fatalf("%s: %v", step.name, err)
				}
				if got := layout(step.station); got != step.want {
					t.Fatalf("%s: member rows of %s: %s; want %s", step.name, step.station, got, step.want)
				}
				if _, rewritten := s.WrittenAllNew(); rewritten != map[bool]int64{false: 0, true: int64(n + 1)}[exact] {
					t.Fatalf("%s: %d batches written again the exact way", step.name, rewritten)
				}
				rollupcheck.Check(t, pool)
			}
			// st1 counts once in 01's and VN's day, whatever its wards.
			if members := count(t, pool, `SELECT members FROM rollup WHERE unit_code = 'VN' AND layer = 'air' AND win = '1d'`); members != 4 {
				t.Fatalf("VN's air day has %d stations; want 4 (st9, st1, st2, st3)", members)
			}
		})
	}
}

// TestRollupMembersSharedRace: an exact batch whose fresh entity day walks
// two paths (W1 and W2) waits on another writer creating the entity day's
// shared row for W1's path; once that commits, the batch splits that row
// (it must not also have made rows of its own units beside it) and is
// written at its first try.
func TestRollupMembersSharedRace(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	rollupTree(t, pool)
	ctx := context.Background()
	s := postgis.NewStore(pool)
	at := time.Date(2025, 8, 1, 3, 0, 0, 0, time.UTC)
	row := func(station, unit string, minute int, band int16) postgis.AirRow {
		return bandRow(station, unit, at.Add(time.Duration(minute)*time.Minute), band)
	}
	seed := row("st9", "W1", 0, 1)
	if _, err := s.WriteBatch(ctx, postgis.Batch{Air: []postgis.AirRow{seed}}); err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `INSERT INTO rollup_member_day (layer, entity, day, unit_code, grades, units)
		VALUES ('air', 'st2', '2025-07-31 17:00+00', '', decode(repeat('00', 2048), 'hex'), '{01,VN,W1}')`); err != nil {
		t.Fatal(err)
	}
	// seed, stored before, sends the batch the exact way.
	b := postgis.Batch{Air: []postgis.AirRow{row("st2", "W1", 1, 3), row("st2", "W2", 2, 2), seed}}
	done := make(chan error, 1)
	go func() { _, err := s.WriteBatch(ctx, b); done <- err }()
	// The batch's insert of the shared row waits for the transaction above.
	deadline := time.Now().Add(time.Minute)
	for count(t, pool, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO rollup_member_day%'`) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the batch never waited on the other writer's shared row")
		}
		select {
		case err := <-done:
			t.Fatalf("the batch ended before the other writer committed: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the batch: %v; want it written at its first try", err)
	}
	rollupcheck.Check(t, pool)
	if n := count(t, pool, `SELECT count(*) FROM rollup_member_day WHERE entity = 'st2' AND unit_code = '' AND units = '{}'`); n != 1 {
		t.Fatalf("%d retired shared rows of st2; want 1", n)
	}
}

// bandRow is an air row of station in unit (province 01) observed and
// received at at, in VN_AQI band band.
func bandRow(station, unit string, at time.Time, band int16) postgis.AirRow {
	r := airRow(station, at, 10)
	v := int32(40 * band)
	r.AQI = postgis.AQI{Value: &v, Band: band}
	r.UnitCode, r.Province, r.ReceivedAt = unit, "01", at
	return r
}
