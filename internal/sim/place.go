package sim

import (
	"math"
	"math/rand/v2"

	"github.com/iochub/iochub/internal/units"
)

// inWard reports whether (lon, lat) is attributed to ward: the units index
// locates it in that very unit (the smallest unit containing it, as the ingest
// resolves it), so slivers where two boundaries overlap are avoided too.
func inWard(ix *units.Index, ward string, lon, lat float64) bool {
	u, ok := ix.Locate(lon, lat)
	return ok && u.Code == ward
}

// randomPointIn draws a point inside w by rejection sampling in its bounding box.
func randomPointIn(rng *rand.Rand, ix *units.Index, w units.Unit) ([2]float64, bool) {
	b := w.Boundary.Bounds()
	for range 2000 {
		p := [2]float64{
			round6(b.Min(0) + rng.Float64()*(b.Max(0)-b.Min(0))),
			round6(b.Min(1) + rng.Float64()*(b.Max(1)-b.Min(1))),
		}
		if inWard(ix, w.Code, p[0], p[1]) {
			return p, true
		}
	}
	return [2]float64{}, false
}

// metresPerDegLat is the length of one degree of latitude, close enough for
// short distances near Hà Nội.
const metresPerDegLat = 111_320.0

// offset moves p by dist metres towards bearing (radians, 0 = north, clockwise).
func offset(p [2]float64, dist, bearing float64) [2]float64 {
	dLat := dist * math.Cos(bearing) / metresPerDegLat
	dLon := dist * math.Sin(bearing) / (metresPerDegLat * math.Cos(p[1]*math.Pi/180))
	return [2]float64{round6(p[0] + dLon), round6(p[1] + dLat)}
}

// randomLineIn draws a LineString of 3–5 vertices and 200–800 m inside w,
// every vertex and every leg's midpoint inside the ward.
func randomLineIn(rng *rand.Rand, ix *units.Index, w units.Unit) ([][2]float64, bool) {
	for range 200 {
		start, ok := randomPointIn(rng, ix, w)
		if !ok {
			return nil, false
		}
		n := 3 + rng.IntN(3)
		total := 200 + rng.Float64()*600
		leg := total / float64(n-1)
		bearing := rng.Float64() * 2 * math.Pi
		line := [][2]float64{start}
		ok = true
		for i := 1; i < n && ok; i++ {
			bearing += (rng.Float64() - 0.5) * math.Pi / 4
			next := offset(line[i-1], leg, bearing)
			mid := [2]float64{(line[i-1][0] + next[0]) / 2, (line[i-1][1] + next[1]) / 2}
			ok = inWard(ix, w.Code, next[0], next[1]) && inWard(ix, w.Code, mid[0], mid[1])
			line = append(line, next)
		}
		if ok {
			return line, true
		}
	}
	return nil, false
}

// squareIn returns a closed counter-clockwise ring of a square of side metres
// centred on c, if all its corners lie inside w.
func squareIn(ix *units.Index, w units.Unit, c [2]float64, side float64) ([][2]float64, bool) {
	h := side / 2
	sw := offset(offset(c, h, math.Pi), h, 3*math.Pi/2)
	se := offset(offset(c, h, math.Pi), h, math.Pi/2)
	ne := offset(offset(c, h, 0), h, math.Pi/2)
	nw := offset(offset(c, h, 0), h, 3*math.Pi/2)
	ring := [][2]float64{sw, se, ne, nw, sw}
	for _, p := range ring {
		if !inWard(ix, w.Code, p[0], p[1]) {
			return nil, false
		}
	}
	return ring, true
}

func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }
func round1(v float64) float64 { return math.Round(v*10) / 10 }
func round2(v float64) float64 { return math.Round(v*100) / 100 }
