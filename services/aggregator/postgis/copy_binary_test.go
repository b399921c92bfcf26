package postgis_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/aggregator/postgis"
	"github.com/twpayne/go-geom"
)

// TestCopyRowsAsPgx holds the direct batches' binary COPY to the rows
// pgx's CopyFrom stores from the values the store gave it before: the same
// rows of varied and extreme values are copied both ways into two tables
// of air_observation's columns and constraints (any geometry), which must then hold the
// same rows, floats and geometries compared bit for bit.
func TestCopyRowsAsPgx(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	ctx := context.Background()
	for _, table := range []string{"air_copy_pgx", "air_copy_bin"} {
		// Any geometry, so that points of other layouts (go-geom's way)
		// are compared too.
		if _, err := pool.Exec(ctx, `CREATE TABLE `+table+` (LIKE air_observation INCLUDING ALL);
			ALTER TABLE `+table+` ALTER COLUMN location TYPE geometry`); err != nil {
			t.Fatal(err)
		}
	}
	rows := copyTestRows(rand.New(rand.NewPCG(7, 12)), 3000)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if err := postgis.CopyAirAsPgx(ctx, conn.Conn(), "air_copy_pgx", rows); err != nil {
		t.Fatal(err)
	}
	if err := postgis.CopyAirBinary(ctx, conn.Conn(), "air_copy_bin", rows); err != nil {
		t.Fatal(err)
	}
	const cols = `source_id, event_id, observed_at, received_at, station_id, province, unit_code,
		ST_AsEWKB(location), float8send(pm25), float8send(pm10), float8send(no2), float8send(o3),
		float8send(co), float8send(so2), extra::text, aqi, aqi_band, aqi_dominant`
	var n, differ int
	err = pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM air_copy_bin), count(*) FROM (
		(SELECT `+cols+` FROM air_copy_bin EXCEPT ALL SELECT `+cols+` FROM air_copy_pgx)
		UNION ALL
		(SELECT `+cols+` FROM air_copy_pgx EXCEPT ALL SELECT `+cols+` FROM air_copy_bin)) d`).Scan(&n, &differ)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(rows) || differ != 0 {
		t.Fatalf("%d rows copied of %d; %d rows differ from pgx's", n, len(rows), differ)
	}
}

// TestCopyRowsUnencodable: a row whose value its column cannot take (an
// extra with no JSON, a point without a layout: the decoder makes neither)
// fails the batch with ErrUnencodable, which the aggregator dead-letters,
// both when written alone and when started beside another, and stores
// nothing.
func TestCopyRowsUnencodable(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	s := postgis.NewStore(pool)
	ctx := context.Background()
	at := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	if _, err := s.WriteBatch(ctx, postgis.Batch{Air: []postgis.AirRow{airRow("enc-ok", at, 10)}}); err != nil {
		t.Fatal(err) // the month's partition
	}
	nan := airRow("enc-nan", at, 10)
	nan.Extra = map[string]any{"x": math.NaN()}
	noLayout := airRow("enc-layout", at, 10)
	noLayout.Location = &geom.Point{}
	for _, r := range []postgis.AirRow{nan, noLayout} {
		b := postgis.Batch{Air: []postgis.AirRow{airRow("enc-ok", at.Add(time.Hour), 10), r}}
		if _, err := s.WriteBatch(ctx, b); !errors.Is(err, postgis.ErrUnencodable) {
			t.Errorf("%s written alone: %v; want %v", r.StationID, err, postgis.ErrUnencodable)
		}
		st := s.StartBatch(ctx, b, nil)
		if st == nil {
			t.Fatalf("%s: not started", r.StationID)
		}
		if _, err := st.Finish(ctx, func() {}); !errors.Is(err, postgis.ErrUnencodable) {
			t.Errorf("%s started: %v; want %v", r.StationID, err, postgis.ErrUnencodable)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM air_observation`); n != 1 {
		t.Errorf("%d rows stored; want the first batch's only", n)
	}
}

// copyTestRows returns n air rows whose values cover what a column can
// hold: NULLs, floats' edges, instants before 2000 and with nanoseconds,
// zones, points of other layouts and empty, extras that need escaping.
func copyTestRows(r *rand.Rand, n int) []postgis.AirRow {
	floats := []float64{0, math.Copysign(0, -1), 1e-310, math.MaxFloat64, -math.MaxFloat64, math.Inf(1), math.Inf(-1), math.NaN(), 12.5, -3}
	times := []time.Time{
		time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 1500, time.UTC),
		time.Date(1900, 6, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 7, 20, 1, 2, 123456789, time.FixedZone("ICT", 7*3600)),
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
	}
	texts := []string{"", "01", "Trạm Hoàn Kiếm", "a\"b\\c", "<>&'", "\u2028", strings.Repeat("x", 5000), "😀"}
	extras := []map[string]any{
		nil, {},
		{"temperature": 28.5},
		{"note": "a<b&c", "n": 1e21},
		{"nested": map[string]any{"list": []any{1.0, "two", true, nil}}, "Độ ẩm": 81.0},
	}
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	flt := func() *float64 {
		switch r.IntN(4) {
		case 0:
			return nil
		case 1:
			v := floats[r.IntN(len(floats))]
			return &v
		}
		v := r.NormFloat64() * 100
		return &v
	}
	rows := make([]postgis.AirRow, n)
	for i := range rows {
		at := times[r.IntN(len(times))].Add(time.Duration(r.Int64N(int64(time.Hour))))
		if r.IntN(2) == 0 {
			at = time.Unix(0, r.Int64N(math.MaxInt64)).In(time.FixedZone("", r.IntN(48)*1800-12*3600))
		}
		var loc *geom.Point
		switch r.IntN(6) {
		case 0:
		case 1:
			loc = geom.NewPointFlat(geom.XYZ, []float64{r.Float64()*360 - 180, r.Float64()*180 - 90, r.Float64() * 3000})
		case 2:
			loc = geom.NewPointEmpty(geom.XY)
		case 3:
			loc = geom.NewPointFlat(geom.XY, []float64{105.85, 21.03}).SetSRID(postgis.SRID)
		default:
			loc = geom.NewPointFlat(geom.XY, []float64{r.Float64()*360 - 180, r.Float64()*180 - 90})
		}
		var aqi postgis.AQI
		if r.IntN(3) > 0 {
			v := int32(r.IntN(600)) - 10
			if r.IntN(20) == 0 {
				v = math.MaxInt32
			}
			aqi = postgis.AQI{Value: &v, Band: int16(1 + r.IntN(6)), Dominant: pick(texts)}
		}
		rows[i] = postgis.AirRow{
			SourceID: pick(texts), EventID: fmt.Sprintf("e%d", i), StationID: pick(texts),
			Province: pick(texts), UnitCode: pick(texts),
			ObservedAt: at, ReceivedAt: times[r.IntN(len(times))],
			Location: loc, PM25: flt(), PM10: flt(), NO2: flt(), O3: flt(), CO: flt(), SO2: flt(),
			Extra: extras[r.IntN(len(extras))], AQI: aqi,
		}
	}
	return rows
}
