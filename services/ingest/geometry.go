package ingest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/wkb"

	"github.com/iochub/iochub/internal/feedcheck"
	"github.com/iochub/iochub/internal/geomcheck"
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
	if out, ok := fastGeometry(raw, at, allowed); ok {
		if err := out.err; err != nil {
			return Geometry{}, err
		}
		// FuzzGeometry holds this answer to parseGeometrySlow's.
		return finishGeometry(out.g, at)
	}
	return parseGeometrySlow(raw, at, allowed...)
}

// parseGeometrySlow is ParseGeometry on encoding/json: it reads every
// geometry, including those fastGeometry leaves to it.
func parseGeometrySlow(raw json.RawMessage, at string, allowed ...string) (Geometry, error) {
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
	return finishGeometry(out, at)
}

// finishGeometry makes the checks of a decoded geometry common to both
// decoders; at is the pointer of the geometry (its coordinates' is spelt only
// for a fault).
func finishGeometry(out Geometry, at string) (Geometry, error) {
	cp := func() string { return at + ".coordinates" }
	if n := out.numVertices(); n > MaxVertices {
		return Geometry{}, &geometryError{cp(), fmt.Sprintf("the geometry has %d positions; at most %d: simplify it", n, MaxVertices)}
	}
	if out.Type == "Polygon" || out.Type == "MultiPolygon" {
		for i, p := range out.Polys {
			pp := cp()
			if out.Type == "MultiPolygon" {
				pp += "[" + strconv.Itoa(i) + "]"
			}
			if err := geomcheck.Rings(p); err != nil {
				var re *geomcheck.RingError
				if errors.As(err, &re) {
					return Geometry{}, &geometryError{pp + "[" + strconv.Itoa(re.Ring) + "]", re.Reason}
				}
				return Geometry{}, &geometryError{pp, err.Error()}
			}
		}
	}
	// The aggregator stores what passes geomcheck.Storable: so must every
	// geometry the ingest accepts (the rules above include its rules). A
	// Point or a LineString is checked on its coordinates, with no go-geom
	// object built (geomcheck.StorableFlat, Storable's rules).
	var err error
	switch out.Type {
	case "Point", "LineString":
		err = geomcheck.StorableFlat(out.Type == "Point", out.Polys[0][0])
	default:
		var t geom.T
		if t, err = out.Geom(); err == nil {
			err = geomcheck.Storable(t)
		}
	}
	if err != nil {
		return Geometry{}, &geometryError{cp(), err.Error()}
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
	if why := positionFault(c); why != "" {
		return nil, &geometryError{at, why}
	}
	return []float64{c[0], c[1]}, nil
}

// positionFault is what is wrong with the position c, "" if nothing.
func positionFault(c []float64) string {
	if len(c) < 2 || len(c) > 3 {
		return fmt.Sprintf("a position needs 2 or 3 numbers [lon, lat], got %d", len(c))
	}
	for _, v := range c[2:] {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return "coordinates must be finite numbers"
		}
	}
	if err := geomcheck.Coord(c[0], c[1]); err != nil {
		return err.Error()
	}
	return ""
}

const swappedHint = geomcheck.SwappedHint

func positions(cs [][]float64, at string) ([]float64, error) {
	xy := make([]float64, 0, 2*len(cs))
	// Each of up to MaxVertices positions: a pointer is spelt only for a fault.
	for i, c := range cs {
		if why := positionFault(c); why != "" {
			return nil, &geometryError{at + "[" + strconv.Itoa(i) + "]", why}
		}
		xy = append(xy, c[0], c[1])
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
		xy, err := positions(r, rp)
		if err != nil {
			return nil, err
		}
		if err := geomcheck.Ring(xy); err != nil {
			return nil, &geometryError{rp, err.Error()}
		}
		out = append(out, xy)
	}
	return out, nil
}

// Vertices returns every position of the geometry as lon,lat pairs (outer
// rings and lines; holes are inside their outer ring).
func (g Geometry) Vertices() [][2]float64 {
	out := make([][2]float64, 0, g.numOuterVertices())
	for _, p := range g.Polys {
		if len(p) == 0 {
			continue
		}
		r := p[0]
		for k := 0; k+1 < g.outerLen(r); k += 2 {
			out = append(out, [2]float64{r[k], r[k+1]})
		}
	}
	return out
}

// numOuterVertices is len(g.Vertices()), counted without making them.
func (g Geometry) numOuterVertices() int {
	n := 0
	for _, p := range g.Polys {
		if len(p) > 0 {
			n += max(g.outerLen(p[0]), 0) / 2
		}
	}
	return n
}

// outerLen is how many numbers of the outer ring or line r Vertices reads:
// a polygon's closing point, which repeats the first, is left out.
func (g Geometry) outerLen(r []float64) int {
	if g.Type == "Polygon" || g.Type == "MultiPolygon" {
		return len(r) - 2
	}
	return len(r)
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
// Points and lines, the geometry of nearly every item, are written directly
// (FuzzGeometry checks the bytes against go-geom's).
func (g Geometry) WKB() ([]byte, error) {
	switch g.Type {
	case "Point":
		return appendPointWKB(make([]byte, 0, 21), g.Polys[0][0]), nil
	case "LineString":
		xy := g.Polys[0][0]
		b := binary.LittleEndian.AppendUint32(make([]byte, 1, 9+8*len(xy)), 2)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(xy)/2)) //nolint:gosec // at most MaxVertices
		return appendWKBCoords(b, xy), nil
	}
	return g.wkbGeom()
}

// appendPointWKB appends the 21 bytes of the WKB Point at xy[:2] to b.
func appendPointWKB(b []byte, xy []float64) []byte {
	b = binary.LittleEndian.AppendUint32(append(b, 1), 1) // NDR, type Point
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(xy[0]))
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(xy[1]))
}

// appendWKBCoords appends xy as little-endian doubles to b, whose first
// byte becomes the little-endian byte order mark.
func appendWKBCoords(b []byte, xy []float64) []byte {
	b[0] = 1 // NDR
	for _, v := range xy {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b
}

// wkbGeom is WKB through go-geom.
func (g Geometry) wkbGeom() ([]byte, error) {
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
