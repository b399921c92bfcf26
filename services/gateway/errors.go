package gateway

import "errors"

// ErrBadParam is returned (wrapped with the parameter's name and what was wrong)
// when a query parameter of /v1/live or /v1/units is missing or malformed.
var ErrBadParam = errors.New("bad query parameter")

// ErrClosed is returned when a client arrives after Close.
var ErrClosed = errors.New("gateway closed")

// ErrHubFailed is returned when a province's hub lost its STATE consumer; the
// next client builds a new hub.
var ErrHubFailed = errors.New("province hub failed")

// ErrBadConfig is returned by Config.Validate for a field out of range.
var ErrBadConfig = errors.New("bad gateway config")
