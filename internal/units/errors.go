package units

import "errors"

// ErrInvalidUnits is returned (wrapped, with the feature's index and code)
// when a units file is not a GeoJSON FeatureCollection of polygonal units.
var ErrInvalidUnits = errors.New("invalid units file")
