package postgis

import (
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestQueueLatestRollupsEnded: the latest windows are read only for the
// subjects (unit, layer, window length) whose latest window in the batch
// has ended by now, from that window's start: a batch of current events
// queues nothing.
func TestQueueLatestRollupsEnded(t *testing.T) {
	now := time.Date(2026, 12, 6, 3, 10, 30, 0, time.UTC)
	key := func(unit, window string, start time.Time) rollupKey {
		return rollupKey{unit, "air", window, start.Unix()}
	}
	minute, hour := now.Truncate(time.Minute), now.Truncate(time.Hour)
	for _, c := range []struct {
		name string
		keys []rollupKey
		want string // the units, windows and starts read; "" none queued
	}{
		{"current", []rollupKey{key("W1", "1h", hour), key("W1", "1m", minute)}, ""},
		{"an earlier minute beside the current one", []rollupKey{key("W1", "1m", minute.Add(-5*time.Minute)), key("W1", "1m", minute)}, ""},
		{"the minute before, ended", []rollupKey{key("W1", "1h", hour), key("W1", "1m", minute.Add(-time.Minute)), key("W2", "1m", minute)},
			"[W1] [1m] [" + minute.Add(-time.Minute).Format(time.RFC3339) + "]"},
		{"an hour ago, in two units", []rollupKey{key("01", "1h", hour.Add(-time.Hour)), key("W1", "1h", hour.Add(-time.Hour))},
			"[01 W1] [1h 1h] [" + hour.Add(-time.Hour).Format(time.RFC3339) + " " + hour.Add(-time.Hour).Format(time.RFC3339) + "]"},
	} {
		var pb pgx.Batch
		queueLatestRollups(&pb, c.keys, now, &Result{})
		got := ""
		if pb.Len() > 0 {
			a := pb.QueuedQueries[0].Arguments
			starts := a[3].([]time.Time)
			s := make([]string, len(starts))
			for i, t := range starts {
				s[i] = t.Format(time.RFC3339)
			}
			got = fmt.Sprint(a[0], " ", a[2], " ", s)
		}
		if pb.Len() > 1 || got != c.want {
			t.Errorf("%s: queued %d statements reading %q; want %q", c.name, pb.Len(), got, c.want)
		}
	}
}
