package ingest_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/twpayne/go-geom/encoding/geojson"

	"github.com/iochub/iochub/internal/seed"
	"github.com/iochub/iochub/services/ingest"
)

// TestRealBoundariesPass: every province and Hà Nội ward boundary of the seed
// (up to MaxVertices positions) passes the ring checks, within the edge-pair budget.
func TestRealBoundariesPass(t *testing.T) {
	for _, doc := range [][]byte{seed.Provinces2025(), seed.HanoiWards2025()} {
		var fc struct {
			Features []struct {
				Properties struct {
					Code string `json:"code"`
				} `json:"properties"`
				Geometry json.RawMessage `json:"geometry"`
			} `json:"features"`
		}
		if err := json.NewDecoder(bytes.NewReader(doc)).Decode(&fc); err != nil {
			t.Fatal(err)
		}
		checked := 0
		for _, f := range fc.Features {
			var g geojson.Geometry
			if err := json.Unmarshal(f.Geometry, &g); err != nil {
				t.Fatal(err)
			}
			gt, err := g.Decode()
			if err != nil {
				t.Fatal(err)
			}
			if n := len(gt.FlatCoords()) / gt.Stride(); n > ingest.MaxVertices {
				continue
			}
			if _, err := ingest.ParseGeometry(f.Geometry, "area", "Polygon", "MultiPolygon"); err != nil {
				t.Errorf("unit %s: %v", f.Properties.Code, err)
			}
			checked++
		}
		t.Logf("%d of %d boundaries checked", checked, len(fc.Features))
		if checked == 0 {
			t.Fatal("no boundary checked")
		}
	}
}

// TestCombIsBounded: a ring whose edges all span the same longitudes used to
// cost the square of its edges; it is refused past a fixed budget.
func TestCombIsBounded(t *testing.T) {
	var shell [][]float64
	const n = 2500
	for i := range n {
		y := float64(i) * 1e-4
		shell = append(shell, []float64{0, y}, []float64{1, y + 0.5e-4})
	}
	shell = append(shell, []float64{-1, n * 1e-4}, []float64{-1, 0}, []float64{0, 0})
	raw, _ := json.Marshal(map[string]any{"type": "Polygon", "coordinates": [][][]float64{shell}})
	// The bound is a count of edge pairs (geomcheck.maxEdgePairs), not a
	// clock: "too intricate" says the sweep stopped at it rather than
	// compare the 12.5 M pairs of this comb. No timing is asserted here.
	_, err := ingest.ParseGeometry(raw, "location", "Polygon")
	if err == nil || !strings.Contains(err.Error(), "too intricate") {
		t.Errorf("got %v; want too intricate", err)
	}
}
