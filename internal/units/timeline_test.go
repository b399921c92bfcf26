package units_test

import (
	"testing"
	"time"

	"github.com/twpayne/go-geom"

	"github.com/iochub/iochub/internal/units"
)

func square(x0, y0, x1, y1 float64) *geom.MultiPolygon {
	return geom.NewMultiPolygonFlat(geom.XY, []float64{x0, y0, x1, y0, x1, y1, x0, y1, x0, y0}, [][]int{{10}})
}

// TestTimelineAttribution: a point of an old province that merged is in the
// old province before the change and in the new one from the change on, and
// the ancestors at each time end at VN.
func TestTimelineAttribution(t *testing.T) {
	cut := time.Date(2025, 7, 1, 0, 0, 0, 0, time.FixedZone("ICT", 7*3600))
	old := time.Date(2008, 8, 1, 0, 0, 0, 0, time.UTC)
	tl := units.NewTimeline([]units.Unit{
		{Code: "VN", Level: units.LevelNational},
		{Code: "02", Level: units.LevelProvince, ParentCode: "VN", Boundary: square(0, 1, 1, 2), ValidFrom: old, ValidTo: cut},
		{Code: "08", Level: units.LevelProvince, ParentCode: "VN", Boundary: square(0, 0, 1, 1), ValidFrom: old, ValidTo: cut},
		{Code: "08", Level: units.LevelProvince, ParentCode: "VN", Boundary: square(0, 0, 1, 2), ValidFrom: cut},
		{Code: "00001", Level: units.LevelCommune, ParentCode: "08", Boundary: square(0, 1.5, 0.5, 2), ValidFrom: cut},
	})
	for _, c := range []struct {
		at   time.Time
		want string
		up   []string
	}{
		{time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), "02", []string{"02", "VN"}},
		{cut.Add(-time.Nanosecond), "02", []string{"02", "VN"}},
		{cut, "08", []string{"08", "VN"}},
		{time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC), "08", []string{"08", "VN"}},
	} {
		u, ok := tl.At(c.at).Locate(0.8, 1.5)
		if !ok || u.Code != c.want {
			t.Errorf("at %s: located %q %v; want %s", c.at, u.Code, ok, c.want)
		}
		var up []string
		for _, a := range tl.Ancestors(u.Code, c.at) {
			up = append(up, a.Code)
		}
		if len(up) != len(c.up) || up[0] != c.up[0] || up[len(up)-1] != "VN" {
			t.Errorf("at %s: ancestors %v; want %v", c.at, up, c.up)
		}
	}
	if got := tl.Ancestors("00001", time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC)); len(got) != 3 || got[1].Code != "08" || got[2].Code != "VN" {
		t.Errorf("ancestors of 00001 in August: %v; want 00001, 08, VN", got)
	}
	if got := tl.Ancestors("00001", time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)); got != nil {
		t.Errorf("ancestors of 00001 in June, before it existed: %v; want none", got)
	}
	if u, _ := tl.At(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)).Get("08"); u.ValidTo != cut {
		t.Errorf("08 in June: valid to %s; want the old version, to %s", u.ValidTo, cut)
	}
	if n := tl.At(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).Len(); n != 1 {
		t.Errorf("units valid in 2000: %d; want only VN", n)
	}
	if tl.Current().Len() != 3 {
		t.Errorf("current units: %d; want VN, 08, 00001", tl.Current().Len())
	}
}
