package pbtime

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestRFC3339(t *testing.T) {
	for _, c := range []struct {
		name string
		ts   *timestamppb.Timestamp
		want string
	}{
		{"nil", nil, ""},
		{"invalid nanos", &timestamppb.Timestamp{Seconds: 0, Nanos: -1}, ""},
		{"year 10000", &timestamppb.Timestamp{Seconds: 253402300800}, ""},
		{"offset becomes UTC", timestamppb.New(time.Date(2026, 11, 21, 8, 0, 0, 5e8, time.FixedZone("ICT", 7*3600))), "2026-11-21T01:00:00.5Z"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := RFC3339(c.ts); got != c.want {
				t.Errorf("RFC3339 = %q; want %q", got, c.want)
			}
		})
	}
}
