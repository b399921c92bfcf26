package postgis_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twpayne/go-geom"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// box is the polygon [x0,x0+d]×[y0,y0+d], counter-clockwise.
func box(x0, y0, d float64) *geom.Polygon {
	return geom.NewPolygonFlat(geom.XY, []float64{x0, y0, x0 + d, y0, x0 + d, y0 + d, x0, y0 + d, x0, y0}, []int{10})
}

// areas collects gs as the aggregator's decoder collects the areas of a
// CAP alert: one GeometryCollection.
func areas(t *testing.T, gs ...geom.T) *geom.GeometryCollection {
	t.Helper()
	gc := geom.NewGeometryCollection()
	if err := gc.Push(gs...); err != nil {
		t.Fatal(err)
	}
	return gc
}

func alertWithArea(id string, area geom.T) postgis.AlertRow {
	return postgis.AlertRow{SourceID: "src", EventID: id, Identifier: id, Sender: "kttv", Sent: t0, Status: "Actual",
		MsgType: "Alert", Scope: "Public", Area: area, Province: "01", UnitCode: "01", ReceivedAt: t0}
}

// storedArea describes the stored area of alert id.
type storedArea struct {
	typ   string // GeometryType, "" when NULL
	parts int
	valid bool
	area  float64
}

func readArea(t *testing.T, pool *pgxpool.Pool, id string) storedArea {
	t.Helper()
	var a storedArea
	var typ *string
	err := pool.QueryRow(context.Background(), `SELECT GeometryType(area), coalesce(ST_NumGeometries(area), 0),
		coalesce((ST_IsValidDetail(area)).valid, true), coalesce(ST_Area(area), 0) FROM alert WHERE id = $1`, id).
		Scan(&typ, &a.parts, &a.valid, &a.area)
	if err != nil {
		t.Fatalf("reading the area of %s: %v", id, err)
	}
	if typ != nil {
		a.typ = *typ
	}
	return a
}

// TestWriteBatchAlertRepeatedAreas: a CAP alert with 1 000 identical <area>
// polygons used to grow a backend for many seconds (10 000 to 11 GB without
// end) in the alert_unit join. Its area is now built once and the write ends
// well within the store's statement timeout.
func TestWriteBatchAlertRepeatedAreas(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	s, err := postgis.NewStoreWith(pool, postgis.StoreConfig{StatementTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	insertUnit(t, pool, "01", "province", "", 105, 20)
	insertUnit(t, pool, "02", "province", "", 106, 20)
	insertUnit(t, pool, "05", "province", "", 110, 20)
	// A circle-like polygon of 2 000 vertices over the border of 01 and 02,
	// repeated 1 000 times, as one <area> per copy.
	const n = 2000
	flat := make([]float64, 0, 2*n+2)
	for i := range n {
		a := 2 * math.Pi * float64(i) / n
		flat = append(flat, 106+0.3*math.Cos(a), 20.5+0.3*math.Sin(a))
	}
	flat = append(flat, flat[0], flat[1])
	circle := geom.NewPolygonFlat(geom.XY, flat, []int{len(flat)})
	copies := make([]geom.T, 1000)
	for i := range copies {
		copies[i] = circle
	}
	res, err := s.WriteBatch(context.Background(), postgis.Batch{Alerts: []postgis.AlertRow{alertWithArea("many", areas(t, copies...))}})
	if err != nil {
		t.Fatalf("WriteBatch of an alert with 1000 identical areas: %v", err)
	}
	if len(res.Alerts.Changed) != 1 || !slices.Equal(res.Alerts.Changed[0].Units, []string{"01", "02"}) {
		t.Fatalf("changed %+v; want the alert with units [01 02]", res.Alerts.Changed)
	}
	if got := readArea(t, pool, "src/many"); got.typ != "MULTIPOLYGON" || got.parts != 1 || !got.valid {
		t.Errorf("stored area %+v; want one valid MULTIPOLYGON of 1 polygon", got)
	}
}

// TestWriteBatchAlertInvalidAreas: overlapping areas of a multi-area CAP
// alert and self-intersecting (bow-tie) polygons used to make ST_Intersects
// throw a GEOS TopologyException, which failed the whole batch. Each is now
// stored as a valid MultiPolygon (the union of its polygons) with its units.
func TestWriteBatchAlertInvalidAreas(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	s := postgis.NewStore(pool)
	ctx := context.Background()
	// Two units of two parts each: 01 is [105,106]×[20,21] and [105,106]×[22,23],
	// 02 is [106,107]×[20,21] and [106,107]×[22,23].
	for _, u := range []struct {
		code string
		x0   float64
	}{{"01", 105}, {"02", 106}} {
		mp := geom.NewMultiPolygon(geom.XY).SetSRID(postgis.SRID)
		for _, y0 := range []float64{20, 22} {
			if err := mp.Push(box(u.x0, y0, 1)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := pool.Exec(ctx, `INSERT INTO admin_unit (code, level, name_vi, boundary, valid_from)
			VALUES ($1, 'province', $1, $2, '2025-07-01')`, u.code, mp); err != nil {
			t.Fatal(err)
		}
	}
	// bowtie crosses itself at (105.5, 20.5).
	bowtie := geom.NewPolygonFlat(geom.XY, []float64{105.2, 20.2, 105.8, 20.8, 105.8, 20.2, 105.2, 20.8, 105.2, 20.2}, []int{10})
	tests := []struct {
		name  string
		area  geom.T
		units []string
		typ   string
		area2 float64 // the area of the union, in square degrees
	}{
		{"two overlapping squares", areas(t, box(105.5, 20.2, 0.6), box(105.8, 20.5, 0.6)), []string{"01", "02"}, "MULTIPOLYGON", 0.72 - 0.09},
		{"a bow-tie", bowtie, []string{"01"}, "MULTIPOLYGON", 0.18},
		{"a bow-tie and a square over it", areas(t, bowtie, box(105.4, 20.4, 0.8)), []string{"01", "02"}, "MULTIPOLYGON", 0.64 + 0.08 + 0.02}, // the square and the bow-tie outside it
		{"overlapping squares in each unit's two parts", areas(t, box(105.9, 20.9, 0.2), box(105.95, 20.95, 0.2), box(105.9, 22.9, 0.2), box(105.95, 22.85, 0.2)),
			[]string{"01", "02"}, "MULTIPOLYGON", 2 * (0.08 - 0.15*0.15)},
		{"a point", geom.NewPointFlat(geom.XY, []float64{106.5, 20.5}), []string{"02"}, "MULTIPOINT", 0},
		{"the same point twice", areas(t, geom.NewPointFlat(geom.XY, []float64{106.5, 20.5}), geom.NewPointFlat(geom.XY, []float64{106.5, 20.5})), []string{"02"}, "MULTIPOINT", 0},
		{"a square and a point outside it", areas(t, box(105.2, 20.2, 0.1), geom.NewPointFlat(geom.XY, []float64{106.5, 22.5})), []string{"01", "02"}, "GEOMETRYCOLLECTION", 0.01},
		{"a square and a point inside it", areas(t, box(105.2, 20.2, 0.1), geom.NewPointFlat(geom.XY, []float64{105.25, 20.25})), []string{"01"}, "MULTIPOLYGON", 0.01},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := string(rune('a' + i))
			res, err := s.WriteBatch(ctx, postgis.Batch{Alerts: []postgis.AlertRow{alertWithArea(id, tt.area)}})
			if err != nil {
				t.Fatalf("WriteBatch: %v", err)
			}
			if len(res.Alerts.Changed) != 1 || !slices.Equal(res.Alerts.Changed[0].Units, tt.units) {
				t.Errorf("changed %+v; want units %v", res.Alerts.Changed, tt.units)
			}
			got := readArea(t, pool, "src/"+id)
			if got.typ != tt.typ || !got.valid || math.Abs(got.area-tt.area2) > 1e-9 {
				t.Errorf("stored area %+v; want a valid %s of area %g", got, tt.typ, tt.area2)
			}
		})
	}
}

// TestWriteBatchStatementTimeout: a write that cannot finish (here it waits
// on a lock) ends after the store's statement timeout with SQLSTATE 57014,
// reported as ErrStatementTimeout, and the timeout does not outlive the
// transaction on the pooled connection.
func TestWriteBatchStatementTimeout(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	ctx := context.Background()
	s, err := postgis.NewStoreWith(pool, postgis.StoreConfig{StatementTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	lock, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx) //nolint:errcheck // the test ends with it
	if _, err := lock.Exec(ctx, `LOCK TABLE alert IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	_, err = s.WriteBatch(ctx, postgis.Batch{Alerts: []postgis.AlertRow{alertWithArea("locked", nil)}})
	var pgErr *pgconn.PgError
	if !errors.Is(err, postgis.ErrStatementTimeout) || !errors.As(err, &pgErr) || pgErr.Code != "57014" {
		t.Fatalf("WriteBatch blocked on a lock: got %v; want ErrStatementTimeout with SQLSTATE 57014", err)
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// Every pooled connection is back to the server's default.
	conns := pool.Stat().TotalConns()
	for range conns + 1 {
		var v string
		if err := pool.QueryRow(ctx, `SHOW statement_timeout`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != "0" {
			t.Errorf("statement_timeout on a pooled connection after the batch = %q; want 0", v)
		}
	}
	// The pool writes again once the lock is gone. Through a store with a
	// timeout a loaded machine cannot reach: 200 ms is a budget for a
	// blocked statement, not for a batch on two busy cores.
	s2, err := postgis.NewStoreWith(pool, postgis.StoreConfig{StatementTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.WriteBatch(ctx, postgis.Batch{Alerts: []postgis.AlertRow{alertWithArea("unlocked", nil)}}); err != nil {
		t.Errorf("WriteBatch once the lock is gone: %v", err)
	}
	// And the store that timed out writes too: only its own budget may
	// still run out on a loaded machine, never a lock or a broken state.
	for i := 0; ; i++ {
		_, err := s.WriteBatch(ctx, postgis.Batch{Alerts: []postgis.AlertRow{alertWithArea("unlocked-again", nil)}})
		if err == nil {
			break
		}
		if !errors.Is(err, postgis.ErrStatementTimeout) || i == 9 {
			t.Fatalf("WriteBatch of the store that timed out, once the lock is gone (attempt %d): %v", i+1, err)
		}
	}
	if _, err := postgis.NewStoreWith(pool, postgis.StoreConfig{StatementTimeout: -time.Second}); err == nil {
		t.Error("NewStoreWith with a negative statement timeout: got nil error")
	}
}

// TestRecordSourceActivityStatementTimeout: the source statistics of a batch
// are written under the store's statement timeout too, so a write blocked on
// a lock ends with ErrStatementTimeout instead of waiting for the caller.
func TestRecordSourceActivityStatementTimeout(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := postgis.NewStoreWith(pool, postgis.StoreConfig{StatementTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	lock, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx) //nolint:errcheck // the test ends with it
	if _, err := lock.Exec(ctx, `LOCK TABLE source_stats IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	err = s.RecordSourceActivity(ctx, []postgis.SourceActivity{{SourceID: "locked", UnitCode: "00070", Province: "01",
		LastEvent: now, Events: 1}}, now)
	if !errors.Is(err, postgis.ErrStatementTimeout) {
		t.Fatalf("RecordSourceActivity blocked on a lock: got %v; want ErrStatementTimeout", err)
	}
}
