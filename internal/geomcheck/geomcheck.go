// Package geomcheck holds the hub's rules for geometries, on go-geom values
// and flat lon,lat coordinates (GeoJSON axis order), in one place for the
// ingest and the aggregator:
//
//   - Storable is what PostGIS can load and the hub stores: 2D, finite
//     longitudes and latitudes in range, no empty point, no
//     GeometryCollection, polygons with rings of at least 4 positions that
//     close. The aggregator applies it to every geometry it decodes from WKB;
//     the ingest applies it to every geometry it accepts, so that what the
//     ingest accepts the aggregator accepts by construction.
//   - Coord, Ring and Rings are the stricter rules the ingest applies to the
//     GeoJSON it reads (coordinates with a hint when lat and lon look
//     swapped, rings with 3 distinct points that do not cross themselves,
//     holes inside their shell that neither cross nor nest). Ring includes
//     the ring rules of Storable.
//
// Every check is bounded: the sweeps compare at most maxEdgePairs pairs of
// edges and report ErrTooComplex beyond.
package geomcheck

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/twpayne/go-geom"
)

// ErrTooComplex is returned by Ring and Rings for rings too intricate to
// check within the bound on work.
var ErrTooComplex = errors.New(tooComplex)

// SwappedHint is the advice added to a latitude out of range that would be
// a valid longitude while the longitude would be a valid latitude.
const SwappedHint = "coordinates look like [lat, lon]; GeoJSON wants [lon, lat]"

// RingError is a rule broken by one ring of a polygon.
type RingError struct {
	// Ring is the index of the ring in its polygon: 0 is the outer ring.
	Ring   int
	Reason string
}

func (e *RingError) Error() string { return fmt.Sprintf("ring %d: %s", e.Ring, e.Reason) }

// Coord checks one position: finite, longitude in [-180, 180], latitude in
// [-90, 90].
func Coord(lon, lat float64) error {
	if math.IsNaN(lon) || math.IsInf(lon, 0) || math.IsNaN(lat) || math.IsInf(lat, 0) {
		return errors.New("coordinates must be finite numbers")
	}
	if math.Abs(lon) > 180 {
		return fmt.Errorf("longitude %v is outside [-180, 180]", lon)
	}
	if math.Abs(lat) > 90 {
		if math.Abs(lon) <= 90 && math.Abs(lat) <= 180 {
			return fmt.Errorf("latitude %v is outside [-90, 90]; %s", lat, SwappedHint)
		}
		return fmt.Errorf("latitude %v is outside [-90, 90]", lat)
	}
	return nil
}

// closedRing is the ring rule of Storable: at least 4 positions, the last
// repeating the first. xy is flat lon,lat.
func closedRing(xy []float64) error { return closedRingStride(xy, 2) }

// closedRingStride is closedRing for coordinates of stride values each; the
// ordinates beyond lon and lat are compared too.
func closedRingStride(flat []float64, stride int) error {
	if n := len(flat) / stride; n < 4 {
		return fmt.Errorf("a ring needs at least 4 points, got %d", n)
	}
	first, last := flat[:stride], flat[len(flat)-stride:]
	if !slices.Equal(first, last) {
		return errors.New("ring is not closed: the last point must repeat the first")
	}
	return nil
}

// Ring checks one ring (flat lon,lat, coordinates already checked): the
// ring rule of Storable, at least 3 distinct points, and no two edges
// meeting except adjacent ones at their shared vertex. It returns
// ErrTooComplex when the check would take too long.
func Ring(xy []float64) error {
	if err := closedRing(xy); err != nil {
		return err
	}
	if distinctPoints(xy) < 3 {
		return errors.New("a ring needs at least 3 distinct points")
	}
	if a, b, ok := selfIntersection(xy); ok && a < 0 {
		return ErrTooComplex
	} else if ok {
		return fmt.Errorf("ring intersects itself (edges %d and %d cross)", a, b)
	}
	return nil
}

// Rings checks how the rings of one polygon (each passing Ring) sit
// together: every hole inside the outer ring, no two rings crossing, no hole
// inside another. A hole outside its shell is otherwise stored as written
// and drawn, by most renderers, as an extra filled polygon. Touching at a
// point is allowed, as OGC does. A broken rule is a *RingError naming the
// ring; ErrTooComplex when the check would take too long.
func Rings(rings [][]float64) error {
	if len(rings) < 2 {
		return nil
	}
	boxes := make([][4]float64, len(rings))
	for i, r := range rings {
		boxes[i] = ringBox(r)
	}
	if a, b, ok := ringsCross(rings); ok && a < 0 {
		return ErrTooComplex
	} else if ok {
		if a == 0 {
			return &RingError{b, fmt.Sprintf("hole %d crosses the outer ring", b)}
		}
		return &RingError{b, fmt.Sprintf("hole %d crosses hole %d", b, a)}
	}
	// No ring crosses another: one vertex off the shell tells inside from
	// outside. Vertices of one ring lying on another (rings that share
	// their edges) each cost a pass over the other: the passes count
	// against maxEdgePairs as the sweeps' pairs do.
	budget := maxEdgePairs
	for i := 1; i < len(rings); i++ {
		if !boxWithin(boxes[i], boxes[0]) {
			return &RingError{i, fmt.Sprintf("hole %d lies outside the outer ring; a hole must be inside it", i)}
		}
		side, ok := sideOf(rings[i], rings[0], &budget)
		if !ok {
			return ErrTooComplex
		}
		if side < 0 {
			return &RingError{i, fmt.Sprintf("hole %d lies outside the outer ring; a hole must be inside it", i)}
		}
	}
	for i := 1; i < len(rings); i++ {
		for j := 1; j < len(rings); j++ {
			if i == j || !boxWithin(boxes[j], boxes[i]) {
				continue
			}
			side, ok := sideOf(rings[j], rings[i], &budget)
			if !ok {
				return ErrTooComplex
			}
			if side > 0 {
				return &RingError{j, fmt.Sprintf("hole %d lies inside hole %d; holes must not nest", j, i)}
			}
		}
	}
	return nil
}

// Storable checks that PostGIS can load t as the hub stores it: a 2D
// geometry other than a GeometryCollection, every coordinate passing Coord,
// a point not empty, every polygon with at least one ring and every ring
// closed with at least 4 positions. A nil t passes.
func Storable(t geom.T) error {
	if t == nil {
		return nil
	}
	if _, ok := t.(*geom.GeometryCollection); ok {
		// go-geom panics on FlatCoords of a collection; no feed sends one.
		return errors.New("a GeometryCollection is not accepted; send its parts as separate geometries")
	}
	if t.Layout() != geom.XY {
		return fmt.Errorf("geometry has layout %v; want 2D (XY)", t.Layout())
	}
	switch g := t.(type) {
	case *geom.Point:
		return StorableFlat(true, g.FlatCoords())
	case *geom.LineString:
		return StorableFlat(false, g.FlatCoords())
	}
	if err := coords(t.FlatCoords()); err != nil {
		return err
	}
	switch g := t.(type) {
	case *geom.Polygon:
		return PolygonRings(g)
	case *geom.MultiPolygon:
		for i := 0; i < g.NumPolygons(); i++ {
			if err := PolygonRings(g.Polygon(i)); err != nil {
				return fmt.Errorf("polygon %d: %w", i, err)
			}
		}
	}
	return nil
}

// errPointEmpty is Storable's answer to a point without coordinates.
var errPointEmpty = errors.New("point is empty")

// coords checks every lon, lat pair of flat XY coordinates with Coord.
func coords(flat []float64) error {
	for i := 0; i+1 < len(flat); i += 2 {
		if err := Coord(flat[i], flat[i+1]); err != nil {
			return fmt.Errorf("coordinate (%v, %v) is not a longitude, latitude pair: %w", flat[i], flat[i+1], err)
		}
	}
	return nil
}

// StorableFlat is Storable of the 2D Point (point) or LineString whose flat
// XY coordinates are flat, without building it (Storable checks those two
// with it: one set of rules).
func StorableFlat(point bool, flat []float64) error {
	if err := coords(flat); err != nil {
		return err
	}
	if point && len(flat) == 0 {
		return errPointEmpty
	}
	return nil
}

// PolygonRings checks the ring rule of Storable on p, of any layout: at
// least one ring, every ring closed with at least 4 positions. A broken rule
// on a ring is a *RingError.
func PolygonRings(p *geom.Polygon) error {
	if p.NumLinearRings() == 0 {
		return errors.New("polygon has no ring")
	}
	for i := 0; i < p.NumLinearRings(); i++ {
		if err := closedRingStride(p.LinearRing(i).FlatCoords(), p.Stride()); err != nil {
			return &RingError{i, err.Error()}
		}
	}
	return nil
}

// maxEdgePairs bounds the pairs of edges the sweeps of selfIntersection and
// ringsCross compare (about 20 ms of work): edges that all span the same
// longitudes (a comb) would otherwise cost the square of their number. They
// report -1, -1, true beyond it.
const maxEdgePairs = 2_000_000

const tooComplex = "the rings are too intricate to check (too many edges span the same longitudes): simplify the geometry"

// selfIntersection finds two non-adjacent edges of a closed ring that meet,
// sweeping edges sorted by their smallest longitude so that only edges whose
// longitude ranges overlap are compared. Repeated consecutive points
// (zero-length edges) are ignored.
func selfIntersection(xy []float64) (int, int, bool) {
	n := len(xy)/2 - 1 // edges
	type edge struct {
		i              int
		minX, maxX     float64
		x1, y1, x2, y2 float64
	}
	es := make([]edge, 0, n)
	for i := 0; i < n; i++ {
		x1, y1, x2, y2 := xy[2*i], xy[2*i+1], xy[2*i+2], xy[2*i+3]
		if x1 == x2 && y1 == y2 {
			continue
		}
		es = append(es, edge{i, math.Min(x1, x2), math.Max(x1, x2), x1, y1, x2, y2})
	}
	m := len(es)
	if m < 3 {
		return 0, 0, false // degenerate; polygon() rejects it for having too few distinct points
	}
	// adjacency by position in the de-duplicated edge list, which wraps around.
	pos := make(map[int]int, m)
	for k, e := range es {
		pos[e.i] = k
	}
	slices.SortFunc(es, func(a, b edge) int {
		switch {
		case a.minX < b.minX:
			return -1
		case a.minX > b.minX:
			return 1
		}
		return 0
	})
	tests := 0
	for a := 0; a < m; a++ {
		ea := es[a]
		for b := a + 1; b < m && es[b].minX <= ea.maxX; b++ {
			if tests++; tests > maxEdgePairs {
				return -1, -1, true
			}
			eb := es[b]
			pa, pb := pos[ea.i], pos[eb.i]
			d := pa - pb
			if d < 0 {
				d = -d
			}
			if d == 1 || d == m-1 {
				// Adjacent edges share a vertex; they only intersect wrongly if they overlap.
				if collinearOverlap(ea.x1, ea.y1, ea.x2, ea.y2, eb.x1, eb.y1, eb.x2, eb.y2) {
					return min(ea.i, eb.i), max(ea.i, eb.i), true
				}
				continue
			}
			if SegmentsIntersect(ea.x1, ea.y1, ea.x2, ea.y2, eb.x1, eb.y1, eb.x2, eb.y2) {
				return min(ea.i, eb.i), max(ea.i, eb.i), true
			}
		}
	}
	return 0, 0, false
}

// collinearOverlap reports whether two segments sharing an end lie on one line
// and overlap beyond that shared point (a spike going back on itself).
func collinearOverlap(x1, y1, x2, y2, x3, y3, x4, y4 float64) bool {
	cross := func(ax, ay, bx, by, cx, cy float64) float64 { return (bx-ax)*(cy-ay) - (by-ay)*(cx-ax) }
	if cross(x1, y1, x2, y2, x3, y3) != 0 || cross(x1, y1, x2, y2, x4, y4) != 0 {
		return false
	}
	// Same line: they overlap if the direction vectors from the shared vertex agree.
	var sx, sy, ax, ay, bx, by float64
	switch {
	case x2 == x3 && y2 == y3:
		sx, sy, ax, ay, bx, by = x2, y2, x1, y1, x4, y4
	case x1 == x4 && y1 == y4:
		sx, sy, ax, ay, bx, by = x1, y1, x2, y2, x3, y3
	case x1 == x3 && y1 == y3:
		sx, sy, ax, ay, bx, by = x1, y1, x2, y2, x4, y4
	case x2 == x4 && y2 == y4:
		sx, sy, ax, ay, bx, by = x2, y2, x1, y1, x3, y3
	default:
		return true
	}
	return (ax-sx)*(bx-sx)+(ay-sy)*(by-sy) > 0
}

func distinctPoints(xy []float64) int {
	seen := make(map[[2]float64]struct{}, 4)
	for k := 0; k+1 < len(xy); k += 2 {
		seen[[2]float64{xy[k], xy[k+1]}] = struct{}{}
		if len(seen) >= 3 {
			break
		}
	}
	return len(seen)
}

func ringBox(xy []float64) [4]float64 {
	b := [4]float64{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)}
	for k := 0; k+1 < len(xy); k += 2 {
		b[0], b[1] = math.Min(b[0], xy[k]), math.Min(b[1], xy[k+1])
		b[2], b[3] = math.Max(b[2], xy[k]), math.Max(b[3], xy[k+1])
	}
	return b
}

func boxWithin(in, out [4]float64) bool {
	return in[0] >= out[0] && in[1] >= out[1] && in[2] <= out[2] && in[3] <= out[3]
}

// sideOf tells where ring a lies relative to ring b when the two do not
// cross: 1 inside, -1 outside, 0 undecided (every vertex of a on b). The
// first vertex of a not on b decides. Each vertex found on b (one more
// pass over b's edges before a vertex decides) takes the pass from
// *budget; ok is false once it runs out. A vertex that decides costs
// nothing from it: every ring tried pays that pass once, linear in b.
func sideOf(a, b []float64, budget *int) (side int, ok bool) {
	for k := 0; k+1 < len(a); k += 2 {
		x, y := a[k], a[k+1]
		if onRing(b, x, y) {
			if *budget -= len(b) / 2; *budget < 0 {
				return 0, false
			}
			continue
		}
		if inRing(b, x, y) {
			return 1, true
		}
		return -1, true
	}
	return 0, true
}

func onRing(xy []float64, x, y float64) bool {
	for k := 0; k+3 < len(xy); k += 2 {
		x1, y1, x2, y2 := xy[k], xy[k+1], xy[k+2], xy[k+3]
		if orient(x1, y1, x2, y2, x, y) == 0 && x >= math.Min(x1, x2) && x <= math.Max(x1, x2) && y >= math.Min(y1, y2) && y <= math.Max(y1, y2) {
			return true
		}
	}
	return false
}

// inRing is the crossing-number test over a closed ring.
func inRing(xy []float64, x, y float64) bool {
	in := false
	for k := 0; k+3 < len(xy); k += 2 {
		x1, y1, x2, y2 := xy[k], xy[k+1], xy[k+2], xy[k+3]
		if (y1 > y) != (y2 > y) && x < (x2-x1)*(y-y1)/(y2-y1)+x1 {
			in = !in
		}
	}
	return in
}

func orient(ax, ay, bx, by, cx, cy float64) float64 {
	return (bx-ax)*(cy-ay) - (by-ay)*(cx-ax)
}

// ringsCross finds two edges of different rings that properly cross (each
// strictly on both sides of the other), sweeping edges sorted by their
// smallest longitude; it returns the rings' indices, smaller first.
func ringsCross(rings [][]float64) (int, int, bool) {
	type edge struct {
		ring           int
		minX, maxX     float64
		x1, y1, x2, y2 float64
	}
	var es []edge
	for ri, xy := range rings {
		for k := 0; k+3 < len(xy); k += 2 {
			x1, y1, x2, y2 := xy[k], xy[k+1], xy[k+2], xy[k+3]
			es = append(es, edge{ri, math.Min(x1, x2), math.Max(x1, x2), x1, y1, x2, y2})
		}
	}
	slices.SortFunc(es, func(a, b edge) int { return cmp.Compare(a.minX, b.minX) })
	sign := func(v float64) int {
		switch {
		case v > 0:
			return 1
		case v < 0:
			return -1
		}
		return 0
	}
	tests := 0
	for a := range es {
		ea := es[a]
		for b := a + 1; b < len(es) && es[b].minX <= ea.maxX; b++ {
			if tests++; tests > maxEdgePairs {
				return -1, -1, true
			}
			eb := es[b]
			if ea.ring == eb.ring {
				continue
			}
			d1 := sign(orient(eb.x1, eb.y1, eb.x2, eb.y2, ea.x1, ea.y1))
			d2 := sign(orient(eb.x1, eb.y1, eb.x2, eb.y2, ea.x2, ea.y2))
			d3 := sign(orient(ea.x1, ea.y1, ea.x2, ea.y2, eb.x1, eb.y1))
			d4 := sign(orient(ea.x1, ea.y1, ea.x2, ea.y2, eb.x2, eb.y2))
			if d1*d2 < 0 && d3*d4 < 0 {
				return min(ea.ring, eb.ring), max(ea.ring, eb.ring), true
			}
		}
	}
	return 0, 0, false
}

// SegmentsIntersect reports whether segment p1p2 meets segment p3p4 (touching counts).
func SegmentsIntersect(x1, y1, x2, y2, x3, y3, x4, y4 float64) bool {
	d1 := orient(x3, y3, x4, y4, x1, y1)
	d2 := orient(x3, y3, x4, y4, x2, y2)
	d3 := orient(x1, y1, x2, y2, x3, y3)
	d4 := orient(x1, y1, x2, y2, x4, y4)
	if ((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0)) {
		return true
	}
	return (d1 == 0 && onSegment(x3, y3, x4, y4, x1, y1)) ||
		(d2 == 0 && onSegment(x3, y3, x4, y4, x2, y2)) ||
		(d3 == 0 && onSegment(x1, y1, x2, y2, x3, y3)) ||
		(d4 == 0 && onSegment(x1, y1, x2, y2, x4, y4))
}

func onSegment(ax, ay, bx, by, px, py float64) bool {
	return px >= math.Min(ax, bx) && px <= math.Max(ax, bx) && py >= math.Min(ay, by) && py <= math.Max(ay, by)
}
