package ingest

import "errors"

// ErrBadGeometry is returned when a geometry cannot be built from its parts.
var ErrBadGeometry = errors.New("bad geometry")

// ErrMalformedBody is returned when the body is not JSON, NDJSON or GeoJSON that can be read.
var ErrMalformedBody = errors.New("malformed body")

// ErrTooManyItems is returned when a body holds more than Config.MaxItems items.
var ErrTooManyItems = errors.New("too many items")

// ErrNoItems is returned when a body holds no item at all.
var ErrNoItems = errors.New("no items")

// ErrUnsupportedMediaType is returned for a Content-Type the ingest does not read.
var ErrUnsupportedMediaType = errors.New("unsupported media type")

// ErrConfig is returned by New when the configuration or dependencies are unusable.
var ErrConfig = errors.New("invalid ingest configuration")
