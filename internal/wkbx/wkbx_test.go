package wkbx

import (
	"errors"
	"testing"

	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/wkb"
)

func TestUnmarshal(t *testing.T) {
	good := []geom.T{
		geom.NewPointFlat(geom.XY, []float64{105.85, 21.03}),
		geom.NewLineStringFlat(geom.XY, []float64{105.8, 21, 105.9, 21.1}),
		geom.NewPolygonFlat(geom.XY, []float64{105, 21, 106, 21, 106, 22, 105, 21}, []int{8}),
		geom.NewMultiPolygonFlat(geom.XY, []float64{105, 21, 106, 21, 106, 22, 105, 21}, [][]int{{8}}),
		geom.NewPointFlat(geom.XYZ, []float64{105.5, 21.5, 12}),
		geom.NewLineStringFlat(geom.XYZM, []float64{105.8, 21, 1, 2, 105.9, 21.1, 3, 4}),
	}
	for _, g := range good {
		b, err := wkb.Marshal(g, wkb.NDR)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("Unmarshal(%T) = %v", g, err)
		}
		if len(got.FlatCoords()) != len(g.FlatCoords()) {
			t.Errorf("%T: got %d coordinates; want %d", g, len(got.FlatCoords()), len(g.FlatCoords()))
		}
		if _, err := Unmarshal(append(b, 0)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%T with a trailing byte: %v; want ErrMalformed", g, err)
		}
	}
	bad := map[string][]byte{
		"empty":             nil,
		"bad byte order":    {7, 1, 0, 0, 0},
		"unknown type":      {1, 99, 0, 0, 0},
		"truncated point":   {1, 1, 0, 0, 0, 0, 0},
		"huge line count":   {1, 2, 0, 0, 0, 0x19, 0x19, 0x19, 0x19, 0, 0},
		"huge ring count":   {1, 3, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f},
		"huge part count":   {1, 6, 0, 0, 0, 0xff, 0xff, 0xff, 0x0f, 1},
		"truncated count":   {1, 2, 0, 0},
		"deeply nested":     nested(maxDepth + 2),
		"z point cut short": {1, 0xe9, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"huge z line count": {1, 0xea, 0x03, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0},
		"type 9001":         {1, 0x29, 0x23, 0, 0},
	}
	for name, b := range bad {
		if _, err := Unmarshal(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v; want ErrMalformed", name, err)
		}
	}
}

// nested is depth GeometryCollections each holding the next.
func nested(depth int) []byte {
	var b []byte
	for range depth {
		b = append(b, 1, 7, 0, 0, 0, 1, 0, 0, 0)
	}
	return append(b, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
}

func FuzzUnmarshal(f *testing.F) {
	for _, g := range []geom.T{
		geom.NewPointFlat(geom.XY, []float64{1, 2}),
		geom.NewLineStringFlat(geom.XY, []float64{1, 2, 3, 4}),
		geom.NewMultiPolygonFlat(geom.XY, []float64{0, 0, 1, 0, 1, 1, 0, 0}, [][]int{{8}}),
	} {
		b, _ := wkb.Marshal(g, wkb.NDR)
		f.Add(b)
	}
	f.Add([]byte{1, 2, 0, 0, 0, 0x19, 0x19, 0x19, 0x19})
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := Unmarshal(b)
		if err != nil {
			return
		}
		if n := coords(g); n > len(b) {
			t.Fatalf("%d coordinates from %d bytes", n, len(b))
		}
	})
}

// coords counts the coordinates of g (FlatCoords panics on a collection).
func coords(g geom.T) int {
	if gc, ok := g.(*geom.GeometryCollection); ok {
		n := 0
		for _, c := range gc.Geoms() {
			n += coords(c)
		}
		return n
	}
	return len(g.FlatCoords())
}
