// Package seed embeds the public boundary data that `iochub dev` loads on first
// start and that tests use: Vietnam's 34 provinces and Hà Nội's 126 wards on the
// 2025 map (MIT, see SOURCES.md).
package seed

import _ "embed"

//go:embed vn_provinces_2025_34.geojson
var provinces2025 []byte

//go:embed hanoi_wards_2025.geojson
var hanoiWards2025 []byte

// Provinces2025 is a GeoJSON FeatureCollection of the 34 provinces valid since 2025-07-01.
func Provinces2025() []byte { return provinces2025 }

// HanoiWards2025 is a GeoJSON FeatureCollection of Hà Nội's 126 wards valid since 2025-07-01.
func HanoiWards2025() []byte { return hanoiWards2025 }
