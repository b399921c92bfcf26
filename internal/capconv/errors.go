package capconv

import "errors"

// ErrNoAlert is returned by FromProto for a nil alert.
var ErrNoAlert = errors.New("no alert")

// ErrBadArea is returned when an area of an alert event cannot be written as
// CAP: coordinates that are not lat,lon pairs, or a geometry CAP cannot carry.
var ErrBadArea = errors.New("alert area cannot be written as CAP")
