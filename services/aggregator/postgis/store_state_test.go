package postgis_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// TestAirStateUpdatesAreHOT: writing the newer state of stations whose rows
// were just inserted updates them in place (HOT: no index entries), as a
// feed's next batch of the same stations does. It needs room on the pages of
// sensor (its fillfactor) and no index on a column the update changes;
// without either, every update writes each of the table's indexes.
func TestAirStateUpdatesAreHOT(t *testing.T) {
	const stations = 200
	ctx := context.Background()
	pool := testenv.PostGIS(t).Pool
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for step := range 2 {
		rows := make([]postgis.AirRow, stations)
		for i := range rows {
			rows[i] = airRow(fmt.Sprintf("hot%03d", i), base.Add(time.Duration(step)*time.Minute), float64(10*step+i))
		}
		changed, err := postgis.WriteAirStates(ctx, tx, postgis.Batch{Air: rows})
		if err != nil {
			t.Fatal(err)
		}
		if len(changed) != stations {
			t.Fatalf("step %d: %d states written; want %d", step, len(changed), stations)
		}
	}
	// This transaction's own counts, so nothing waits for the statistics.
	var inserted, updated, hot int64
	if err := tx.QueryRow(ctx, `SELECT n_tup_ins, n_tup_upd, n_tup_hot_upd
		FROM pg_stat_xact_user_tables WHERE relname = 'sensor'`).Scan(&inserted, &updated, &hot); err != nil {
		t.Fatal(err)
	}
	if inserted != stations || updated != stations || hot != updated {
		t.Fatalf("sensor: %d inserted, %d updated of which %d HOT; want %d, %d, all HOT",
			inserted, updated, hot, stations, stations)
	}
}

// TestAirStateValuesAsServer: the values of a station's state written
// straight (JSON text built in Go) are the jsonb the exact way builds on the
// server from the same row, for the numbers a float8 becomes in jsonb
// (NaN and infinities as strings, -0, the extremes, exponents), absent
// pollutants, extra values that share a pollutant's name or "aqi" (the
// later wins), nulls inside extra values, extra values alone and an AQI that
// is not an object.
func TestAirStateValuesAsServer(t *testing.T) {
	direct, sd := storeOn(t, postgis.StoreConfig{NoRollups: true})
	exact, se := storeOn(t, postgis.StoreConfig{NoRollups: true})
	values := []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 1e21, 1.5e-7, 5e-324,
		math.MaxFloat64, 1e6, 123.456, -0.1, 1 << 53}
	var rows []postgis.AirRow
	for i, v := range values {
		r := airRow(fmt.Sprintf("v%02d", i), t0, v)
		r.PM10, r.O3, r.CO, r.SO2 = f64(v), f64(-v), nil, f64(float64(i))
		r.NO2 = nil
		switch i % 5 {
		case 0:
			r.Extra = map[string]any{"pm25": "replaced", "aqi": 1, "deep": map[string]any{"n": nil, "l": []any{nil, 2.5}}}
		case 1:
			r.Extra = nil
			r.AQI = postgis.AQI{JSON: []byte(` [1, {"b": null}] `)}
		case 2:
			r.Extra = map[string]any{"aqi": "extra"}
			r.AQI = postgis.AQI{JSON: []byte(`{"hourly":7,"band":1,"dominant":"pm10"}`)}
		case 3:
			r.PM25, r.PM10, r.O3, r.SO2, r.Extra = nil, nil, nil, nil, nil // an empty state
		case 4: // extra values alone, written by hand (appendExtraJSON)
			r.PM25, r.PM10, r.O3, r.SO2 = nil, nil, nil, nil
			r.Extra = map[string]any{"temperature": 28.5, "windDirection": "N", "relativeHumidity": 0.8}
		}
		rows = append(rows, r)
	}
	rd, re := bothWays(t, sd, se, 0, postgis.Batch{Air: rows})
	if d, e := changedIndexes(rd.Air.Changed), changedIndexes(re.Air.Changed); !slices.Equal(d, e) || len(d) != len(rows) {
		t.Fatalf("changed %v (direct); exact %v; want all %d", d, e, len(rows))
	}
	if d, e := sensorState(t, direct), sensorState(t, exact); !slices.Equal(d, e) {
		t.Fatalf("states (direct):\n%v\nexact:\n%v", d, e)
	}
}

// TestTrafficStateValuesAsServer: the values of a segment's state written
// straight (appendTrafficValues, sent as JSON text) are the jsonb the exact
// way builds on the server, for numbers of every kind (NaN, ±Inf, -0,
// extremes), either congested flag, a lane, and extras that replace a
// member, are nested or stand alone.
func TestTrafficStateValuesAsServer(t *testing.T) {
	direct, sd := storeOn(t, postgis.StoreConfig{NoRollups: true})
	exact, se := storeOn(t, postgis.StoreConfig{NoRollups: true})
	values := []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 1e21, 1.5e-7, 5e-324,
		math.MaxFloat64, 1e6, 123.456, -0.1, 1 << 53}
	var rows []postgis.TrafficRow
	for i, v := range values {
		r := trafficRow(fmt.Sprintf("v%02d", i), t0, v)
		r.Intensity, r.Occupancy = f64(-v), f64(float64(i)/7)
		switch i % 5 {
		case 0:
			r.Extra = map[string]any{"intensity": "replaced", "congested": nil, "deep": map[string]any{"n": nil, "l": []any{nil, 2.5}}}
		case 1:
			lane, no := int32(-3), false
			r.LaneID, r.Congested, r.Extra = &lane, &no, nil
		case 2:
			lane := int32(math.MaxInt32)
			r.LaneID = &lane
		case 3: // an empty state
			r.Intensity, r.Occupancy, r.AverageVehicleSpeed, r.Congested, r.Extra = nil, nil, nil, nil, nil
		case 4: // extra values alone
			r.Intensity, r.Occupancy, r.AverageVehicleSpeed, r.Congested = nil, nil, nil, nil
			r.Extra = map[string]any{"laneDirection": "backward", "vehicleType": []any{"car", "bus"}}
		}
		rows = append(rows, r)
	}
	rd, re := bothWays(t, sd, se, 0, postgis.Batch{Traffic: rows})
	if d, e := changedIndexes(rd.Traffic.Changed), changedIndexes(re.Traffic.Changed); !slices.Equal(d, e) || len(d) != len(rows) {
		t.Fatalf("changed %v (direct); exact %v; want all %d", d, e, len(rows))
	}
	if d, e := segmentState(t, direct), segmentState(t, exact); !slices.Equal(d, e) {
		t.Fatalf("states (direct):\n%v\nexact:\n%v", strings.Join(d, "\n"), strings.Join(e, "\n"))
	}
	if d, e := trafficObservations(t, direct), trafficObservations(t, exact); !slices.Equal(d, e) {
		t.Fatalf("rows (direct):\n%v\nexact:\n%v", strings.Join(d, "\n"), strings.Join(e, "\n"))
	}
}

// TestAirStateInvalidAQI: an AQI that is not JSON fails the batch written
// straight, as the server fails it when it parses the AQI alone, and does not
// reach the state as members of its own (it is spliced into the state's JSON
// text).
func TestAirStateInvalidAQI(t *testing.T) {
	ctx := context.Background()
	pool, s := storeOn(t, postgis.StoreConfig{NoRollups: true})
	r := airRow("bad", t0, 1)
	r.AQI = postgis.AQI{JSON: []byte(`{"hourly":1},"pm25":999`)}
	if _, err := s.WriteBatch(ctx, postgis.Batch{Air: []postgis.AirRow{r}}); !errors.Is(err, postgis.ErrInvalidJSON) || !errors.Is(err, postgis.ErrUnencodable) {
		t.Fatalf("got %v; want %v, and %v (refused, not retried)", err, postgis.ErrInvalidJSON, postgis.ErrUnencodable)
	}
	if got := sensorState(t, pool); len(got) != 0 {
		t.Fatalf("states %v; want none", got)
	}
}

// TestTrafficStateUpdatesAreHOT: the next batch of the same road segments
// updates their states in place (HOT), as TestAirStateUpdatesAreHOT for
// stations; it needs room on road_segment's pages (its fillfactor). The
// store writes on connections of its own, so the counts are read from the
// server's statistics once they show every update.
func TestTrafficStateUpdatesAreHOT(t *testing.T) {
	const segments = 200
	ctx := context.Background()
	pool, s := storeOn(t, postgis.StoreConfig{NoRollups: true})
	for step := range 2 {
		rows := make([]postgis.TrafficRow, segments)
		for i := range rows {
			rows[i] = trafficRow(fmt.Sprintf("hot%03d", i), t0.Add(time.Duration(step)*time.Minute), float64(20+step))
		}
		res, err := s.WriteBatch(ctx, postgis.Batch{Traffic: rows})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Traffic.Changed) != segments {
			t.Fatalf("step %d: %d states written; want %d", step, len(res.Traffic.Changed), segments)
		}
	}
	var updated, hot int64
	for deadline := time.Now().Add(time.Minute); ; {
		if err := pool.QueryRow(ctx, `SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables
			WHERE relname = 'road_segment'`).Scan(&updated, &hot); err != nil {
			t.Fatal(err)
		}
		if updated >= segments || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // the writers' backends flush their counts when idle
	}
	if updated != segments || hot != updated {
		t.Fatalf("road_segment: %d updated of which %d HOT; want %d, all HOT", updated, hot, segments)
	}
}
