// Package pbtime reads protobuf timestamps that came from untrusted events for
// JSON output: one rule, used by every encoder, for what counts as a time.
package pbtime

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
)

// UTC returns ts in UTC and true when ts is set, valid and within the years
// 0..9999 that RFC 3339 (and encoding/json) can write; else false.
func UTC(ts *timestamppb.Timestamp) (time.Time, bool) {
	if ts == nil || ts.CheckValid() != nil {
		return time.Time{}, false
	}
	t := ts.AsTime().UTC()
	if t.Year() < 0 || t.Year() > 9999 {
		return time.Time{}, false
	}
	return t, true
}

// RFC3339 formats ts in UTC with nanoseconds as needed; "" when UTC says false.
func RFC3339(ts *timestamppb.Timestamp) string {
	t, ok := UTC(ts)
	if !ok {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}
