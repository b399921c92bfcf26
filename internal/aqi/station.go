package aqi

import (
	"fmt"
	"time"
)

// StationHours is the number of hours a Station keeps, counted back from its newest hour. It is
// two days rather than one so that yesterday's daily AQI can still be computed during today
// (a 24-hour ring loses yesterday's 00:00 hour as soon as today's 00:00 hour arrives).
const StationHours = 48

// Values are the concentrations of one observation, by pollutant; the zero Sample is "not measured".
type Values [NumPollutants]Sample

// Station computes the AQI of one station incrementally: Add each observation as it arrives
// (in any order within the hours kept), then ask for the Hourly or Daily AQI. Observations that fall
// in the same hour are averaged into that hour's mean. Memory is bounded: StationHours hourly means
// per pollutant, a few kilobytes, and no allocation on Add.
//
// The zero Station is ready to use. A Station is not safe for concurrent use.
type Station struct {
	slots  [StationHours]slot
	latest int64 // hourIndex of the newest hour added
	any    bool  // something was added
	// daily is the last answer of DailyAQI, kept until an Add changes an
	// hour of its day (or the window drops one: checked when read).
	daily dailyMemo
}

// dailyMemo is a daily AQI computed by DailyAQI: that of the day whose
// first hour is hour, aqi when ok.
type dailyMemo struct {
	hour    int64
	aqi     int
	ok, set bool
}

// slot accumulates the observations of one hour.
type slot struct {
	hour int64
	sum  [NumPollutants]float64
	n    [NumPollutants]uint32
}

func slotOf(h int64) int { return int(((h % StationHours) + StationHours) % StationHours) }

// Add adds an observation made at t. It rejects the whole observation when a value is not a
// concentration (ErrInvalidConcentration) or when t is StationHours or more before the newest hour
// added (ErrTooOld). A t in a newer hour moves the window forward, dropping the oldest hours.
func (s *Station) Add(t time.Time, v Values) error {
	for p, x := range v {
		if x.Valid && !validConc(x.Conc) {
			return fmt.Errorf("adding %s = %v at %s: %w", Pollutant(p), x.Conc, t.Format(time.RFC3339), ErrInvalidConcentration)
		}
	}
	h := hourIndex(t)
	if s.any && h <= s.latest-StationHours {
		return fmt.Errorf("adding observation at %s, %d hours before the newest: %w",
			t.Format(time.RFC3339), s.latest-h, ErrTooOld)
	}
	if !s.any || h > s.latest {
		s.latest, s.any = h, true
	}
	if s.daily.set && h >= s.daily.hour && h < s.daily.hour+24 {
		s.daily.set = false // an hour of the day kept changes
	}
	sl := &s.slots[slotOf(h)]
	if sl.hour != h {
		*sl = slot{hour: h} // the slot held an hour that has left the window
	}
	for p, x := range v {
		if x.Valid {
			sl.sum[p] += x.Conc
			sl.n[p]++
		}
	}
	return nil
}

// mean returns the mean of p over hour h, missing when h is not kept or has no value of p.
func (s *Station) mean(p Pollutant, h int64) Sample {
	if !s.any || h > s.latest || h <= s.latest-StationHours {
		return Sample{}
	}
	sl := &s.slots[slotOf(h)]
	if sl.hour != h || sl.n[p] == 0 {
		return Sample{}
	}
	return Measured(sl.sum[p] / float64(sl.n[p]))
}

// Hourly returns the hourly AQI of the hour holding now (see the package function Hourly).
// Hours that had no observation are missing.
func (s *Station) Hourly(now time.Time) Result {
	var w window
	h := hourIndex(now)
	for p := range NumPollutants {
		for i := range NowCastHours {
			w[p][i] = s.mean(p, h-int64(i))
		}
	}
	return hourlyResult(&w)
}

// Daily returns the daily AQI of day's date in day's location (see the package function Daily).
// Hours of the day no longer kept, or that had no observation, are missing.
func (s *Station) Daily(day time.Time) Result {
	var w window
	h := hourIndex(dayStart(day))
	for p := range NumPollutants {
		for i := range 24 {
			w[p][i] = s.mean(p, h+int64(i))
		}
	}
	return dailyResult(&w)
}

// DailyAQI returns Daily(day).AQI and whether Daily(day).Err is nil, without
// the reasons: the answer is kept until an Add changes an hour of that day
// or the window moves past its first hour, so that asking for the day
// before of every new observation of today computes it once. It is for
// callers that need the index only (the aggregator rates each observation
// with yesterday's daily AQI).
func (s *Station) DailyAQI(day time.Time) (int, bool) {
	h := hourIndex(dayStart(day))
	if m := s.daily; m.set && m.hour == h && s.latest-StationHours < h {
		return m.aqi, m.ok
	}
	r := s.Daily(day)
	s.daily = dailyMemo{hour: h, aqi: r.AQI, ok: r.Err == nil, set: true}
	return r.AQI, r.Err == nil
}
