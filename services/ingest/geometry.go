package ingest

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/wkb"

	"github.com/iochub/iochub/internal/feedcheck"
	"github.com/iochub/iochub/internal/units"
)

// Geometry is a validated GeoJSON geometry: lon/lat pairs, third ordinates dropped.
type Geometry struct {
	// Type is Point, LineString, Polygon or MultiPolygon.
	Type string
	// Polys holds the coordinates as flat lon,lat slices: a Point is
	// [[[lon lat]]], a LineString [[[lon lat lon lat ...]]], a Polygon [[outer, hole...]],
	// a MultiPolygon one entry per polygon.
	Polys [][][]float64
}

// geoJSONGeometry is the wire form; coordinates are decoded per type.
type geoJSONGeometry struct {
	Type        string          `json:"type"`
	Coordinates json.RawMessage `json:"coordinates"`
}

// geometryError is a rejection of a geometry, with the JSON pointer of the bad part.
type geometryError struct {
	pointer string
	reason  string
}

func (e *geometryError) Error() string {
	if e.pointer == "" {
		return e.reason
	}
	return e.pointer + ": " + e.reason
}

// ParseGeometry decodes and validates a GeoJSON geometry whose type is one of
// allowed. at is the JSON path of the geometry in the item, used in messages
// ("location"). Checks: known type, numeric positions of 2 or 3 ordinates,
// finite, |lon| <= 180, |lat| <= 90, at least 2 points in a LineString, rings
// of at least 4 points, closed and not self-intersecting.
func ParseGeometry(raw json.RawMessage, at string, allowed ...string) (Geometry, error) {
	var g geoJSONGeometry
	if err := json.Unmarshal(raw, &g); err != nil {
		return Geometry{}, &geometryError{at, "want a GeoJSON geometry object: " + jsonReason(err)}
	}
	if g.Type == "" {
		return Geometry{}, &geometryError{at + ".type", "missing field"}
	}
	if !slices.Contains(allowed, g.Type) {
		return Geometry{}, &geometryError{at + ".type", fmt.Sprintf("geometry type %s is not allowed here; want %s", feedcheck.Clip(g.Type), orList(allowed))}
	}
	if len(g.Coordinates) == 0 || string(g.Coordinates) == "null" {
		return Geometry{}, &geometryError{at + ".coordinates", "missing field"}
	}
	cp := at + ".coordinates"
	if bytes.Contains(g.Coordinates, []byte("null")) {
		// encoding/json reads null as 0: [null, null] would become [0, 0].
		return Geometry{}, &geometryError{cp, "coordinates hold null; every position needs numbers [lon, lat]"}
	}
	out := Geometry{Type: g.Type}
	switch g.Type {
	case "Point":
		var c []float64
		if err := json.Unmarshal(g.Coordinates, &c); err != nil {
			return Geometry{}, &geometryError{cp, "want [lon, lat]: " + jsonReason(err)}
		}
		xy, err := position(c, cp)
		if err != nil {
			return Geometry{}, err
		}
		out.Polys = [][][]float64{{xy}}
	case "LineString":
		var cs [][]float64
		if err := json.Unmarshal(g.Coordinates, &cs); err != nil {
			return Geometry{}, &geometryError{cp, "want [[lon, lat], ...]: " + jsonReason(err)}
		}
		if err := tooManyPositions(cp, [][][]float64{cs}); err != nil {
			return Geometry{}, err
		}
		if len(cs) < 2 {
			return Geometry{}, &geometryError{cp, fmt.Sprintf("a LineString needs at least 2 points, got %d", len(cs))}
		}
		xy, err := positions(cs, cp)
		if err != nil {
			return Geometry{}, err
		}
		out.Polys = [][][]float64{{xy}}
	case "Polygon":
		var rs [][][]float64
		if err := json.Unmarshal(g.Coordinates, &rs); err != nil {
			return Geometry{}, &geometryError{cp, "want [[[lon, lat], ...], ...]: " + jsonReason(err)}
		}
		if err := tooManyPositions(cp, rs); err != nil {
			return Geometry{}, err
		}
		p, err := polygon(rs, cp)
		if err != nil {
			return Geometry{}, err
		}
		out.Polys = [][][]float64{p}
	case "MultiPolygon":
		var ps [][][][]float64
		if err := json.Unmarshal(g.Coordinates, &ps); err != nil {
			return Geometry{}, &geometryError{cp, "want [[[[lon, lat], ...], ...], ...]: " + jsonReason(err)}
		}
		if len(ps) == 0 {
			return Geometry{}, &geometryError{cp, "a MultiPolygon needs at least 1 polygon"}
		}
		if err := tooManyPositions(cp, slices.Concat(ps...)); err != nil {
			return Geometry{}, err
		}
		for i, rs := range ps {
			p, err := polygon(rs, cp+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return Geometry{}, err
			}
			out.Polys = append(out.Polys, p)
		}
	default:
		return Geometry{}, &geometryError{at + ".type", fmt.Sprintf("unknown geometry type %q", feedcheck.Clip(g.Type))}
	}
	if n := out.numVertices(); n > MaxVertices {
		return Geometry{}, &geometryError{cp, fmt.Sprintf("the geometry has %d positions; at most %d: simplify it", n, MaxVertices)}
	}
	if g.Type == "Polygon" || g.Type == "MultiPolygon" {
		for i, p := range out.Polys {
			pp := cp
			if g.Type == "MultiPolygon" {
				pp += "[" + strconv.Itoa(i) + "]"
			}
			if err := ringTopology(p, pp); err != nil {
				return Geometry{}, err
			}
		}
	}
	return out, nil
}

// MaxVertices is the most positions a geometry may have (all rings of all polygons).
const MaxVertices = 10000

// tooManyPositions refuses rings (or a line) holding more than MaxVertices
// positions in all, before any check whose cost grows with them.
func tooManyPositions(at string, rings [][][]float64) error {
	n := 0
	for _, r := range rings {
		n += len(r)
	}
	if n > MaxVertices {
		return &geometryError{at, fmt.Sprintf("the geometry has %d positions; at most %d: simplify it", n, MaxVertices)}
	}
	return nil
}

func (g Geometry) numVertices() int {
	n := 0
	for _, p := range g.Polys {
		for _, r := range p {
			n += len(r) / 2
		}
	}
	return n
}

func orList(s []string) string {
	switch len(s) {
	case 0:
		return "none"
	case 1:
		return s[0]
	}
	out := ""
	for i, v := range s {
		switch {
		case i == 0:
		case i == len(s)-1:
			out += " or "
		default:
			out += ", "
		}
		out += v
	}
	return out
}

func position(c []float64, at string) ([]float64, error) {
	if len(c) < 2 || len(c) > 3 {
		return nil, &geometryError{at, fmt.Sprintf("a position needs 2 or 3 numbers [lon, lat], got %d", len(c))}
	}
	lon, lat := c[0], c[1]
	for _, v := range c {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, &geometryError{at, "coordinates must be finite numbers"}
		}
	}
	if math.Abs(lon) > 180 {
		return nil, &geometryError{at, fmt.Sprintf("longitude %v is outside [-180, 180]", lon)}
	}
	if math.Abs(lat) > 90 {
		if math.Abs(lon) <= 90 && math.Abs(lat) <= 180 {
			return nil, &geometryError{at, fmt.Sprintf("latitude %v is outside [-90, 90]; %s", lat, swappedHint)}
		}
		return nil, &geometryError{at, fmt.Sprintf("latitude %v is outside [-90, 90]", lat)}
	}
	return []float64{lon, lat}, nil
}

const swappedHint = "coordinates look like [lat, lon]; GeoJSON wants [lon, lat]"

func positions(cs [][]float64, at string) ([]float64, error) {
	xy := make([]float64, 0, 2*len(cs))
	for i, c := range cs {
		p, err := position(c, at+"["+strconv.Itoa(i)+"]")
		if err != nil {
			return nil, err
		}
		xy = append(xy, p...)
	}
	return xy, nil
}

func polygon(rs [][][]float64, at string) ([][]float64, error) {
	if len(rs) == 0 {
		return nil, &geometryError{at, "a Polygon needs at least an outer ring"}
	}
	out := make([][]float64, 0, len(rs))
	for i, r := range rs {
		rp := at + "[" + strconv.Itoa(i) + "]"
		if len(r) < 4 {
			return nil, &geometryError{rp, fmt.Sprintf("a ring needs at least 4 points, got %d", len(r))}
		}
		xy, err := positions(r, rp)
		if err != nil {
			return nil, err
		}
		n := len(xy)
		if xy[0] != xy[n-2] || xy[1] != xy[n-1] {
			return nil, &geometryError{rp, "ring is not closed: the last point must repeat the first"}
		}
		if distinctPoints(xy) < 3 {
			return nil, &geometryError{rp, "a ring needs at least 3 distinct points"}
		}
		if a, b, ok := selfIntersection(xy); ok && a < 0 {
			return nil, &geometryError{rp, tooComplex}
		} else if ok {
			return nil, &geometryError{rp, fmt.Sprintf("ring intersects itself (edges %d and %d cross)", a, b)}
		}
		out = append(out, xy)
	}
	return out, nil
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
			if units.SegmentsIntersect(ea.x1, ea.y1, ea.x2, ea.y2, eb.x1, eb.y1, eb.x2, eb.y2) {
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

// Vertices returns every position of the geometry as lon,lat pairs (outer
// rings and lines; holes are inside their outer ring).
func (g Geometry) Vertices() [][2]float64 {
	var out [][2]float64
	for _, p := range g.Polys {
		if len(p) == 0 {
			continue
		}
		r := p[0]
		n := len(r)
		if g.Type == "Polygon" || g.Type == "MultiPolygon" {
			n -= 2 // the closing point repeats the first
		}
		for k := 0; k+1 < n; k += 2 {
			out = append(out, [2]float64{r[k], r[k+1]})
		}
	}
	return out
}

// Swapped returns the geometry with every position's lon and lat exchanged.
func (g Geometry) Swapped() Geometry {
	out := Geometry{Type: g.Type, Polys: make([][][]float64, len(g.Polys))}
	for i, p := range g.Polys {
		out.Polys[i] = make([][]float64, len(p))
		for j, r := range p {
			s := make([]float64, len(r))
			for k := 0; k+1 < len(r); k += 2 {
				s[k], s[k+1] = r[k+1], r[k]
			}
			out.Polys[i][j] = s
		}
	}
	return out
}

// Geom returns the go-geom value of the geometry.
func (g Geometry) Geom() (geom.T, error) {
	switch g.Type {
	case "Point":
		return geom.NewPointFlat(geom.XY, g.Polys[0][0]), nil
	case "LineString":
		return geom.NewLineStringFlat(geom.XY, g.Polys[0][0]), nil
	case "Polygon":
		return polygonGeom(g.Polys[0]), nil
	case "MultiPolygon":
		mp := geom.NewMultiPolygon(geom.XY)
		for _, p := range g.Polys {
			if err := mp.Push(polygonGeom(p)); err != nil {
				return nil, fmt.Errorf("building MultiPolygon: %w", err)
			}
		}
		return mp, nil
	}
	return nil, fmt.Errorf("building geometry of type %q: %w", g.Type, ErrBadGeometry)
}

func polygonGeom(rings [][]float64) *geom.Polygon {
	var flat []float64
	ends := make([]int, 0, len(rings))
	for _, r := range rings {
		flat = append(flat, r...)
		ends = append(ends, len(flat))
	}
	return geom.NewPolygonFlat(geom.XY, flat, ends)
}

// WKB returns the geometry as OGC WKB, little endian, without SRID.
func (g Geometry) WKB() ([]byte, error) {
	t, err := g.Geom()
	if err != nil {
		return nil, err
	}
	b, err := wkb.Marshal(t, binary.LittleEndian)
	if err != nil {
		return nil, fmt.Errorf("encoding WKB: %w", err)
	}
	return b, nil
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

// ringTopology checks how the rings of one polygon (each already closed,
// simple and of 4 points or more) sit together: every hole inside the outer
// ring, no two rings crossing, no hole inside another. A hole outside its
// shell is otherwise stored as written and drawn, by most renderers, as an
// extra filled polygon. Touching at a point is allowed, as OGC does.
func ringTopology(rings [][]float64, at string) error {
	if len(rings) < 2 {
		return nil
	}
	boxes := make([][4]float64, len(rings))
	for i, r := range rings {
		boxes[i] = ringBox(r)
	}
	if a, b, ok := ringsCross(rings); ok && a < 0 {
		return &geometryError{at, tooComplex}
	} else if ok {
		rp := at + "[" + strconv.Itoa(b) + "]"
		if a == 0 {
			return &geometryError{rp, fmt.Sprintf("hole %d crosses the outer ring", b)}
		}
		return &geometryError{rp, fmt.Sprintf("hole %d crosses hole %d", b, a)}
	}
	// No ring crosses another: one vertex off the shell tells inside from outside.
	for i := 1; i < len(rings); i++ {
		rp := at + "[" + strconv.Itoa(i) + "]"
		if !boxWithin(boxes[i], boxes[0]) || sideOf(rings[i], rings[0]) < 0 {
			return &geometryError{rp, fmt.Sprintf("hole %d lies outside the outer ring; a hole must be inside it", i)}
		}
	}
	for i := 1; i < len(rings); i++ {
		for j := 1; j < len(rings); j++ {
			if i != j && boxWithin(boxes[j], boxes[i]) && sideOf(rings[j], rings[i]) > 0 {
				return &geometryError{at + "[" + strconv.Itoa(j) + "]", fmt.Sprintf("hole %d lies inside hole %d; holes must not nest", j, i)}
			}
		}
	}
	return nil
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
// first vertex of a not on b decides.
func sideOf(a, b []float64) int {
	for k := 0; k+1 < len(a); k += 2 {
		x, y := a[k], a[k+1]
		if onRing(b, x, y) {
			continue
		}
		if inRing(b, x, y) {
			return 1
		}
		return -1
	}
	return 0
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
