package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/iochub/iochub/internal/units"
)

// Defaults of the water and weather stations.
const (
	DefaultWater   = 4 // hydrological stations
	DefaultWeather = 4 // weather stations
)

// The Red River at Hà Nội (Long Biên): the alarm levels of Vietnamese flood
// warnings, in metres (báo động I, II, III).
var hanoiAlarmLevels = [3]float64{9.5, 10.5, 11.5}

// WaterQualityObserved is one observation of a hydrological station in the
// FIWARE WaterQualityObserved keyValues form, with iochub's flood-watch
// members: waterLevel and the station's alarmLevels (m), flow (m³/s).
type WaterQualityObserved struct {
	ID           string     `json:"id"`
	Type         string     `json:"type"`
	Name         string     `json:"name"`
	DateObserved string     `json:"dateObserved"`
	Location     Geometry   `json:"location"`
	Address      Address    `json:"address"`
	RefDevice    string     `json:"refDevice"`
	Source       string     `json:"source"`
	WaterLevel   float64    `json:"waterLevel"`
	AlarmLevels  [3]float64 `json:"alarmLevels"`
	Flow         float64    `json:"flow"`
	Temperature  float64    `json:"temperature"`
	PH           float64    `json:"pH"`
	Turbidity    float64    `json:"turbidity"`
	O2           float64    `json:"O2"`
}

// WeatherObserved is one observation of a weather station (FIWARE
// WeatherObserved): relativeHumidity a fraction 0–1, precipitation in mm
// since the previous round, wind in m/s and degrees, pressure in hPa.
type WeatherObserved struct {
	ID                  string   `json:"id"`
	Type                string   `json:"type"`
	Name                string   `json:"name"`
	DateObserved        string   `json:"dateObserved"`
	Location            Geometry `json:"location"`
	Address             Address  `json:"address"`
	RefDevice           string   `json:"refDevice"`
	Source              string   `json:"source"`
	Temperature         float64  `json:"temperature"`
	RelativeHumidity    float64  `json:"relativeHumidity"`
	Precipitation       float64  `json:"precipitation"`
	WindSpeed           float64  `json:"windSpeed"`
	WindDirection       float64  `json:"windDirection"`
	AtmosphericPressure float64  `json:"atmosphericPressure"`
}

type waterModel struct {
	Station
	base  float64 // mean level, m
	swing float64 // amplitude of the slow rise and fall, m
	phase float64 // radians
}

type weatherModel struct {
	Station
	tempBias float64
	rain     float64 // Ornstein–Uhlenbeck walk; it rains while it is above 1
	windDir  float64
}

// env holds the water and weather stations. They draw from their own random
// source, so adding them changes none of the air and traffic values a seed gives.
type env struct {
	rng     *rand.Rand
	water   []*waterModel
	weather []*weatherModel
}

// placeEnv places n water and m weather stations in wards of all.
func (s *Sim) placeEnv(nWater, nWeather int) error {
	s.env.rng = rand.New(rand.NewPCG(uint64(s.cfg.Seed), 0xa7e4)) //nolint:gosec // G404: a seeded, reproducible simulation, not a secret
	all := s.cfg.Units
	order := s.env.rng.Perm(len(all))
	pick := 0
	place := func(what string, i int) (units.Unit, [2]float64, error) {
		for try := 0; try < len(all); try++ {
			w := all[order[pick%len(order)]]
			pick++
			if p, ok := randomPointIn(s.env.rng, s.index, w); ok {
				return w, p, nil
			}
		}
		return units.Unit{}, [2]float64{}, fmt.Errorf("placing %s station %d: %w", what, i+1, ErrNoRoom)
	}
	for i := range nWater {
		w, p, err := place("water", i)
		if err != nil {
			return err
		}
		n := fmt.Sprintf("%02d", i+1)
		m := &waterModel{
			Station: Station{ID: "urn:ngsi-ld:Device:HN-TV-" + n, Name: "Trạm thủy văn HN-TV-" + n + " – " + w.NameVI,
				Ward: w.Code, WardName: w.NameVI, Point: p},
			base:  6.0 + 1.5*s.env.rng.Float64(),
			swing: 2.0 + 1.5*s.env.rng.Float64(),
			phase: 2 * math.Pi * s.env.rng.Float64(),
		}
		if i == 0 {
			// The first station rises past alarm II once a cycle, so the wall shows alarms.
			m.base, m.swing = 8.0, 3.0
		}
		s.env.water = append(s.env.water, m)
	}
	for i := range nWeather {
		w, p, err := place("weather", i)
		if err != nil {
			return err
		}
		n := fmt.Sprintf("%02d", i+1)
		s.env.weather = append(s.env.weather, &weatherModel{
			Station: Station{ID: "urn:ngsi-ld:Device:HN-KT-" + n, Name: "Trạm khí tượng HN-KT-" + n + " – " + w.NameVI,
				Ward: w.Code, WardName: w.NameVI, Point: p},
			tempBias: 0.6 * s.env.rng.NormFloat64(),
			rain:     s.env.rng.NormFloat64(),
			windDir:  360 * s.env.rng.Float64(),
		})
	}
	return nil
}

// waterPeriod is the period of the simulated rise and fall of the rivers.
const waterPeriod = 6 * time.Hour

// envRound adds the water and weather observations of one round.
func (s *Sim) envRound(r *Round, t time.Time, ts, stamp string, hour float64, month int, dtHours float64) {
	rng := s.env.rng
	cycle := 2 * math.Pi * float64(t.UnixMilli()%waterPeriod.Milliseconds()) / float64(waterPeriod.Milliseconds())
	for _, st := range s.env.water {
		level := st.base + st.swing*math.Sin(cycle+st.phase) + 0.02*rng.NormFloat64()
		r.Water = append(r.Water, WaterQualityObserved{
			ID:           "urn:ngsi-ld:WaterQualityObserved:" + strings.TrimPrefix(st.ID, "urn:ngsi-ld:Device:") + ":" + stamp,
			Type:         "WaterQualityObserved",
			Name:         st.Name,
			DateObserved: ts,
			Location:     Geometry{Type: "Point", Coordinates: st.Point},
			Address:      address(st.WardName),
			RefDevice:    st.ID,
			Source:       sourceURN,
			WaterLevel:   round2(level),
			AlarmLevels:  hanoiAlarmLevels,
			Flow:         math.Round(900 + 620*math.Max(level-2, 0)),
			Temperature:  round1(hanoiMonthlyTemp[month] - 1 + 0.2*rng.NormFloat64()),
			PH:           round1(7.2 + 0.2*rng.NormFloat64()),
			Turbidity:    math.Round(clamp(60+12*level+15*rng.NormFloat64(), 5, 1000)),
			O2:           round1(clamp(6.2-0.15*(level-6)+0.3*rng.NormFloat64(), 2, 12)),
		})
	}
	for _, st := range s.env.weather {
		const theta, sigma = 0.5, 0.6 // per hour
		st.rain += -theta*st.rain*dtHours + sigma*math.Sqrt(dtHours)*rng.NormFloat64()
		st.windDir = math.Mod(st.windDir+20*math.Sqrt(dtHours)*rng.NormFloat64()+360, 360)
		mean := hanoiMonthlyTemp[month] + st.tempBias
		temp := mean + 3.5*math.Cos(2*math.Pi*(hour-14.5)/24) + 0.3*rng.NormFloat64()
		rain := 0.0
		if st.rain > 1 {
			rain = (st.rain - 1) * 8 * dtHours // mm in the time since the last round
		}
		r.Weather = append(r.Weather, WeatherObserved{
			ID:                  "urn:ngsi-ld:WeatherObserved:" + strings.TrimPrefix(st.ID, "urn:ngsi-ld:Device:") + ":" + stamp,
			Type:                "WeatherObserved",
			Name:                st.Name,
			DateObserved:        ts,
			Location:            Geometry{Type: "Point", Coordinates: st.Point},
			Address:             address(st.WardName),
			RefDevice:           st.ID,
			Source:              sourceURN,
			Temperature:         round1(temp),
			RelativeHumidity:    round2(clamp(0.78-0.025*(temp-mean)+0.1*math.Max(st.rain, 0)+0.02*rng.NormFloat64(), 0.3, 1)),
			Precipitation:       round1(rain),
			WindSpeed:           round1(clamp(2.2+1.2*rng.NormFloat64(), 0, 25)),
			WindDirection:       math.Round(st.windDir),
			AtmosphericPressure: round1(1009 - 2.5*math.Cos(2*math.Pi*(hour-10)/12) + 0.3*rng.NormFloat64()),
		})
	}
}

// WaterStations lists the placed hydrological stations.
func (s *Sim) WaterStations() []Station {
	out := make([]Station, len(s.env.water))
	for i, st := range s.env.water {
		out[i] = st.Station
	}
	return out
}

// WeatherStations lists the placed weather stations.
func (s *Sim) WeatherStations() []Station {
	out := make([]Station, len(s.env.weather))
	for i, st := range s.env.weather {
		out[i] = st.Station
	}
	return out
}
