package rules

import "errors"

// ErrInvalidRule is returned for a rule document that cannot be a rule: bad
// JSON, an unknown kind, a missing or out-of-range parameter, a bad duration.
// The error lists every problem with the field it is in.
var ErrInvalidRule = errors.New("invalid alert rule")

// ErrNotRuleAlert is returned when an alert identifier was not made by the
// rules engine (it does not have the form rule:<rule>:<entity>:<unix since>).
var ErrNotRuleAlert = errors.New("not an alert raised by a rule")

// ErrConfig is returned by New when the configuration or dependencies are unusable.
var ErrConfig = errors.New("invalid rules engine configuration")

// ErrBadAction is returned by the action handlers for an action they cannot
// apply: a payload that is not a valid rule, a target that is not a rule id.
var ErrBadAction = errors.New("bad rule action")
