package postgis_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twpayne/go-geom"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// directRows are air rows meant to exercise the state a batch written
// straight (a COPY into air_observation, states from arrays) leaves: several
// rows per station, two at the same instant (the later in the batch wins),
// an older row after a newer one, a row without name, location, values or
// AQI, one located elsewhere, AQI JSON, extras of several types.
func directRows(base time.Time) []postgis.AirRow {
	var rows []postgis.AirRow
	for i := range 12 {
		st := fmt.Sprintf("d%d", i%4)
		at := base.Add(time.Duration(i/4) * time.Minute)
		r := airRow(st, at, float64(i)+0.1)
		r.EventID = fmt.Sprintf("%s#%d", r.EventID, i)
		switch i % 5 {
		case 1:
			r.Name, r.Location, r.PM25, r.NO2, r.Extra = "", nil, nil, nil, nil
		case 2:
			v := int32(120 + i)
			r.AQI = postgis.AQI{Value: &v, Band: 3, Dominant: "pm25", JSON: []byte(`{"hourly":123,"band":3,"dominant":"pm25"}`)}
			r.Extra = map[string]any{"note": "x\"y", "n": 1e-7, "list": []any{1, "a", nil}}
		case 3:
			r.Location = geom.NewPointFlat(geom.XY, []float64{105.9, 21.1}).SetSRID(postgis.SRID)
		}
		rows = append(rows, r)
	}
	// Two rows of d1 at the same instant: the later in the batch is the state.
	tie := airRow("d1", base.Add(2*time.Minute), 99)
	tie.EventID += "#tie"
	rows = append(rows, tie)
	// An older row of d2 after its newer ones: not the state.
	old := airRow("d2", base.Add(-time.Hour), 7)
	rows = append(rows, old)
	return rows
}

// directTrafficRows are directRows' traffic counterpart: several rows per
// segment, a tie at one instant, an older row after a newer one, a row
// without name, geometry or values, another geometry, a congested flag of
// each value and none, a lane, extras of several types.
func directTrafficRows(base time.Time) []postgis.TrafficRow {
	var rows []postgis.TrafficRow
	for i := range 12 {
		seg := fmt.Sprintf("s%d", i%4)
		at := base.Add(time.Duration(i/4) * time.Minute)
		r := trafficRow(seg, at, float64(i)+0.5)
		r.EventID = fmt.Sprintf("%s#%d", r.EventID, i)
		r.Name = "Đường " + seg
		switch i % 5 {
		case 1:
			r.Name, r.Geom, r.Intensity, r.AverageVehicleSpeed, r.Congested, r.Extra = "", nil, nil, nil, nil, nil
		case 2:
			lane := int32(i)
			r.LaneID, r.Occupancy = &lane, f64(0.25)
			r.Extra = map[string]any{"note": "x\"y", "intensity": "replaced", "list": []any{1, "a", nil}}
		case 3:
			r.Geom = geom.NewLineStringFlat(geom.XY, []float64{105.9, 21.1, 105.91, 21.12, 105.92, 21.1 + 1e-12})
		case 4: // a long line
			flat := make([]float64, 0, 200)
			for p := range 100 {
				flat = append(flat, 105+float64(p)/1000, 21-float64(p*p)/1e6)
			}
			r.Geom = geom.NewLineStringFlat(geom.XY, flat)
		}
		rows = append(rows, r)
	}
	tie := trafficRow("s1", base.Add(2*time.Minute), 99)
	tie.EventID += "#tie"
	old := trafficRow("s2", base.Add(-time.Hour), 7)
	old.Geom = geom.NewLineString(geom.XY) // empty
	return append(rows, tie, old)
}

// bothWays writes b with sd, which must write it straight (its batch
// number step so), and with se through staging tables, where a registered
// kind's row (stagedRow) sends it; it returns both results.
func bothWays(t *testing.T, sd, se *postgis.Store, step int, b postgis.Batch) (straight, staged postgis.Result) {
	t.Helper()
	ctx := context.Background()
	straight, err := sd.WriteBatch(ctx, b)
	if err != nil {
		t.Fatalf("step %d, straight: %v", step, err)
	}
	b.Generic = append(slices.Clip(b.Generic), stagedRow(step, t0))
	if staged, err = se.WriteBatch(ctx, b); err != nil {
		t.Fatalf("step %d, staged: %v", step, err)
	}
	if allNew, again := sd.WrittenAllNew(); allNew != int64(step+1) || again != 0 {
		t.Fatalf("step %d: %d batches written straight, %d again; want %d and 0", step, allNew, again, step+1)
	}
	return straight, staged
}

// ownerRows are rows that test which row may become a state once the
// states of directRows and directTrafficRows are stored (from sources src-a
// and src-t in province 01): for d0 and s0, a row of another province from
// the state's own source, and a newer one of that province from another
// source, which may not move the state and must not hide the first; for d1
// and s1, two rows in one microsecond (PostgreSQL keeps no finer), the
// later in the batch observed earlier, which is still the state (as the
// staged way's DISTINCT ON … seq DESC picks it).
func ownerRows(base time.Time) postgis.Batch {
	var b postgis.Batch
	for i, o := range []struct {
		entity, province, source string
		at                       time.Duration
	}{{"0", "79", "", 0}, {"0", "79", "src-z", time.Minute}, {"1", "01", "", 500}, {"1", "01", "", 100}} {
		a := airRow("d"+o.entity, base.Add(o.at), float64(40+i))
		tr := trafficRow("s"+o.entity, base.Add(o.at), float64(40+i))
		a.Province, tr.Province = o.province, o.province
		if o.source != "" {
			a.SourceID, tr.SourceID = o.source, o.source
		}
		a.EventID, tr.EventID = fmt.Sprintf("%s#own%d", a.EventID, i), fmt.Sprintf("%s#own%d", tr.EventID, i)
		b.Air, b.Traffic = append(b.Air, a), append(b.Traffic, tr)
	}
	return b
}

// withStations adds to b water and weather rows made from its air rows:
// the same stations (other kinds), sources, provinces, events and
// instants, so the same ties, older rows and competing owners; their values
// missing, extreme or replaced by extras by turns, and every alarm level.
func withStations(b postgis.Batch) postgis.Batch {
	for i, a := range b.Air {
		w := waterRow(a.StationID, a.ObservedAt, float64(i)/3, int16(i%4))
		x := weatherRow(a.StationID, a.ObservedAt, float64(i)-0.5)
		w.SourceID, w.Province, w.UnitCode, w.EventID, w.Name, w.Location = a.SourceID, a.Province, a.UnitCode, a.EventID, a.Name, a.Location
		x.SourceID, x.Province, x.UnitCode, x.EventID, x.Name, x.Location = a.SourceID, a.Province, a.UnitCode, a.EventID, a.Name, a.Location
		switch i % 4 {
		case 1:
			w.WaterLevel, w.PH, w.Extra = nil, nil, nil
			x.Temperature, x.Precipitation, x.Extra = nil, nil, nil
		case 2:
			w.Flow, w.Turbidity, w.DissolvedOxygen, w.Conductivity = f64(math.Copysign(0, -1)), f64(1e21), f64(5e-324), f64(math.MaxFloat64)
			w.Extra = map[string]any{"waterLevel": "replaced", "n": nil, "l": []any{1, "a"}}
			x.WindSpeed, x.WindDirection, x.AtmosphericPressure = f64(12.5), f64(359.9), f64(1013.25)
			x.Extra = map[string]any{"temperature": []any{1.5, nil}}
		case 3:
			w.Temperature, w.AlarmLevel1 = f64(-1.5e-7), nil
			x.RelativeHumidity = f64(1 << 53)
		}
		b.Water, b.Weather = append(b.Water, w), append(b.Weather, x)
	}
	return b
}

// waterObservations and weatherObservations are what water_observation
// and weather_observation hold, one line a row.
func waterObservations(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	return testenv.Lines(t, pool, `SELECT ROW(source_id, event_id, observed_at, received_at, station_id, province,
		unit_code, encode(ST_AsEWKB(location), 'hex'), water_level, alarm_level_1, alarm_level_2, alarm_level_3,
		water_alarm, flow, temperature, ph, conductivity, turbidity, dissolved_oxygen, extra::text)::text
		FROM water_observation ORDER BY source_id, event_id, observed_at`)
}

func weatherObservations(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	return testenv.Lines(t, pool, `SELECT ROW(source_id, event_id, observed_at, received_at, station_id, province,
		unit_code, encode(ST_AsEWKB(location), 'hex'), temperature, relative_humidity, precipitation, wind_speed,
		wind_direction, atmospheric_pressure, extra::text)::text
		FROM weather_observation ORDER BY source_id, event_id, observed_at`)
}

// segmentState is what road_segment holds, one line a segment.
func segmentState(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	return testenv.Lines(t, pool, `SELECT concat_ws('|', id, name, province, unit_code, source_id, coalesce(encode(ST_AsEWKB(geom), 'hex'), ''),
		last_event_id, last_observed_at, last_values::text) FROM road_segment ORDER BY id`)
}

// trafficObservations is what traffic_observation holds, one line a row.
func trafficObservations(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	return testenv.Lines(t, pool, `SELECT ROW(source_id, event_id, observed_at, received_at, segment_id, province,
		unit_code, encode(ST_AsEWKB(geom), 'hex'), intensity, occupancy, average_vehicle_speed, congested, lane_id, extra::text)::text
		FROM traffic_observation ORDER BY source_id, event_id, observed_at`)
}

// storeOn returns a new database of t and a store of cfg on it.
func storeOn(t *testing.T, cfg postgis.StoreConfig) (*pgxpool.Pool, *postgis.Store) {
	t.Helper()
	pool := testenv.PostGIS(t).Pool
	s, err := postgis.NewStoreWith(pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return pool, s
}

// sensorState is what sensor holds, one line a station of a kind (not of
// stagedRow's kind).
func sensorState(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT kind || ':' || id, name, province, unit_code, source_id,
		coalesce(ST_AsEWKT(location), ''), last_event_id, last_observed_at, last_values::text
		FROM sensor WHERE kind <> 'noise' ORDER BY kind, id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, name, prov, unit, src, loc, ev, vals string
		var at time.Time
		if err := rows.Scan(&id, &name, &prov, &unit, &src, &loc, &ev, &at, &vals); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s|%s|%s|%s|%s|%s|%s|%s|%s", id, name, prov, unit, src, loc, ev, at.UTC().Format(time.RFC3339Nano), vals))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// airObservations is what air_observation holds, one line a row.
func airObservations(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	return testenv.Lines(t, pool, `SELECT ROW(source_id, event_id, observed_at, received_at,
		station_id, province, unit_code, encode(ST_AsEWKB(location), 'hex'), pm25, pm10, no2, o3, co, so2, extra::text, aqi, aqi_band, aqi_dominant)::text
		FROM air_observation ORDER BY source_id, event_id, observed_at`)
}

// TestWriteBatchDirectAsExact: a batch of air, traffic, water and weather
// rows written straight (writeDirect: every row new) stores the same raw
// rows and leaves the same station and segment states, and reports the same
// changed rows, as the exact way (INSERT … ON CONFLICT from a staging
// table), which a batch with a registered kind's row takes; with roll-ups on and off (the roll-ups of
// both ways are compared with plain SQL by TestRollup*). Then a batch older
// than the stored states changes no state in either.
func TestWriteBatchDirectAsExact(t *testing.T) {
	for _, noRollups := range []bool{false, true} {
		t.Run(fmt.Sprintf("no_rollups=%v", noRollups), func(t *testing.T) {
			direct, sd := storeOn(t, postgis.StoreConfig{NoRollups: noRollups})
			exact, se := storeOn(t, postgis.StoreConfig{NoRollups: noRollups})
			// A registered kind's row sends the other store's batch through
			// staging tables and INSERT … ON CONFLICT (the exact way; roll-ups
			// on, the staged all-new way) and adds nothing to the others'
			// states.
			for step, b := range []postgis.Batch{
				withStations(postgis.Batch{Air: directRows(t0), Traffic: directTrafficRows(t0)}),
				withStations(postgis.Batch{Air: directRows(t0.Add(-24 * time.Hour)), Traffic: directTrafficRows(t0.Add(-24 * time.Hour))}),
				withStations(ownerRows(t0.Add(time.Hour))),
			} {
				rd, re := bothWays(t, sd, se, step, b)
				for _, k := range []struct {
					name   string
					n      int
					rd, re postgis.KindResult
				}{{"air", len(b.Air), rd.Air, re.Air}, {"traffic", len(b.Traffic), rd.Traffic, re.Traffic},
					{"water", len(b.Water), rd.Water, re.Water}, {"weather", len(b.Weather), rd.Weather, re.Weather}} {
					if k.rd.New != k.n || k.rd.Duplicates != 0 || k.re.New != k.n {
						t.Fatalf("step %d, %s: new %d (direct), %d (exact) of %d rows", step, k.name, k.rd.New, k.re.New, k.n)
					}
					di, ei := slices.Sorted(slices.Values(k.rd.Inserted)), slices.Sorted(slices.Values(k.re.Inserted))
					if !slices.Equal(di, ei) {
						t.Fatalf("step %d, %s: inserted %v (direct); exact %v", step, k.name, di, ei)
					}
					if d, e := changedIndexes(k.rd.Changed), changedIndexes(k.re.Changed); !slices.Equal(d, e) {
						t.Fatalf("step %d, %s: changed %v (direct); exact %v", step, k.name, d, e)
					}
					if step != 1 && len(k.rd.Changed) == 0 {
						t.Fatalf("step %d, %s: no state changed", step, k.name)
					}
					if step == 1 && len(k.rd.Changed) != 0 {
						t.Fatalf("older batch changed %s %v; want no state", k.name, changedIndexes(k.rd.Changed))
					}
				}
				for _, c := range []struct {
					what string
					read func(*testing.T, *pgxpool.Pool) []string
				}{{"station states", sensorState}, {"air rows", airObservations}, {"segment states", segmentState}, {"traffic rows", trafficObservations},
					{"water rows", waterObservations}, {"weather rows", weatherObservations}} {
					if d, e := c.read(t, direct), c.read(t, exact); !slices.Equal(d, e) || len(d) == 0 {
						t.Fatalf("step %d: %s (direct):\n%v\nexact:\n%v", step, c.what, strings.Join(d, "\n"), strings.Join(e, "\n"))
					}
				}
			}
		})
	}
}

// TestWriteBatchDirectAsExactRandom: random batches of air, traffic, water
// and weather rows
// of three entities in two provinces from two sources, at instants apart
// by whole seconds and by less than a microsecond, leave after every batch
// the same states and report the same changed rows written straight as the
// exact way (a registered kind's row): the state each way chooses when sources and
// provinces compete, with and without the owner's look-up (a batch of one
// province and one source takes the statement without).
func TestWriteBatchDirectAsExactRandom(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			direct, sd := storeOn(t, postgis.StoreConfig{NoRollups: true})
			exact, se := storeOn(t, postgis.StoreConfig{NoRollups: true})
			rng := rand.New(rand.NewPCG(seed, 1))
			pick := func(of ...string) string { return of[rng.IntN(len(of))] }
			offsets := []time.Duration{0, 100, 500, 999, 1000, 1500}
			event := 0
			for step := range 100 {
				var b postgis.Batch
				oneProvince, oneSource := rng.IntN(3) == 0, rng.IntN(3) == 0
				province, source := pick("01", "79"), pick("src-a", "src-b")
				for range 1 + rng.IntN(6) {
					entity := pick("e0", "e1", "e2")
					at := t0.Add(time.Duration(rng.IntN(4))*time.Second + offsets[rng.IntN(len(offsets))])
					p, src := pick("01", "79"), pick("src-a", "src-b")
					if oneProvince {
						p = province
					}
					if oneSource {
						src = source
					}
					event++
					a, tr := airRow(entity, at, float64(event)), trafficRow(entity, at, float64(event))
					a.Province, a.SourceID, a.EventID = p, src, fmt.Sprintf("ev%d", event)
					tr.Province, tr.SourceID, tr.EventID = p, src, fmt.Sprintf("ev%d", event)
					b.Air, b.Traffic = append(b.Air, a), append(b.Traffic, tr)
				}
				rd, re := bothWays(t, sd, se, step, withStations(b))
				if d, e := changedIndexes(rd.Air.Changed), changedIndexes(re.Air.Changed); !slices.Equal(d, e) {
					t.Fatalf("step %d: air changed %v (direct); exact %v", step, d, e)
				}
				for _, k := range []struct {
					name   string
					rd, re []postgis.Changed
				}{{"traffic", rd.Traffic.Changed, re.Traffic.Changed}, {"water", rd.Water.Changed, re.Water.Changed}, {"weather", rd.Weather.Changed, re.Weather.Changed}} {
					if d, e := changedIndexes(k.rd), changedIndexes(k.re); !slices.Equal(d, e) {
						t.Fatalf("step %d: %s changed %v (direct); exact %v", step, k.name, d, e)
					}
				}
				if d, e := sensorState(t, direct), sensorState(t, exact); !slices.Equal(d, e) {
					t.Fatalf("step %d: stations (direct):\n%s\nexact:\n%s", step, strings.Join(d, "\n"), strings.Join(e, "\n"))
				}
				if d, e := segmentState(t, direct), segmentState(t, exact); !slices.Equal(d, e) {
					t.Fatalf("step %d: segments (direct):\n%s\nexact:\n%s", step, strings.Join(d, "\n"), strings.Join(e, "\n"))
				}
			}
		})
	}
}

// TestWriteBatchDirectNotNew: with roll-ups off too, a batch written
// straight that holds a row stored before (a redelivery, part of a batch)
// or a row twice is rolled back whole by the primary key and written again
// the exact way: each row is stored once, the counts say which rows were
// new, and nothing of the failed attempt remains.
func TestWriteBatchDirectNotNew(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	ctx := context.Background()
	s, err := postgis.NewStoreWith(pool, postgis.StoreConfig{NoRollups: true})
	if err != nil {
		t.Fatal(err)
	}
	rows := func(from, to int) []postgis.AirRow {
		var out []postgis.AirRow
		for i := from; i < to; i++ {
			out = append(out, airRow(fmt.Sprintf("n%d", i%3), t0.Add(time.Duration(i)*time.Second), float64(i)))
		}
		return out
	}
	step := func(name string, b []postgis.AirRow, wantNew int, wantAllNew, wantRewritten int64) {
		t.Helper()
		res, err := s.WriteBatch(ctx, postgis.Batch{Air: b})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.Air.New != wantNew || res.Air.Duplicates != len(b)-wantNew || len(res.Air.Inserted) != wantNew {
			t.Fatalf("%s: %d new, %d duplicates, inserted %v; want %d new of %d", name, res.Air.New, res.Air.Duplicates,
				res.Air.Inserted, wantNew, len(b))
		}
		if allNew, rewritten := s.WrittenAllNew(); allNew != wantAllNew || rewritten != wantRewritten {
			t.Fatalf("%s: %d batches written as all new, %d again the exact way; want %d and %d", name, allNew, rewritten, wantAllNew, wantRewritten)
		}
	}
	step("all new", rows(0, 6), 6, 1, 0)
	step("redelivered", rows(0, 6), 0, 1, 1)
	step("half new", rows(3, 9), 3, 1, 2)
	step("a row twice", append(rows(9, 12), rows(10, 11)...), 3, 1, 3)
	step("all new again", rows(12, 15), 3, 2, 3)
	if n := count(t, pool, `SELECT count(*) FROM air_observation`); n != 15 {
		t.Fatalf("%d rows stored; want 15", n)
	}
	if n := count(t, pool, `SELECT count(DISTINCT (source_id, event_id, observed_at)) FROM air_observation`); n != 15 {
		t.Fatalf("%d distinct rows stored; want 15", n)
	}
}

// TestWriteBatchDirectStatementTimeout: a batch written straight is bounded
// by the store's statement timeout as the exact way is (BEGIN and the
// timeout go in one pipeline there): a COPY blocked on a lock ends with
// ErrStatementTimeout (SQLSTATE 57014), nothing of it is stored, the timeout
// does not outlive its transaction on the pooled connections, and the
// store writes again once the lock is gone.
func TestWriteBatchDirectStatementTimeout(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	ctx := context.Background()
	for _, noRollups := range []bool{false, true} {
		s, err := postgis.NewStoreWith(pool, postgis.StoreConfig{StatementTimeout: 2 * time.Second, NoRollups: noRollups})
		if err != nil {
			t.Fatal(err)
		}
		at := t0.Add(time.Duration(len(fmt.Sprint(noRollups))) * time.Hour)
		locked := fmt.Sprintf("locked-%v", noRollups)
		if _, err := s.WriteBatch(ctx, postgis.Batch{Air: []postgis.AirRow{airRow("lock0", at, 1)}}); err != nil {
			t.Fatal(err) // the month's partition exists from here on
		}
		lock, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer lock.Rollback(ctx) //nolint:errcheck // a no-op after the rollback below
		if _, err := lock.Exec(ctx, `LOCK TABLE air_observation IN ACCESS EXCLUSIVE MODE`); err != nil {
			t.Fatal(err)
		}
		// Bounded, so that a batch without the timeout fails the test
		// instead of waiting for the lock forever.
		bounded, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err = s.WriteBatch(bounded, postgis.Batch{Air: []postgis.AirRow{airRow(locked, at.Add(time.Second), 1)}})
		cancel()
		var pgErr *pgconn.PgError
		if !errors.Is(err, postgis.ErrStatementTimeout) || !errors.As(err, &pgErr) || pgErr.Code != "57014" {
			t.Fatalf("no_rollups=%v: WriteBatch blocked on a lock: got %v; want ErrStatementTimeout with SQLSTATE 57014", noRollups, err)
		}
		if err := lock.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		for range pool.Stat().TotalConns() + 1 {
			var v string
			if err := pool.QueryRow(ctx, `SHOW statement_timeout`).Scan(&v); err != nil {
				t.Fatal(err)
			}
			if v != "0" {
				t.Errorf("statement_timeout on a pooled connection after the batch = %q; want 0", v)
			}
		}
		if n := count(t, pool, `SELECT count(*) FROM air_observation WHERE station_id = $1`, locked); n != 0 {
			t.Errorf("no_rollups=%v: %d rows of the timed-out batch stored; want 0", noRollups, n)
		}
		if _, err := s.WriteBatch(ctx, postgis.Batch{Air: []postgis.AirRow{airRow(locked, at.Add(time.Second), 1)}}); err != nil {
			t.Errorf("no_rollups=%v: WriteBatch once the lock is gone: %v", noRollups, err)
		}
	}
}

// TestWriteBatchRecordsActivity: a batch's Activity is recorded in its own
// transaction from what it stored, whichever way it is written (straight,
// all new with roll-ups, or again the exact way when some row was stored
// before): a batch that falls back to the exact way records it once, from
// the exact way's result, and a redelivered batch adds what its Activity
// says of its result (here its rows as events, and those not inserted as
// duplicates; the aggregator's sourceActivity skips its own redeliveries).
func TestWriteBatchRecordsActivity(t *testing.T) {
	for _, noRollups := range []bool{true, false} {
		pool, s := storeOn(t, postgis.StoreConfig{NoRollups: noRollups})
		ctx := context.Background()
		// What each source sent so far: events and duplicates.
		sent := map[string][2]int{}
		// step writes b, whose activity is what kind says it stored, as
		// source's, and checks which rows it inserted and what source_stats
		// holds of source then.
		step := func(name, source string, b postgis.Batch, n int, kind func(postgis.Result) postgis.KindResult, wantInserted []int) {
			t.Helper()
			b.ActivityAt = t0.Add(time.Hour)
			b.Activity = func(r postgis.Result) []postgis.SourceActivity {
				k := kind(r)
				return []postgis.SourceActivity{{SourceID: source, UnitCode: "00070", Province: "01", LastEvent: t0,
					Events: k.New + k.Duplicates, Duplicates: k.Duplicates}}
			}
			res, err := s.WriteBatch(ctx, b)
			if err != nil {
				t.Fatalf("no_rollups=%v, %s: %v", noRollups, name, err)
			}
			if k := kind(res); k.New != len(wantInserted) || fmt.Sprint(slices.Sorted(slices.Values(k.Inserted))) != fmt.Sprint(wantInserted) {
				t.Fatalf("no_rollups=%v, %s: %d new, inserted %v; want %v", noRollups, name, k.New, k.Inserted, wantInserted)
			}
			was := sent[source]
			want := [2]int{was[0] + n, was[1] + n - len(wantInserted)}
			sent[source] = want
			var got [2]int
			if err := pool.QueryRow(ctx, `SELECT events, duplicates FROM source_stats WHERE source_id = $1`, source).Scan(&got[0], &got[1]); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("no_rollups=%v, %s: source_stats of %s %d events, %d duplicates; want %d and %d", noRollups, name, source, got[0], got[1], want[0], want[1])
			}
		}
		air := func(from, to int) postgis.Batch {
			var b postgis.Batch
			for i := from; i < to; i++ {
				b.Air = append(b.Air, airRow(fmt.Sprintf("a%d", i%3), t0.Add(time.Duration(i)*time.Second), float64(i)))
			}
			return b
		}
		airOf := func(r postgis.Result) postgis.KindResult { return r.Air }
		step("all new", "src", air(0, 6), 6, airOf, []int{0, 1, 2, 3, 4, 5})
		step("redelivered", "src", air(0, 6), 6, airOf, []int{})
		step("half new", "src", air(3, 9), 6, airOf, []int{3, 4, 5})
		step("all new again", "src", air(9, 12), 3, airOf, []int{0, 1, 2})
		if allNew, rewritten := s.WrittenAllNew(); allNew != 2 || rewritten != 2 {
			t.Fatalf("no_rollups=%v: %d batches written as all new, %d again the exact way; want 2 and 2 (each way taken)", noRollups, allNew, rewritten)
		}

		// A registered kind's rows, which have no roll-ups: written as all
		// new (roll-ups on) or the exact way, a redelivery is counted from
		// what was stored, not as if all were new.
		generic := func(from, to int) postgis.Batch {
			var b postgis.Batch
			for i := from; i < to; i++ {
				at := t0.Add(time.Duration(i) * time.Second)
				b.Generic = append(b.Generic, postgis.GenericRow{Kind: "noise", SourceID: "src", EventID: fmt.Sprintf("g%d", i), EntityID: fmt.Sprintf("g%d", i%2),
					Province: "01", UnitCode: "00070", ObservedAt: at, ReceivedAt: at, Values: map[string]float64{"db": float64(i)}})
			}
			return b
		}
		genericOf := func(r postgis.Result) postgis.KindResult { return r.Generic }
		allNew0, rewritten0 := s.WrittenAllNew()
		step("generic all new", "gsrc", generic(0, 4), 4, genericOf, []int{0, 1, 2, 3})
		step("generic redelivered", "gsrc", generic(0, 4), 4, genericOf, []int{})
		step("generic half new", "gsrc", generic(2, 6), 4, genericOf, []int{2, 3})
		// With roll-ups on, a registered kind's batch all new is written the
		// all-new way; the two with rows stored before, again the exact way.
		if allNew, rewritten := s.WrittenAllNew(); !noRollups && (allNew-allNew0 != 1 || rewritten-rewritten0 != 2) {
			t.Fatalf("registered kind: %d batches written as all new, %d again the exact way; want 1 and 2", allNew-allNew0, rewritten-rewritten0)
		}
	}
}
