package aqi

import (
	"fmt"
	"math"
)

// NowCastHours is the number of hourly values the NowCast weighs.
const NowCastHours = 12

// The errors of a NowCast without enough hours, made once: every observation
// of a station in its first hours (a hub just started) meets one of them.
var (
	errNoNowCastData = fixed("%w in the latest %d hours", ErrNoData, NowCastHours)
	errTooFewRecent  = [2]error{fixed("%w (have 0)", ErrTooFewRecentHours), fixed("%w (have 1)", ErrTooFewRecentHours)}
)

// Sample is one hourly mean concentration in µg/m³. The zero Sample is a missing hour.
type Sample struct {
	Conc  float64
	Valid bool
}

// Measured returns a present Sample of concentration c.
func Measured(c float64) Sample { return Sample{Conc: c, Valid: true} }

// validConc reports whether c is a concentration: finite and >= 0.
func validConc(c float64) bool { return c >= 0 && !math.IsInf(c, 1) }

// NowCast returns the 12-hour NowCast concentration of PM2.5 or PM10 (the decision's formula 2).
//
// hourly[0] is the latest hour (c1 in the decision) and hourly[i] the hour i hours before it;
// values past the 12th are ignored and a shorter slice means the older hours are missing.
// With Cmin and Cmax the least and greatest present values among the 12, w* = Cmin/Cmax and
// w = w* if w* > 1/2, else 1/2; NowCast = Σ w^(i−1)·c_i / Σ w^(i−1) over the present c_i, so a
// missing hour has weight 0 and the others keep the exponent of their position.
// At least 2 of c1, c2, c3 must be present, else the error wraps ErrTooFewRecentHours.
func NowCast(hourly []Sample) (float64, error) {
	if len(hourly) > NowCastHours {
		hourly = hourly[:NowCastHours]
	}
	n, recent := 0, 0
	cmin, cmax := math.Inf(1), 0.0
	for i, s := range hourly {
		if !s.Valid {
			continue
		}
		if !validConc(s.Conc) {
			return 0, fmt.Errorf("NowCast c%d = %v: %w", i+1, s.Conc, ErrInvalidConcentration)
		}
		n++
		if i < 3 {
			recent++
		}
		cmin, cmax = min(cmin, s.Conc), max(cmax, s.Conc)
	}
	if n == 0 {
		return 0, errNoNowCastData
	}
	if recent < 2 {
		return 0, errTooFewRecent[recent]
	}
	if cmax == 0 {
		return 0, nil
	}
	w := max(cmin/cmax, 0.5)
	var num, den float64
	wi := 1.0
	for _, s := range hourly {
		if s.Valid {
			// Scaled by cmax so that huge concentrations cannot overflow the sum.
			num += wi * (s.Conc / cmax)
			den += wi
		}
		wi *= w
	}
	// A weighted mean lies within [cmin, cmax]; clamp away the last bit of rounding.
	return min(max(num/den*cmax, cmin), cmax), nil
}
