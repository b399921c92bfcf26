package gateway

import (
	"bytes"
	"math"
	"testing"

	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/geojson"
)

// FuzzPointJSON holds geometryJSON's own writing of points and line strings
// to go-geom's GeoJSON with maxDecimals, for every layout and number
// (rounding, -0, tiny and huge values).
func FuzzPointJSON(f *testing.F) {
	f.Add(105.8524, 21.0287, 0.0, 0.0, uint8(0))
	f.Add(math.Copysign(0, -1), 1e-8, 123456789.123456789, -1e21, uint8(3))
	f.Add(0.00000005, -0.00000005, 179.99999999, -89.999999951, uint8(6))
	f.Fuzz(func(t *testing.T, x, y, z, m float64, shape uint8) {
		for _, v := range []float64{x, y, z, m} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return
			}
		}
		layouts := []geom.Layout{geom.XY, geom.XYZ, geom.XYM, geom.XYZM}
		l := layouts[int(shape)%len(layouts)]
		c := []float64{x, y, z, m}[:l.Stride()]
		var g geom.T = geom.NewPointFlat(l, c)
		if shape&4 != 0 {
			flat := append(append([]float64{}, c...), c...)
			for i := l.Stride(); i < len(flat); i++ {
				flat[i] += 0.5
			}
			g = geom.NewLineStringFlat(l, flat)
		}
		want, err := geojson.Marshal(g, geojson.EncodeGeometryWithMaxDecimalDigits(maxDecimals))
		if err != nil {
			t.Fatal(err)
		}
		got, err := geometryJSON(g)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("geometryJSON %s; go-geom %s", got, want)
		}
	})
}
