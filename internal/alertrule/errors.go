package alertrule

import "errors"

// ErrInvalidRule is returned for a rule document that cannot be a rule: bad
// JSON, an unknown kind, a missing or out-of-range parameter, a bad duration.
// The error lists every problem with the field it is in.
var ErrInvalidRule = errors.New("invalid alert rule")
