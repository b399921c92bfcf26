package units

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/twpayne/go-geom"

	"github.com/iochub/iochub/internal/geomcheck"
	"github.com/iochub/iochub/internal/seed"
)

// seedUnits are Hà Nội's 126 wards and the 34 provinces of the 2025 map.
func seedUnits(tb testing.TB) (wards, provinces []Unit) {
	tb.Helper()
	wards, err := FromGeoJSON(bytes.NewReader(seed.HanoiWards2025()), LevelCommune, "01")
	if err != nil {
		tb.Fatal(err)
	}
	provinces, err = FromGeoJSON(bytes.NewReader(seed.Provinces2025()), LevelProvince, "")
	if err != nil {
		tb.Fatal(err)
	}
	return wards, provinces
}

// TestStripIndexAgrees checks the latitude-strip index of big rings against
// the plain crossing-number test on random points in and around Hà Nội.
func TestStripIndexAgrees(t *testing.T) {
	ws, ps := seedUnits(t)
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
	ws, _ := seedUnits(t)
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

// TestTimelineSharesRings: a province valid throughout and a group edited
// 50 times make 51 periods; the province's rings are prepared once and
// shared by every period's index (before, each period copied every boundary
// again: 200 group edits of 160 units took 1.4 GB), and each period still
// locates a point of the province in it.
func TestTimelineSharesRings(t *testing.T) {
	big := geom.NewMultiPolygonFlat(geom.XY, []float64{105, 20, 106, 20, 106, 21, 105, 21, 105, 20}, [][]int{{10}})
	small := geom.NewMultiPolygonFlat(geom.XY, []float64{105.1, 20.1, 105.2, 20.1, 105.2, 20.2, 105.1, 20.2, 105.1, 20.1}, [][]int{{10}})
	us := []Unit{{Code: "01", Level: LevelProvince, Boundary: big}}
	start := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	for i := range 50 {
		v := Unit{Code: "G", Level: LevelCustom, Boundary: small, ValidFrom: start.Add(time.Duration(i) * time.Hour)}
		if i < 49 {
			v.ValidTo = start.Add(time.Duration(i+1) * time.Hour)
		}
		us = append(us, v)
	}
	tl := NewTimeline(us)
	periods := tl.Periods()
	if len(periods) != 51 {
		t.Fatalf("%d periods; want 51", len(periods))
	}
	var first *float64
	for p, ix := range periods {
		i, ok := ix.byCode["01"]
		if !ok {
			t.Fatalf("period %d has no province 01", p)
		}
		xy := &ix.entries[i].polys[0].rings[0].xy[0]
		if first == nil {
			first = xy
		} else if xy != first {
			t.Fatalf("period %d holds its own copy of province 01's ring; want the one prepared once", p)
		}
		if u, ok := ix.Locate(105.5, 20.5); !ok || u.Code != "01" {
			t.Fatalf("period %d locates (105.5, 20.5) in %q, %v; want 01", p, u.Code, ok)
		}
	}
}

// BenchmarkTimelineGroupEdits builds the timeline of the 34 provinces and
// Hà Nội's 126 wards with a group edited 100 times (101 periods), beside its
// baseline, one index of the same units (one period). B/op is the memory a
// refresh of the ingest's map takes.
func BenchmarkTimelineGroupEdits(b *testing.B) {
	ws, ps := seedUnits(b)
	base := append(ps, ws...)
	us := slices.Clone(base)
	start := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	for i := range 100 {
		v := ws[0]
		v.Code, v.Level, v.ValidFrom = "G", LevelCustom, start.Add(time.Duration(i)*time.Hour)
		if i < 99 {
			v.ValidTo = start.Add(time.Duration(i+1) * time.Hour)
		}
		us = append(us, v)
	}
	b.Run("timeline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if len(NewTimeline(us).Periods()) != 101 {
				b.Fatal("want 101 periods")
			}
		}
	})
	b.Run("baseline-one-index", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			NewIndex(base)
		}
	})
}
