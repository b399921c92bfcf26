package geomcheck

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/twpayne/go-geom"
)

func TestCoord(t *testing.T) {
	tests := []struct {
		lon, lat float64
		want     string // "" for accepted
	}{
		{105.85, 21.03, ""},
		{-180, -90, ""},
		{180, 90, ""},
		{math.NaN(), 21, "finite"},
		{105, math.Inf(-1), "finite"},
		{180.5, 21, "longitude 180.5 is outside [-180, 180]"},
		{21.03, 105.85, "latitude 105.85 is outside [-90, 90]; " + SwappedHint},
		{170, 95, "latitude 95 is outside [-90, 90]"},
	}
	for _, tc := range tests {
		err := Coord(tc.lon, tc.lat)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("Coord(%v, %v) = %v; want nil", tc.lon, tc.lat, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("Coord(%v, %v) = %v; want %q", tc.lon, tc.lat, err, tc.want)
		}
	}
	if err := Coord(170, 95); strings.Contains(err.Error(), SwappedHint) {
		t.Errorf("Coord(170, 95) = %v; 95 is no longitude for a swap", err)
	}
}

func square(x, y, d float64) []float64 {
	return []float64{x, y, x + d, y, x + d, y + d, x, y + d, x, y}
}

func TestRing(t *testing.T) {
	tests := []struct {
		name string
		xy   []float64
		want string
	}{
		{"square", square(0, 0, 1), ""},
		{"three points", []float64{0, 0, 1, 0, 0, 0}, "a ring needs at least 4 points, got 3"},
		{"open", []float64{0, 0, 1, 0, 1, 1, 0, 1}, "ring is not closed: the last point must repeat the first"},
		{"two distinct points", []float64{0, 0, 1, 0, 0, 0, 1, 0, 0, 0}, "a ring needs at least 3 distinct points"},
		{"bow tie", []float64{0, 0, 1, 1, 1, 0, 0, 1, 0, 0}, "ring intersects itself (edges 0 and 2 cross)"},
		{"spike back on itself", []float64{0, 0, 2, 0, 1, 0, 1, 1, 0, 0}, "ring intersects itself"},
	}
	for _, tc := range tests {
		err := Ring(tc.xy)
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Ring = %v; want %q", tc.name, err, tc.want)
		}
	}
}

func TestRingTooComplex(t *testing.T) {
	// A comb: every edge spans the same longitudes, so the sweep compares
	// every pair and stops at maxEdgePairs.
	var xy []float64
	for i := 0; i < 2100; i++ {
		y := float64(i) * 1e-3
		xy = append(xy, 0, y, 1, y+5e-4)
	}
	xy = append(xy, -1, 3, xy[0], xy[1])
	if err := Ring(xy); !errors.Is(err, ErrTooComplex) {
		t.Errorf("Ring(comb) = %v; want ErrTooComplex", err)
	}
}

// Two holes of 4,990 vertices that coincide: every vertex of one lies on
// the other, and telling their sides apart took a pass over one per vertex
// of the other (8× the time of one hole). The passes count against the
// bound: ErrTooComplex, not a quadratic cost.
func TestRingsTooComplex(t *testing.T) {
	var hole []float64
	const n = 4990
	for i := range n {
		a := 2 * math.Pi * float64(i) / n
		hole = append(hole, 5+3*math.Cos(a), 5+3*math.Sin(a))
	}
	hole = append(hole, hole[0], hole[1])
	if err := Rings([][]float64{square(0, 0, 10), hole, slices.Clone(hole)}); !errors.Is(err, ErrTooComplex) {
		t.Errorf("Rings(two coinciding holes) = %v; want ErrTooComplex", err)
	}
	if err := Rings([][]float64{square(0, 0, 10), hole}); err != nil {
		t.Errorf("Rings(one hole) = %v; want nil", err)
	}
	// A shell of 10,000 vertices with 250 holes apart: each hole's first
	// vertex decides; nothing of the bound is spent.
	var shell []float64
	for i := range 10000 {
		a := 2 * math.Pi * float64(i) / 10000
		shell = append(shell, 50+50*math.Cos(a), 50+50*math.Sin(a))
	}
	shell = append(shell, shell[0], shell[1])
	rings := [][]float64{shell}
	for i := range 250 {
		rings = append(rings, square(30+float64(i%16)*2.5, 30+float64(i/16)*2.5, 1))
	}
	if err := Rings(rings); err != nil {
		t.Errorf("Rings(a shell of 10,000 vertices, 250 holes) = %v; want nil", err)
	}
}

func TestRings(t *testing.T) {
	shell := square(0, 0, 10)
	tests := []struct {
		name  string
		rings [][]float64
		ring  int // -1 for accepted
		want  string
	}{
		{"hole inside", [][]float64{shell, square(1, 1, 1)}, -1, ""},
		{"hole touching the shell at a point", [][]float64{shell, {0, 5, 1, 4, 1, 6, 0, 5}}, -1, ""},
		{"hole outside", [][]float64{shell, square(20, 20, 1)}, 1, "hole 1 lies outside the outer ring"},
		{"hole crossing the shell", [][]float64{shell, square(9, 1, 2)}, 1, "hole 1 crosses the outer ring"},
		{"holes crossing", [][]float64{shell, square(1, 1, 2), square(2, 2, 2)}, 2, "hole 2 crosses hole 1"},
		{"hole in a hole", [][]float64{shell, square(1, 1, 5), square(2, 2, 1)}, 2, "hole 2 lies inside hole 1"},
	}
	for _, tc := range tests {
		err := Rings(tc.rings)
		if tc.ring < 0 {
			if err != nil {
				t.Errorf("%s: Rings = %v; want nil", tc.name, err)
			}
			continue
		}
		var re *RingError
		if !errors.As(err, &re) || re.Ring != tc.ring || !strings.Contains(re.Reason, tc.want) {
			t.Errorf("%s: Rings = %v; want ring %d: %q", tc.name, err, tc.ring, tc.want)
		}
	}
}

func TestStorable(t *testing.T) {
	poly := func(flat []float64, ends ...int) *geom.Polygon { return geom.NewPolygonFlat(geom.XY, flat, ends) }
	mp := geom.NewMultiPolygon(geom.XY)
	if err := mp.Push(poly(square(0, 0, 1), 10)); err != nil {
		t.Fatal(err)
	}
	if err := mp.Push(poly([]float64{5, 5, 6, 5, 6, 6, 5, 6}, 8)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		g    geom.T
		want string
	}{
		{"nil", nil, ""},
		{"point", geom.NewPointFlat(geom.XY, []float64{105.85, 21.03}), ""},
		{"line", geom.NewLineStringFlat(geom.XY, []float64{105, 21, 106, 22}), ""},
		{"polygon", poly(square(105, 21, 0.1), 10), ""},
		// Storable leaves shape rules (self-intersection) to Ring: PostGIS stores a bow tie.
		{"bow tie", poly([]float64{0, 0, 1, 1, 1, 0, 0, 1, 0, 0}, 10), ""},
		{"collection", geom.NewGeometryCollection(), "GeometryCollection is not accepted"},
		{"3D", geom.NewPointFlat(geom.XYZ, []float64{105, 21, 3}), "want 2D (XY)"},
		{"empty point", geom.NewPointEmpty(geom.XY), "point is empty"},
		{"longitude", geom.NewPointFlat(geom.XY, []float64{185, 21}), "coordinate (185, 21) is not a longitude, latitude pair: longitude 185"},
		{"NaN", geom.NewLineStringFlat(geom.XY, []float64{105, 21, math.NaN(), 22}), "finite"},
		{"no ring", geom.NewPolygon(geom.XY), "polygon has no ring"},
		{"short ring", poly([]float64{0, 0, 1, 0, 0, 0}, 6), "ring 0: a ring needs at least 4 points, got 3"},
		{"open hole", poly(append(square(0, 0, 10), 1, 1, 2, 1, 2, 2, 1, 2), 10, 18), "ring 1: ring is not closed"},
		{"multipolygon", mp, "polygon 1: ring 0: ring is not closed"},
	}
	for _, tc := range tests {
		err := Storable(tc.g)
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Storable = %v; want %q", tc.name, err, tc.want)
		}
	}
}

func TestPolygonRingsLayouts(t *testing.T) {
	closed := geom.NewPolygonFlat(geom.XYZ, []float64{0, 0, 1, 1, 0, 1, 1, 1, 1, 0, 0, 1}, []int{12})
	if err := PolygonRings(closed); err != nil {
		t.Errorf("closed XYZ ring: %v", err)
	}
	open := geom.NewPolygonFlat(geom.XYZ, []float64{0, 0, 1, 1, 0, 1, 1, 1, 1, 0, 0, 2}, []int{12})
	var re *RingError
	if err := PolygonRings(open); !errors.As(err, &re) || re.Ring != 0 || !strings.Contains(re.Reason, "not closed") {
		t.Errorf("XYZ ring closing at another height: %v; want ring 0 not closed", err)
	}
	short := geom.NewPolygonFlat(geom.XYZ, []float64{0, 0, 1, 1, 0, 1, 0, 0, 1}, []int{9})
	if err := PolygonRings(short); err == nil || !strings.Contains(err.Error(), "at least 4 points, got 3") {
		t.Errorf("XYZ ring of 3 positions: %v", err)
	}
}

func TestSegmentsIntersect(t *testing.T) {
	tests := []struct {
		s    [8]float64
		want bool
	}{
		{[8]float64{0, 0, 2, 2, 0, 2, 2, 0}, true},  // cross
		{[8]float64{0, 0, 1, 1, 1, 1, 2, 0}, true},  // touch at an end
		{[8]float64{0, 0, 2, 0, 1, 0, 3, 0}, true},  // collinear overlap
		{[8]float64{0, 0, 1, 0, 2, 0, 3, 0}, false}, // collinear apart
		{[8]float64{0, 0, 1, 1, 0, 1, 1, 2}, false}, // parallel
	}
	for _, tc := range tests {
		s := tc.s
		if got := SegmentsIntersect(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]); got != tc.want {
			t.Errorf("SegmentsIntersect%v = %v; want %v", s, got, tc.want)
		}
	}
}

// TestStorableFlat: a Point's or LineString's coordinates get the answer
// Storable gives the geometry built from them.
func TestStorableFlat(t *testing.T) {
	for _, c := range []struct {
		point bool
		flat  []float64
		want  string // "" accepted, else a part of the answer
	}{
		{true, []float64{105.85, 21.03}, ""},
		{false, []float64{105.85, 21.03, 105.9, 21.1}, ""},
		{true, []float64{}, "point is empty"},
		{false, []float64{}, ""}, // no coordinate to refuse; the decoders want 2 positions
		{true, []float64{math.NaN(), 21}, "not a longitude, latitude pair"},
		{false, []float64{105, 21, 181, 21}, "(181, 21)"},
		{true, []float64{21.03, 105.85}, "(21.03, 105.85)"}, // swapped
		{false, []float64{105, 21, 105, math.Inf(1)}, "not a longitude, latitude pair"},
	} {
		err := StorableFlat(c.point, c.flat)
		if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("StorableFlat(%v, %v) = %v; want %q", c.point, c.flat, err, c.want)
		}
	}
}
