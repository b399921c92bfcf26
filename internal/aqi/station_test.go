package aqi

import (
	"encoding/csv"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

func pm25(c float64) Values {
	var v Values
	v[PM25] = Measured(c)
	return v
}

func TestStationAveragesWithinHour(t *testing.T) {
	var s Station
	t0 := time.Date(2025, 7, 1, 10, 0, 0, 0, ict)
	// Hour 09: 20 and 40 (mean 30); hour 10: 30 three times (mean 30), NO2 once.
	adds := []struct {
		at time.Time
		v  Values
	}{
		{t0.Add(-50 * time.Minute), pm25(20)},
		{t0.Add(-10 * time.Minute), pm25(40)},
		{t0.Add(1 * time.Minute), pm25(30)},
		{t0.Add(20 * time.Minute), pm25(30)},
		{t0.Add(59*time.Minute + 59*time.Second), pm25(30)},
		{t0.Add(30 * time.Minute), Values{NO2: Measured(150)}},
	}
	for _, a := range adds {
		if err := s.Add(a.at, a.v); err != nil {
			t.Fatal(err)
		}
	}
	r := s.Hourly(t0.Add(45 * time.Minute))
	// PM2.5 NowCast of 30, 30 → 30 → 50 + 50·5/25 = 60; NO2 150 → 75.
	checkResult(t, r, 75, NO2, nil, nil, "")
	if pi := r.Pollutants[PM25]; math.Abs(pi.Conc-30) > 1e-12 {
		t.Errorf("PM2.5 NowCast: got %v; want 30 (hour means 30 and 30)", pi.Conc)
	}
}

func TestStationWindow(t *testing.T) {
	var s Station
	t0 := time.Date(2025, 7, 1, 10, 30, 0, 0, ict)
	for i := range 60 { // 60 hours, PM2.5 = the hour number
		if err := s.Add(t0.Add(time.Duration(i)*time.Hour), pm25(float64(i))); err != nil {
			t.Fatal(err)
		}
	}
	newest := t0.Add(59 * time.Hour)
	if err := s.Add(newest.Add(-StationHours*time.Hour), pm25(1)); !errors.Is(err, ErrTooOld) {
		t.Errorf("Add %d hours back: got %v; want ErrTooOld", StationHours, err)
	}
	// The oldest hour kept still takes late data: hour 12 (PM2.5 12) gets 36 too, mean 24.
	oldest := newest.Add(-(StationHours - 1) * time.Hour)
	if err := s.Add(oldest, pm25(36)); err != nil {
		t.Errorf("Add %d hours back: %v", StationHours-1, err)
	}
	if got := s.mean(PM25, hourIndex(oldest)); got != Measured(24) {
		t.Errorf("oldest hour: got %+v; want mean 24", got)
	}
	if got := s.mean(PM25, hourIndex(oldest)-1); got.Valid {
		t.Errorf("hour before the oldest kept: got %+v; want missing", got)
	}
	if err := s.Add(newest, Values{CO: Measured(-1)}); !errors.Is(err, ErrInvalidConcentration) {
		t.Errorf("Add CO -1: got %v; want ErrInvalidConcentration", err)
	}
	// Once every kept hour has left the window, nothing remains.
	r := s.Hourly(newest.Add(StationHours * time.Hour))
	checkResult(t, r, 0, 0, ErrNotComputed, map[Pollutant]error{PM25: ErrNoData, PM10: ErrNoData}, "")
	// Hours are absolute: the same instant in UTC gives the same result.
	a, b := s.Hourly(newest), s.Hourly(newest.UTC())
	if a.AQI != b.AQI || a.Err != nil || b.Err != nil {
		t.Errorf("Hourly in ICT and UTC: got %d, %d (%v, %v)", a.AQI, b.AQI, a.Err, b.Err)
	}
}

// hanoiRow is one hour of testdata/Hanoi_PM2.5_2019_YTD.csv.
type hanoiRow struct {
	start   time.Time // start of the hour, Hà Nội time
	raw     float64
	valid   bool    // not −999 and not QC "Invalid"
	nowcast float64 // the monitor's own (US EPA) NowCast, −999 when it has none
}

func loadHanoi(t testing.TB) []hanoiRow {
	t.Helper()
	f, err := os.Open("testdata/Hanoi_PM2.5_2019_YTD.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("reading the Hà Nội CSV: %v", err)
	}
	col := map[string]int{}
	for i, name := range recs[0] {
		col[name] = i
	}
	num := func(rec []string, name string) float64 {
		v, err := strconv.ParseFloat(rec[col[name]], 64)
		if err != nil {
			t.Fatalf("column %q: %v", name, err)
		}
		return v
	}
	var rows []hanoiRow
	for _, rec := range recs[1:] {
		start := time.Date(int(num(rec, "Year")), time.Month(num(rec, "Month")), int(num(rec, "Day")),
			int(num(rec, "Hour")), 0, 0, 0, ict)
		raw := num(rec, "Raw Conc.")
		rows = append(rows, hanoiRow{
			start:   start,
			raw:     raw,
			valid:   raw != -999 && rec[col["QC Name"]] != "Invalid",
			nowcast: num(rec, "NowCast Conc."),
		})
	}
	return rows
}

// TestStationHanoiSeries runs the US Embassy Hà Nội PM2.5 series through a Station hour by hour.
// The expectations come from the CSV's gaps, computed here without the package: an hour has an
// AQI exactly when at least 2 of it and the 2 hours before have a valid value.
func TestStationHanoiSeries(t *testing.T) {
	rows := loadHanoi(t)
	valid := map[int64]float64{} // hour → raw concentration
	invalidRows := 0
	for i, r := range rows {
		if i > 0 && !r.start.After(rows[i-1].start) {
			t.Fatalf("row %d: %s is not after %s", i+2, r.start, rows[i-1].start)
		}
		if r.valid {
			valid[hourIndex(r.start)] = r.raw
		} else {
			invalidRows++
		}
	}
	first, last := hourIndex(rows[0].start), hourIndex(rows[len(rows)-1].start)
	total := int(last - first + 1)
	// Two independent counts of the gaps: hours without a valid value, and hours without a row
	// plus rows marked missing or invalid.
	if gaps, want := total-len(valid), (total-len(rows))+invalidRows; gaps != want {
		t.Fatalf("gap hours: %d; rows imply %d", gaps, want)
	}

	byHour := map[int64]hanoiRow{}
	for _, r := range rows {
		byHour[hourIndex(r.start)] = r
	}
	var s Station
	wantComputed, computed, notComputed, monitorCompared := 0, 0, 0, 0
	for h := first; h <= last; h++ {
		start := time.Unix(h*3600, 0).In(ict)
		if c, ok := valid[h]; ok {
			// Two observations whose mean is the hour's value, to exercise the averaging.
			if err := s.Add(start.Add(10*time.Minute), pm25(c*0.5)); err != nil {
				t.Fatal(err)
			}
			if err := s.Add(start.Add(40*time.Minute), pm25(c*1.5)); err != nil {
				t.Fatal(err)
			}
		}
		r := s.Hourly(start.Add(59 * time.Minute))

		recent, any12 := 0, false
		for i := range int64(NowCastHours) {
			if _, ok := valid[h-i]; ok {
				any12 = true
				if i < 3 {
					recent++
				}
			}
		}
		if recent < 2 {
			notComputed++
			want := ErrTooFewRecentHours
			if !any12 {
				want = ErrNoData
			}
			if !errors.Is(r.Err, ErrNotComputed) || !errors.Is(reasonFor(r, PM25), want) ||
				!errors.Is(reasonFor(r, PM10), ErrNoData) || len(r.Missing) != 2 {
				t.Errorf("%s: %d of the latest 3 hours valid: got Err %v, Missing %v; want ErrNotComputed and PM2.5: %v",
					start, recent, r.Err, r.Missing, want)
			}
			continue
		}
		wantComputed++
		if r.Err != nil {
			t.Errorf("%s: %d of the latest 3 hours valid: got %v; want an AQI", start, recent, r.Err)
			continue
		}
		computed++
		nc := referenceNowCast(valid, h)
		pi := r.Pollutants[PM25]
		if !pi.OK || pi.Mean != MeanNowCast || math.Abs(pi.Conc-nc) > 1e-9*max(1, nc) {
			t.Errorf("%s: PM2.5 got %+v; want NowCast %v", start, pi, nc)
		}
		idx, err := SubIndex(PM25, MeanNowCast, nc)
		if err != nil {
			t.Fatal(err)
		}
		// The AQI, its band and the dominant pollutant follow from the PM2.5 NowCast sub-index alone.
		if want := int(math.Round(idx)); r.AQI != want || r.Dominant != PM25 || r.Band != BandOf(want) || len(r.Missing) != 0 {
			t.Errorf("%s: got AQI %d %s band %q missing %v; want %d PM2.5 band %q", start, r.AQI, r.Dominant, r.Band.NameVI, r.Missing, want, BandOf(want).NameVI)
		}
		if r.AQI <= 500 && (r.AQI < r.Band.Min || r.AQI > r.Band.Max) {
			t.Errorf("%s: AQI %d outside its band %+v", start, r.AQI, r.Band)
		}
		// The monitor's own NowCast (US EPA: the same w*, 1/2 floor and 2-of-3 rule, Invalid rows
		// left out) is an independent check; it is truncated to 0.1 µg/m³. (Where it has too few
		// hours it repeats its last value rather than saying so, so only this direction is checked.)
		if row, ok := byHour[h]; ok {
			monitorCompared++
			if d := nc - row.nowcast; d < -1e-9 || d >= 0.1+1e-9 {
				t.Errorf("%s: NowCast %v; the monitor says %v", start, nc, row.nowcast)
			}
		}
	}
	if computed+notComputed != total || computed != wantComputed {
		t.Errorf("hours: %d computed + %d not = %d; want %d computed of %d", computed, notComputed, computed+notComputed, wantComputed, total)
	}
	if notComputed == 0 || computed == 0 || monitorCompared < computed/2 {
		t.Errorf("the series should exercise both outcomes and the monitor's NowCast: %d computed, %d not, %d compared", computed, notComputed, monitorCompared)
	}
	t.Logf("%d hours: %d with an AQI, %d without (gaps); %d NowCasts checked against the monitor's", total, computed, notComputed, monitorCompared)

	t.Run("daily", func(t *testing.T) {
		// Replay, asking each day's AQI at noon of the next day (the Station keeps 48 hours).
		var s Station
		days, dailyComputed := 0, 0
		for h := first; h <= last; h++ {
			start := time.Unix(h*3600, 0).In(ict)
			if c, ok := valid[h]; ok {
				if err := s.Add(start, pm25(c)); err != nil {
					t.Fatal(err)
				}
			}
			if start.Hour() != 12 {
				continue
			}
			day := dayStart(start).AddDate(0, 0, -1)
			if hourIndex(day) < first {
				continue
			}
			days++
			n, sum := 0, 0.0
			for i := range int64(24) {
				if c, ok := valid[hourIndex(day)+i]; ok {
					n++
					sum += c
				}
			}
			r := s.Daily(day)
			if n < MinDayHours {
				want := ErrIncompleteDay
				if n == 0 {
					want = ErrNoData
				}
				if !errors.Is(r.Err, ErrNotComputed) || !errors.Is(reasonFor(r, PM25), want) {
					t.Errorf("%s: %d valid hours: got %v %v; want %v", day.Format(time.DateOnly), n, r.Err, r.Missing, want)
				}
				continue
			}
			dailyComputed++
			idx, _ := SubIndex(PM25, Mean24h, sum/float64(n))
			if r.Err != nil || r.AQI != int(math.Round(idx)) || math.Abs(r.Pollutants[PM25].Conc-sum/float64(n)) > 1e-9 {
				t.Errorf("%s: got AQI %d (%v), mean %v; want %d, mean %v", day.Format(time.DateOnly), r.AQI, r.Err, r.Pollutants[PM25].Conc, int(math.Round(idx)), sum/float64(n))
			}
		}
		if dailyComputed == 0 {
			t.Errorf("no day had a daily AQI out of %d", days)
		}
		t.Logf("%d days: %d with a daily AQI", days, dailyComputed)
	})
}

// referenceNowCast is the decision's formula written out plainly, for hour h of the series.
func referenceNowCast(valid map[int64]float64, h int64) float64 {
	cmin, cmax := math.Inf(1), math.Inf(-1)
	for i := range int64(12) {
		if c, ok := valid[h-i]; ok {
			cmin, cmax = math.Min(cmin, c), math.Max(cmax, c)
		}
	}
	if cmax == 0 {
		return 0
	}
	w := cmin / cmax
	if w <= 0.5 {
		w = 0.5
	}
	var num, den float64
	for i := range int64(12) {
		if c, ok := valid[h-i]; ok {
			num += math.Pow(w, float64(i)) * c
			den += math.Pow(w, float64(i))
		}
	}
	return num / den
}

// BenchmarkStation is the aggregator's per-observation work: add an observation with three
// pollutants to a station that holds 48 hours, then compute its hourly AQI.
func BenchmarkStation(b *testing.B) {
	var s Station
	t := time.Date(2025, 7, 1, 0, 0, 0, 0, ict)
	var v Values
	for i := range StationHours * 3 {
		c := 20 + float64(i%17)
		v[PM25], v[PM10], v[NO2] = Measured(c), Measured(2*c), Measured(5*c)
		if err := s.Add(t, v); err != nil {
			b.Fatal(err)
		}
		t = t.Add(20 * time.Minute)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c := 20 + float64(i%17)
		v[PM25], v[PM10], v[NO2] = Measured(c), Measured(2*c), Measured(5*c)
		if err := s.Add(t, v); err != nil {
			b.Fatal(err)
		}
		if r := s.Hourly(t); r.Err != nil {
			b.Fatal(r.Err)
		}
		t = t.Add(20 * time.Minute)
		i++
	}
}

// TestStationDailyAQIKept checks DailyAQI, which keeps its answer, against
// Daily over random observations: out of order, in the day asked and
// around it, too old, moving the window past the day; each answer must be
// Daily's at that moment.
func TestStationDailyAQIKept(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2025, 7, 1, 0, 0, 0, 0, ict)
	computed := 0 // answers with a daily AQI
	for run := range 200 {
		var s Station
		for step := range 400 {
			// Observations moving forward over five days, a few hours out
			// of order; one in five anywhere in the five days (some far
			// behind the newest: rejected as too old).
			at := start.Add(time.Duration(step)*5*24*time.Hour/400 + time.Duration(rng.Int64N(int64(4*time.Hour))) - 3*time.Hour)
			if rng.IntN(5) == 0 {
				at = start.Add(time.Duration(rng.Int64N(int64(5 * 24 * time.Hour))))
			}
			var v Values
			for p := range NumPollutants {
				if rng.IntN(3) > 0 {
					v[p] = Measured(rng.Float64() * 300)
				}
			}
			_ = s.Add(at, v)
			if rng.IntN(4) == 0 {
				day := start.AddDate(0, 0, rng.IntN(5))
				if rng.IntN(2) == 0 { // the day before the observation, as the aggregator asks
					day = at.AddDate(0, 0, -1)
				}
				got, ok := s.DailyAQI(day)
				want := s.Daily(day)
				if ok != (want.Err == nil) || (ok && got != want.AQI) {
					t.Fatalf("run %d step %d: DailyAQI(%v) = %d, %v; Daily: %d, %v", run, step, day, got, ok, want.AQI, want.Err)
				}
				if ok {
					computed++
				}
			}
		}
	}
	if computed < 1000 {
		t.Fatalf("only %d answers had a daily AQI: the test does not exercise the kept answer", computed)
	}
}

// TestStationDailyAQIWindowMoves: the kept daily AQI of a day is dropped
// when the window moves past the day's first hours, although no
// observation of that day came.
func TestStationDailyAQIWindowMoves(t *testing.T) {
	var s Station
	day := time.Date(2025, 7, 1, 0, 0, 0, 0, ict)
	for h := range 24 {
		// 200 µg/m³ in the first two hours, 20 in the others: the mean
		// falls when the window drops those two.
		c := 20.0
		if h < 2 {
			c = 200
		}
		if err := s.Add(day.Add(time.Duration(h)*time.Hour), pm25(c)); err != nil {
			t.Fatal(err)
		}
	}
	before, ok := s.DailyAQI(day)
	if want := s.Daily(day); !ok || before != want.AQI {
		t.Fatalf("DailyAQI = %d, %v; Daily: %d, %v", before, ok, want.AQI, want.Err)
	}
	// 49 hours after the day's start: its hours 0 and 1 leave the window.
	if err := s.Add(day.Add(49*time.Hour+time.Minute), pm25(10)); err != nil {
		t.Fatal(err)
	}
	after, ok := s.DailyAQI(day)
	want := s.Daily(day)
	if !ok || after != want.AQI {
		t.Fatalf("after the window moved: DailyAQI = %d, %v; Daily: %d, %v", after, ok, want.AQI, want.Err)
	}
	if after == before {
		t.Fatalf("the daily AQI did not change (%d): the test shows nothing", after)
	}
}

// BenchmarkStationRate rates an observation as the aggregator does: add it,
// then the hourly AQI of its hour and the daily AQI of the day before (a
// full day), asked each time with Daily (the baseline) or DailyAQI.
func BenchmarkStationRate(b *testing.B) {
	for _, kept := range []bool{false, true} {
		name := "Daily"
		if kept {
			name = "DailyAQI"
		}
		b.Run(name, func(b *testing.B) {
			var s Station
			t := time.Date(2025, 7, 1, 0, 0, 0, 0, ict)
			var v Values
			add := func(i int) {
				c := 20 + float64(i%17)
				v[PM25], v[PM10], v[NO2] = Measured(c), Measured(2*c), Measured(5*c)
				if err := s.Add(t, v); err != nil {
					b.Fatal(err)
				}
			}
			for i := range 24 * 3 { // yesterday whole, every 20 minutes
				add(i)
				t = t.Add(20 * time.Minute)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				add(i)
				if r := s.Hourly(t); r.Err != nil {
					b.Fatal(r.Err)
				}
				day := t.AddDate(0, 0, -1)
				if kept {
					if _, ok := s.DailyAQI(day); !ok {
						b.Fatal("no daily AQI")
					}
				} else if r := s.Daily(day); r.Err != nil {
					b.Fatal(r.Err)
				}
				t = t.Add(time.Second) // within the day: yesterday stays
				i++
			}
		})
	}
}

// BenchmarkStationFirstHours measures a new station's hourly VN_AQI in its
// first hour, when the NowCast of PM2.5 and PM10 has too few hours and the
// result says why (the case of every station of a hub that has just
// started, or of a drain of new stations).
func BenchmarkStationFirstHours(b *testing.B) {
	t := time.Date(2025, 7, 1, 8, 0, 0, 0, ict)
	var v Values
	v[PM25], v[PM10], v[NO2] = Measured(30), Measured(60), Measured(100)
	b.ReportAllocs()
	for b.Loop() {
		var s Station
		if err := s.Add(t, v); err != nil {
			b.Fatal(err)
		}
		if r := s.Hourly(t); !errors.Is(r.Err, ErrNotComputed) {
			b.Fatalf("hourly AQI of a first hour: %v; want ErrNotComputed", r.Err)
		}
	}
}
