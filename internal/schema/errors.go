package schema

import "errors"

// ErrUnitVersion is returned when an import would start a unit's new version
// at or before the start of its current one.
var ErrUnitVersion = errors.New("unit version conflict")

// ErrShortCopy is returned when COPY stores fewer rows than it was given.
var ErrShortCopy = errors.New("COPY stored fewer rows than given")
