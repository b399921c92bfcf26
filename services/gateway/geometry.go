package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/geojson"

	"github.com/iochub/iochub/internal/wkbx"
)

// maxDecimals is the precision of coordinates on the wire (RFC 7946 §11.2:
// 7 decimals of a degree is about 1 cm).
const maxDecimals = 7

// errBadCoords is returned for a geometry with NaN or infinite coordinates.
var errBadCoords = errors.New("geometry has NaN or infinite coordinates")

// decodeWKB parses an OGC WKB geometry from an event; nil or empty means none.
func decodeWKB(b []byte) (geom.T, error) {
	if len(b) == 0 {
		return nil, nil
	}
	g, err := wkbx.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("decoding WKB: %w", err)
	}
	return g, nil
}

// geometryJSON encodes g as an RFC 7946 geometry: outer rings counter-clockwise,
// holes clockwise, at most 7 decimals. A nil or empty geometry is JSON null.
// g's coordinates are reoriented in place.
func geometryJSON(g geom.T) ([]byte, error) {
	if g == nil || g.Empty() {
		return []byte("null"), nil
	}
	if err := checkFinite(g); err != nil {
		return nil, err
	}
	switch g := g.(type) {
	case *geom.Point: // the stations: written here, as go-geom's GeoJSON would (FuzzPointJSON)
		return append(appendCoordJSON(append(make([]byte, 0, 48), `{"type":"Point","coordinates":`...), g.FlatCoords()), '}'), nil
	case *geom.LineString: // road segments
		b := append(make([]byte, 0, 32+24*len(g.FlatCoords())), `{"type":"LineString","coordinates":[`...)
		for i, stride := 0, g.Stride(); i < len(g.FlatCoords()); i += stride {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCoordJSON(b, g.FlatCoords()[i:i+stride])
		}
		return append(b, "]}"...), nil
	}
	orientRFC7946(g)
	b, err := geojson.Marshal(g, geojson.EncodeGeometryWithMaxDecimalDigits(maxDecimals))
	if err != nil {
		return nil, fmt.Errorf("encoding GeoJSON: %w", err)
	}
	return b, nil
}

// appendCoordJSON appends one position, each number as go-geom writes it
// with maxDecimals: fixed to that many decimals, trailing zeros and point cut.
func appendCoordJSON(b []byte, c []float64) []byte {
	b = append(b, '[')
	for i, v := range c {
		if i > 0 {
			b = append(b, ',')
		}
		n := len(b)
		b = strconv.AppendFloat(b, v, 'f', maxDecimals, 64)
		b = b[:n+len(bytes.TrimRight(bytes.TrimRight(b[n:], "0"), "."))]
	}
	return append(b, ']')
}

func checkFinite(g geom.T) error {
	if gc, ok := g.(*geom.GeometryCollection); ok {
		for _, c := range gc.Geoms() {
			if err := checkFinite(c); err != nil {
				return err
			}
		}
		return nil
	}
	for _, v := range g.FlatCoords() {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return errBadCoords
		}
	}
	return nil
}

// orientRFC7946 makes every polygon's outer ring counter-clockwise and its
// holes clockwise (RFC 7946 §3.1.6), reversing rings in place.
func orientRFC7946(g geom.T) {
	switch g := g.(type) {
	case *geom.Polygon:
		orientRings(g.FlatCoords(), g.Ends(), g.Stride())
	case *geom.MultiPolygon:
		flat, stride, start := g.FlatCoords(), g.Stride(), 0
		for _, ends := range g.Endss() {
			if len(ends) == 0 {
				continue
			}
			orientRings(flat[start:], shift(ends, start), stride)
			start = ends[len(ends)-1]
		}
	case *geom.GeometryCollection:
		for _, c := range g.Geoms() {
			orientRFC7946(c)
		}
	}
}

func shift(ends []int, by int) []int {
	out := make([]int, len(ends))
	for i, e := range ends {
		out[i] = e - by
	}
	return out
}

// orientRings orients the rings of one polygon; flat starts at its first ring.
func orientRings(flat []float64, ends []int, stride int) {
	start := 0
	for i, end := range ends {
		ring := flat[start:end]
		a := signedArea(ring, stride)
		if (i == 0 && a < 0) || (i > 0 && a > 0) {
			reverseRing(ring, stride)
		}
		start = end
	}
}

// signedArea is twice the shoelace area of a ring: positive when counter-clockwise.
func signedArea(ring []float64, stride int) float64 {
	n := len(ring) / stride
	if n < 3 {
		return 0
	}
	var s float64
	for i := 0; i < n; i++ {
		j := (i + 1) % n
		s += ring[i*stride]*ring[j*stride+1] - ring[j*stride]*ring[i*stride+1]
	}
	return s
}

func reverseRing(ring []float64, stride int) {
	n := len(ring) / stride
	for i, j := 0, n-1; i < j; i, j = i+1, j-1 {
		for k := 0; k < stride; k++ {
			ring[i*stride+k], ring[j*stride+k] = ring[j*stride+k], ring[i*stride+k]
		}
	}
}

// mergeAreas combines an alert's area geometries: none is nil, one is itself,
// polygons only become one MultiPolygon, anything else a GeometryCollection.
func mergeAreas(gs []geom.T) (geom.T, error) {
	switch len(gs) {
	case 0:
		return nil, nil
	case 1:
		return gs[0], nil
	}
	polygonsOnly := true
	for _, g := range gs {
		switch g.(type) {
		case *geom.Polygon, *geom.MultiPolygon:
		default:
			polygonsOnly = false
		}
	}
	if polygonsOnly {
		mp := geom.NewMultiPolygon(geom.XY)
		for _, g := range gs {
			switch g := g.(type) {
			case *geom.Polygon:
				if err := mp.Push(toXYPolygon(g)); err != nil {
					return nil, fmt.Errorf("merging alert areas: %w", err)
				}
			case *geom.MultiPolygon:
				for i := 0; i < g.NumPolygons(); i++ {
					if err := mp.Push(toXYPolygon(g.Polygon(i))); err != nil {
						return nil, fmt.Errorf("merging alert areas: %w", err)
					}
				}
			}
		}
		return mp, nil
	}
	gc := geom.NewGeometryCollection()
	if err := gc.Push(gs...); err != nil {
		return nil, fmt.Errorf("merging alert areas: %w", err)
	}
	return gc, nil
}

// toXYPolygon drops any Z or M so polygons of mixed layouts can share a MultiPolygon.
func toXYPolygon(p *geom.Polygon) *geom.Polygon {
	if p.Layout() == geom.XY {
		return p
	}
	stride := p.Stride()
	flat := p.FlatCoords()
	xy := make([]float64, 0, len(flat)/stride*2)
	for i := 0; i+1 < len(flat); i += stride {
		xy = append(xy, flat[i], flat[i+1])
	}
	ends := make([]int, len(p.Ends()))
	for i, e := range p.Ends() {
		ends[i] = e / stride * 2
	}
	return geom.NewPolygonFlat(geom.XY, xy, ends)
}
