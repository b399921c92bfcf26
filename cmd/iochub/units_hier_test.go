package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/testenv"
)

// TestCLIUnitsPre2025AndGroup: on a database that has only the 2025 map,
// import-pre2025 adds VN (now the provinces' parent) and the 63 old
// provinces; group defines a custom group and refuses an unknown member.
func TestCLIUnitsPre2025AndGroup(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	out, errOut, err := runCLI(t, "units", "import-pre2025", "--database-url", db.URL)
	if err != nil || !strings.Contains(out, "63 new") {
		t.Fatalf("units import-pre2025 = %q, %v; want 63 new\n%s", out, err, errOut)
	}
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM admin_unit
		WHERE level = 'province' AND parent_code = 'VN' AND valid_to IS NULL`).Scan(&n); err != nil || n != 34 {
		t.Errorf("current provinces under VN: %d (%v); want 34", n, err)
	}
	if out, _, err := runCLI(t, "units", "import-pre2025", "--database-url", db.URL); err != nil || !strings.Contains(out, ": 0 new") {
		t.Errorf("second import-pre2025 = %q, %v; want 0 new", out, err)
	}
	out, errOut, err = runCLI(t, "units", "group", "--database-url", db.URL, "--code", "inner-city", "--name", "Nội đô", "--valid-from", "2025-09-01", "00070", "00166")
	if err != nil || !strings.Contains(out, "group inner-city: 2 members") {
		t.Fatalf("units group = %q, %v\n%s", out, err, errOut)
	}
	if _, _, err := runCLI(t, "units", "group", "--database-url", db.URL, "--code", "bad", "99999"); !errors.Is(err, schema.ErrGroup) || !strings.Contains(err.Error(), "99999") {
		t.Errorf("group with an unknown member: %v; want ErrGroup naming 99999", err)
	}
}
