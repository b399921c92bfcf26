package ingest

import (
	"fmt"
	"testing"
	"time"
)

// The counts kept between summaries are bounded: 16 reasons per source,
// then "other"; 2048 keys in all, then dropped (and counted as dropped).
func TestRejectionsBounded(t *testing.T) {
	r := newRejections(time.Unix(0, 0))
	for i := range 40 {
		r.add("01", "s", fmt.Sprintf("invalid:f%d", i), 1)
	}
	c := r.take()
	if len(c) != maxReasonsPerSrc+1 || c[rejectKey{"01", "s", reasonOther}] != 40-maxReasonsPerSrc {
		t.Fatalf("got %d keys, other = %d; want %d keys and %d other", len(c), c[rejectKey{"01", "s", reasonOther}], maxReasonsPerSrc+1, 40-maxReasonsPerSrc)
	}
	for i := range maxRejectKeys + 10 {
		r.add("01", fmt.Sprintf("s%d", i), "unreadable", 1)
	}
	if c := r.take(); len(c) != maxRejectKeys || r.dropped != 10 {
		t.Fatalf("got %d keys, %d dropped; want %d and 10", len(c), r.dropped, maxRejectKeys)
	}
	r.add("", "s", "x", 1)
	r.add("01", "s", "x", 0)
	if c := r.take(); len(c) != 0 {
		t.Fatalf("counted without a province or a count: %v", c)
	}
}

func TestRejectReason(t *testing.T) {
	for _, c := range []struct {
		err  *itemError
		want string
	}{
		{nil, "unreadable"},
		{&itemError{outside: true, pointer: "/location"}, "outside-unit"},
		{&itemError{pointer: "/location/coordinates/0"}, "invalid:location"},
		{&itemError{pointer: "pm25"}, "invalid:pm25"},
		{&itemError{}, "invalid"},
		{&itemError{pointer: "/đ x"}, "invalid:__x"},
	} {
		if got := rejectReason(c.err); got != c.want {
			t.Errorf("rejectReason(%+v) = %q; want %q", c.err, got, c.want)
		}
	}
}
