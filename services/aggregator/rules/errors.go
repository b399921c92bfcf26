package rules

import "errors"

// ErrNotRuleAlert is returned when an alert identifier was not made by the
// rules engine (it does not have the form rule:<rule>:<entity>:<unix since>).
var ErrNotRuleAlert = errors.New("not an alert raised by a rule")

// ErrConfig is returned by New when the configuration or dependencies are unusable.
var ErrConfig = errors.New("invalid rules engine configuration")

// ErrBadAction is returned by the action handlers for an action they cannot
// apply: a payload that is not a valid rule, a target that is not a rule id.
var ErrBadAction = errors.New("bad rule action")
