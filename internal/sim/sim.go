// Package sim is iochub's simulator: realistic live feeds for Hà Nội's wards —
// air-quality stations with the city's diurnal PM2.5 cycle, road segments with
// rush hours, an occasional alert — POSTed as FIWARE keyValues batches to an
// ingest's /v1/feeds/{kind}. The same seed and clock give the same items, so it
// serves as a demo feed, a test fixture and a load generator.
package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iochub/iochub/internal/seed"
	"github.com/iochub/iochub/internal/units"
)

// Defaults, in one place.
const (
	DefaultStations    = 30
	DefaultSegments    = 60
	DefaultInterval    = 5 * time.Second
	DefaultAlertEvery  = 2 * time.Minute
	DefaultMaxAttempts = 5
	DefaultMaxBatch    = 5000
	DefaultRetryBase   = 500 * time.Millisecond
	alertValidity      = 30 * time.Minute
	trafficWindow      = 5 * time.Minute
	sourceURN          = "urn:iocsim"
	congestedBelow     = 20.0 // km/h: a segment slower than this is congested
)

// ict is Asia/Ho_Chi_Minh: UTC+7 all year, no daylight saving, so a fixed zone
// works even in images without tzdata.
var ict = time.FixedZone("ICT", 7*3600)

// Config configures a Sim. Zero values mean the default named on each field.
type Config struct {
	BaseURL     string                // ingest base URL, e.g. http://127.0.0.1:8080 (required)
	Token       string                // bearer token of the source (required)
	Stations    int                   // air-quality stations; 0 = 30, negative = none
	Segments    int                   // road segments; 0 = 60, negative = none
	Water       int                   // hydrological stations (water level, alarm levels); 0 = 4, negative = none
	Weather     int                   // weather stations; 0 = 4, negative = none
	Interval    time.Duration         // time between rounds; 0 = 5s
	AlertEvery  time.Duration         // simulated time between alerts, the first with the first round; 0 = 2 min, negative = never
	Rounds      int                   // rounds to send before Run returns; 0 = until the context ends
	Seed        int64                 // seed of every random choice; the same seed gives the same entities and values
	Clock       func() time.Time      // observation time of each round; nil = time.Now
	Logger      *slog.Logger          // nil = discard
	HTTPClient  *http.Client          // nil = a client with a 15s timeout
	Units       []units.Unit          // wards to place things in; nil = Hà Nội's 126 wards (seed.HanoiWards2025)
	MaxAttempts int                   // attempts per batch on 5xx/network errors; 0 = 5
	RetryBase   time.Duration         // first retry delay, doubled each time (with jitter, capped at 30s); 0 = 500ms
	MaxBatch    int                   // most items in one POST (larger kinds are split); 0 = 5000, below the ingest's 10000
	Metrics     prometheus.Registerer // registers the iocsim_* counters; nil = not registered (Stats still counts)
}

// Stats counts what the simulator sent and what the ingest answered.
type Stats struct {
	Rounds    int64 // rounds completed
	Batches   int64 // batches delivered (any 2xx)
	Failed    int64 // batches not delivered after every retry, or answered 4xx
	Retries   int64 // extra attempts after a 5xx or network error
	Items     int64 // items in delivered batches
	Accepted  int64 // items the ingest accepted
	Duplicate int64 // items the ingest had already seen
	Rejected  int64 // items the ingest rejected
}

// Station is an air-quality station placed in a ward.
type Station struct {
	ID       string     // urn:ngsi-ld:Device:HN-AQ-<n>
	Name     string     // Vietnamese
	Ward     string     // ward code
	WardName string     // ward name
	Point    [2]float64 // lon, lat
}

// Segment is a road segment placed in a ward.
type Segment struct {
	ID       string       // urn:ngsi-ld:RoadSegment:HN-<ward>-<n>
	Name     string       // Vietnamese
	Ward     string       // ward code
	WardName string       // ward name
	Line     [][2]float64 // lon, lat vertices
	Lanes    int
}

// Sim generates and sends rounds of observations. Round is not safe for
// concurrent use; Run calls it from one goroutine.
type Sim struct {
	cfg      Config
	log      *slog.Logger
	client   *http.Client
	feedsURL string
	rng      *rand.Rand
	index    *units.Index

	stations []*stationModel
	segments []*segmentModel
	env      env // water and weather stations (env.go)

	last      time.Time // observation time of the previous round
	lastAlert time.Time // issue time of the previous alert

	stats struct {
		rounds, batches, failed, retries, items, accepted, duplicate, rejected atomic.Int64
	}
	retryRNG *rand.Rand // jitter only; kept apart so retries never change the items
	metrics  *metrics
}

type stationModel struct {
	Station
	scale     float64 // PM level relative to the city mean
	pm10Ratio float64
	walk      float64 // slow Ornstein–Uhlenbeck walk of log PM
	no2Base   float64
	coBase    float64
	so2Base   float64
	tempBias  float64
}

type segmentModel struct {
	Segment
	freeFlow float64 // km/h
	peakLoad float64 // density / jam density at full demand
	vehLen   float64 // m; mostly motorbikes
}

// hanoiWards parses the embedded wards once per process; the units are only
// read afterwards, so every Sim can share them.
var hanoiWards = sync.OnceValues(func() ([]units.Unit, error) {
	return units.FromGeoJSON(bytes.NewReader(seed.HanoiWards2025()), units.LevelCommune, "01")
})

// Validate checks the fields a caller must set and the ranges of the others.
func (c Config) Validate() error {
	if c.BaseURL == "" {
		return fmt.Errorf("%w: BaseURL is empty (want e.g. http://127.0.0.1:8080)", ErrConfig)
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: BaseURL %q is not an http(s) URL with a host", ErrConfig, c.BaseURL)
	}
	if c.Token == "" {
		return fmt.Errorf("%w: Token is empty (the ingest wants a bearer token)", ErrConfig)
	}
	if c.Interval < 0 || c.RetryBase < 0 {
		return fmt.Errorf("%w: Interval and RetryBase must not be negative", ErrConfig)
	}
	if c.Rounds < 0 || c.MaxAttempts < 0 {
		return fmt.Errorf("%w: Rounds and MaxAttempts must not be negative", ErrConfig)
	}
	return nil
}

// New places the stations and segments in the units and returns a Sim ready to Run.
func New(cfg Config) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case cfg.Stations == 0:
		cfg.Stations = DefaultStations
	case cfg.Stations < 0:
		cfg.Stations = 0
	}
	switch {
	case cfg.Segments == 0:
		cfg.Segments = DefaultSegments
	case cfg.Segments < 0:
		cfg.Segments = 0
	}
	switch {
	case cfg.Water == 0:
		cfg.Water = DefaultWater
	case cfg.Water < 0:
		cfg.Water = 0
	}
	switch {
	case cfg.Weather == 0:
		cfg.Weather = DefaultWeather
	case cfg.Weather < 0:
		cfg.Weather = 0
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.AlertEvery == 0 {
		cfg.AlertEvery = DefaultAlertEvery
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.RetryBase == 0 {
		cfg.RetryBase = DefaultRetryBase
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	if cfg.Units == nil {
		wards, err := hanoiWards()
		if err != nil {
			return nil, fmt.Errorf("parsing Hà Nội wards: %w", err)
		}
		cfg.Units = wards
	}
	if len(cfg.Units) == 0 {
		return nil, ErrNoUnits
	}
	s := &Sim{
		cfg:      cfg,
		log:      log,
		client:   client,
		feedsURL: strings.TrimRight(cfg.BaseURL, "/") + "/v1/feeds/",
		rng:      rand.New(rand.NewPCG(uint64(cfg.Seed), 0x10c5100)),      //nolint:gosec // G404: seeded for reproducible feeds
		retryRNG: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1)), //nolint:gosec // G404: retry jitter
		index:    units.NewIndex(cfg.Units),
	}
	var err error
	if s.metrics, err = newMetrics(cfg.Metrics); err != nil {
		return nil, err
	}
	if err := s.place(); err != nil {
		return nil, err
	}
	if err := s.placeEnv(cfg.Water, cfg.Weather); err != nil {
		return nil, err
	}
	return s, nil
}

// place puts the stations and segments into wards drawn from a seeded
// permutation, so that they spread over the province.
func (s *Sim) place() error {
	all := s.cfg.Units
	order := s.rng.Perm(len(all))
	pick := 0
	next := func() units.Unit { w := all[order[pick%len(order)]]; pick++; return w }

	for i := range s.cfg.Stations {
		var (
			w  units.Unit
			p  [2]float64
			ok bool
		)
		for try := 0; try < len(all) && !ok; try++ {
			w = next()
			p, ok = randomPointIn(s.rng, s.index, w)
		}
		if !ok {
			return fmt.Errorf("placing station %d: %w", i+1, ErrNoRoom)
		}
		n := fmt.Sprintf("%03d", i+1)
		s.stations = append(s.stations, &stationModel{
			Station: Station{
				ID:       "urn:ngsi-ld:Device:HN-AQ-" + n,
				Name:     "Trạm quan trắc không khí HN-AQ-" + n + " – " + w.NameVI,
				Ward:     w.Code,
				WardName: w.NameVI,
				Point:    p,
			},
			scale:     0.75 + 0.5*s.rng.Float64(),
			pm10Ratio: 1.35 + 0.4*s.rng.Float64(),
			walk:      0.2 * s.rng.NormFloat64(),
			no2Base:   25 + 25*s.rng.Float64(),
			coBase:    600 + 700*s.rng.Float64(),
			so2Base:   6 + 14*s.rng.Float64(),
			tempBias:  0.8 * s.rng.NormFloat64(),
		})
	}

	perWard := map[string]int{}
	for i := range s.cfg.Segments {
		var (
			w    units.Unit
			line [][2]float64
			ok   bool
		)
		for try := 0; try < len(all) && !ok; try++ {
			w = next()
			line, ok = randomLineIn(s.rng, s.index, w)
		}
		if !ok {
			return fmt.Errorf("placing road segment %d: %w", i+1, ErrNoRoom)
		}
		perWard[w.Code]++
		n := strconv.Itoa(perWard[w.Code])
		congestible := s.rng.Float64() < 0.4
		load := 0.35 + 0.2*s.rng.Float64()
		if congestible {
			load = 0.70 + 0.1*s.rng.Float64() // 8–15 km/h at the peak
		}
		s.segments = append(s.segments, &segmentModel{
			Segment: Segment{
				ID:       "urn:ngsi-ld:RoadSegment:HN-" + w.Code + "-" + n,
				Name:     "Đoạn đường " + n + " – " + w.NameVI,
				Ward:     w.Code,
				WardName: w.NameVI,
				Line:     line,
				Lanes:    1 + s.rng.IntN(3),
			},
			freeFlow: 38 + 14*s.rng.Float64(),
			peakLoad: load,
			vehLen:   2.4 + 1.2*s.rng.Float64(),
		})
	}
	return nil
}

// Stations lists the placed air-quality stations.
func (s *Sim) Stations() []Station {
	out := make([]Station, len(s.stations))
	for i, st := range s.stations {
		out[i] = st.Station
	}
	return out
}

// Segments lists the placed road segments.
func (s *Sim) Segments() []Segment {
	out := make([]Segment, len(s.segments))
	for i, sg := range s.segments {
		out[i] = sg.Segment
	}
	return out
}

// Stats returns the counters so far.
func (s *Sim) Stats() Stats {
	return Stats{
		Rounds:    s.stats.rounds.Load(),
		Batches:   s.stats.batches.Load(),
		Failed:    s.stats.failed.Load(),
		Retries:   s.stats.retries.Load(),
		Items:     s.stats.items.Load(),
		Accepted:  s.stats.accepted.Load(),
		Duplicate: s.stats.duplicate.Load(),
		Rejected:  s.stats.rejected.Load(),
	}
}

// Round advances every model to now and returns the items of one round. The
// observation time is now truncated to the millisecond, and moved 1 ms past
// the previous round's if it is not later, so every observation id is new.
func (s *Sim) Round(now time.Time) Round {
	t := now.UTC().Truncate(time.Millisecond)
	dtHours := 0.0
	if !s.last.IsZero() {
		if !t.After(s.last) {
			t = s.last.Add(time.Millisecond)
		}
		dtHours = min(t.Sub(s.last).Hours(), 6)
	}
	s.last = t
	ts := formatTime(t)
	stamp := strconv.FormatInt(t.UnixMilli(), 10)
	local := t.In(ict)
	hour := float64(local.Hour()) + float64(local.Minute())/60 + float64(local.Second())/3600
	month := int(local.Month()) - 1
	demand := trafficDemand(hour)

	r := Round{Time: ts, Air: []AirQualityObserved{}, Traffic: []TrafficFlowObserved{}, Alerts: []Alert{},
		Water: []WaterQualityObserved{}, Weather: []WeatherObserved{}}
	for _, st := range s.stations {
		r.Air = append(r.Air, s.air(st, ts, stamp, hour, month, demand, dtHours))
	}
	for _, sg := range s.segments {
		r.Traffic = append(r.Traffic, s.traffic(sg, t, ts, stamp, demand))
	}
	if s.cfg.AlertEvery > 0 && (s.lastAlert.IsZero() || t.Sub(s.lastAlert) >= s.cfg.AlertEvery) {
		if a, ok := s.alert(t, r); ok {
			r.Alerts = append(r.Alerts, a)
			s.lastAlert = t
		}
	}
	s.envRound(&r, t, ts, stamp, hour, month, dtHours)
	return r
}

func (s *Sim) air(st *stationModel, ts, stamp string, hour float64, month int, demand, dtHours float64) AirQualityObserved {
	const theta, sigma = 0.25, 0.18 // per hour: mean reversion and volatility of the walk
	st.walk += -theta*st.walk*dtHours + sigma*math.Sqrt(dtHours)*s.rng.NormFloat64()
	rush := demand
	pm25 := clamp(pm25Diurnal(hour)*st.scale*math.Exp(st.walk)*(1+0.06*s.rng.NormFloat64()), 2, 600)
	pm10 := clamp(pm25*st.pm10Ratio*(1+0.04*s.rng.NormFloat64()), pm25*1.3, pm25*1.8)
	no2 := clamp(st.no2Base*(0.55+0.8*rush)*(1+0.08*s.rng.NormFloat64()), 3, 400)
	sun := math.Exp(-(hour - 14.5) * (hour - 14.5) / (2 * 3 * 3))
	o3 := clamp(12+85*sun*(1+0.1*s.rng.NormFloat64())+3*s.rng.NormFloat64(), 2, 300)
	co := clamp(st.coBase*(0.65+0.7*rush)*(1+0.08*s.rng.NormFloat64()), 100, 30000)
	so2 := clamp(st.so2Base*(1+0.1*s.rng.NormFloat64()), 1, 300)
	mean := hanoiMonthlyTemp[month] + st.tempBias
	temp := mean + 3.5*math.Cos(2*math.Pi*(hour-14.5)/24) + 0.3*s.rng.NormFloat64()
	rh := clamp(0.78-0.025*(temp-mean)+0.03*s.rng.NormFloat64(), 0.35, 0.98)
	return AirQualityObserved{
		ID:               "urn:ngsi-ld:AirQualityObserved:" + strings.TrimPrefix(st.ID, "urn:ngsi-ld:Device:") + ":" + stamp,
		Type:             "AirQualityObserved",
		Name:             st.Name,
		DateObserved:     ts,
		Location:         Geometry{Type: "Point", Coordinates: st.Point},
		Address:          address(st.WardName),
		AreaServed:       st.WardName,
		RefDevice:        st.ID,
		TypeOfLocation:   "outdoor",
		Source:           sourceURN,
		PM25:             round1(pm25),
		PM10:             round1(pm10),
		NO2:              round1(no2),
		O3:               round1(o3),
		CO:               math.Round(co),
		SO2:              round1(so2),
		Temperature:      round1(temp),
		RelativeHumidity: round2(rh),
	}
}

func (s *Sim) traffic(sg *segmentModel, t time.Time, ts, stamp string, demand float64) TrafficFlowObserved {
	// Greenshields: speed falls linearly with density; flow = density × speed.
	leff := sg.vehLen + 1.0 // vehicle plus the gap a loop detector sees, m
	jam := 900 / leff       // jam density per lane, vehicles/km, at 90 % occupancy
	load := clamp(sg.peakLoad*demand*(1+0.05*s.rng.NormFloat64()), 0.01, 0.95)
	speed := math.Max(sg.freeFlow*(1-load), 5)
	density := load * jam   // vehicles/km/lane
	flow := density * speed // vehicles/h/lane
	count := int(math.Round(flow * float64(sg.Lanes) * trafficWindow.Hours()))
	return TrafficFlowObserved{
		ID:                   "urn:ngsi-ld:TrafficFlowObserved:" + strings.TrimPrefix(sg.ID, "urn:ngsi-ld:RoadSegment:") + ":" + stamp,
		Type:                 "TrafficFlowObserved",
		Name:                 sg.Name,
		DateObserved:         ts,
		DateObservedFrom:     formatTime(t.Add(-trafficWindow)),
		DateObservedTo:       ts,
		Location:             Geometry{Type: "LineString", Coordinates: sg.Line},
		Address:              address(sg.WardName),
		RefRoadSegment:       sg.ID,
		LaneID:               1,
		LaneDirection:        "forward",
		Intensity:            count,
		Occupancy:            round2(density * leff / 1000),
		AverageVehicleSpeed:  round1(speed),
		AverageVehicleLength: round1(sg.vehLen * (1 + 0.03*s.rng.NormFloat64())),
		AverageHeadwayTime:   round1(3600 / flow),
		Congested:            speed < congestedBelow,
	}
}

// alert draws one alert of a random category from this round's state: a jam
// at the slowest segment, poor air at the worst station, or heavy rain over a
// small square in a ward.
func (s *Sim) alert(t time.Time, r Round) (Alert, bool) {
	a := Alert{
		Type:        "Alert",
		DateIssued:  formatTime(t),
		ValidFrom:   formatTime(t),
		ValidTo:     formatTime(t.Add(alertValidity)),
		AlertSource: sourceURN,
	}
	stamp := strconv.FormatInt(t.UnixMilli(), 10)
	kind := s.rng.IntN(3)
	if kind == 0 && len(r.Traffic) == 0 {
		kind = 2
	}
	if kind == 1 && len(r.Air) == 0 {
		kind = 2
	}
	switch kind {
	case 0:
		slow := 0
		for i, o := range r.Traffic {
			if o.AverageVehicleSpeed < r.Traffic[slow].AverageVehicleSpeed {
				slow = i
			}
		}
		o, sg := r.Traffic[slow], s.segments[slow]
		a.ID = "urn:ngsi-ld:Alert:HN-traffic-" + stamp
		a.Category, a.SubCategory = "traffic", "trafficJam"
		a.Severity = "low"
		if o.Congested {
			a.Severity = "medium"
		}
		if o.AverageVehicleSpeed < 12 {
			a.Severity = "high"
		}
		a.Name = "Ùn tắc giao thông – " + sg.WardName
		a.Description = fmt.Sprintf("Ùn tắc trên %s, tốc độ trung bình %.0f km/h. Đề nghị phân luồng, hạn chế đi vào khu vực.", sg.Name, o.AverageVehicleSpeed)
		a.Location = Geometry{Type: "Point", Coordinates: sg.Line[len(sg.Line)/2]}
		a.Address = address(sg.WardName)
	case 1:
		worst := 0
		for i, o := range r.Air {
			if o.PM25 > r.Air[worst].PM25 {
				worst = i
			}
		}
		o, st := r.Air[worst], s.stations[worst]
		a.ID = "urn:ngsi-ld:Alert:HN-environment-" + stamp
		a.Category, a.SubCategory = "environment", "airPollution"
		switch {
		case o.PM25 > 150:
			a.Severity = "high"
		case o.PM25 > 55:
			a.Severity = "medium"
		default:
			a.Severity = "low"
		}
		a.Name = "Chất lượng không khí kém – " + st.WardName
		a.Description = fmt.Sprintf("Nồng độ bụi mịn PM2.5 tại %s là %.0f µg/m³. Người dân nên hạn chế hoạt động ngoài trời và đeo khẩu trang.", st.Name, o.PM25)
		a.Location = Geometry{Type: "Point", Coordinates: st.Point}
		a.Address = address(st.WardName)
	default:
		all := s.cfg.Units
		for range 20 {
			w := all[s.rng.IntN(len(all))]
			c, ok := randomPointIn(s.rng, s.index, w)
			if !ok {
				continue
			}
			ring, ok := squareIn(s.index, w, c, 300)
			if !ok {
				continue
			}
			a.ID = "urn:ngsi-ld:Alert:HN-weather-" + stamp
			a.Category, a.SubCategory = "weather", "heavyRain"
			a.Severity = "medium"
			a.Name = "Mưa lớn, ngập úng cục bộ – " + w.NameVI
			a.Description = "Mưa lớn gây ngập úng cục bộ tại " + w.NameVI + ". Người dân hạn chế di chuyển qua khu vực, chú ý an toàn điện."
			a.Location = Geometry{Type: "Polygon", Coordinates: [][][2]float64{ring}}
			a.Address = address(w.NameVI)
			return a, true
		}
		return Alert{}, false
	}
	return a, true
}

func address(ward string) Address {
	return Address{AddressLocality: ward, AddressRegion: "Thành phố Hà Nội", AddressCountry: "VN"}
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func clamp(v, lo, hi float64) float64 { return math.Min(math.Max(v, lo), hi) }

// Run sends a round every Interval until ctx ends (or Rounds rounds when
// Rounds > 0): one POST per kind — air, traffic, alert — or more when a kind
// has more than MaxBatch items. In endless mode a
// batch that cannot be delivered is logged and counted, and the next round
// goes on; with Rounds > 0 Run returns the errors of the failed batches.
// Run returns nil when ctx ends.
func (s *Sim) Run(ctx context.Context) error {
	s.log.Info("simulator started", "url", s.cfg.BaseURL, "stations", len(s.stations),
		"segments", len(s.segments), "interval", s.cfg.Interval, "seed", s.cfg.Seed)
	var errs []error
	ticker := time.NewTicker(s.cfg.Interval)
	defer ticker.Stop()
	for i := 0; s.cfg.Rounds == 0 || i < s.cfg.Rounds; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-ticker.C:
			}
		}
		r := s.Round(s.cfg.Clock())
		for _, kind := range []string{"air", "traffic", "alert", "water", "weather"} {
			items, err := r.encode(kind)
			if err != nil {
				return err // a Round that cannot be encoded is a bug, not a network problem
			}
			for len(items) > 0 {
				chunk := items[:min(len(items), s.cfg.MaxBatch)]
				items = items[len(chunk):]
				if err := s.send(ctx, kind, chunk); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					if s.cfg.Rounds > 0 {
						errs = append(errs, err)
					}
				}
			}
		}
		s.stats.rounds.Add(1)
	}
	return errors.Join(errs...)
}

// encode marshals the items of one kind of the round.
func (r Round) encode(kind string) ([]json.RawMessage, error) {
	var (
		items []json.RawMessage
		err   error
	)
	switch kind {
	case "air":
		items, err = encodeItems(r.Air)
	case "traffic":
		items, err = encodeItems(r.Traffic)
	case "alert":
		items, err = encodeItems(r.Alerts)
	case "water":
		items, err = encodeItems(r.Water)
	case "weather":
		items, err = encodeItems(r.Weather)
	default:
		return nil, fmt.Errorf("encoding round: unknown kind %q", kind)
	}
	if err != nil {
		return nil, fmt.Errorf("encoding %s items: %w", kind, err)
	}
	return items, nil
}
