package schema_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/seed"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/units"
)

// TestMain stops the test process's private PostgreSQL cluster at the end.
// It is the only TestMain of this directory's test binary.
func TestMain(m *testing.M) { testenv.Main(m) }

// square is a closed counter-clockwise ring of half-side d around lon, lat.
func square(lon, lat, d float64) string {
	return fmt.Sprintf(`[[[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g]]]`,
		lon-d, lat-d, lon+d, lat-d, lon+d, lat+d, lon-d, lat+d, lon-d, lat-d)
}

func feature(code, name, geometry string) string {
	return fmt.Sprintf(`{"type":"Feature","properties":{"code":%q,"name":%q,"nameEn":%q},"geometry":%s}`,
		code, name, name+" (en)", geometry)
}

func polygon(coords string) string { return `{"type":"Polygon","coordinates":` + coords + `}` }

func collection(features ...string) string {
	return `{"type":"FeatureCollection","features":[` + strings.Join(features, ",") + `]}`
}

func importString(t *testing.T, pool *pgxpool.Pool, s string, opts schema.ImportOptions) (schema.ImportResult, error) {
	t.Helper()
	return schema.ImportUnits(context.Background(), pool, strings.NewReader(s), opts)
}

func mustImport(t *testing.T, pool *pgxpool.Pool, b []byte, opts schema.ImportOptions) schema.ImportResult {
	t.Helper()
	res, err := schema.ImportUnits(context.Background(), pool, bytes.NewReader(b), opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func scalar[T any](t *testing.T, pool *pgxpool.Pool, q string, args ...any) T {
	t.Helper()
	var v T
	if err := pool.QueryRow(context.Background(), q, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

func TestImportUnitsSeed(t *testing.T) {
	db := testenv.PostGIS(t)
	var calls [][2]int
	res := mustImport(t, db.Pool, seed.Provinces2025(), schema.ImportOptions{
		Progress: func(done, total int) { calls = append(calls, [2]int{done, total}) },
	})
	if got, want := res, (schema.ImportResult{Read: 34, Inserted: 34, Repaired: res.Repaired}); !equalCounts(got, want) {
		t.Errorf("provinces: got %+v; want %+v", got, want)
	}
	if len(calls) != 35 || calls[34] != [2]int{34, 34} || calls[0] != [2]int{1, -1} {
		t.Errorf("progress: got %d calls, first %v, last %v; want 35, [1 -1], [34 34]", len(calls), calls[0], calls[len(calls)-1])
	}
	res = mustImport(t, db.Pool, seed.HanoiWards2025(), schema.ImportOptions{})
	if got, want := res, (schema.ImportResult{Read: 126, Inserted: 126, Repaired: res.Repaired}); !equalCounts(got, want) {
		t.Errorf("wards: got %+v; want %+v", got, want)
	}

	if got := scalar[int](t, db.Pool, `SELECT count(*) FROM admin_unit WHERE level = 'province' AND valid_to IS NULL AND parent_code IS NULL`); got != 34 {
		t.Errorf("got %d current provinces; want 34", got)
	}
	if got := scalar[int](t, db.Pool, `SELECT count(*) FROM admin_unit WHERE level = 'commune' AND valid_to IS NULL AND parent_code = '01'`); got != 126 {
		t.Errorf("got %d current communes of 01; want 126", got)
	}
	if got := scalar[int](t, db.Pool, `SELECT count(*) FROM admin_unit WHERE NOT ST_IsValid(boundary) OR NOT ST_IsPolygonCCW(boundary)`); got != 0 {
		t.Errorf("got %d boundaries invalid or not counter-clockwise; want 0", got)
	}
	var name, nameEn, full, parent string
	var from time.Time
	err := db.Pool.QueryRow(context.Background(), `
		SELECT name_vi, name_en, full_name_vi, parent_code, valid_from FROM admin_unit WHERE code = '00004'`).
		Scan(&name, &nameEn, &full, &parent, &from)
	if err != nil {
		t.Fatal(err)
	}
	if name != "Ba Đình" || nameEn != "Ba Dinh" || full != "Phường Ba Đình" || parent != "01" || !from.Equal(schema.DefaultUnitsValidFrom) {
		t.Errorf("got 00004 = %q %q %q parent %q from %v; want Ba Đình, Ba Dinh, Phường Ba Đình, 01, %v",
			name, nameEn, full, parent, from, schema.DefaultUnitsValidFrom)
	}

	// Importing the same files again changes nothing.
	a := mustImport(t, db.Pool, seed.Provinces2025(), schema.ImportOptions{})
	b := mustImport(t, db.Pool, seed.HanoiWards2025(), schema.ImportOptions{})
	if got := a.Unchanged + b.Unchanged; got != 160 || a.Inserted+b.Inserted != 0 || a.Closed+b.Closed != 0 {
		t.Errorf("re-import: got %+v and %+v; want 160 unchanged, nothing inserted or closed", a, b)
	}
	if got := scalar[int](t, db.Pool, `SELECT count(*) FROM admin_unit`); got != 160 {
		t.Errorf("got %d rows after re-import; want 160", got)
	}
}

// equalCounts compares results but Repaired, whose content depends on the data.
func equalCounts(a, b schema.ImportResult) bool {
	return a.Read == b.Read && a.Inserted == b.Inserted && a.Unchanged == b.Unchanged && a.Closed == b.Closed
}

func TestImportUnitsNewVersion(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	oldArea := scalar[float64](t, db.Pool, `SELECT ST_Area(boundary) FROM admin_unit WHERE code = '00004'`)
	var lon, lat float64
	if err := db.Pool.QueryRow(ctx, `SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(boundary) p FROM admin_unit WHERE code = '00004') s`).
		Scan(&lon, &lat); err != nil {
		t.Fatal(err)
	}
	changed := collection(feature("00004", "Ba Đình", polygon(square(lon, lat, 0.001))))

	// A change cannot start when the current version starts.
	_, err := importString(t, db.Pool, changed, schema.ImportOptions{})
	if !errors.Is(err, schema.ErrUnitVersion) || !strings.Contains(err.Error(), "features[0] (code 00004)") {
		t.Fatalf("same valid_from: got %v; want ErrUnitVersion naming features[0] (code 00004)", err)
	}

	later := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	res, err := importString(t, db.Pool, changed, schema.ImportOptions{ValidFrom: later})
	if err != nil {
		t.Fatal(err)
	}
	if want := (schema.ImportResult{Read: 1, Inserted: 1, Closed: 1}); !equalCounts(res, want) {
		t.Errorf("got %+v; want %+v", res, want)
	}
	at := func(ts time.Time) float64 {
		return scalar[float64](t, db.Pool, `
			SELECT ST_Area(boundary) FROM admin_unit
			WHERE code = '00004' AND valid_from <= $1 AND (valid_to IS NULL OR valid_to > $1)`, ts)
	}
	if got := at(later.Add(-time.Hour)); got != oldArea {
		t.Errorf("area before the change: got %v; want the old %v", got, oldArea)
	}
	if got, want := at(later.Add(time.Hour)), 0.002*0.002; (got-want)/want > 1e-6 || (want-got)/want > 1e-6 {
		t.Errorf("area after the change: got %v; want %v", got, want)
	}
	if got := scalar[string](t, db.Pool, `SELECT parent_code FROM admin_unit WHERE code = '00004' AND valid_to IS NULL`); got != "01" {
		t.Errorf("got parent %q for the new version; want 01", got)
	}

	// A new name alone opens a version too; the same file again does not.
	renamed := collection(feature("00004", "Ba Đình mới", polygon(square(lon, lat, 0.001))))
	res, err = importString(t, db.Pool, renamed, schema.ImportOptions{ValidFrom: later.AddDate(0, 1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if want := (schema.ImportResult{Read: 1, Inserted: 1, Closed: 1}); !equalCounts(res, want) {
		t.Errorf("rename: got %+v; want %+v", res, want)
	}
	res, err = importString(t, db.Pool, renamed, schema.ImportOptions{ValidFrom: later.AddDate(0, 2, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if want := (schema.ImportResult{Read: 1, Unchanged: 1}); !equalCounts(res, want) {
		t.Errorf("same again: got %+v; want %+v", res, want)
	}
	if got := scalar[int](t, db.Pool, `SELECT count(*) FROM admin_unit WHERE code = '00004'`); got != 3 {
		t.Errorf("got %d versions of 00004; want 3", got)
	}
}

func TestImportUnitsGeometry(t *testing.T) {
	db := testenv.PostGIS(t)
	// Clockwise outer ring, given as a Polygon: stored as a counter-clockwise MultiPolygon.
	cw := `[[[2,40],[2,41],[3,41],[3,40],[2,40]]]`
	// A bow tie crosses itself: invalid, repaired into two triangles.
	bowtie := `[[[4,40],[5,41],[5,40],[4,41],[4,40]]]`
	res, err := importString(t, db.Pool, collection(feature("CW", "cw", polygon(cw)), feature("BOW", "bow", polygon(bowtie))),
		schema.ImportOptions{Level: units.LevelCustom})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Repaired, []string{"BOW"}) || res.Inserted != 2 {
		t.Errorf("got %+v; want 2 inserted and BOW repaired", res)
	}
	var typ string
	var ccw, valid bool
	var area float64
	if err := db.Pool.QueryRow(context.Background(), `
		SELECT GeometryType(boundary), ST_IsPolygonCCW(boundary), ST_IsValid(boundary), ST_Area(boundary)
		FROM admin_unit WHERE code = 'CW'`).Scan(&typ, &ccw, &valid, &area); err != nil {
		t.Fatal(err)
	}
	if typ != "MULTIPOLYGON" || !ccw || !valid || area != 1 {
		t.Errorf("CW: got %s ccw=%v valid=%v area=%v; want MULTIPOLYGON ccw valid area 1", typ, ccw, valid, area)
	}
	if got := scalar[float64](t, db.Pool, `SELECT ST_Area(boundary) FROM admin_unit WHERE code = 'BOW' AND ST_IsValid(boundary)`); got != 0.5 {
		t.Errorf("BOW: got area %v; want 0.5 (two triangles)", got)
	}
}

func TestImportUnitsBadFiles(t *testing.T) {
	db := testenv.PostGIS(t)
	hanoi := feature("01", "Hà Nội", polygon(square(105.8, 21.0, 0.1)))
	tests := []struct {
		name string
		file string
		opts schema.ImportOptions
		want string
	}{
		{"not JSON", "hello", schema.ImportOptions{}, "not valid JSON at byte 1"},
		{"truncated", `{"type":"FeatureCollection","features":[` + hanoi, schema.ImportOptions{}, "ends early"},
		{"a Feature, not a collection", hanoi, schema.ImportOptions{}, `type is "Feature"; want FeatureCollection`},
		{"no features array", `{"type":"FeatureCollection"}`, schema.ImportOptions{}, "no features array"},
		{"no features", collection(), schema.ImportOptions{}, "has no features"},
		{"feature without code", collection(hanoi, `{"type":"Feature","properties":{"name":"x"},"geometry":`+polygon(square(106, 21, 0.1))+`}`),
			schema.ImportOptions{}, "features[1]: properties.code is missing"},
		{"LineString", collection(hanoi, feature("02", "line", `{"type":"LineString","coordinates":[[105,21],[106,22]]}`)),
			schema.ImportOptions{}, "features[1] (code 02): the geometry is a LineString; want Polygon or MultiPolygon"},
		{"no geometry", collection(hanoi, feature("02", "none", "null")), schema.ImportOptions{}, "features[1] (code 02): the geometry is missing"},
		{"duplicate code", collection(hanoi, hanoi), schema.ImportOptions{}, "features[1] (code 01): the code is already used by features[0]"},
		{"code of unknown level", collection(hanoi, feature("123", "x", polygon(square(106, 21, 0.1)))),
			schema.ImportOptions{}, "features[1] (code 123): cannot tell the level from a code of 3 characters"},
		{"open ring", collection(hanoi, feature("02", "x", polygon(`[[[105,21],[106,21],[106,22],[105,22]]]`))),
			schema.ImportOptions{}, "features[1] (code 02): polygon 0 ring 0: ring is not closed"},
		{"projected coordinates", collection(hanoi, feature("02", "x", polygon(`[[[500000,2300000],[510000,2300000],[510000,2310000],[500000,2300000]]]`))),
			schema.ImportOptions{}, "features[1] (code 02): coordinate [500000, 2.3e+06] is not a longitude and latitude"},
		{"commune in no province", collection(feature("99999", "Madrid", polygon(square(-3.7, 40.4, 0.01)))),
			schema.ImportOptions{}, "features[0] (code 99999): no current province contains this commune"},
		{"unknown parent", collection(feature("00001", "x", polygon(square(105.8, 21.0, 0.01)))),
			schema.ImportOptions{Parent: "77"}, "features[0] (code 00001): parent 77 is not a current unit"},
		{"bad level option", collection(hanoi), schema.ImportOptions{Level: "city"}, `level "city" is not one of`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := importString(t, db.Pool, tt.file, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v; want one containing %q", err, tt.want)
			}
			if tt.opts.Level == "" && !errors.Is(err, units.ErrInvalidUnits) {
				t.Errorf("got %v; want it to wrap ErrInvalidUnits", err)
			}
			if got := scalar[int](t, db.Pool, `SELECT count(*) FROM admin_unit`); got != 0 {
				t.Errorf("got %d rows after a failed import; want 0", got)
			}
		})
	}
}

func TestImportUnitsGivenLevelAndParent(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	// The given parent wins over containment: this square lies outside Hà Nội.
	file := collection(feature("HN-ZONE-1", "Khu 1", polygon(square(106.5, 20.5, 0.01))))
	res, err := importString(t, db.Pool, file, schema.ImportOptions{Level: units.LevelCustom, Parent: "01"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (schema.ImportResult{Read: 1, Inserted: 1}); !equalCounts(res, want) {
		t.Errorf("got %+v; want %+v", res, want)
	}
	var level, parent string
	if err := db.Pool.QueryRow(context.Background(), `SELECT level, parent_code FROM admin_unit WHERE code = 'HN-ZONE-1'`).Scan(&level, &parent); err != nil {
		t.Fatal(err)
	}
	if level != "custom" || parent != "01" {
		t.Errorf("got level %q parent %q; want custom, 01", level, parent)
	}
}

func TestUnknownUnits(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	got, err := schema.UnknownUnits(context.Background(), db.Pool, []string{"79", "01", "99999", "00070", "00"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"00", "99999"}; !slices.Equal(got, want) {
		t.Errorf("got %q; want %q", got, want)
	}
}

// TestImportUnitsVersionsStayApart: an import never opens a version that
// overlaps another of its code (a retired code imported again from a time
// it was still valid, or from its very start, which used to fail on the
// unique key and be retried for ever by the import action), never gives a
// unit a parent without a version valid at the unit's start, and never
// starts in the future; a retired code imported again from its end on is a
// new version.
func TestImportUnitsVersionsStayApart(t *testing.T) {
	db := testenv.PostGIS(t)
	ctx := context.Background()
	start := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	retired := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p90 := collection(feature("90", "Tỉnh 90", polygon(square(105.0, 21.0, 0.1))))
	if _, err := importString(t, db.Pool, p90, schema.ImportOptions{ValidFrom: start}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE admin_unit SET valid_to = $1 WHERE code = '90'`, retired); err != nil {
		t.Fatal(err)
	}
	for _, from := range []time.Time{start, start.AddDate(0, 2, 0)} {
		_, err := importString(t, db.Pool, p90, schema.ImportOptions{ValidFrom: from})
		if !errors.Is(err, schema.ErrUnitVersion) || !strings.Contains(err.Error(), "features[0] (code 90): a past version is valid from") {
			t.Errorf("code 90 again from %s, inside its retired version: %v; want ErrUnitVersion naming the past version", from, err)
		}
	}
	if got := scalar[int](t, db.Pool, `SELECT count(*) FROM admin_unit WHERE code = '90'`); got != 1 {
		t.Fatalf("%d versions of 90 after the refused imports; want 1", got)
	}
	if _, err := importString(t, db.Pool, p90, schema.ImportOptions{ValidFrom: retired}); err != nil {
		t.Fatalf("code 90 again from its end: %v", err)
	}

	// A parent that starts after its child.
	p94 := collection(feature("94", "Tỉnh 94", polygon(square(107.0, 21.0, 0.1))))
	if _, err := importString(t, db.Pool, p94, schema.ImportOptions{ValidFrom: retired}); err != nil {
		t.Fatal(err)
	}
	c94 := collection(feature("94001", "Xã 94001", polygon(square(107.0, 21.0, 0.01))))
	for _, opts := range []schema.ImportOptions{{ValidFrom: start, Parent: "94"}, {ValidFrom: start}} {
		_, err := importString(t, db.Pool, c94, opts)
		if !errors.Is(err, units.ErrInvalidUnits) {
			t.Errorf("commune 94001 from %s (parent %q) in province 94, which starts on %s: %v; want ErrInvalidUnits", start, opts.Parent, retired, err)
		}
	}
	if _, err := importString(t, db.Pool, c94, schema.ImportOptions{ValidFrom: retired}); err != nil {
		t.Fatalf("commune 94001 from its province's start: %v", err)
	}

	// Not in the future.
	_, err := importString(t, db.Pool, p94, schema.ImportOptions{ValidFrom: time.Now().Add(24 * time.Hour)})
	if !errors.Is(err, schema.ErrUnitVersion) || !strings.Contains(err.Error(), "in the future") {
		t.Errorf("an import starting tomorrow: %v; want ErrUnitVersion (in the future)", err)
	}
	if got := scalar[int](t, db.Pool, `SELECT count(*) FROM admin_unit a JOIN admin_unit b ON a.code = b.code AND a.id < b.id
		AND tstzrange(a.valid_from, a.valid_to) && tstzrange(b.valid_from, b.valid_to)`); got != 0 {
		t.Errorf("%d pairs of overlapping versions; want none", got)
	}
}

// TestImportUnitsReplaceRetires: provinces 90 and 91 merge into 92 from
// 2026-01-01; the whole map of that day, imported with Replace, retires 90
// and 91 and their commune 91002 that merged away, and moves 90001 and
// 91001 to 92 (found by their boundaries among the current provinces, of
// which 90 and 91 no longer are). A file that would leave a unit under a
// retired parent is refused whole; without Replace nothing is retired.
func TestImportUnitsReplaceRetires(t *testing.T) {
	db := testenv.PostGIS(t)
	start := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	merged := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	before := collection(
		feature("90", "Tỉnh 90", polygon(square(105.0, 21.0, 0.1))),
		feature("91", "Tỉnh 91", polygon(square(105.2, 21.0, 0.1))),
		feature("90001", "Xã 90001", polygon(square(105.0, 21.0, 0.01))),
		feature("91001", "Xã 91001", polygon(square(105.2, 21.0, 0.01))),
		feature("91002", "Xã 91002", polygon(square(105.25, 21.05, 0.01))))
	if _, err := importString(t, db.Pool, before, schema.ImportOptions{ValidFrom: start}); err != nil {
		t.Fatal(err)
	}
	after := collection(
		feature("92", "Tỉnh 92", polygon(`[[[104.85,20.85],[105.35,20.85],[105.35,21.15],[104.85,21.15],[104.85,20.85]]]`)),
		feature("90001", "Xã 90001", polygon(square(105.0, 21.0, 0.01))),
		feature("91001", "Xã 91001", polygon(square(105.2, 21.0, 0.01))))
	current := func() string {
		return scalar[string](t, db.Pool, `SELECT string_agg(code || ':' || coalesce(parent_code, ''), ',' ORDER BY code) FROM admin_unit WHERE valid_to IS NULL`)
	}
	// Without Replace the merged-away units stay.
	if _, err := importString(t, db.Pool, collection(feature("93", "Tỉnh 93", polygon(square(107.0, 21.0, 0.1)))), schema.ImportOptions{ValidFrom: start}); err != nil {
		t.Fatal(err)
	}
	// A whole map that leaves province 93's commune (given its parent) under a retired 93: refused, nothing changed.
	orphan := strings.TrimSuffix(after, "]}") + "," + feature("93001", "Xã 93001", polygon(square(107.0, 21.0, 0.01))) + "]}"
	_, err := importString(t, db.Pool, orphan, schema.ImportOptions{ValidFrom: merged, Replace: true, Parent: ""})
	if err == nil {
		t.Fatal("a whole map retiring 93 while its commune 93001 stays: no error")
	}
	if got, want := current(), "90:,90001:90,91:,91001:91,91002:91,93:"; got != want {
		t.Fatalf("current units after a refused replace: %s; want %s", got, want)
	}
	res, err := importString(t, db.Pool, after, schema.ImportOptions{ValidFrom: merged, Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Retired != 4 {
		t.Errorf("retired %d units; want 4 (90, 91, 93, 91002)", res.Retired)
	}
	if got, want := current(), "90001:92,91001:92,92:"; got != want {
		t.Errorf("current units after the merger: %s; want %s", got, want)
	}
	if got := scalar[string](t, db.Pool, `SELECT string_agg(code, ',' ORDER BY code) FROM admin_unit WHERE valid_to = $1`, merged); got != "90,90001,91,91001,91002,93" {
		t.Errorf("versions closed at the merger: %s", got)
	}
	// A file of provinces alone retires provinces only: its communes stay, under a province of the file.
	later := merged.AddDate(0, 1, 0)
	provinces := collection(feature("92", "Tỉnh 92 mới", polygon(`[[[104.85,20.85],[105.35,20.85],[105.35,21.15],[104.85,21.15],[104.85,20.85]]]`)))
	if res, err := importString(t, db.Pool, provinces, schema.ImportOptions{ValidFrom: later, Replace: true}); err != nil || res.Retired != 0 {
		t.Fatalf("a whole map of provinces: %+v, %v; want nothing retired", res, err)
	}
	if got, want := current(), "90001:92,91001:92,92:"; got != want {
		t.Errorf("current units after a map of provinces alone: %s; want %s (the communes kept)", got, want)
	}
	// One that would retire 92, the province of current communes, is refused.
	other := collection(feature("95", "Tỉnh 95", polygon(square(108.0, 21.0, 0.1))))
	if _, err := importString(t, db.Pool, other, schema.ImportOptions{ValidFrom: later.AddDate(0, 1, 0), Replace: true}); !errors.Is(err, units.ErrInvalidUnits) ||
		!strings.Contains(err.Error(), "its parent 92") {
		t.Errorf("a whole map of provinces without 92, the parent of current communes: %v; want refused naming 92", err)
	}
}

// TestImportUnitsOneAtATime: two imports at once (the CLI's direct import
// and the hub's unit.import action, or two CLIs) are applied one after the
// other. The second waits for the first's transaction, then finds the same
// map unchanged, applies a later map as the next version, or refuses a
// different map from the same time as a version conflict (ErrUnitVersion);
// it no longer fails on admin_unit's unique keys (23505) against rows it
// could not see when it compared.
func TestImportUnitsOneAtATime(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	province := collection(feature("90", "Tỉnh 90", polygon(square(105.0, 21.0, 0.1))))
	communes := collection(
		feature("90001", "Xã 90001", polygon(square(105.0, 21.0, 0.01))),
		feature("90002", "Xã 90002", polygon(square(105.05, 21.05, 0.01))))
	moved := collection(
		feature("90001", "Xã 90001", polygon(square(105.0, 21.0, 0.02))),
		feature("90002", "Xã 90002", polygon(square(105.05, 21.05, 0.01))))
	for _, tc := range []struct {
		name    string
		second  string
		from    time.Time
		want    schema.ImportResult
		wantErr error
	}{
		{name: "the same map again", second: communes, from: start, want: schema.ImportResult{Read: 2, Unchanged: 2}},
		{name: "a later map", second: moved, from: start.AddDate(0, 1, 0), want: schema.ImportResult{Read: 2, Inserted: 1, Closed: 1, Unchanged: 1}},
		{name: "another map from the same time", second: moved, from: start, wantErr: schema.ErrUnitVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := testenv.PostGIS(t)
			ctx := context.Background()
			if _, err := importString(t, db.Pool, province, schema.ImportOptions{ValidFrom: start}); err != nil {
				t.Fatal(err)
			}
			// The first import, as schema.ImportUnits runs it, held open.
			commit := testenv.HoldUnitsImport(t, db.Pool, communes, schema.ImportOptions{ValidFrom: start})
			type outcome struct {
				res schema.ImportResult
				err error
			}
			got := testenv.WhileHeld(t, db.Pool, "the second import", commit, func() outcome {
				res, err := schema.ImportUnits(ctx, db.Pool, strings.NewReader(tc.second), schema.ImportOptions{ValidFrom: tc.from})
				return outcome{res, err}
			}, func(o outcome) string { return fmt.Sprintf("%+v, %v", o.res, o.err) })
			switch {
			case tc.wantErr != nil && !errors.Is(got.err, tc.wantErr):
				t.Fatalf("the second import: %v; want %v", got.err, tc.wantErr)
			case tc.wantErr == nil && got.err != nil:
				t.Fatalf("the second import: %v; want it applied after the first", got.err)
			case tc.wantErr == nil && !equalCounts(got.res, tc.want):
				t.Errorf("the second import: %+v; want %+v", got.res, tc.want)
			}
			if n := scalar[int](t, db.Pool, `SELECT count(*) FROM admin_unit WHERE valid_to IS NULL AND parent_code = '90'`); n != 2 {
				t.Errorf("%d current communes of 90; want 2", n)
			}
		})
	}
}
