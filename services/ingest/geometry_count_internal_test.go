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
