package aggregator

import "errors"

// ErrBadMessage is returned for a feed message that cannot be decoded: bad
// headers, subject or body. Such a message is terminated, never retried.
var ErrBadMessage = errors.New("bad feed message")

// ErrUnsupportedKind is returned for a feed message of a kind the aggregator
// does not store (see subjects.Kinds). It is terminated too.
var ErrUnsupportedKind = errors.New("feed kind not aggregated")

// ErrConfig is returned by New when the configuration or dependencies are unusable.
var ErrConfig = errors.New("invalid aggregator configuration")

// ErrBadResult is returned when the store reports a changed row the batch does not have.
var ErrBadResult = errors.New("store result does not match the batch")

// ErrActionRefused is matched by the error of an operator action that was
// refused (an invalid transition, an unknown target or type); see Refuse.
var ErrActionRefused = errors.New("operator action refused")
