package units_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/twpayne/go-geom"

	"github.com/iochub/iochub/internal/seed"
	"github.com/iochub/iochub/internal/units"
)

// hanoiIndex is the 34 provinces and Hà Nội's wards, as the ingest sees them.
func hanoiIndex(t testing.TB) *units.Index {
	t.Helper()
	return units.NewIndex(hanoiUnits(t))
}

// hanoiUnits are the units of hanoiIndex.
func hanoiUnits(t testing.TB) []units.Unit {
	t.Helper()
	provinces, err := units.FromGeoJSON(bytes.NewReader(seed.Provinces2025()), units.LevelProvince, "")
	if err != nil {
		t.Fatal(err)
	}
	wards, err := units.FromGeoJSON(bytes.NewReader(seed.HanoiWards2025()), units.LevelCommune, "01")
	if err != nil {
		t.Fatal(err)
	}
	if len(provinces) != 34 || len(wards) != 126 {
		t.Fatalf("got %d provinces and %d wards; want 34 and 126", len(provinces), len(wards))
	}
	return append(provinces, wards...)
}

func TestLocate(t *testing.T) {
	ix := hanoiIndex(t)
	tests := []struct {
		name     string
		lon, lat float64
		wantOK   bool
		wantUnit string
		wantProv string
	}{
		// Expected wards computed independently (even-odd test in Python over the same files).
		{"Hoàn Kiếm lake", 105.8524, 21.0287, true, "00070", "01"},
		{"Cầu Giấy", 105.7833, 21.0285, true, "00166", "01"},
		{"Ô Chợ Dừa", 105.8342, 21.0278, true, "00190", "01"},
		{"HCMC Bến Thành", 106.7009, 10.7769, true, "79", "79"},
		{"Phú Thọ, outside Hà Nội", 105.5, 21.2, true, "25", "25"},
		{"Madrid", -3.7122, 40.4238, false, "", ""},
		{"swapped Hoàn Kiếm", 21.0287, 105.8524, false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, ok := ix.Locate(tt.lon, tt.lat)
			if ok != tt.wantOK || u.Code != tt.wantUnit {
				t.Fatalf("Locate(%v, %v) = %q, %v; want %q, %v", tt.lon, tt.lat, u.Code, ok, tt.wantUnit, tt.wantOK)
			}
			if !ok {
				return
			}
			p, _ := ix.Province(u.Code)
			if p != tt.wantProv {
				t.Errorf("Province(%q) = %q; want %q", u.Code, p, tt.wantProv)
			}
			if !ix.Contains(u.Code, tt.lon, tt.lat) {
				t.Errorf("Contains(%q) = false; want true", u.Code)
			}
			if !ix.Contains(p, tt.lon, tt.lat) {
				t.Errorf("Contains(province %q) = false; want true", p)
			}
		})
	}
}

// TestLocateOverlapSmallerFirst: where communes overlap (one imported inside a
// ward that was not redrawn), a point goes to the smallest of them, whatever
// the order of their codes; outside the small one, to the ward as before.
func TestLocateOverlapSmallerFirst(t *testing.T) {
	const lon, lat = 105.8524, 21.0287 // Hoàn Kiếm lake, in ward 00070
	commune := func(code string, d float64) units.Unit {
		return units.Unit{Code: code, Level: units.LevelCommune, ParentCode: "01", Boundary: square(lon-d, lat-d, lon+d, lat+d)}
	}
	ix := units.NewIndex(append(hanoiUnits(t), commune("99901", 0.0005), commune("00001", 0.2)))
	for _, tt := range []struct {
		lon, lat float64
		want     string
	}{
		{lon, lat, "99901"},         // in the small square, the ward and the large square
		{lon + 0.001, lat, "00070"}, // in the ward and the large square, not in the small one
	} {
		if u, ok := ix.Locate(tt.lon, tt.lat); !ok || u.Code != tt.want {
			t.Errorf("Locate(%v, %v) = %q, %v; want %q", tt.lon, tt.lat, u.Code, ok, tt.want)
		}
		if u, ok := ix.LocateWithin(tt.lon, tt.lat, "01"); !ok || u.Code != tt.want {
			t.Errorf("LocateWithin(%v, %v, 01) = %q, %v; want %q", tt.lon, tt.lat, u.Code, ok, tt.want)
		}
	}
	if got := ix.Codes(units.LevelCommune); len(got) != 128 || got[0] != "00001" || got[len(got)-1] != "99901" {
		t.Errorf("Codes(commune) = %d codes from %q to %q; want 128 from 00001 to 99901, in code order", len(got), got[0], got[len(got)-1])
	}
}

func TestGetAndWithin(t *testing.T) {
	ix := hanoiIndex(t)
	u, ok := ix.Get("00070")
	if !ok || u.NameVI != "Hoàn Kiếm" || u.Level != units.LevelCommune || u.ParentCode != "01" {
		t.Fatalf("Get(00070) = %+v, %v; want Hoàn Kiếm, commune of 01", u, ok)
	}
	if _, ok := ix.Get("99999"); ok {
		t.Errorf("Get(99999) found a unit; want none")
	}
	if !ix.Within("00070", "01") || ix.Within("00070", "79") || !ix.Within("01", "01") {
		t.Errorf("Within is wrong for 00070 in 01 / 79")
	}
	if ix.Contains("00070", 105.7833, 21.0285) {
		t.Errorf("Contains(00070, Cầu Giấy point) = true; want false")
	}
	if _, ok := ix.Province("nope"); ok {
		t.Errorf("Province(nope) found; want not found")
	}
}

// A square with a square hole: points in the hole belong to the inner unit only.
func TestLocateHoles(t *testing.T) {
	outer := geom.NewMultiPolygon(geom.XY).MustSetCoords([][][]geom.Coord{{
		{{0, 0}, {10, 0}, {10, 10}, {0, 10}, {0, 0}},
		{{4, 4}, {6, 4}, {6, 6}, {4, 6}, {4, 4}},
	}})
	inner := geom.NewMultiPolygon(geom.XY).MustSetCoords([][][]geom.Coord{{
		{{4, 4}, {6, 4}, {6, 6}, {4, 6}, {4, 4}},
	}})
	ix := units.NewIndex([]units.Unit{
		{Code: "P", Level: units.LevelProvince, Boundary: geom.NewMultiPolygon(geom.XY).MustSetCoords([][][]geom.Coord{{{{-1, -1}, {11, -1}, {11, 11}, {-1, 11}, {-1, -1}}}})},
		{Code: "RING", Level: units.LevelCommune, ParentCode: "P", Boundary: outer},
		{Code: "CORE", Level: units.LevelCommune, ParentCode: "P", Boundary: inner},
	})
	for _, tt := range []struct {
		x, y float64
		want string
	}{{5, 5, "CORE"}, {1, 1, "RING"}, {10.5, 10.5, "P"}, {20, 20, ""}} {
		u, _ := ix.Locate(tt.x, tt.y)
		if u.Code != tt.want {
			t.Errorf("Locate(%v, %v) = %q; want %q", tt.x, tt.y, u.Code, tt.want)
		}
	}
	area := func(cs ...float64) [][][]float64 { return [][][]float64{{cs}} }
	for _, tt := range []struct {
		name string
		code string
		area [][][]float64
		want bool
	}{
		{"point in ring", "RING", area(1, 1), true},
		{"point in hole", "RING", area(5, 5), false},
		{"polygon crossing", "CORE", area(5, 5, 7, 5, 7, 7, 5, 7, 5, 5), true},
		{"polygon covering", "CORE", area(-2, -2, 12, -2, 12, 12, -2, 12, -2, -2), true},
		{"polygon apart", "CORE", area(20, 20, 21, 20, 21, 21, 20, 20), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := ix.IntersectsArea(tt.code, tt.area); got != tt.want {
				t.Errorf("IntersectsArea(%s) = %v; want %v", tt.code, got, tt.want)
			}
		})
	}
}

// TestFromGeoJSONErrors: FromGeoJSON reads with the Reader the units import
// uses, so it refuses what the import refuses, naming the feature.
func TestFromGeoJSONErrors(t *testing.T) {
	for _, tt := range []struct{ name, doc, want string }{
		{"not json", `hello`, "not valid JSON at byte 1"},
		{"truncated", `{"type":"FeatureCollection","features":[`, "the file ends early"},
		{"not a collection", `{"type":"Feature"}`, `type is "Feature"; want FeatureCollection`},
		{"no code", `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[1,2]}}]}`, "features[0]: properties.code is missing"},
		{"point boundary", `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"X"},"geometry":{"type":"Point","coordinates":[1,2]}}]}`, "features[0] (code X): the geometry is a Point; want Polygon or MultiPolygon"},
		{"NUL in a name", `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"X","name":"Hà\u0000Nội"},"geometry":{"type":"Polygon","coordinates":[[[1,2],[2,2],[2,3],[1,2]]]}}]}`, "features[0] (code X): properties.name has a NUL character at byte 3"},
		{"long name", `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"X","fullNameEn":"` + strings.Repeat("a", 513) + `"},"geometry":{"type":"Polygon","coordinates":[[[1,2],[2,2],[2,3],[1,2]]]}}]}`, "features[0] (code X): properties.fullNameEn is 513 bytes long; at most 512"},
		{"open ring", `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"X"},"geometry":{"type":"Polygon","coordinates":[[[1,2],[2,2],[2,3],[1,3]]]}}]}`, "features[0] (code X): polygon 0 ring 0: ring is not closed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := units.FromGeoJSON(strings.NewReader(tt.doc), units.LevelCommune, "")
			if !errors.Is(err, units.ErrInvalidUnits) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v; want an error wrapping ErrInvalidUnits containing %q", err, tt.want)
			}
		})
	}
}

func BenchmarkLocate(b *testing.B) {
	ix := hanoiIndex(b)
	pts := [][2]float64{{105.8524, 21.0287}, {105.7833, 21.0285}, {106.7009, 10.7769}, {-3.7122, 40.4238}, {105.5, 21.2}}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p := pts[i%len(pts)]
		ix.Locate(p[0], p[1])
		i++
	}
}

// BenchmarkCoversAreaHoled places an area a hostile source could send: a
// ring of 9,000 vertices around Hà Nội with Hà Nội in its hole, so that no
// vertex is in a unit and every unit's edges are tried against the ring's
// (6.8 s an item when that was every pair of edges). Its baseline is the
// linear floor: locating each of the ring's vertices.
func BenchmarkCoversAreaHoled(b *testing.B) {
	ix := hanoiIndex(b)
	const n = 9000
	outer := make([]float64, 0, 2*n+2)
	for i := range n {
		a := 2 * math.Pi * float64(i) / n
		outer = append(outer, 105.65+1.6*math.Cos(a), 20.97+1.6*math.Sin(a))
	}
	outer = append(outer, outer[0], outer[1])
	hole := []float64{105.2, 20.5, 106.1, 20.5, 106.1, 21.45, 105.2, 21.45, 105.2, 20.5}
	area := [][][]float64{{outer, hole}}
	b.Run("covers", func(b *testing.B) {
		for b.Loop() {
			if ix.CoversArea("01", area) {
				b.Fatal("the ring around Hà Nội covers it")
			}
		}
	})
	b.Run("locate_vertices", func(b *testing.B) {
		for b.Loop() {
			for i := 0; i+1 < len(outer); i += 2 {
				ix.Locate(outer[i], outer[i+1])
			}
		}
	})
}
