package units_test

import (
	"testing"
)

// edgePoints are points of Hà Nội's wards (on a 0.005° grid) that the
// province-01 polygon, generalised differently, leaves out.
func edgePoints(t testing.TB) [][2]float64 {
	t.Helper()
	ix := hanoiIndex(t)
	var out [][2]float64
	for lon := 105.25; lon <= 106.05; lon += 0.005 {
		for lat := 20.55; lat <= 21.40; lat += 0.005 {
			u, ok := ix.LocateWithin(lon, lat, "01")
			if ok && u.Code != "01" && !ix.Contains("01", lon, lat) {
				out = append(out, [2]float64{lon, lat})
			}
		}
	}
	return out
}

// TestCoversDescendants: a unit contains its descendants by definition, so a
// point inside a ward of Hà Nội is in Hà Nội even where the province's own
// polygon says otherwise.
func TestCoversDescendants(t *testing.T) {
	ix := hanoiIndex(t)
	pts := edgePoints(t)
	if len(pts) == 0 {
		t.Fatal("no ward point outside the province-01 polygon; the test would prove nothing")
	}
	t.Logf("%d ward points outside the province polygon, e.g. %v", len(pts), pts[0])
	for _, p := range pts {
		if !ix.Covers("01", p[0], p[1]) {
			t.Fatalf("Covers(01, %v) = false; want true (the point is in a ward of 01)", p)
		}
		u, ok := ix.LocateWithin(p[0], p[1], "01")
		if !ok || u.ParentCode != "01" {
			t.Fatalf("LocateWithin(%v, 01) = %+v, %v; want a ward of 01", p, u.Code, ok)
		}
		if _, ok := ix.LocateWithin(p[0], p[1], "79"); ok {
			t.Fatalf("LocateWithin(%v, 79) found a unit; want none (the point is in Hà Nội)", p)
		}
	}
	if ix.Covers("01", 106.7009, 10.7769) {
		t.Error("Covers(01, Bến Thành) = true; want false")
	}
	if !ix.Covers("79", 106.7009, 10.7769) {
		t.Error("Covers(79, Bến Thành) = false; want true")
	}
}
