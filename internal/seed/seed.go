// Package seed embeds the public boundary data that `iochub dev` loads on first
// start and that tests use: Vietnam's 34 provinces and Hà Nội's 126 wards on the
// 2025 map, the 63 provinces of the map before, and the table linking the two
// (MIT, see SOURCES.md).
package seed

import _ "embed"

//go:embed vn_provinces_2025_34.geojson
var provinces2025 []byte

//go:embed hanoi_wards_2025.geojson
var hanoiWards2025 []byte

//go:embed vn_provinces_pre2025_63.geojson
var provincesPre2025 []byte

//go:embed vn_provinces_2025_34_merges.csv
var provinceMerges2025 []byte

// Provinces2025 is a GeoJSON FeatureCollection of the 34 provinces valid since 2025-07-01.
func Provinces2025() []byte { return provinces2025 }

// HanoiWards2025 is a GeoJSON FeatureCollection of Hà Nội's 126 wards valid since 2025-07-01.
func HanoiWards2025() []byte { return hanoiWards2025 }

// ProvincesPre2025 is a GeoJSON FeatureCollection of the 63 provinces valid
// until 2025-06-30. Its features have no GSO code: properties.ten_tinh is the
// name, to be matched with ProvinceMerges2025 (units.ReadPre2025Provinces).
func ProvincesPre2025() []byte { return provincesPre2025 }

// ProvinceMerges2025 is a CSV (new_code,new_name,old_codes,old_names,
// commune_count) of the 34 provinces of 2025 and the old provinces merged
// into each; old_codes and old_names are separated by ';'.
func ProvinceMerges2025() []byte { return provinceMerges2025 }
