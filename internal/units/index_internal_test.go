package units

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/iochub/iochub/internal/geomcheck"
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

// TestCrossesAgrees checks the strip index's crossing test of rings against
// every pair of edges, on random rings over the boxes of Hà Nội's units:
// short edges (a few strips) and long ones (many).
func TestCrossesAgrees(t *testing.T) {
	ws, err := FromGeoJSON(bytes.NewReader(seed.HanoiWards2025()), LevelCommune, "01")
	if err != nil {
		t.Fatal(err)
	}
	ix := NewIndex(ws)
	rng := rand.New(rand.NewPCG(3, 4))
	both, indexed := [2]int{}, 0
	for _, e := range ix.entries {
		for _, p := range e.polys {
			for _, r := range p.rings {
				if r.strips != nil {
					indexed++
				}
				w, h := r.box[2]-r.box[0], r.box[3]-r.box[1]
				for _, step := range []float64{0.02, 0.3} {
					for range 20 {
						b := make([]float64, 0, 2*12)
						for range 12 {
							if len(b) == 0 {
								b = append(b, r.box[0]+w*(rng.Float64()*1.4-0.2), r.box[1]+h*(rng.Float64()*1.4-0.2))
								continue
							}
							b = append(b, b[len(b)-2]+w*step*(rng.Float64()*2-1), b[len(b)-1]+h*step*(rng.Float64()*2-1))
						}
						b = append(b, b[0], b[1])
						got, want := r.crosses(b), allPairsCross(r.xy, b)
						if got != want {
							t.Fatalf("unit %s: crosses(%v) = %v; every pair says %v", e.unit.Code, b, got, want)
						}
						if got {
							both[0]++
						} else {
							both[1]++
						}
					}
				}
			}
		}
	}
	if indexed < 100 || both[0] < 100 || both[1] < 100 {
		t.Errorf("%d indexed rings, %d crossing and %d not: want each case well covered", indexed, both[0], both[1])
	}
}

// allPairsCross is the crossing test of every edge of a against every edge of b.
func allPairsCross(a, b []float64) bool {
	for i := 0; i+3 < len(a); i += 2 {
		for j := 0; j+3 < len(b); j += 2 {
			if geomcheck.SegmentsIntersect(a[i], a[i+1], a[i+2], a[i+3], b[j], b[j+1], b[j+2], b[j+3]) {
				return true
			}
		}
	}
	return false
}
