package aggregator

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// rollupJSON is the body of a ROLLUPS message: a roll-up's figures as the
// wall reads them (docs/rollups.md). A figure without data is absent.
type rollupJSON struct {
	Unit        string    `json:"unit"`
	Province    string    `json:"province"`
	Layer       string    `json:"layer"`
	Window      string    `json:"window"`
	WindowStart time.Time `json:"windowStart"`
	WindowEnd   time.Time `json:"windowEnd"`
	// Observations counted; Late those stored but received after the
	// window's end plus the lateness.
	Observations int64     `json:"observations"`
	Late         int64     `json:"late"`
	UpdatedAt    time.Time `json:"updatedAt"`
	// Air.
	AQIMax    *int32   `json:"aqiMax,omitempty"`
	AQIMean   *float64 `json:"aqiMean,omitempty"`
	WorstBand *int16   `json:"worstBand,omitempty"`
	Dominant  *string  `json:"dominant,omitempty"`
	// Traffic.
	MeanSpeed      *float64 `json:"meanSpeed,omitempty"`
	CongestedShare *float64 `json:"congestedShare,omitempty"`
	Vehicles       *float64 `json:"vehicles,omitempty"`
	// Water: the highest level, the highest alarm level reached, and the
	// observations at each alarm level ("1", "2", "3").
	LevelMax      *float64         `json:"levelMax,omitempty"`
	AlarmMax      *int16           `json:"alarmMax,omitempty"`
	AlarmObserved map[string]int64 `json:"alarmObservations,omitempty"`
	// Distinct counts: the stations (air, water) or segments (traffic) that
	// reported in the window, and how many reached each grade as their worst:
	// air the VN_AQI band ("0" without one, "1"…"6"), water the alarm level
	// ("0"…"3"); traffic the share of those segments congested at least once.
	// Known: the stations (air, water, weather) or segments (traffic) of the
	// layer in the unit and its descendants now; Stale: the stale source and
	// unit pairs there (always present).
	StationsKnown         *int64           `json:"stationsKnown,omitempty"`
	SegmentsKnown         *int64           `json:"segmentsKnown,omitempty"`
	Stale                 int64            `json:"stale"`
	StationsReporting     *int64           `json:"stationsReporting,omitempty"`
	StationsByBand        map[string]int64 `json:"stationsByBand,omitempty"`
	StationsByAlarm       map[string]int64 `json:"stationsByAlarm,omitempty"`
	SegmentsReporting     *int64           `json:"segmentsReporting,omitempty"`
	CongestedSegmentShare *float64         `json:"congestedSegmentShare,omitempty"`
	// Weather.
	TemperatureMean *float64 `json:"temperatureMean,omitempty"`
	Precipitation   *float64 `json:"precipitation,omitempty"`
	WindMax         *float64 `json:"windMax,omitempty"`
	// Reports: the reports opened (stored for the first time) with their
	// reported_at in the window, resolved in it, resolved by their SLA
	// deadline among those, the share of those, and gone overdue (by their
	// deadline).
	Opened           *int64   `json:"opened,omitempty"`
	Resolved         *int64   `json:"resolved,omitempty"`
	ResolvedInSLA    *int64   `json:"resolvedWithinSla,omitempty"`
	ShareResolvedSLA *float64 `json:"shareResolvedWithinSla,omitempty"`
	Overdue          *int64   `json:"overdue,omitempty"`
	// Rejected: reports rejected in the window. Open: the gauge of the
	// reports stored with reported_at before the window's end and not
	// resolved or rejected by it.
	Rejected *int64 `json:"rejected,omitempty"`
	Open     *int64 `json:"open,omitempty"`
	// Alerts, by CAP severity (Extreme, Severe, Moderate, Minor, Unknown):
	// those that became active in the window (at their sent), that stopped
	// being active in it (superseded or cancelled at the sent of the Update
	// or Cancel, expired at their expires), and the gauge of those active at
	// the window's end.
	Activated    map[string]int64 `json:"activated,omitempty"`
	Ended        map[string]int64 `json:"ended,omitempty"`
	AlertsActive map[string]int64 `json:"alertsActive,omitempty"`
}

// severities are the names of the CAP severity grades 0…4.
var severities = [postgis.Grades]string{"Unknown", "Minor", "Moderate", "Severe", "Extreme"}

// bySeverity is v keyed by severity name.
func bySeverity(v [postgis.Grades]int64) map[string]int64 {
	m := make(map[string]int64, postgis.Grades)
	for g, name := range severities {
		m[name] = v[g]
	}
	return m
}

// windowLength is the length of each roll-up window.
var windowLength = map[string]time.Duration{"1m": time.Minute, "15m": 15 * time.Minute, "1h": time.Hour, "1d": 24 * time.Hour}

// figures turns the stored sums of r into the figures of its layer.
func figures(r postgis.Rollup) rollupJSON {
	j := rollupJSON{
		Unit: r.UnitCode, Province: r.Province, Layer: r.Layer, Window: r.Window,
		WindowStart: r.WindowStart.UTC(), WindowEnd: r.WindowStart.Add(windowLength[r.Window]).UTC(),
		Observations: r.N, Late: r.Late, UpdatedAt: r.UpdatedAt.UTC(),
	}
	ratio := func(num, den float64) *float64 {
		if den <= 0 {
			return nil
		}
		v := num / den
		return &v
	}
	grades := func(n int) map[string]int64 {
		m := make(map[string]int64, n)
		for g := range n {
			m[strconv.Itoa(g)] = r.GradeN[g]
		}
		return m
	}
	members, known := r.Members, r.Known
	j.Stale = r.Stale
	switch r.Layer {
	case subjects.KindTraffic:
		j.SegmentsKnown = &known
	case subjects.KindAir, subjects.KindWater, subjects.KindWeather:
		j.StationsKnown = &known
	}
	switch r.Layer {
	case subjects.KindAir:
		if members > 0 {
			j.StationsReporting, j.StationsByBand = &members, grades(7)
		}
		j.AQIMax, j.WorstBand, j.Dominant = r.AQIMax, r.BandMax, r.Dominant
		j.AQIMean = ratio(r.AQISum, float64(r.AQIN))
	case subjects.KindTraffic:
		if members > 0 {
			j.SegmentsReporting = &members
			j.CongestedSegmentShare = ratio(float64(r.GradeN[1]), float64(members))
		}
		j.MeanSpeed = ratio(r.SpeedWSum, r.SpeedW)
		j.CongestedShare = ratio(float64(r.CongestedN), float64(r.CongestedKnown))
		if r.N > 0 {
			v := r.Vehicles
			j.Vehicles = &v
		}
	case subjects.KindWater:
		if members > 0 {
			j.StationsReporting, j.StationsByAlarm = &members, grades(4)
		}
		j.LevelMax, j.AlarmMax = r.LevelMax, r.AlarmMax
		j.AlarmObserved = map[string]int64{"1": r.AlarmN[0], "2": r.AlarmN[1], "3": r.AlarmN[2]}
	case subjects.KindWeather:
		j.TemperatureMean, j.WindMax = ratio(r.TempSum, float64(r.TempN)), r.WindMax
		if r.N > 0 {
			v := r.PrecipSum
			j.Precipitation = &v
		}
	case subjects.KindReport:
		opened, resolved, inSLA, overdue := r.N, r.ResolvedN, r.ResolvedInSLAN, r.OverdueN
		j.Opened, j.Resolved, j.ResolvedInSLA, j.Overdue = &opened, &resolved, &inSLA, &overdue
		j.ShareResolvedSLA = ratio(float64(inSLA), float64(resolved))
		rejected, open := r.RejectedN, r.ReportsOpen
		j.Rejected, j.Open = &rejected, &open
	case subjects.KindAlert:
		j.Activated, j.Ended, j.AlertsActive = bySeverity(r.Activated), bySeverity(r.Ended), bySeverity(r.AlertsActive)
	}
	return j
}

// rollupMsg builds the ROLLUPS message of r. Its CloudEvents id is the
// roll-up's key and update time and a hash of its body: a copy published
// again with the same figures (a redelivery) has the same id, one whose
// figures read since changed (gauges, the stale figure) another.
func rollupMsg(r postgis.Rollup) (*nats.Msg, error) {
	body, err := json.Marshal(figures(r))
	if err != nil {
		return nil, fmt.Errorf("marshalling roll-up %s: %w", r.Key(), err)
	}
	sum := fnv.New64a()
	_, _ = sum.Write(body)
	ev := ce.Event{
		ID:      r.Key() + "@" + r.UpdatedAt.UTC().Format(time.RFC3339Nano) + "#" + strconv.FormatUint(sum.Sum64(), 36),
		Source:  ce.SourceURN(r.Province, r.UnitCode),
		Type:    ce.RollupType(r.Layer),
		Subject: r.UnitCode,
		Time:    r.WindowStart,
	}
	h := ev.Header()
	h.Set(ce.HeaderContentType, ce.ContentTypeJSON)
	return &nats.Msg{Subject: subjects.Rollup(r.Province, r.UnitCode, r.Layer, r.Window), Header: h, Data: body}, nil
}
