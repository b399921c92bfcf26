package units

import "errors"

// ErrNotFeatureCollection is returned by FromGeoJSON when the document is not a FeatureCollection.
var ErrNotFeatureCollection = errors.New("not a GeoJSON FeatureCollection")

// ErrNoCode is returned by FromGeoJSON for a feature with neither properties.code nor id.
var ErrNoCode = errors.New("feature has no properties.code or id")

// ErrBadBoundary is returned by FromGeoJSON for a feature whose geometry is not a Polygon or MultiPolygon.
var ErrBadBoundary = errors.New("boundary must be a Polygon or MultiPolygon")
