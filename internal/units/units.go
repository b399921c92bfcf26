// Package units is the read side of iochub's administrative units: it reads
// units files (GeoJSON, with the one Reader the database import also uses),
// and, over the current units (from a file, or from PostGIS with
// schema.LoadUnits), answers, in memory and
// fast enough to run per feed item, which unit a point lies in, whether a unit
// contains a point or meets an area, and which province a unit belongs to.
// It holds no SQL and never touches the database; internal/schema does.
package units

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/twpayne/go-geom"

	"github.com/iochub/iochub/internal/geomcheck"
)

// Levels of administrative units, as in admin_unit.level.
const (
	LevelNational = "national"
	LevelProvince = "province"
	LevelDistrict = "district"
	LevelCommune  = "commune"
	LevelCustom   = "custom"
)

// Unit is one version of an administrative unit.
type Unit struct {
	Code       string // GSO code, e.g. "01" (province) or "00070" (ward)
	Level      string // one of the Level constants
	ParentCode string // "" for a unit without a parent
	NameVI     string
	NameEN     string
	Boundary   *geom.MultiPolygon // lon/lat, EPSG:4326
	// ValidFrom and ValidTo bound the version [ValidFrom, ValidTo); a zero
	// ValidFrom means since ever, a zero ValidTo still valid (a current unit).
	ValidFrom, ValidTo time.Time
}

// FromGeoJSON reads the units of a GeoJSON FeatureCollection such as
// seed.Provinces2025() with a Reader: each Feature's properties.code is the
// code, properties.name and nameEn the names; Polygon and MultiPolygon
// geometries are accepted. Every unit gets level (empty: told by the length
// of its code, as Reader does) and parent. Errors wrap ErrInvalidUnits.
func FromGeoJSON(r io.Reader, level, parent string) ([]Unit, error) {
	rd := NewReader(r, ReadOptions{Level: level, Parent: parent})
	var out []Unit
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading units GeoJSON: %w", err)
		}
		out = append(out, Unit{Code: rec.Code, Level: rec.Level, ParentCode: rec.Parent,
			NameVI: rec.Name, NameEN: rec.NameEn, Boundary: rec.Boundary})
	}
}

// bbox is minLon, minLat, maxLon, maxLat.
type bbox [4]float64

func (b bbox) contains(x, y float64) bool {
	return x >= b[0] && x <= b[2] && y >= b[1] && y <= b[3]
}

func (b bbox) meets(o bbox) bool {
	return b[0] <= o[2] && o[0] <= b[2] && b[1] <= o[3] && o[1] <= b[3]
}

func emptyBBox() bbox { return bbox{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)} }

func (b *bbox) extend(x, y float64) {
	b[0] = math.Min(b[0], x)
	b[1] = math.Min(b[1], y)
	b[2] = math.Max(b[2], x)
	b[3] = math.Max(b[3], y)
}

// ring is a closed ring as flat x,y pairs. Rings with many vertices also
// keep their edges bucketed by latitude strips, so that a point test looks
// only at the edges that can cross the point's latitude.
type ring struct {
	box    bbox
	xy     []float64
	strips [][]int32 // edge start indices (in points) per strip; nil for small rings
	stripH float64
}

// stripEdges is the average number of edges per strip of an indexed ring.
const stripEdges = 8

// index buckets the ring's edges by latitude.
func (r *ring) index() {
	n := len(r.xy) / 2
	if n < 4*stripEdges {
		return
	}
	ns := n / stripEdges
	h := (r.box[3] - r.box[1]) / float64(ns)
	if !(h > 0) {
		return
	}
	r.strips = make([][]int32, ns)
	r.stripH = h
	for i := 0; i < n; i++ {
		j := (i + 1) % n
		y0, y1 := r.xy[2*i+1], r.xy[2*j+1]
		if y0 > y1 {
			y0, y1 = y1, y0
		}
		lo, hi := r.strip(y0), r.strip(y1)
		for k := lo; k <= hi; k++ {
			r.strips[k] = append(r.strips[k], int32(i))
		}
	}
}

func (r *ring) strip(y float64) int {
	k := int((y - r.box[1]) / r.stripH)
	return max(0, min(k, len(r.strips)-1))
}

// contains is the crossing-number test, through the strip index when there is one.
func (r *ring) contains(x, y float64) bool {
	if r.strips == nil {
		return inRing(r.xy, x, y)
	}
	n := len(r.xy) / 2
	in := false
	for _, i := range r.strips[r.strip(y)] {
		j := (int(i) + 1) % n
		ix, iy := r.xy[2*i], r.xy[2*i+1]
		jx, jy := r.xy[2*j], r.xy[2*j+1]
		if (iy > y) != (jy > y) && x < (jx-ix)*(y-iy)/(jy-iy)+ix {
			in = !in
		}
	}
	return in
}

// signedArea is the ring's area by the shoelace formula, in square degrees,
// positive when counter-clockwise.
func (r *ring) signedArea() float64 {
	var a float64
	n := len(r.xy) / 2
	for i, j := 0, n-1; i < n; j, i = i, i+1 {
		a += r.xy[2*j]*r.xy[2*i+1] - r.xy[2*i]*r.xy[2*j+1]
	}
	return a / 2
}

// polygon is an outer ring followed by its holes.
type polygon struct {
	box   bbox
	rings []ring
}

type entry struct {
	unit  Unit
	rank  int
	area  float64 // of the boundary in square degrees (outer rings less holes), for ordering only
	box   bbox
	polys []polygon
}

// Index answers point and area queries over a fixed set of units. It is
// immutable after NewIndex and safe for concurrent use.
type Index struct {
	entries []entry // ordered smallest level first, then smallest area
	byCode  map[string]int
	grid    map[[2]int32][]int32 // cell -> entries whose bbox meets the cell, in entries order
}

// cellSize is the grid cell of the bbox prefilter, in degrees (~11 km).
const cellSize = 0.1

func cellOf(x, y float64) [2]int32 {
	return [2]int32{int32(math.Floor(x / cellSize)), int32(math.Floor(y / cellSize))}
}

// rank orders levels from the smallest unit to the largest; custom units
// (special zones) come last so that an administrative unit is always preferred.
func rank(level string) int {
	switch level {
	case LevelCommune:
		return 0
	case LevelDistrict:
		return 1
	case LevelProvince:
		return 2
	case LevelNational:
		return 3
	default:
		return 4
	}
}

// NewIndex prepares units for queries. Units without a boundary are kept for
// Get and Province but never located.
func NewIndex(us []Unit) *Index {
	es := make([]entry, len(us))
	for i, u := range us {
		es[i] = newEntry(u)
	}
	return indexOf(es)
}

// newEntry prepares one unit: its rings copied flat and indexed. An entry's
// rings are never written after, so indexes may share them (NewTimeline
// builds each version's once for every period it is valid in).
func newEntry(u Unit) entry {
	e := entry{unit: u, rank: rank(u.Level), box: emptyBBox()}
	if u.Boundary == nil {
		return e
	}
	stride := u.Boundary.Stride()
	for i := 0; i < u.Boundary.NumPolygons(); i++ {
		p := u.Boundary.Polygon(i)
		pg := polygon{box: emptyBBox()}
		for j := 0; j < p.NumLinearRings(); j++ {
			r := ring{box: emptyBBox()}
			fc := p.LinearRing(j).FlatCoords()
			r.xy = make([]float64, 0, len(fc)/stride*2)
			for k := 0; k+1 < len(fc); k += stride {
				r.xy = append(r.xy, fc[k], fc[k+1])
				r.box.extend(fc[k], fc[k+1])
			}
			if len(r.xy) < 6 {
				continue
			}
			r.index()
			if j == 0 {
				pg.box = r.box
				e.area += math.Abs(r.signedArea())
			} else {
				e.area -= math.Abs(r.signedArea())
			}
			pg.rings = append(pg.rings, r)
		}
		if len(pg.rings) > 0 {
			e.polys = append(e.polys, pg)
			e.box.extend(pg.box[0], pg.box[1])
			e.box.extend(pg.box[2], pg.box[3])
		}
	}
	return e
}

// indexOf orders the prepared entries es (which it keeps) and grids them.
func indexOf(es []entry) *Index {
	ix := &Index{entries: es, byCode: make(map[string]int, len(es)), grid: make(map[[2]int32][]int32)}
	// Within a level the smaller unit first: where two units of a level
	// overlap (a commune imported inside a ward that was not redrawn, or two
	// maps generalised differently along a border), a point goes to the more
	// specific one, whatever their codes.
	slices.SortStableFunc(ix.entries, func(a, b entry) int {
		if c := cmp.Compare(a.rank, b.rank); c != 0 {
			return c
		}
		if c := cmp.Compare(a.area, b.area); c != 0 {
			return c
		}
		return cmp.Compare(a.unit.Code, b.unit.Code)
	})
	for i, e := range ix.entries {
		ix.byCode[e.unit.Code] = i
		if len(e.polys) == 0 {
			continue
		}
		lo, hi := cellOf(e.box[0], e.box[1]), cellOf(e.box[2], e.box[3])
		// A unit larger than a whole country (bad data) is not gridded cell by cell.
		if int64(hi[0]-lo[0]+1)*int64(hi[1]-lo[1]+1) > 1<<20 {
			continue
		}
		for cx := lo[0]; cx <= hi[0]; cx++ {
			for cy := lo[1]; cy <= hi[1]; cy++ {
				k := [2]int32{cx, cy}
				ix.grid[k] = append(ix.grid[k], int32(i))
			}
		}
	}
	return ix
}

// Len is the number of units in the index.
func (ix *Index) Len() int { return len(ix.entries) }

// Locate returns the smallest unit (commune before district before province,
// then the smaller area within a level) whose boundary contains the point.
func (ix *Index) Locate(lon, lat float64) (Unit, bool) {
	if ix == nil || math.IsNaN(lon) || math.IsNaN(lat) {
		return Unit{}, false
	}
	for _, i := range ix.grid[cellOf(lon, lat)] {
		e := &ix.entries[i]
		if e.contains(lon, lat) {
			return e.unit, true
		}
	}
	return Unit{}, false
}

// LocateWithin returns the smallest unit whose boundary contains the point
// among ancestor and its descendants: where a point lies, within a unit the
// caller is bound to.
func (ix *Index) LocateWithin(lon, lat float64, ancestor string) (Unit, bool) {
	if ix == nil || math.IsNaN(lon) || math.IsNaN(lat) {
		return Unit{}, false
	}
	for _, i := range ix.grid[cellOf(lon, lat)] {
		e := &ix.entries[i]
		if e.contains(lon, lat) && ix.Within(e.unit.Code, ancestor) {
			return e.unit, true
		}
	}
	return Unit{}, false
}

// Covers reports whether the point lies in unit code: inside its own
// boundary or inside the boundary of one of its descendants. A unit contains
// its descendants by definition, even where their maps were generalised
// differently from its own (280 of some 30,000 interior points of Hà Nội's
// wards fall outside the province polygon): a question about a unit is
// answered the same way whichever of its maps is finer.
func (ix *Index) Covers(code string, lon, lat float64) bool {
	if ix.Contains(code, lon, lat) {
		return true
	}
	_, ok := ix.LocateWithin(lon, lat, code)
	return ok
}

// Get returns the unit with code.
func (ix *Index) Get(code string) (Unit, bool) {
	if ix == nil {
		return Unit{}, false
	}
	i, ok := ix.byCode[code]
	if !ok {
		return Unit{}, false
	}
	return ix.entries[i].unit, true
}

// Province returns the code of the province that unit code belongs to,
// walking its parents; a province is its own province.
func (ix *Index) Province(code string) (string, bool) {
	for range 16 { // deeper than any real hierarchy; stops a cycle in bad data
		u, ok := ix.Get(code)
		if !ok {
			return "", false
		}
		if u.Level == LevelProvince {
			return u.Code, true
		}
		if u.ParentCode == "" {
			return "", false
		}
		code = u.ParentCode
	}
	return "", false
}

// Within reports whether unit code is ancestor itself or one of its descendants.
func (ix *Index) Within(code, ancestor string) bool {
	for range 16 {
		if code == ancestor {
			return true
		}
		u, ok := ix.Get(code)
		if !ok || u.ParentCode == "" {
			return false
		}
		code = u.ParentCode
	}
	return false
}

// Contains reports whether the boundary of unit code itself contains the
// point; Covers also counts the boundaries of its descendants.
func (ix *Index) Contains(code string, lon, lat float64) bool {
	if ix == nil {
		return false
	}
	i, ok := ix.byCode[code]
	if !ok {
		return false
	}
	return ix.entries[i].contains(lon, lat)
}

// IntersectsArea reports whether the boundary of unit code meets the area
// given as rings of flat lon,lat pairs (the first ring of each polygon its
// outer ring, then its holes; a single pair is a point).
func (ix *Index) IntersectsArea(code string, area [][][]float64) bool {
	if ix == nil {
		return false
	}
	i, ok := ix.byCode[code]
	if !ok {
		return false
	}
	e := &ix.entries[i]
	for _, poly := range area {
		if len(poly) == 0 || len(poly[0]) < 2 {
			continue
		}
		outer := poly[0]
		if len(outer) == 2 {
			if e.contains(outer[0], outer[1]) {
				return true
			}
			continue
		}
		ab := emptyBBox()
		for k := 0; k+1 < len(outer); k += 2 {
			ab.extend(outer[k], outer[k+1])
		}
		if !ab.meets(e.box) {
			continue
		}
		// A vertex of the area inside the unit.
		for k := 0; k+1 < len(outer); k += 2 {
			if e.contains(outer[k], outer[k+1]) {
				return true
			}
		}
		// A vertex of the unit inside the area (the area covers the unit).
		for _, p := range e.polys {
			r := p.rings[0]
			if pointInPolygon(poly, r.xy[0], r.xy[1]) {
				return true
			}
		}
		// Crossing edges.
		for _, p := range e.polys {
			if !p.box.meets(ab) {
				continue
			}
			for _, r := range p.rings {
				if r.box.meets(ab) && r.crosses(outer) {
					return true
				}
			}
		}
	}
	return false
}

// CoversArea is IntersectsArea counting the boundaries of the unit's
// descendants as its own, as Covers does for a point.
func (ix *Index) CoversArea(code string, area [][][]float64) bool {
	if ix.IntersectsArea(code, area) {
		return true
	}
	if ix == nil {
		return false
	}
	for i := range ix.entries {
		c := ix.entries[i].unit.Code
		if c != code && ix.Within(c, code) && ix.IntersectsArea(c, area) {
			return true
		}
	}
	return false
}

func (e *entry) contains(x, y float64) bool {
	if !e.box.contains(x, y) {
		return false
	}
	for _, p := range e.polys {
		if !p.box.contains(x, y) {
			continue
		}
		if !p.rings[0].contains(x, y) {
			continue
		}
		inHole := false
		for _, h := range p.rings[1:] {
			if h.box.contains(x, y) && h.contains(x, y) {
				inHole = true
				break
			}
		}
		if !inHole {
			return true
		}
	}
	return false
}

// pointInPolygon is even-odd over an outer ring and its holes.
func pointInPolygon(poly [][]float64, x, y float64) bool {
	if len(poly) == 0 || !inRing(poly[0], x, y) {
		return false
	}
	for _, h := range poly[1:] {
		if inRing(h, x, y) {
			return false
		}
	}
	return true
}

// inRing is the crossing-number test; xy is closed or not, either works.
func inRing(xy []float64, x, y float64) bool {
	n := len(xy) / 2
	if n < 3 {
		return false
	}
	in := false
	jx, jy := xy[2*(n-1)], xy[2*(n-1)+1]
	for i := 0; i < n; i++ {
		ix, iy := xy[2*i], xy[2*i+1]
		if (iy > y) != (jy > y) && x < (jx-ix)*(y-iy)/(jy-iy)+ix {
			in = !in
		}
		jx, jy = ix, iy
	}
	return in
}

// crosses reports whether an edge of r crosses an edge of the ring b (flat
// lon,lat pairs). An edge of b outside r's box is skipped; one inside is
// tried against the edges of r in the strips its latitudes span (every edge
// of a ring too small to be indexed), each after a test of their boxes. The
// work is linear in b's edges times the edges of a strip (stripEdges on
// average), not b's edges times r's: an area of thousands of vertices
// placed against a province of thousands is not a quadratic cost.
func (r *ring) crosses(b []float64) bool {
	n := len(r.xy) / 2
	cross := func(i, j int, x1, y1, x2, y2 float64, eb bbox) bool {
		ix, iy, jx, jy := r.xy[2*i], r.xy[2*i+1], r.xy[2*j], r.xy[2*j+1]
		if math.Max(ix, jx) < eb[0] || math.Min(ix, jx) > eb[2] || math.Max(iy, jy) < eb[1] || math.Min(iy, jy) > eb[3] {
			return false
		}
		return geomcheck.SegmentsIntersect(ix, iy, jx, jy, x1, y1, x2, y2)
	}
	for k := 0; k+3 < len(b); k += 2 {
		x1, y1, x2, y2 := b[k], b[k+1], b[k+2], b[k+3]
		eb := bbox{math.Min(x1, x2), math.Min(y1, y2), math.Max(x1, x2), math.Max(y1, y2)}
		if !eb.meets(r.box) {
			continue
		}
		if r.strips == nil {
			for i := 0; i+1 < n; i++ {
				if cross(i, i+1, x1, y1, x2, y2, eb) {
					return true
				}
			}
			continue
		}
		for s := r.strip(eb[1]); s <= r.strip(eb[3]); s++ {
			for _, i := range r.strips[s] {
				if cross(int(i), (int(i)+1)%n, x1, y1, x2, y2, eb) {
					return true
				}
			}
		}
	}
	return false
}

// Codes returns the codes of the units of a level, smallest code first.
func (ix *Index) Codes(level string) []string {
	if ix == nil {
		return nil
	}
	var out []string
	for _, e := range ix.entries {
		if e.unit.Level == level {
			out = append(out, e.unit.Code)
		}
	}
	slices.Sort(out)
	return out
}
