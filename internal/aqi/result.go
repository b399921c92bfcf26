package aqi

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Completeness rules for means. The decision does not set any; these are the usual 75 %.
const (
	// MinDayHours is the least number of hourly values for a 24-hour mean of PM2.5 or PM10.
	MinDayHours = 18
	// Min8hHours is the least number of hourly values for an 8-hour mean of O3.
	Min8hHours = 6
)

// History is a station's recent hourly mean concentrations, newest first.
type History struct {
	// Latest is a time within the newest hour held.
	Latest time.Time
	// Hours[p][i] is the mean of pollutant p over the hour i hours before Latest's hour (so
	// Hours[p][0] is Latest's hour). A short or nil slice means the older hours are missing.
	Hours [NumPollutants][]Sample
}

// Result is an hourly or a daily VN_AQI.
type Result struct {
	// AQI is the largest sub-index, rounded to an integer. Meaningful only when Err is nil.
	AQI int
	// Dominant is the pollutant with the largest sub-index. Meaningful only when Err is nil.
	Dominant Pollutant
	// Band is BandOf(AQI); the zero Band when Err is not nil.
	Band Band
	// Pollutants holds each pollutant's sub-index; OK is false where there is none.
	Pollutants [NumPollutants]PollutantIndex
	// Missing says, in pollutant order, why a pollutant with values in the period has no
	// sub-index; when Err is not nil it also names PM2.5 and PM10 if they had no values at all.
	// Pollutants a station does not measure are not listed otherwise.
	Missing []Reason
	// Err is nil when the AQI was computed; otherwise it wraps ErrNotComputed and says why
	// ("AQI could not be computed: needs a PM2.5 or PM10 sub-index; PM2.5: ...").
	Err error
}

// PollutantIndex is one pollutant's part of a Result.
type PollutantIndex struct {
	OK    bool      // a sub-index was computed
	Index float64   // the sub-index, not rounded
	Conc  float64   // the concentration rated, µg/m³
	Mean  Averaging // how Conc was averaged: NowCast, 24h, 1h (the hour's, or the day's max), 8h (the day's max)
}

// Reason says why a pollutant has no sub-index.
type Reason struct {
	Pollutant Pollutant
	Err       error
}

// String returns "<pollutant>: <why>".
func (r Reason) String() string { return r.Pollutant.String() + ": " + r.Err.Error() }

// window holds up to 24 hourly samples per pollutant: newest first for an hourly AQI, from
// 00:00 on for a daily one.
type window [NumPollutants][24]Sample

// hourIndex numbers the hour holding t (hours since the Unix epoch, rounded down).
func hourIndex(t time.Time) int64 {
	u := t.Unix()
	h := u / 3600
	if u%3600 < 0 {
		h--
	}
	return h
}

// dayStart returns midnight starting t's day in t's location.
func dayStart(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
}

// Hourly returns the hourly AQI of the hour holding at: PM2.5 and PM10 by the NowCast of the 12
// hours ending with it, O3 (1-hour table), CO, SO2 and NO2 by their 1-hour mean of that hour.
// Hours of at's 12 that h does not hold count as missing.
func Hourly(h History, at time.Time) Result {
	var w window
	k := hourIndex(h.Latest) - hourIndex(at) // index in h of at's hour
	for p := range NumPollutants {
		hs := h.Hours[p]
		for i := range NowCastHours {
			if j := k + int64(i); j >= 0 && j < int64(len(hs)) {
				w[p][i] = hs[j]
			}
		}
	}
	return hourlyResult(&w)
}

// Daily returns the daily AQI of day's date in day's location, over the 24 hours starting at its
// midnight: PM2.5 and PM10 by their 24-hour mean (at least MinDayHours values), O3 by the larger of
// the sub-indices of its largest 1-hour mean and its largest 8-hour mean (8 consecutive hours of the
// day, at least Min8hHours values; not used when above 400 µg/m³), CO, SO2 and NO2 by their largest
// 1-hour mean. Hours of the day that h does not hold count as missing.
func Daily(h History, day time.Time) Result {
	var w window
	k := hourIndex(h.Latest) - hourIndex(dayStart(day)) // index in h of the day's first hour
	for p := range NumPollutants {
		hs := h.Hours[p]
		for i := range 24 {
			if j := k - int64(i); j >= 0 && j < int64(len(hs)) {
				w[p][i] = hs[j]
			}
		}
	}
	return dailyResult(&w)
}

func hourlyResult(w *window) Result {
	var r Result
	for p := range NumPollutants {
		s := w[p][:NowCastHours]
		if !anyValid(s) {
			continue
		}
		var c float64
		var err error
		mean := Mean1h
		switch {
		case p == PM25 || p == PM10:
			mean = MeanNowCast
			c, err = NowCast(s)
		case s[0].Valid:
			c = s[0].Conc
		default:
			err = ErrNoHourlyValue
		}
		r.rate(p, mean, c, err)
	}
	r.finish(hourlyPeriod)
	return r
}

func dailyResult(w *window) Result {
	var r Result
	for p := range NumPollutants {
		s := w[p][:]
		n := 0
		for i, v := range s {
			if !v.Valid {
				continue
			}
			if !validConc(v.Conc) {
				r.rate(p, 0, 0, fmt.Errorf("%s hour %d = %v: %w", p, i, v.Conc, ErrInvalidConcentration))
				n = -1
				break
			}
			n++
		}
		switch {
		case n <= 0:
		case p == PM25 || p == PM10:
			if n < MinDayHours {
				r.rate(p, Mean24h, 0, fmt.Errorf("%w (have %d of 24, need %d)", ErrIncompleteDay, n, MinDayHours))
				continue
			}
			var sum float64
			for _, v := range s {
				if v.Valid {
					sum += v.Conc
				}
			}
			r.rate(p, Mean24h, sum/float64(n), nil)
		case p == O3:
			r.rateO3Day(s)
		default:
			r.rate(p, Mean1h, maxValid(s), nil)
		}
	}
	r.finish(dailyPeriod)
	return r
}

// rateO3Day rates O3 over a day by max(sub-index of the max 1-hour mean, sub-index of the max
// 8-hour mean), leaving the 8-hour mean out when there is none or it is above its table.
func (r *Result) rateO3Day(s []Sample) {
	m1 := maxValid(s)
	i1, err := SubIndex(O3, Mean1h, m1)
	if err != nil {
		r.rate(O3, Mean1h, m1, err)
		return
	}
	best := PollutantIndex{OK: true, Index: i1, Conc: m1, Mean: Mean1h}
	m8, ok := -1.0, false
	for start := 0; start+8 <= len(s); start++ {
		n, sum := 0, 0.0
		for _, v := range s[start : start+8] {
			if v.Valid {
				n++
				sum += v.Conc
			}
		}
		if n >= Min8hHours {
			m8, ok = max(m8, sum/float64(n)), true
		}
	}
	if ok {
		// ErrAboveTable here is the decision's rule, not a failure: above 400 µg/m³ the 8-hour mean is not used.
		if i8, err := SubIndex(O3, Mean8h, m8); err == nil && i8 > i1 {
			best = PollutantIndex{OK: true, Index: i8, Conc: m8, Mean: Mean8h}
		}
	}
	r.Pollutants[O3] = best
}

// rate records p's sub-index at c, or why there is none.
func (r *Result) rate(p Pollutant, mean Averaging, c float64, err error) {
	var idx float64
	if err == nil {
		idx, err = SubIndex(p, mean, c)
	}
	if err != nil {
		r.Missing = append(r.Missing, Reason{Pollutant: p, Err: err})
		return
	}
	r.Pollutants[p] = PollutantIndex{OK: true, Index: idx, Conc: c, Mean: mean}
}

// fixedError is a reason made once, at start (fixed): the same value for
// every station, so that notComputed can keep the answers made of it.
type fixedError struct{ error }

func (e *fixedError) Unwrap() error { return e.error }

// fixed makes a fixedError of fmt.Errorf(format, a...).
func fixed(format string, a ...any) error { return &fixedError{fmt.Errorf(format, a...)} }

// isFixed reports whether err itself (not an error wrapping it) was made by
// fixed: only those key notComputed, whose keys are then bounded.
func isFixed(err error) bool {
	_, ok := err.(*fixedError) //nolint:errorlint // this very value, not one wrapping it
	return ok
}

// period is the span a result is for, and the reason of a pollutant with no
// value in it.
type period struct {
	name   string
	noData error
}

var (
	hourlyPeriod = period{"in the latest 12 hours", fixed("%w in the latest 12 hours", ErrNoData)}
	dailyPeriod  = period{"in the day", fixed("%w in the day", ErrNoData)}
)

// notComputedKey is a combination of the reasons for PM2.5 and PM10 in a
// period, all of them fixed.
type notComputedKey struct {
	period     string
	pm25, pm10 error
}

// notComputed keeps the ErrNotComputed answer of each notComputedKey met (a
// few dozen at most): a station in its first hours has the same reasons as
// every other, so its answer is not formatted again per observation.
var notComputed sync.Map

// finish takes the AQI as the largest sub-index, or says why there is none.
func (r *Result) finish(in period) {
	if !r.Pollutants[PM25].OK && !r.Pollutants[PM10].OK {
		var why [2]error
		for j, p := range [...]Pollutant{PM25, PM10} {
			i := slices.IndexFunc(r.Missing, func(m Reason) bool { return m.Pollutant == p })
			if i < 0 {
				r.Missing = append(r.Missing, Reason{Pollutant: p, Err: in.noData})
				i = len(r.Missing) - 1
			}
			why[j] = r.Missing[i].Err
		}
		slices.SortStableFunc(r.Missing, func(a, b Reason) int { return int(a.Pollutant) - int(b.Pollutant) })
		k := notComputedKey{in.name, why[0], why[1]}
		memo := isFixed(why[0]) && isFixed(why[1])
		if memo {
			if err, ok := notComputed.Load(k); ok {
				r.Err = err.(error)
				return
			}
		}
		r.Err = fmt.Errorf("%w: needs a PM2.5 or PM10 sub-index; %s; %s", ErrNotComputed,
			Reason{PM25, why[0]}, Reason{PM10, why[1]})
		if memo {
			notComputed.Store(k, r.Err)
		}
		return
	}
	best := math.Inf(-1)
	for p, pi := range r.Pollutants {
		if pi.OK && pi.Index > best {
			best, r.Dominant = pi.Index, Pollutant(p)
		}
	}
	// Far above the table the sub-index can be huge; keep the integer conversion defined.
	r.AQI = int(math.Round(min(best, 1e9)))
	r.Band = BandOf(r.AQI)
}

func anyValid(s []Sample) bool {
	for _, v := range s {
		if v.Valid {
			return true
		}
	}
	return false
}

// maxValid returns the largest present value of s (0 when none is present).
func maxValid(s []Sample) float64 {
	m := 0.0
	for _, v := range s {
		if v.Valid {
			m = max(m, v.Conc)
		}
	}
	return m
}
