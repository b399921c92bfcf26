package cap

import (
	"encoding/binary"
	"math"

	"github.com/twpayne/go-geom"
)

// Circles become polygons as WMO's cap2geojson draws them: CircleSegments
// points at equal bearings, starting due east and turning counter-clockwise,
// each at the radius's great-circle distance from the centre on a sphere of
// radius EarthRadiusKm (the destination-point formula), then the first point
// again to close the ring.
const (
	CircleSegments = 64
	EarthRadiusKm  = 6371.0
)

// PolygonGeometry turns a CAP polygon (lat,lon pairs) into a go-geom XY
// polygon in GeoJSON axis order (lon, lat), with its ring counter-clockwise
// as RFC 7946 wants of an outer ring.
func PolygonGeometry(pg Polygon) *geom.Polygon {
	flat := make([]float64, 0, 2*len(pg))
	for _, pt := range pg {
		flat = append(flat, pt.Lon, pt.Lat)
	}
	if signedArea(flat) < 0 {
		reversePairs(flat)
	}
	return geom.NewPolygonFlat(geom.XY, flat, []int{len(flat)})
}

// CircleGeometry approximates a CAP circle by a polygon of CircleSegments
// sides (see the constants). A circle of radius 0 has no area and gives nil.
// Longitudes are not wrapped: a circle over the antimeridian gives values
// beyond ±180.
func CircleGeometry(c Circle) *geom.Polygon {
	if !(c.Radius > 0) {
		return nil
	}
	lat1 := c.Center.Lat * math.Pi / 180
	lon1 := c.Center.Lon * math.Pi / 180
	d := c.Radius / EarthRadiusKm
	sinLat1, cosLat1 := math.Sincos(lat1)
	sinD, cosD := math.Sincos(d)
	flat := make([]float64, 0, 2*(CircleSegments+1))
	for i := range CircleSegments {
		bearing := math.Pi/2 - 2*math.Pi*float64(i)/CircleSegments
		sinB, cosB := math.Sincos(bearing)
		lat2 := math.Asin(sinLat1*cosD + cosLat1*sinD*cosB)
		lon2 := lon1 + math.Atan2(sinB*sinD*cosLat1, cosD-sinLat1*math.Sin(lat2))
		flat = append(flat, lon2*180/math.Pi, lat2*180/math.Pi)
	}
	flat = append(flat, flat[0], flat[1])
	return geom.NewPolygonFlat(geom.XY, flat, []int{len(flat)})
}

// AreaGeometry returns the area's shape: a *geom.Polygon when it has one
// polygon or circle, a *geom.MultiPolygon when it has several, and nil when
// it is described by geocodes only (or only by circles of radius 0).
func AreaGeometry(a Area) geom.T {
	polys := areaPolygons(a, nil, map[string]bool{})
	switch len(polys) {
	case 0:
		return nil
	case 1:
		return polys[0]
	}
	return multi(polys)
}

// AlertGeometry returns every polygon and circle of every area of every info
// block as one MultiPolygon, or nil when no area has a shape. Identical
// polygons (the same area repeated in each language) appear once; distinct
// overlapping ones are kept as they are (union them in PostGIS if needed).
func AlertGeometry(a Alert) *geom.MultiPolygon {
	var polys []*geom.Polygon
	seen := map[string]bool{}
	for i := range a.Infos {
		for j := range a.Infos[i].Areas {
			polys = areaPolygons(a.Infos[i].Areas[j], polys, seen)
		}
	}
	if len(polys) == 0 {
		return nil
	}
	return multi(polys)
}

// areaPolygons appends the area's polygons to polys, skipping exact repeats.
func areaPolygons(a Area, polys []*geom.Polygon, seen map[string]bool) []*geom.Polygon {
	add := func(p *geom.Polygon) {
		if p == nil {
			return
		}
		if k := polygonKey(p); !seen[k] {
			seen[k] = true
			polys = append(polys, p)
		}
	}
	for _, pg := range a.Polygons {
		if len(pg) > 0 {
			add(PolygonGeometry(pg))
		}
	}
	for _, c := range a.Circles {
		add(CircleGeometry(c))
	}
	return polys
}

// polygonKey identifies a drawn polygon by its coordinates (seen maps keep
// repeats out in linear time).
func polygonKey(p *geom.Polygon) string {
	flat := p.FlatCoords()
	b := make([]byte, 0, 8*len(flat))
	for _, f := range flat {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	}
	return string(b)
}

func multi(polys []*geom.Polygon) *geom.MultiPolygon {
	mp := geom.NewMultiPolygon(geom.XY)
	for _, p := range polys {
		if err := mp.Push(p); err != nil {
			// Push fails only on a layout mismatch, and every polygon here is XY.
			panic(err)
		}
	}
	return mp
}

// signedArea is the shoelace area of a ring of x,y pairs: positive when the
// ring turns counter-clockwise.
func signedArea(flat []float64) float64 {
	var s float64
	for i := 0; i+3 < len(flat); i += 2 {
		s += flat[i]*flat[i+3] - flat[i+2]*flat[i+1]
	}
	return s / 2
}

func reversePairs(flat []float64) {
	for i, j := 0, len(flat)-2; i < j; i, j = i+2, j-2 {
		flat[i], flat[j] = flat[j], flat[i]
		flat[i+1], flat[j+1] = flat[j+1], flat[i+1]
	}
}

// ShapeKey identifies a polygon (when c is nil) or a circle by its exact
// coordinates, as written: two shapes with equal keys draw the same
// geometry. Used to skip repeats of a shape.
func ShapeKey(pg Polygon, c *Circle) string {
	var b []byte
	if c != nil {
		b = make([]byte, 0, 1+3*8)
		b = append(b, 'c')
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(c.Center.Lat))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(c.Center.Lon))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(c.Radius))
		return string(b)
	}
	b = make([]byte, 0, 1+16*len(pg))
	b = append(b, 'p')
	for _, pt := range pg {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(pt.Lat))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(pt.Lon))
	}
	return string(b)
}

// DistinctAreaGeometries returns, for each info block and each of its areas
// (out[i][j] for a.Infos[i].Areas[j]), the area's shape as AreaGeometry draws
// it but without the polygons and circles already drawn for an earlier area
// of the alert (the same area repeated in each language, or sent many
// times): nil when nothing new remains. The union of the results is the
// union of every area's shape, each distinct shape drawn once, so a spatial
// join over them does no repeated work. The alert itself is left whole.
func DistinctAreaGeometries(a Alert) [][]geom.T {
	seen := map[string]bool{}
	out := make([][]geom.T, len(a.Infos))
	for i := range a.Infos {
		out[i] = make([]geom.T, len(a.Infos[i].Areas))
		for j, ar := range a.Infos[i].Areas {
			var polys []*geom.Polygon
			for _, pg := range ar.Polygons {
				if k := ShapeKey(pg, nil); len(pg) > 0 && !seen[k] {
					seen[k] = true
					polys = append(polys, PolygonGeometry(pg))
				}
			}
			for _, c := range ar.Circles {
				if k := ShapeKey(nil, &c); !seen[k] {
					seen[k] = true
					if g := CircleGeometry(c); g != nil {
						polys = append(polys, g)
					}
				}
			}
			switch len(polys) {
			case 0:
			case 1:
				out[i][j] = polys[0]
			default:
				out[i][j] = multi(polys)
			}
		}
	}
	return out
}
