package units_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/iochub/iochub/internal/seed"
	"github.com/iochub/iochub/internal/units"
)

func TestPre2025ProvincesSeed(t *testing.T) {
	recs, ms, err := units.Pre2025Provinces(seed.ProvincesPre2025(), seed.ProvinceMerges2025())
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 63 || len(ms) != 34 {
		t.Fatalf("got %d provinces and %d merges; want 63 and 34", len(recs), len(ms))
	}
	byCode := map[string]units.Record{}
	for _, r := range recs {
		byCode[r.Code] = r
		if r.Parent != units.NationalCode || r.Level != units.LevelProvince || r.Boundary == nil {
			t.Errorf("%s: parent %q level %q; want VN, province, a boundary", r.Code, r.Parent, r.Level)
		}
	}
	for code, name := range map[string]string{"02": "Hà Giang", "79": "Hồ Chí Minh", "56": "Khánh Hòa", "38": "Thanh Hóa", "01": "Hà Nội"} {
		if byCode[code].Name != name {
			t.Errorf("code %s: name %q; want %q", code, byCode[code].Name, name)
		}
	}
}

func TestPre2025ProvincesUnmatchedName(t *testing.T) {
	ms := []units.ProvinceMerge{{NewCode: "08", OldCodes: []string{"02", "08"}, OldNames: []string{"Tỉnh Hà Giang", "Tỉnh Tuyên Quang"}}}
	geo := `{"type":"FeatureCollection","features":[
	 {"type":"Feature","properties":{"code":"AD01","ten_tinh":"Hà Giang"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}},
	 {"type":"Feature","properties":{"code":"AD02","ten_tinh":"Atlantis"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}}]}`
	_, err := units.ReadPre2025Provinces(strings.NewReader(geo), ms)
	if !errors.Is(err, units.ErrInvalidUnits) || !strings.Contains(err.Error(), `"Atlantis"`) {
		t.Fatalf("got %v; want ErrInvalidUnits naming Atlantis", err)
	}
	geo = strings.Replace(geo, "Atlantis", "Tuyen Quang", 1)
	if _, err := units.ReadPre2025Provinces(strings.NewReader(geo), ms); err != nil {
		t.Fatalf("with Tuyen Quang: %v", err)
	}
	geo = strings.Replace(geo, "Tuyen Quang", "TP Hà Giang", 1)
	if _, err := units.ReadPre2025Provinces(strings.NewReader(geo), ms); !errors.Is(err, units.ErrInvalidUnits) || !strings.Contains(err.Error(), "both match") {
		t.Fatalf("Hà Giang twice: got %v; want both match", err)
	}
}
