package aqi

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// reasonFor returns the Missing reason of p, or nil.
func reasonFor(r Result, p Pollutant) error {
	for _, m := range r.Missing {
		if m.Pollutant == p {
			return m.Err
		}
	}
	return nil
}

func TestHourlyReasons(t *testing.T) {
	at := time.Date(2025, 7, 1, 10, 15, 0, 0, ict)
	tests := []struct {
		name    string
		hours   map[Pollutant][]Sample
		at      time.Time
		wantAQI int // when wantErr is nil
		wantDom Pollutant
		wantErr error               // Result.Err
		missing map[Pollutant]error // every Missing entry, by pollutant
		message string              // Result.Err text, when not empty
	}{
		{
			name:    "NO2 alone: no PM, no AQI",
			hours:   map[Pollutant][]Sample{NO2: {m(150)}},
			at:      at,
			wantErr: ErrNotComputed,
			missing: map[Pollutant]error{PM25: ErrNoData, PM10: ErrNoData},
			message: "AQI could not be computed: needs a PM2.5 or PM10 sub-index; PM2.5: no hourly value in the latest 12 hours; PM10: no hourly value in the latest 12 hours",
		},
		{
			name:    "PM2.5 with 1 of the latest 3 hours",
			hours:   map[Pollutant][]Sample{PM25: {m(30), miss, miss, m(30)}, O3: {m(100)}},
			at:      at,
			wantErr: ErrNotComputed,
			missing: map[Pollutant]error{PM25: ErrTooFewRecentHours, PM10: ErrNoData},
			message: "AQI could not be computed: needs a PM2.5 or PM10 sub-index; PM2.5: NowCast needs at least 2 of the latest 3 hourly values (have 1); PM10: no hourly value in the latest 12 hours",
		},
		{
			// PM10 NowCast 100 → 75; PM2.5 fails; the AQI stands on PM10 alone.
			name:    "PM10 carries the AQI when PM2.5 fails",
			hours:   map[Pollutant][]Sample{PM25: {m(30)}, PM10: {m(100), m(100)}},
			at:      at,
			wantAQI: 75, wantDom: PM10,
			missing: map[Pollutant]error{PM25: ErrTooFewRecentHours},
		},
		{
			// O3 was measured two hours ago but not in this hour: said, and left out.
			name:    "O3 without this hour's value",
			hours:   map[Pollutant][]Sample{PM25: {m(25), m(25)}, O3: {miss, miss, m(300)}},
			at:      at,
			wantAQI: 50, wantDom: PM25,
			missing: map[Pollutant]error{O3: ErrNoHourlyValue},
		},
		{
			// The hour after the newest held: c1 is missing, c2 and c3 are there.
			name:    "one hour after the history",
			hours:   map[Pollutant][]Sample{PM25: {m(50), m(50)}},
			at:      at.Add(time.Hour),
			wantAQI: 100, wantDom: PM25,
		},
		{
			name:    "two hours after the history",
			hours:   map[Pollutant][]Sample{PM25: {m(50), m(50)}},
			at:      at.Add(2 * time.Hour),
			wantErr: ErrNotComputed,
			missing: map[Pollutant]error{PM25: ErrTooFewRecentHours, PM10: ErrNoData},
		},
		{
			// Asking for an earlier hour reads further back: two hours earlier, PM2.5 is 80 → 150.
			name:    "an earlier hour",
			hours:   map[Pollutant][]Sample{PM25: {m(10), m(10), m(80), m(80), m(80)}},
			at:      at.Add(-2 * time.Hour),
			wantAQI: 150, wantDom: PM25,
		},
		{
			// CO 35000 µg/m³ → 100 + 50·5000/15000 = 116.7 beats PM2.5 25 → 50.
			name:    "CO dominant",
			hours:   map[Pollutant][]Sample{PM25: {m(25), m(25)}, CO: {m(35000)}},
			at:      at,
			wantAQI: 117, wantDom: CO,
		},
		{
			name:    "negative SO2 is named",
			hours:   map[Pollutant][]Sample{PM25: {m(25), m(25)}, SO2: {m(-5)}},
			at:      at,
			wantAQI: 50, wantDom: PM25,
			missing: map[Pollutant]error{SO2: ErrInvalidConcentration},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := History{Latest: at}
			for p, s := range tt.hours {
				h.Hours[p] = s
			}
			// Twice: the second answer of a reason made once comes from
			// notComputed, and must say the same.
			for range 2 {
				r := Hourly(h, tt.at)
				checkResult(t, r, tt.wantAQI, tt.wantDom, tt.wantErr, tt.missing, tt.message)
			}
		})
	}
}

func checkResult(t *testing.T, r Result, wantAQI int, wantDom Pollutant, wantErr error, missing map[Pollutant]error, message string) {
	t.Helper()
	if wantErr != nil {
		if !errors.Is(r.Err, wantErr) {
			t.Errorf("Err: got %v; want %v", r.Err, wantErr)
		}
		if r.Err != nil && !strings.HasPrefix(r.Err.Error(), "AQI could not be computed: ") {
			t.Errorf("Err = %q; want it to start with %q", r.Err, "AQI could not be computed: ")
		}
		if message != "" && (r.Err == nil || r.Err.Error() != message) {
			t.Errorf("Err: got %q; want %q", r.Err, message)
		}
		if r.Band != (Band{}) {
			t.Errorf("Band: got %+v; want none", r.Band)
		}
	} else {
		if r.Err != nil {
			t.Fatalf("Err: %v", r.Err)
		}
		if r.AQI != wantAQI || r.Dominant != wantDom {
			t.Errorf("got AQI %d dominant %s; want %d %s", r.AQI, r.Dominant, wantAQI, wantDom)
		}
		if r.Band != BandOf(r.AQI) {
			t.Errorf("Band: got %+v; want %+v", r.Band, BandOf(r.AQI))
		}
		if got := int(math.Round(r.Pollutants[r.Dominant].Index)); got != r.AQI {
			t.Errorf("dominant sub-index rounds to %d; AQI is %d", got, r.AQI)
		}
	}
	if len(r.Missing) != len(missing) {
		t.Errorf("Missing: got %v; want %d reasons %v", r.Missing, len(missing), missing)
	}
	for i, m := range r.Missing {
		if i > 0 && r.Missing[i-1].Pollutant >= m.Pollutant {
			t.Errorf("Missing not in pollutant order: %v", r.Missing)
		}
		if want := missing[m.Pollutant]; !errors.Is(m.Err, want) {
			t.Errorf("Missing %s: got %v; want %v", m.Pollutant, m.Err, want)
		}
		if r.Pollutants[m.Pollutant].OK {
			t.Errorf("%s has both a sub-index and a Missing reason", m.Pollutant)
		}
	}
}

func TestDailyRules(t *testing.T) {
	day := time.Date(2025, 7, 1, 0, 0, 0, 0, ict)
	full := func(c float64) []float64 {
		s := make([]float64, 24)
		for i := range s {
			s[i] = c
		}
		return s
	}
	withGaps := func(c float64, present int) []Sample {
		s := newestFirst(full(c))
		for i := present; i < 24; i++ {
			s[i] = Sample{} // drop the day's first hours (the oldest)
		}
		return s
	}
	tests := []struct {
		name    string
		hours   map[Pollutant][]Sample // the day's hours, newest (23:00) first
		wantAQI int
		wantDom Pollutant
		wantErr error
		missing map[Pollutant]error
		check   func(t *testing.T, r Result)
	}{
		{
			name:    "PM2.5 with MinDayHours values",
			hours:   map[Pollutant][]Sample{PM25: withGaps(50, MinDayHours)},
			wantAQI: 100, wantDom: PM25,
		},
		{
			name:    "PM2.5 one value short",
			hours:   map[Pollutant][]Sample{PM25: withGaps(50, MinDayHours-1)},
			wantErr: ErrNotComputed,
			missing: map[Pollutant]error{PM25: ErrIncompleteDay, PM10: ErrNoData},
		},
		{
			// Every 8-hour mean is 450 > 400: the 8-hour table is not used; 1-hour 450 → 200 + 100·50/400.
			name:    "O3 8-hour above 400 is not used",
			hours:   map[Pollutant][]Sample{PM25: newestFirst(full(10)), O3: newestFirst(full(450))},
			wantAQI: 213, wantDom: O3,
			check: func(t *testing.T, r Result) {
				if pi := r.Pollutants[O3]; pi.Mean != Mean1h || pi.Conc != 450 {
					t.Errorf("O3: got %+v; want the 1-hour max 450", pi)
				}
			},
		},
		{
			// 8-hour mean 210 → 200 beats the 1-hour 210 → 105.
			name:    "O3 8-hour wins",
			hours:   map[Pollutant][]Sample{PM25: newestFirst(full(10)), O3: newestFirst(full(210))},
			wantAQI: 200, wantDom: O3,
			check: func(t *testing.T, r Result) {
				if pi := r.Pollutants[O3]; pi.Mean != Mean8h {
					t.Errorf("O3: got %+v; want the 8-hour max", pi)
				}
			},
		},
		{
			// Only 5 hours of O3 in any 8: no 8-hour mean (Min8hHours), the 1-hour max 300 → 150 stands.
			name: "O3 without a complete 8-hour mean",
			hours: map[Pollutant][]Sample{PM25: newestFirst(full(10)),
				O3: {m(300), miss, miss, miss, m(300), miss, miss, miss, m(300), miss, miss, miss, m(300), miss, miss, miss, m(300)}},
			wantAQI: 150, wantDom: O3,
			check: func(t *testing.T, r Result) {
				if pi := r.Pollutants[O3]; pi.Mean != Mean1h {
					t.Errorf("O3: got %+v; want the 1-hour max", pi)
				}
			},
		},
		{
			// NO2 by its largest 1-hour mean 700 → 150, not its mean.
			name:    "NO2 by the day's max",
			hours:   map[Pollutant][]Sample{PM25: newestFirst(full(10)), NO2: {m(10), m(700), m(10)}},
			wantAQI: 150, wantDom: NO2,
		},
		{
			name:    "a negative value is named",
			hours:   map[Pollutant][]Sample{PM25: newestFirst(full(10)), SO2: {m(10), m(-3)}},
			wantAQI: 20, wantDom: PM25,
			missing: map[Pollutant]error{SO2: ErrInvalidConcentration},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := History{Latest: day.Add(23 * time.Hour)}
			for p, s := range tt.hours {
				h.Hours[p] = s
			}
			r := Daily(h, day.Add(9*time.Hour))
			checkResult(t, r, tt.wantAQI, tt.wantDom, tt.wantErr, tt.missing, "")
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
	t.Run("hours outside the day do not count", func(t *testing.T) {
		// 48 hours of PM2.5: the day before at 200, the day at 25 → 50.
		s := append(newestFirst(full(25)), newestFirst(full(200))...)
		r := Daily(History{Latest: day.Add(23 * time.Hour), Hours: [NumPollutants][]Sample{PM25: s}}, day)
		checkResult(t, r, 50, PM25, nil, nil, "")
		r = Daily(History{Latest: day.Add(23 * time.Hour), Hours: [NumPollutants][]Sample{PM25: s}}, day.Add(-time.Hour))
		checkResult(t, r, 250, PM25, nil, nil, "")
	})
}
