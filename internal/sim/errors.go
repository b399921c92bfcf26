package sim

import "errors"

// ErrNoUnits means there were no units to place stations and segments in.
var ErrNoUnits = errors.New("no units to place stations and segments in")

// ErrNoRoom means no point or line could be placed inside any unit (units too small or degenerate).
var ErrNoRoom = errors.New("could not place an entity inside any unit")

// ErrConfig means a Config field was invalid; the message names the field.
var ErrConfig = errors.New("invalid simulator config")

// ErrRejected means the ingest answered a batch with a 4xx status: retrying
// the same bytes would not help.
var ErrRejected = errors.New("batch rejected by ingest")

// ErrBatchFailed means a batch could not be delivered after every retry.
var ErrBatchFailed = errors.New("batch not delivered")
