package ingest

import (
	"encoding/json"
	"testing"
)

// TestNumOuterVertices: the count the alert's vertex limit adds up is the
// number of vertices Vertices makes, for every geometry type.
func TestNumOuterVertices(t *testing.T) {
	for _, raw := range []string{
		`{"type":"Point","coordinates":[105.85,21.02]}`,
		`{"type":"LineString","coordinates":[[105.85,21.02],[105.86,21.03],[105.87,21.02]]}`,
		`{"type":"Polygon","coordinates":[[[105.8,21.0],[105.9,21.0],[105.9,21.1],[105.8,21.0]],[[105.85,21.01],[105.86,21.01],[105.86,21.02],[105.85,21.01]]]}`,
		`{"type":"MultiPolygon","coordinates":[[[[105.8,21.0],[105.9,21.0],[105.9,21.1],[105.8,21.0]]],[[[106.0,21.0],[106.1,21.0],[106.1,21.1],[106.0,21.1],[106.0,21.0]]]]}`,
	} {
		g, err := ParseGeometry(json.RawMessage(raw), "geometry", "Point", "LineString", "Polygon", "MultiPolygon")
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if n, want := g.numOuterVertices(), len(g.Vertices()); n != want || n == 0 {
			t.Errorf("%s: numOuterVertices = %d, len(Vertices()) = %d", g.Type, n, want)
		}
	}
}

// TestPositionsAllocs: reading a line's positions allocates their array and
// nothing per position (no pointer string, no pair slice).
func TestPositionsAllocs(t *testing.T) {
	cs := make([][]float64, 500)
	for i := range cs {
		cs[i] = []float64{105.8 + float64(i)*1e-4, 21.0}
	}
	if n := testing.AllocsPerRun(20, func() { _, _ = positions(cs, "location.coordinates") }); n > 1 {
		t.Errorf("positions of 500 points allocates %.0f times; want 1", n)
	}
	if _, err := positions([][]float64{{105.8, 21}, {105.8}}, "c"); err == nil || err.Error() != "c[1]: a position needs 2 or 3 numbers [lon, lat], got 1" {
		t.Errorf("positions with a short position: %v", err)
	}
}
