package schema

import "time"

// SourceRateWindow is the window of a source's recent rate in a unit
// (source_stats.rate_start, rate_cur, rate_prev; migration 00038): the
// aggregator counts each pair's events per window of this length on its
// clock, and GET /v1/sources interpolates the events of the last one from
// the current window's and the previous one's (SourceRate).
const SourceRateWindow = 15 * time.Minute

// SourceRate is the events per minute of a pair over the SourceRateWindow
// before now, interpolated from the events cur of the window starting at
// start (nil: none counted yet) and prev of the window before it: the
// previous window's weighted by the part of it still within the last
// SourceRateWindow (a sliding window of two fixed ones).
func SourceRate(start *time.Time, cur, prev int64, now time.Time) float64 {
	if start == nil {
		return 0
	}
	w := SourceRateWindow
	elapsed := now.Sub(*start)
	switch {
	case elapsed < 0: // the aggregator's clock ahead of this reader's
		elapsed = 0
	case elapsed >= 2*w: // silent for a whole window
		return 0
	case elapsed >= w: // the counted window is the one before now's
		prev, cur, elapsed = cur, 0, elapsed-w
	}
	weight := float64(w-elapsed) / float64(w)
	return (float64(prev)*weight + float64(cur)) / w.Minutes()
}
