package units_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/iochub/iochub/internal/units"
)

// TestParentsUp: a code and every code above it in any version (commune c
// moved from province p0 to p1), and a cycle in bad data ends the walk.
func TestParentsUp(t *testing.T) {
	p := units.ParentsOf([]units.Unit{
		{Code: "p0", ParentCode: "VN"}, {Code: "p1", ParentCode: "VN"},
		{Code: "c", ParentCode: "p0"}, {Code: "c", ParentCode: "p1"},
		{Code: "x", ParentCode: "y"}, {Code: "y", ParentCode: "x"},
	})
	for code, want := range map[string][]string{
		"c":  {"VN", "c", "p0", "p1"},
		"p1": {"VN", "p1"},
		"x":  {"x", "y"},
		"z":  {"z"},
	} {
		if got := slices.Sorted(maps.Keys(p.Up(code))); !slices.Equal(got, want) {
			t.Errorf("Up(%s) = %v; want %v", code, got, want)
		}
	}
}
