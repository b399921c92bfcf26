package schema_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/seed"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/units"
)

// haGiang is a point of Hà Giang town: in the old province Hà Giang (02)
// until 2025-06-30, in Tuyên Quang (08), which absorbed it, since 2025-07-01.
var haGiang = [2]float64{104.98, 22.82}

// TestHierarchyBothMaps loads both maps as `iochub dev` does and checks the
// tree up to VN for each, and the attribution of a point by time, both in Go
// (LoadUnitVersions, units.Timeline) and in SQL (unit_ancestors).
func TestHierarchyBothMaps(t *testing.T) {
	db := testenv.PostGIS(t)
	ctx := context.Background()
	if err := schema.EnsureNational(ctx, db.Pool); err != nil {
		t.Fatal(err)
	}
	n, err := schema.ImportPre2025Provinces(ctx, db.Pool, seed.ProvincesPre2025(), seed.ProvinceMerges2025())
	if err != nil || n != 63 {
		t.Fatalf("pre-2025 provinces: %d inserted, %v; want 63", n, err)
	}
	mustImport(t, db.Pool, seed.Provinces2025(), schema.ImportOptions{})
	mustImport(t, db.Pool, seed.HanoiWards2025(), schema.ImportOptions{})
	if n, err := schema.ImportPre2025Provinces(ctx, db.Pool, seed.ProvincesPre2025(), seed.ProvinceMerges2025()); err != nil || n != 0 {
		t.Errorf("second pre-2025 import: %d inserted, %v; want 0, nil", n, err)
	}

	for _, c := range []struct {
		at        string
		provinces int
	}{{"2025-06-30T23:59:59+07:00", 63}, {"2025-07-01T00:00:00+07:00", 34}} {
		if got := scalar[int](t, db.Pool, `SELECT count(*) FROM admin_unit WHERE level = 'province' AND parent_code = 'VN'
			AND valid_from <= $1::timestamptz AND (valid_to IS NULL OR $1::timestamptz < valid_to)`, c.at); got != c.provinces {
			t.Errorf("provinces under VN at %s: %d; want %d", c.at, got, c.provinces)
		}
	}
	// Every version's parent chain ends at VN at the version's start.
	if got := scalar[int](t, db.Pool, `SELECT count(*) FROM admin_unit a
		WHERE a.code <> 'VN' AND NOT EXISTS (SELECT FROM unit_ancestors(a.code, a.valid_from) u WHERE u.code = 'VN')`); got != 0 {
		t.Errorf("%d unit versions whose ancestors do not reach VN", got)
	}

	vs, err := schema.LoadUnitVersions(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	tl := units.NewTimeline(vs)
	for _, c := range []struct {
		at   time.Time
		want []string
	}{
		{time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC), []string{"02", "VN"}},
		{time.Date(2025, 8, 1, 12, 0, 0, 0, time.UTC), []string{"08", "VN"}},
	} {
		u, ok := tl.At(c.at).Locate(haGiang[0], haGiang[1])
		if !ok || u.Code != c.want[0] {
			t.Errorf("Hà Giang at %s: located in %q (%v); want %s", c.at, u.Code, ok, c.want[0])
		}
		var got []string
		for _, a := range tl.Ancestors(u.Code, c.at) {
			got = append(got, a.Code)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("ancestors at %s: %v; want %v", c.at, got, c.want)
		}
		sqlGot, err := schema.UnitAncestors(ctx, db.Pool, u.Code, c.at)
		if err != nil || !slices.Equal(sqlGot, c.want) {
			t.Errorf("unit_ancestors(%s, %s): %v, %v; want %v", u.Code, c.at, sqlGot, err, c.want)
		}
		var inSQL string
		if err := db.Pool.QueryRow(ctx, `SELECT code FROM admin_unit WHERE level = 'province'
			AND valid_from <= $3 AND (valid_to IS NULL OR $3 < valid_to)
			AND ST_Contains(boundary, ST_SetSRID(ST_MakePoint($1, $2), 4326))`, haGiang[0], haGiang[1], c.at).Scan(&inSQL); err != nil || inSQL != c.want[0] {
			t.Errorf("PostGIS, province containing Hà Giang at %s: %q, %v; want %s", c.at, inSQL, err, c.want[0])
		}
	}
	if got, _ := schema.UnitAncestors(ctx, db.Pool, "00070", time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC)); !slices.Equal(got, []string{"00070", "01", "VN"}) {
		t.Errorf("ancestors of ward 00070 in August 2025: %v; want 00070, 01, VN", got)
	}
	if got, _ := schema.UnitAncestors(ctx, db.Pool, "02", time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC)); len(got) != 0 {
		t.Errorf("ancestors of 02 in August 2025, after it merged: %v; want none", got)
	}
}

// TestImportClosedVersionsOverlap: a past version overlapping a stored one
// of the same code is refused and nothing is stored.
func TestImportClosedVersionsOverlap(t *testing.T) {
	db := testenv.PostGIS(t)
	ctx := context.Background()
	if err := schema.EnsureNational(ctx, db.Pool); err != nil {
		t.Fatal(err)
	}
	mustImport(t, db.Pool, seed.Provinces2025(), schema.ImportOptions{})
	recs, _, err := units.Pre2025Provinces(seed.ProvincesPre2025(), seed.ProvinceMerges2025())
	if err != nil {
		t.Fatal(err)
	}
	// Valid until 2025-08-01: overlaps the 2025 versions of 01, 08, ...
	_, err = schema.ImportClosedVersions(ctx, db.Pool, recs, schema.Pre2025ValidFrom, time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC))
	if !errors.Is(err, schema.ErrUnitVersion) {
		t.Fatalf("overlapping import: %v; want ErrUnitVersion", err)
	}
	if got := scalar[int](t, db.Pool, `SELECT count(*) FROM admin_unit WHERE valid_to IS NOT NULL`); got != 0 {
		t.Errorf("%d closed versions stored by a refused import; want 0", got)
	}
}
