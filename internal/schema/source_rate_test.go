package schema

import (
	"testing"
	"time"
)

func TestSourceRate(t *testing.T) {
	start := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	w := SourceRateWindow
	for _, c := range []struct {
		name      string
		start     *time.Time
		cur, prev int64
		now       time.Time
		perMinute float64
	}{
		{"nothing counted", nil, 0, 0, start, 0},
		{"at the window's start: the previous window whole", &start, 0, 30, start, 2},
		{"a third in: two thirds of the previous one", &start, 10, 30, start.Add(w / 3), 2},
		{"at its end: this window only", &start, 45, 30, start.Add(w - time.Nanosecond), 3},
		{"the next window: the counted one weighted", &start, 30, 99, start.Add(w + w/3), float64(30) * 2 / 3 / 15},
		{"silent for a window", &start, 30, 99, start.Add(2 * w), 0},
		{"the reader's clock behind", &start, 15, 0, start.Add(-time.Minute), 1},
	} {
		got := SourceRate(c.start, c.cur, c.prev, c.now)
		if d := got - c.perMinute; d > 1e-6 || d < -1e-6 {
			t.Errorf("%s: %v per minute; want %v", c.name, got, c.perMinute)
		}
	}
}
