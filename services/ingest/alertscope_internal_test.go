package ingest

import (
	"bytes"
	"testing"

	"github.com/iochub/iochub/internal/seed"
	"github.com/iochub/iochub/internal/units"
)

// TestAlertScopeCoversWards: a vertex inside a ward of Hà Nội is inside Hà
// Nội for the alert scope too, as it is for placing the item (resolve uses
// units.Index.Covers), even where the province's own, coarser polygon
// leaves it out by more than scopeTolerance.
func TestAlertScopeCoversWards(t *testing.T) {
	provinces, err := units.FromGeoJSON(bytes.NewReader(seed.Provinces2025()), units.LevelProvince, "")
	if err != nil {
		t.Fatal(err)
	}
	wards, err := units.FromGeoJSON(bytes.NewReader(seed.HanoiWards2025()), units.LevelCommune, "01")
	if err != nil {
		t.Fatal(err)
	}
	ix := units.NewIndex(append(provinces, wards...))
	// Found by a 0.001° scan: in a ward of 01, and neither it nor any of the
	// eight points scopeTolerance around it is in the province-01 polygon.
	lon, lat := 105.856, 21.369
	if !ix.Covers("01", lon, lat) {
		t.Fatalf("the point %v,%v is not in Hà Nội; the test would prove nothing", lon, lat)
	}
	ward, _ := ix.LocateWithin(lon, lat, "01")
	g := Geometry{Type: "Point", Polys: [][][]float64{{{lon, lat}}}}
	check := areaScope([]scopeArea{{pointer: "area[0]", shape: &g}})
	if ierr := check(ix, ward.Code, AlertScopeProvince); ierr != nil {
		t.Fatalf("a source of ward %s alerting at %v,%v: %v; want it inside its province", ward.Code, lon, lat, ierr)
	}
	if ierr := check(ix, "01", AlertScopeUnit); ierr != nil {
		t.Fatalf("a source of 01 alerting at %v,%v with unit scope: %v; want it inside its unit", lon, lat, ierr)
	}
	far := Geometry{Type: "Point", Polys: [][][]float64{{{106.7009, 10.7769}}}}
	if ierr := areaScope([]scopeArea{{pointer: "area[0]", shape: &far}})(ix, "01", AlertScopeProvince); ierr == nil || !ierr.outside {
		t.Fatalf("a source of 01 alerting in Bến Thành: %v; want outside", ierr)
	}
}
