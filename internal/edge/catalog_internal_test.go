package edge

import (
	"fmt"
	"slices"
	"testing"

	"github.com/iochub/iochub/internal/units"
)

// reverseChain is a chain of n units, each the child of the one before,
// listed last first (the order that made the old fixed-point walk take n
// passes), with a unit of another tree beside it.
func reverseChain(n int) []units.Unit {
	out := []units.Unit{{Code: "other"}}
	for i := n - 1; i >= 0; i-- {
		u := units.Unit{Code: fmt.Sprintf("u%d", i)}
		if i > 0 {
			u.ParentCode = fmt.Sprintf("u%d", i-1)
		}
		out = append(out, u)
	}
	return out
}

// TestSubtreeOfAReverseChain: every unit of the chain is below its first,
// whatever their order; the other tree is not; a unit not in the list has
// no subtree.
func TestSubtreeOfAReverseChain(t *testing.T) {
	all := reverseChain(5000)
	in := subtree(all, "u0")
	if len(in) != 5000 || !in["u4999"] || in["other"] {
		t.Fatalf("subtree of u0: %d units, u4999 %v, other %v; want the 5,000 of the chain", len(in), in["u4999"], in["other"])
	}
	if in := subtree(all, "u4990"); len(in) != 10 || in["u4989"] {
		t.Errorf("subtree of u4990: %d units; want 10", len(in))
	}
	if in := subtree(all, "nowhere"); len(in) != 0 {
		t.Errorf("subtree of a unit not listed: %v", in)
	}
}

// BenchmarkSubtreeReverseChain: 16,000 units in a chain listed last first
// (5.5 s when each pass of a fixed-point walk added one).
func BenchmarkSubtreeReverseChain(b *testing.B) {
	all := reverseChain(16000)
	for b.Loop() {
		if len(subtree(all, "u0")) != 16000 {
			b.Fatal("wrong subtree")
		}
	}
}

// TestSubjectFilters: an edge of a province sources through the province's
// filter; an edge of a district through one filter per unit at or below it
// and per province of one of its versions (commune c2 moved from province
// p0 to p1); no filter names a unit outside the edge's subtree.
func TestSubjectFilters(t *testing.T) {
	all := []units.Unit{
		{Code: "p0", Level: units.LevelProvince},
		{Code: "p1", Level: units.LevelProvince},
		{Code: "d1", Level: units.LevelDistrict, ParentCode: "p1"},
		{Code: "c1", Level: units.LevelCommune, ParentCode: "d1"},
		{Code: "c2", Level: units.LevelCommune, ParentCode: "p0"},
		{Code: "c2", Level: units.LevelCommune, ParentCode: "d1"},
		{Code: "c3", Level: units.LevelCommune, ParentCode: "p1"},
	}
	if got := SubjectFilters(Catalog{Unit: "p1", Units: all}); !slices.Equal(got, []string{"ioc.feed.p1.>"}) {
		t.Errorf("filters of the edge of a province: %v", got)
	}
	want := []string{"ioc.feed.p0.c2.>", "ioc.feed.p1.c1.>", "ioc.feed.p1.c2.>", "ioc.feed.p1.d1.>"}
	if got := SubjectFilters(Catalog{Unit: "d1", Units: all}); !slices.Equal(got, want) {
		t.Errorf("filters of the edge of d1: %v; want %v", got, want)
	}
	if got := SubjectFilters(Catalog{Unit: "c3", Units: all}); !slices.Equal(got, []string{"ioc.feed.p1.c3.>"}) {
		t.Errorf("filters of the edge of commune c3: %v", got)
	}
}
