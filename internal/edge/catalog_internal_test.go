package edge

import (
	"fmt"
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
