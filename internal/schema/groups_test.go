package schema_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/seed"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/units"
)

// groupsDB is a database with the national unit, the 34 provinces and Hà
// Nội's wards, the provinces under VN.
func groupsDB(t *testing.T) *testenv.DBEnv {
	t.Helper()
	db := testenv.PostGIS(t)
	if err := schema.EnsureNational(context.Background(), db.Pool); err != nil {
		t.Fatal(err)
	}
	mustImport(t, db.Pool, seed.Provinces2025(), schema.ImportOptions{})
	mustImport(t, db.Pool, seed.HanoiWards2025(), schema.ImportOptions{})
	return db
}

// TestDefineGroup: a custom group of wards counts its members and their
// descendants at the group's times; changing it closes the old version.
func TestDefineGroup(t *testing.T) {
	db := groupsDB(t)
	ctx := context.Background()
	t1 := time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
	t2 := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	if err := schema.DefineGroup(ctx, db.Pool, schema.Group{Code: "inner-city", NameVI: "Nội đô", Members: []string{"00070", "00166", "00070"}, ValidFrom: t1}); err != nil {
		t.Fatal(err)
	}
	if err := schema.DefineGroup(ctx, db.Pool, schema.Group{Code: "inner-city", NameVI: "Nội đô", Members: []string{"00070"}, ValidFrom: t2}); err != nil {
		t.Fatal(err)
	}
	at := func(d time.Time, code string) []string {
		t.Helper()
		g, err := schema.UnitGroups(ctx, db.Pool, code, d)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	for _, c := range []struct {
		at   time.Time
		code string
		want []string
	}{
		{t1.Add(-time.Second), "00070", nil},
		{t1, "00070", []string{"inner-city"}},
		{t1, "00166", []string{"inner-city"}},
		{t2, "00166", nil},
		{t2, "00070", []string{"inner-city"}},
		{t2, "01", nil},
	} {
		if got := at(c.at, c.code); !slices.Equal(got, c.want) {
			t.Errorf("groups of %s at %s: %v; want %v", c.code, c.at, got, c.want)
		}
	}
	if got := scalar[int](t, db.Pool, `SELECT count(*) FROM admin_unit WHERE code = 'inner-city' AND level = 'custom' AND parent_code = 'VN'`); got != 2 {
		t.Errorf("%d versions of the group under VN; want 2", got)
	}
	if !scalar[bool](t, db.Pool, `SELECT ST_Equals(g.boundary, w.boundary) FROM admin_unit g, admin_unit w
		WHERE g.code = 'inner-city' AND g.valid_to IS NULL AND w.code = '00070'`) {
		t.Error("the group of 00070 alone does not have 00070's boundary")
	}
	for _, c := range []struct {
		name string
		g    schema.Group
		want error
	}{
		{"unknown member", schema.Group{Code: "x", Members: []string{"00070", "99999"}}, schema.ErrGroup},
		{"no members", schema.Group{Code: "x"}, schema.ErrGroup},
		{"a province's code", schema.Group{Code: "01", Members: []string{"00070"}}, schema.ErrGroup},
		{"a bad code", schema.Group{Code: "a.b", Members: []string{"00070"}}, schema.ErrGroup},
		{"a NUL in the name", schema.Group{Code: "z", NameVI: "nội\x00thành", Members: []string{"00070"}}, schema.ErrGroup},
		{"a name not UTF-8", schema.Group{Code: "z", NameEN: "\xff", Members: []string{"00070"}}, schema.ErrGroup},
		{"a NUL in the code", schema.Group{Code: "z\x00", Members: []string{"00070"}}, schema.ErrGroup},
		{"a NUL in a member", schema.Group{Code: "z", Members: []string{"00070", "0\x00"}}, schema.ErrGroup},
		{"not later", schema.Group{Code: "inner-city", Members: []string{"00070"}, ValidFrom: t2}, schema.ErrUnitVersion},
		{"a member before it existed", schema.Group{Code: "y", Members: []string{"00070"}, ValidFrom: t1.AddDate(-1, 0, 0)}, schema.ErrGroup},
	} {
		if err := schema.DefineGroup(ctx, db.Pool, c.g); !errors.Is(err, c.want) {
			t.Errorf("%s: %v; want %v", c.name, err, c.want)
		}
	}
}

// TestGroupAndUnitNeverShareACode: an import whose feature has a current
// group's code is refused (it would close the group and leave its members
// rolling up into a unit), and a group is not given the code of a unit
// retired since.
func TestGroupAndUnitNeverShareACode(t *testing.T) {
	db := groupsDB(t)
	ctx := context.Background()
	t1 := time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
	if err := schema.DefineGroup(ctx, db.Pool, schema.Group{Code: "77", NameVI: "Nhóm", Members: []string{"00070"}, ValidFrom: t1}); err != nil {
		t.Fatal(err)
	}
	_, err := importString(t, db.Pool, collection(feature("77", "Tỉnh 77", polygon(square(107.0, 21.0, 0.1)))), schema.ImportOptions{ValidFrom: t1.AddDate(0, 1, 0)})
	if !errors.Is(err, units.ErrInvalidUnits) || !strings.Contains(err.Error(), "features[0] (code 77)") {
		t.Errorf("importing a province with group 77's code: %v; want refused naming features[0]", err)
	}
	if got := scalar[string](t, db.Pool, `SELECT level FROM admin_unit WHERE code = '77' AND valid_to IS NULL`); got != units.LevelCustom {
		t.Errorf("code 77 is now of level %s; want the group kept", got)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE admin_unit SET valid_to = '2026-01-01' WHERE code = '00004' AND valid_to IS NULL`); err != nil {
		t.Fatal(err)
	}
	err = schema.DefineGroup(ctx, db.Pool, schema.Group{Code: "00004", NameVI: "Nhóm", Members: []string{"00070"}, ValidFrom: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)})
	if !errors.Is(err, schema.ErrGroup) || !strings.Contains(err.Error(), "was a unit of level commune") {
		t.Errorf("a group with the code of ward 00004, retired: %v; want ErrGroup", err)
	}
}
