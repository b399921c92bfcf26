// Package aqi computes the Vietnamese air quality index VN_AQI as Decision 1459/QĐ-TCMT
// (12 Nov 2019, Vietnam Environment Administration) defines it: sub-indices by the decision's
// linear formula over its breakpoint tables, the 12-hour NowCast for PM2.5 and PM10, the hourly
// and the daily AQI, the dominant pollutant and the band (Tốt … Nguy hại) with its colour.
//
// It is pure code: no I/O, no clock, no goroutines. Station is the incremental per-station
// calculator the aggregator keeps in memory.
//
// Units: every concentration is in µg/m³, CO included (10 mg/m³ = 10000 µg/m³).
//
// Hours: an hourly value is identified by the start of its hour (time truncated to the hour,
// in absolute time, which is the local hour in Vietnam, UTC+7). The decision labels an hour by
// its end: its value "at 01:00" is the mean of 00:00–01:00, and a day runs from the value labelled
// 01:00 to the one labelled 00:00 of the next day, that is over the hours starting 00:00 … 23:00.
//
// Choices where the decision is silent, each named where it is made: the last row of each table
// is written "≥" in the decision, so above the last breakpoint a sub-index continues the last
// segment's slope (it stays ordered and reads above 500) except for the O3 8-hour table, which
// the decision stops using above 400 µg/m³; a 24-hour mean needs MinDayHours hourly values and an
// 8-hour mean Min8hHours.
package aqi

import (
	"fmt"
	"math"
	"strings"
)

// Pollutant is one of the six pollutants VN_AQI rates.
type Pollutant uint8

// The pollutants, in the order Result.Pollutants holds them.
const (
	PM25 Pollutant = iota
	PM10
	O3
	CO
	SO2
	NO2
	// NumPollutants is the number of pollutants; it is not a pollutant.
	NumPollutants
)

var pollutantNames = [NumPollutants]string{"PM2.5", "PM10", "O3", "CO", "SO2", "NO2"}

// fiwareNames are the AirQualityObserved attribute names of the pollutants.
var fiwareNames = [NumPollutants]string{"pm25", "pm10", "o3", "co", "so2", "no2"}

// String returns the pollutant's usual name ("PM2.5", "PM10", "O3", "CO", "SO2", "NO2").
func (p Pollutant) String() string {
	if p < NumPollutants {
		return pollutantNames[p]
	}
	return fmt.Sprintf("Pollutant(%d)", uint8(p))
}

// FIWARE returns the pollutant's FIWARE AirQualityObserved attribute name ("pm25", "no2", ...).
func (p Pollutant) FIWARE() string {
	if p < NumPollutants {
		return fiwareNames[p]
	}
	return ""
}

// ParsePollutant accepts the usual name or the FIWARE name of a pollutant, in any case
// ("PM2.5", "pm25", "NO2", "no2", ...).
func ParsePollutant(s string) (Pollutant, error) {
	for p := range NumPollutants {
		if strings.EqualFold(s, pollutantNames[p]) || strings.EqualFold(s, fiwareNames[p]) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("parsing pollutant %q: %w", s, ErrUnknownPollutant)
}

// Averaging is the averaging period of a concentration, which picks the breakpoint table.
type Averaging uint8

// Averaging periods.
const (
	// Mean1h is a 1-hour mean: O3 (its 1-hour table), CO, SO2, NO2; also the day's maximum 1-hour mean.
	Mean1h Averaging = iota + 1
	// Mean8h is an 8-hour mean: O3 only (its 8-hour table).
	Mean8h
	// MeanNowCast is the 12-hour NowCast of PM2.5 or PM10 (hourly AQI).
	MeanNowCast
	// Mean24h is the 24-hour mean of PM2.5 or PM10 (daily AQI).
	Mean24h
)

// String names the averaging period ("1h", "8h", "NowCast", "24h").
func (a Averaging) String() string {
	switch a {
	case Mean1h:
		return "1h"
	case Mean8h:
		return "8h"
	case MeanNowCast:
		return "NowCast"
	case Mean24h:
		return "24h"
	}
	return fmt.Sprintf("Averaging(%d)", uint8(a))
}

// The decision's Table 2: index levels I_i and, per pollutant, the breakpoints BP_i (µg/m³) at
// those levels. A table may stop early (O3 8-hour has no breakpoints for 400 and 500).
// TestTablesMatchJSON checks these against testdata/vn_aqi_qd1459_2019.json.
var indexLevels = [8]float64{0, 50, 100, 150, 200, 300, 400, 500}

type table struct {
	bp [8]float64
	n  int // number of breakpoints defined, counted from index level 0
	// capped tables are not extended above their last breakpoint (ErrAboveTable).
	capped bool
}

var (
	tableO3h1 = table{bp: [8]float64{0, 160, 200, 300, 400, 800, 1000, 1200}, n: 8}
	tableO3h8 = table{bp: [8]float64{0, 100, 120, 170, 210, 400}, n: 6, capped: true}
	tableCO   = table{bp: [8]float64{0, 10000, 30000, 45000, 60000, 90000, 120000, 150000}, n: 8}
	tableSO2  = table{bp: [8]float64{0, 125, 350, 550, 800, 1600, 2100, 2630}, n: 8}
	tableNO2  = table{bp: [8]float64{0, 100, 200, 700, 1200, 2350, 3100, 3850}, n: 8}
	tablePM10 = table{bp: [8]float64{0, 50, 150, 250, 350, 420, 500, 600}, n: 8}
	tablePM25 = table{bp: [8]float64{0, 25, 50, 80, 150, 250, 350, 500}, n: 8}
)

// tableFor returns the breakpoint table of p averaged over a.
func tableFor(p Pollutant, a Averaging) (*table, error) {
	switch {
	case p == PM25 && (a == MeanNowCast || a == Mean24h):
		return &tablePM25, nil
	case p == PM10 && (a == MeanNowCast || a == Mean24h):
		return &tablePM10, nil
	case p == O3 && a == Mean1h:
		return &tableO3h1, nil
	case p == O3 && a == Mean8h:
		return &tableO3h8, nil
	case p == CO && a == Mean1h:
		return &tableCO, nil
	case p == SO2 && a == Mean1h:
		return &tableSO2, nil
	case p == NO2 && a == Mean1h:
		return &tableNO2, nil
	case p >= NumPollutants:
		return nil, fmt.Errorf("%w %d", ErrUnknownPollutant, uint8(p))
	}
	return nil, fmt.Errorf("%s %s: %w", p, a, ErrNoTable)
}

// SubIndex returns the sub-index of pollutant p at concentration c (µg/m³) averaged over a, by the
// decision's formula AQI_x = (I_{i+1} − I_i)/(BP_{i+1} − BP_i) · (C_x − BP_i) + I_i with
// BP_i ≤ C_x ≤ BP_{i+1}. The value is not rounded (the AQI is: see Result.AQI). Above the last
// breakpoint the last segment is continued, so the result exceeds 500; the O3 8-hour table is
// not continued (ErrAboveTable).
func SubIndex(p Pollutant, a Averaging, c float64) (float64, error) {
	t, err := tableFor(p, a)
	if err != nil {
		return 0, err
	}
	if !(c >= 0) || math.IsInf(c, 1) { // !(c >= 0) is true for NaN too
		return 0, fmt.Errorf("%s %s = %v: %w", p, a, c, ErrInvalidConcentration)
	}
	last := t.n - 1
	if c > t.bp[last] && t.capped {
		return 0, fmt.Errorf("%s %s = %v above %v µg/m³: %w", p, a, c, t.bp[last], ErrAboveTable)
	}
	i := 0 // the segment [bp[i], bp[i+1]] holding c; the last segment when c is above the table
	for i < last-1 && c > t.bp[i+1] {
		i++
	}
	lo, hi := t.bp[i], t.bp[i+1]
	dI := indexLevels[i+1] - indexLevels[i]
	if c > hi {
		// Slope first: c may be huge, and dI·(c−lo) could overflow.
		return dI/(hi-lo)*(c-lo) + indexLevels[i], nil
	}
	// Product first, so that a breakpoint maps exactly onto its index level.
	return dI*(c-lo)/(hi-lo) + indexLevels[i], nil
}

// Band is one of the decision's six AQI ranges (Table 1), with its name and colour.
type Band struct {
	Level  int    // 1 (Tốt) … 6 (Nguy hại); 0 in a Result without an AQI
	Min    int    // lowest AQI of the band
	Max    int    // highest AQI of the band (500 for Nguy hại, which also holds AQIs above 500)
	NameVI string // "Tốt", "Trung bình", "Kém", "Xấu", "Rất xấu", "Nguy hại"
	NameEN string // "Good", "Moderate", "Poor", "Bad", "Very bad", "Hazardous"
	Color  string // "#RRGGBB", from the decision's RGB values
}

// bands are the decision's six bands, Level 1 first.
var bands = [6]Band{
	{Level: 1, Min: 0, Max: 50, NameVI: "Tốt", NameEN: "Good", Color: "#00E400"},
	{Level: 2, Min: 51, Max: 100, NameVI: "Trung bình", NameEN: "Moderate", Color: "#FFFF00"},
	{Level: 3, Min: 101, Max: 150, NameVI: "Kém", NameEN: "Poor", Color: "#FF7E00"},
	{Level: 4, Min: 151, Max: 200, NameVI: "Xấu", NameEN: "Bad", Color: "#FF0000"},
	{Level: 5, Min: 201, Max: 300, NameVI: "Rất xấu", NameEN: "Very bad", Color: "#8F3F97"},
	{Level: 6, Min: 301, Max: 500, NameVI: "Nguy hại", NameEN: "Hazardous", Color: "#7E0023"},
}

// BandOf returns the band of a (rounded) AQI; AQIs above 500 are Nguy hại, negative ones Tốt.
func BandOf(aqi int) Band {
	for _, b := range bands[:len(bands)-1] {
		if aqi <= b.Max {
			return b
		}
	}
	return bands[len(bands)-1]
}

// Bands returns the decision's six bands, Level 1 (Tốt) first, for legends.
func Bands() [6]Band { return bands }

// Floor is the concentration of p, averaged over a, at which band b starts:
// the breakpoint (Table 2) at the band's lowest index level, 0, 50, 100, 150,
// 200 or 300. A map colours raw PM2.5 NowCast values by these steps when a
// station has no VN_AQI yet, and the legend shows them.
func (b Band) Floor(p Pollutant, a Averaging) (float64, error) {
	t, err := tableFor(p, a)
	if err != nil {
		return 0, err
	}
	i := b.Level - 1
	if i < 0 || i >= t.n {
		// Level 0 (a Result without an AQI) starts nowhere.
		return 0, fmt.Errorf("band %d of %s %s: %w", b.Level, p, a, ErrAboveTable)
	}
	return t.bp[i], nil
}
