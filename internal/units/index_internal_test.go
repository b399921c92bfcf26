package units

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/iochub/iochub/internal/seed"
)

// TestStripIndexAgrees checks the latitude-strip index of big rings against
// the plain crossing-number test on random points in and around Hà Nội.
func TestStripIndexAgrees(t *testing.T) {
	ws, err := FromGeoJSON(bytes.NewReader(seed.HanoiWards2025()), LevelCommune, "01")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := FromGeoJSON(bytes.NewReader(seed.Provinces2025()), LevelProvince, "")
	if err != nil {
		t.Fatal(err)
	}
	ix := NewIndex(append(ws, ps...))
	rng := rand.New(rand.NewPCG(1, 2))
	indexed, checked := 0, 0
	for _, e := range ix.entries {
		for _, p := range e.polys {
			for _, r := range p.rings {
				if r.strips == nil {
					continue
				}
				indexed++
				for range 200 {
					x := r.box[0] + (r.box[2]-r.box[0])*(rng.Float64()*1.2-0.1)
					y := r.box[1] + (r.box[3]-r.box[1])*(rng.Float64()*1.2-0.1)
					if got, want := r.contains(x, y), inRing(r.xy, x, y); got != want {
						t.Fatalf("unit %s: contains(%v, %v) = %v; plain test says %v", e.unit.Code, x, y, got, want)
					}
					checked++
				}
			}
		}
	}
	if indexed < 100 {
		t.Errorf("got %d indexed rings; want most of the 160 units' rings indexed", indexed)
	}
	t.Logf("%d rings, %d points", indexed, checked)
}
