package ingest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/seed"
	"github.com/iochub/iochub/internal/units"
	"github.com/iochub/iochub/services/ingest"
)

// TestAttributionByObservationTime: with both maps loaded, an observation
// dated 2025-06-01 at a point of Hà Giang goes to the old province Hà Giang
// (02), one dated 2025-08-01 to Tuyên Quang (08), which absorbed it; a source
// bound to a 2025 ward still places its backlog from before the ward existed.
func TestAttributionByObservationTime(t *testing.T) {
	ne := startNATS(t)
	vs := []units.Unit{{Code: units.NationalCode, Level: units.LevelNational, ValidFrom: schema.NationalValidFrom}}
	for _, u := range testUnits(t) {
		u.ValidFrom = schema.DefaultUnitsValidFrom
		if u.Level == units.LevelProvince {
			u.ParentCode = units.NationalCode
		}
		vs = append(vs, u)
	}
	old, _, err := units.Pre2025Provinces(seed.ProvincesPre2025(), seed.ProvinceMerges2025())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range old {
		vs = append(vs, units.Unit{Code: r.Code, Level: r.Level, ParentCode: r.Parent, NameVI: r.Name, Boundary: r.Boundary,
			ValidFrom: schema.Pre2025ValidFrom, ValidTo: schema.DefaultUnitsValidFrom})
	}
	svc, err := ingest.New(t.Context(), ingest.Config{DevToken: tokDev}, ingest.Deps{JS: ne.js, Units: vs, Sources: testSources()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)

	haGiang := [2]float64{104.98, 22.82}
	thuDauMot := [2]float64{106.65, 10.98} // old Bình Dương (74), in Hồ Chí Minh City (79) since 2025-07-01
	for i, c := range []struct {
		name, token, at string
		p               [2]float64
		unit, subject   string
	}{
		{"Hà Giang before the merger", tokDev, "2025-06-01T08:00:00+07:00", haGiang, "02", "ioc.feed.02.02.air"},
		{"Hà Giang on the last day", tokDev, "2025-06-30T23:59:59+07:00", haGiang, "02", "ioc.feed.02.02.air"},
		{"Hà Giang from the merger on", tokDev, "2025-07-01T00:00:00+07:00", haGiang, "08", "ioc.feed.08.08.air"},
		{"Hà Giang after the merger", tokDev, "2025-08-01T08:00:00+07:00", haGiang, "08", "ioc.feed.08.08.air"},
		{"Hà Nội before the wards", tokDev, "2025-06-01T08:00:00+07:00", hoanKiem, "01", "ioc.feed.01.01.air"},
		{"ward source, backlog before its ward existed", tokWard, "2025-06-01T08:00:00+07:00", hoanKiem, "00070", "ioc.feed.01.00070.air"},
		{"HCMC source, before Bình Dương merged into it", tokHCMC, "2025-06-01T08:00:00+07:00", thuDauMot, "79", "ioc.feed.79.79.air"},
		{"dev token, Bình Dương before it merged", tokDev, "2025-06-01T08:00:00+07:00", thuDauMot, "74", "ioc.feed.74.74.air"},
	} {
		t.Run(c.name, func(t *testing.T) {
			item := with(air(fmt.Sprint("a", i), c.p), "dateObserved", c.at)
			r := postTo(t, hs.URL, "air", c.token, "", arr(t, item))
			if r.code != 202 || len(r.resp.Results) != 1 {
				t.Fatalf("got HTTP %d; want 202: %s", r.code, r.raw)
			}
			got := r.resp.Results[0]
			if got.Status != "accepted" || got.Unit != c.unit || got.Subject != c.subject {
				t.Errorf("got %s in %q on %q (%s); want accepted in %s on %s", got.Status, got.Unit, got.Subject, got.Reason, c.unit, c.subject)
			}
		})
	}
}

// TestAreaAcrossProvincesUnderVN: with provinces under VN, an alert whose
// area spans two provinces stays in a province, as before VN existed; it
// never climbs to VN (which belongs to no province).
func TestAreaAcrossProvincesUnderVN(t *testing.T) {
	ne := startNATS(t)
	vs := []units.Unit{{Code: units.NationalCode, Level: units.LevelNational}}
	for _, u := range testUnits(t) {
		if u.Level == units.LevelProvince {
			u.ParentCode = units.NationalCode
		}
		vs = append(vs, u)
	}
	for _, us := range [][]units.Unit{testUnits(t), vs} {
		svc, err := ingest.New(t.Context(), ingest.Config{DevToken: tokDev}, ingest.Deps{JS: ne.js, Units: us, Sources: testSources()})
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		svc.Register(mux)
		hs := httptest.NewServer(mux)
		// From Hà Nội (01) into Hưng Yên (33) to the south-east.
		span := capAlert(fmt.Sprint("two-provinces-", len(us)), hoanKiem)
		span["area"] = []any{map[string]any{"areaDesc": "Hà Nội – Hưng Yên", "geometry": polygon(
			[2]float64{105.85, 21.02}, [2]float64{106.05, 20.80}, [2]float64{106.06, 20.81},
			[2]float64{105.86, 21.03}, [2]float64{105.85, 21.02})}}
		r := postTo(t, hs.URL, "alert", tokDev, "", arr(t, span))
		hs.Close()
		if r.code != 202 || len(r.resp.Results) != 1 {
			t.Fatalf("got HTTP %d; want 202: %s", r.code, r.raw)
		}
		if got := r.resp.Results[0]; got.Status != "accepted" || got.Unit == units.NationalCode {
			t.Errorf("with %d units: got %s in %q (%s); want accepted in a province", len(us), got.Status, got.Unit, got.Reason)
		}
	}
}
