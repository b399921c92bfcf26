package gateway

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/twpayne/go-geom"
)

// bbox is a box in WGS 84 degrees, in RFC 7946 order. A live client's box
// never crosses the antimeridian (MinLon <= MaxLon), and neither does an
// entity's: it is the plain min/max of its coordinates.
type bbox struct {
	MinLon, MinLat, MaxLon, MaxLat float64
}

// intersects reports whether a and b share at least one point (touching edges count).
func (a bbox) intersects(b bbox) bool {
	return a.MinLon <= b.MaxLon && b.MinLon <= a.MaxLon && a.MinLat <= b.MaxLat && b.MinLat <= a.MaxLat
}

// String is the box as the bbox parameter spells it; it keys cached snapshots.
func (a bbox) String() string {
	var b strings.Builder
	for i, v := range [4]float64{a.MinLon, a.MinLat, a.MaxLon, a.MaxLat} {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	}
	return b.String()
}

// geometryBBox is the bounding box of g's x (lon) and y (lat) coordinates; ok
// is false for a nil or empty geometry. Z and M are ignored; coordinates are
// assumed finite (geometryJSON has checked them).
func geometryBBox(g geom.T) (box bbox, ok bool) {
	box = bbox{MinLon: math.Inf(1), MinLat: math.Inf(1), MaxLon: math.Inf(-1), MaxLat: math.Inf(-1)}
	ok = extendBBox(&box, g)
	return box, ok
}

func extendBBox(box *bbox, g geom.T) bool {
	if g == nil {
		return false
	}
	if gc, ok := g.(*geom.GeometryCollection); ok {
		found := false
		for _, c := range gc.Geoms() {
			if extendBBox(box, c) {
				found = true
			}
		}
		return found
	}
	stride := g.Stride()
	flat := g.FlatCoords()
	if stride < 2 || len(flat) < stride {
		return false
	}
	for i := 0; i+1 < len(flat); i += stride {
		x, y := flat[i], flat[i+1]
		box.MinLon, box.MaxLon = min(box.MinLon, x), max(box.MaxLon, x)
		box.MinLat, box.MaxLat = min(box.MinLat, y), max(box.MaxLat, y)
	}
	return true
}

// parseBBox reads the bbox parameter: minLon,minLat,maxLon,maxLat in WGS 84
// degrees (RFC 7946 order). Errors say which value is wrong and why.
func parseBBox(v string) (bbox, error) {
	const want = "give minLon,minLat,maxLon,maxLat in degrees, e.g. bbox=105.75,20.95,105.90,21.10"
	shown := v
	if len(shown) > 64 {
		shown = shown[:64] + "…"
	}
	parts := strings.Split(v, ",")
	if len(parts) != 4 {
		return bbox{}, fmt.Errorf("parameter bbox: %q has %d values; %s: %w", shown, len(parts), want, ErrBadParam)
	}
	names := [4]string{"minLon", "minLat", "maxLon", "maxLat"}
	var n [4]float64
	for i, s := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		// An overflow (1e999) comes back as ±Inf with ErrRange: reported as not finite below.
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return bbox{}, fmt.Errorf("parameter bbox: %s %q is not a number; %s: %w", names[i], s, want, ErrBadParam)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return bbox{}, fmt.Errorf("parameter bbox: %s %q is not a finite number; %s: %w", names[i], s, want, ErrBadParam)
		}
		n[i] = f
	}
	// Latitude first (the order of CAP, Leaflet and most people) is the likely
	// mistake: for Vietnam it puts a longitude above 90 where a latitude belongs.
	for _, i := range []int{1, 3} {
		if lat, lon := math.Abs(n[i]), math.Abs(n[i-1]); lat > 90 && lat <= 180 && lon <= 90 {
			return bbox{}, fmt.Errorf("parameter bbox: %q: bbox looks like lat,lon order; RFC 7946 wants minLon,minLat,maxLon,maxLat: %w",
				shown, ErrBadParam)
		}
	}
	for i, f := range n {
		limit := 180.0
		if i%2 == 1 {
			limit = 90
		}
		if f < -limit || f > limit {
			return bbox{}, fmt.Errorf("parameter bbox: %s %g is outside [%g, %g]: %w", names[i], f, -limit, limit, ErrBadParam)
		}
	}
	b := bbox{MinLon: n[0], MinLat: n[1], MaxLon: n[2], MaxLat: n[3]}
	if b.MinLon > b.MaxLon {
		return bbox{}, fmt.Errorf("parameter bbox: minLon %g is greater than maxLon %g; boxes crossing the antimeridian are not supported, give the west edge first: %w",
			b.MinLon, b.MaxLon, ErrBadParam)
	}
	if b.MinLat > b.MaxLat {
		return bbox{}, fmt.Errorf("parameter bbox: minLat %g is greater than maxLat %g; give the south edge first: %w",
			b.MinLat, b.MaxLat, ErrBadParam)
	}
	return b, nil
}
