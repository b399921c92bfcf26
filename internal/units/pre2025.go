package units

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/geojson"
)

// NationalCode is the code of the national unit, the root of every map.
const NationalCode = "VN"

// ProvinceMerge is one line of the 2025 merges table: a province of the 2025
// map and the provinces of the map before merged into it.
type ProvinceMerge struct {
	NewCode, NewName string
	OldCodes         []string
	OldNames         []string
}

// ReadProvinceMerges reads the merges CSV (new_code,new_name,old_codes,
// old_names,commune_count; old codes and names separated by ';'). Errors wrap
// ErrInvalidUnits and name the line.
func ReadProvinceMerges(r io.Reader) ([]ProvinceMerge, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 5
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("reading province merges: header: %w: %w", err, ErrInvalidUnits)
	}
	if !slices.Equal(head, []string{"new_code", "new_name", "old_codes", "old_names", "commune_count"}) {
		return nil, fmt.Errorf("reading province merges: header %q is not new_code,new_name,old_codes,old_names,commune_count: %w", head, ErrInvalidUnits)
	}
	var out []ProvinceMerge
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading province merges: %w: %w", err, ErrInvalidUnits)
		}
		m := ProvinceMerge{NewCode: rec[0], NewName: rec[1],
			OldCodes: strings.Split(rec[2], ";"), OldNames: strings.Split(rec[3], ";")}
		if len(m.OldCodes) != len(m.OldNames) {
			return nil, fmt.Errorf("reading province merges: line %d: %d old codes but %d old names: %w",
				line, len(m.OldCodes), len(m.OldNames), ErrInvalidUnits)
		}
		out = append(out, m)
	}
}

// foldVI maps Vietnamese letters with diacritics to their base letter, so that
// names spelt with the tone mark on another vowel ("Hoà", "Hòa") compare equal.
var foldVI = func() map[rune]rune {
	m := map[rune]rune{'đ': 'd', 'Đ': 'd'}
	for base, vs := range map[rune]string{
		'a': "àáảãạăằắẳẵặâầấẩẫậÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬ",
		'e': "èéẻẽẹêềếểễệÈÉẺẼẸÊỀẾỂỄỆ",
		'i': "ìíỉĩịÌÍỈĨỊ",
		'o': "òóỏõọôồốổỗộơờớởỡợÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢ",
		'u': "ùúủũụưừứửữựÙÚỦŨỤƯỪỨỬỮỰ",
		'y': "ỳýỷỹỵỲÝỶỸỴ",
	} {
		for _, r := range vs {
			m[r] = base
		}
	}
	return m
}()

// provinceAliases are short forms of the 63-province file that no prefix
// stripping reaches, by normalised name.
var provinceAliases = map[string]string{"hcm": "hochiminh"}

// NormaliseProvinceName reduces a province name to what the pre-2025 file and
// the merges table agree on: without the prefix "Tỉnh", "Thành phố" or "TP",
// diacritics, case, spaces and hyphens.
func NormaliseProvinceName(s string) string {
	s = strings.TrimSpace(s)
	for _, p := range []string{"Tỉnh ", "Thành phố ", "TP. ", "TP "} {
		if rest, ok := strings.CutPrefix(s, p); ok {
			s = rest
			break
		}
	}
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if f, ok := foldVI[r]; ok {
			r = f
		}
		if r == ' ' || r == '-' || r == '.' {
			continue
		}
		b.WriteRune(r)
	}
	n := b.String()
	if a, ok := provinceAliases[n]; ok {
		return a
	}
	return n
}

// pre2025Feature is one feature of the 63-province file.
type pre2025Feature struct {
	Geometry   *geojson.Geometry `json:"geometry"`
	Properties struct {
		Code    string `json:"code"`
		TenTinh string `json:"ten_tinh"`
	} `json:"properties"`
}

// ReadPre2025Provinces reads the 63-province GeoJSON (properties code like
// "AD01", ten_tinh like "An Giang"), and gives each feature the GSO code of
// the old province of that name in merges, level province and parent VN. A
// name that matches no old name, an old name matched twice and an old
// province with no feature are errors wrapping ErrInvalidUnits that name them.
// The bounds of the Reader apply (size of the input is the caller's).
func ReadPre2025Provinces(geo io.Reader, merges []ProvinceMerge) ([]Record, error) {
	byName := map[string]struct{ code, name string }{}
	for _, m := range merges {
		for i, n := range m.OldNames {
			byName[NormaliseProvinceName(n)] = struct{ code, name string }{m.OldCodes[i], n}
		}
	}
	var fc struct {
		Type     string           `json:"type"`
		Features []pre2025Feature `json:"features"`
	}
	if err := json.NewDecoder(geo).Decode(&fc); err != nil {
		return nil, fmt.Errorf("reading pre-2025 provinces: %w: %w", err, ErrInvalidUnits)
	}
	if fc.Type != "FeatureCollection" {
		return nil, fmt.Errorf("reading pre-2025 provinces: type %q is not FeatureCollection: %w", fc.Type, ErrInvalidUnits)
	}
	var unmatched []string
	used := map[string]int{}
	out := make([]Record, 0, len(fc.Features))
	for i, f := range fc.Features {
		old, ok := byName[NormaliseProvinceName(f.Properties.TenTinh)]
		if !ok {
			unmatched = append(unmatched, fmt.Sprintf("features[%d] %q (%s)", i, f.Properties.TenTinh, f.Properties.Code))
			continue
		}
		if j, dup := used[old.code]; dup {
			return nil, fmt.Errorf("reading pre-2025 provinces: features[%d] %q and features[%d] both match %q (%s): %w",
				i, f.Properties.TenTinh, j, old.name, old.code, ErrInvalidUnits)
		}
		used[old.code] = i
		mp, err := pre2025Boundary(f.Geometry)
		if err != nil {
			return nil, fmt.Errorf("reading pre-2025 provinces: features[%d] %q: %w: %w", i, f.Properties.TenTinh, err, ErrInvalidUnits)
		}
		name := strings.TrimPrefix(strings.TrimPrefix(old.name, "Tỉnh "), "Thành phố ")
		out = append(out, Record{Index: i, Code: old.code, Level: LevelProvince, Parent: NationalCode,
			Name: name, FullName: old.name, Boundary: mp})
	}
	if len(unmatched) > 0 {
		return nil, fmt.Errorf("reading pre-2025 provinces: no old province of the merges table is named like %s: %w",
			strings.Join(unmatched, ", "), ErrInvalidUnits)
	}
	var missing []string
	for _, m := range merges {
		for i, c := range m.OldCodes {
			if _, ok := used[c]; !ok {
				missing = append(missing, fmt.Sprintf("%s %q", c, m.OldNames[i]))
			}
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("reading pre-2025 provinces: no feature for the old provinces %s: %w",
			strings.Join(missing, ", "), ErrInvalidUnits)
	}
	return out, nil
}

func pre2025Boundary(g *geojson.Geometry) (*geom.MultiPolygon, error) {
	if g == nil {
		return nil, errors.New("no geometry")
	}
	t, err := g.Decode()
	if err != nil {
		return nil, fmt.Errorf("decoding geometry: %w", err)
	}
	switch t := t.(type) {
	case *geom.Polygon:
		mp := geom.NewMultiPolygon(t.Layout())
		if err := mp.Push(t); err != nil {
			return nil, fmt.Errorf("promoting polygon: %w", err)
		}
		return mp, nil
	case *geom.MultiPolygon:
		return t, nil
	default:
		return nil, fmt.Errorf("geometry %T is not a Polygon or MultiPolygon", t)
	}
}

// Pre2025Provinces reads the 63 provinces and the merges table, both given
// as bytes (seed.ProvincesPre2025, seed.ProvinceMerges2025).
func Pre2025Provinces(geo, mergesCSV []byte) ([]Record, []ProvinceMerge, error) {
	ms, err := ReadProvinceMerges(bytes.NewReader(mergesCSV))
	if err != nil {
		return nil, nil, err
	}
	recs, err := ReadPre2025Provinces(bytes.NewReader(geo), ms)
	if err != nil {
		return nil, nil, err
	}
	return recs, ms, nil
}
