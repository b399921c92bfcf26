package gateway

import (
	"math"
	"sort"

	"github.com/twpayne/go-geom"

	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// aqiJSON is properties.aqi of an air station: its VN_AQI as the aggregator
// computed it (Decision 1459/QĐ-TCMT), or why there is none.
type aqiJSON struct {
	Hourly     *int32             `json:"hourly,omitempty"`
	Dominant   string             `json:"dominant,omitempty"`
	Band       int32              `json:"band,omitempty"`
	BandVI     string             `json:"bandVi,omitempty"`
	BandEN     string             `json:"bandEn,omitempty"`
	Color      string             `json:"color,omitempty"`
	Hour       string             `json:"hour,omitempty"`
	Reason     string             `json:"reason,omitempty"`
	Daily      *int32             `json:"daily,omitempty"`
	SubIndices map[string]float64 `json:"subIndices,omitempty"`
}

func aqiProps(x *iocv1.AirQualityIndex) *aqiJSON {
	if x == nil {
		return nil
	}
	out := &aqiJSON{Hourly: x.Hourly, Dominant: x.GetDominant(), Band: x.GetBand(), BandVI: x.GetBandVi(),
		BandEN: x.GetBandEn(), Color: x.GetColor(), Hour: rfc3339(x.GetHour()), Reason: x.GetReason(), Daily: x.Daily}
	for k, v := range x.GetSubIndices() {
		if k != "" && finite(v) {
			if out.SubIndices == nil {
				out.SubIndices = map[string]float64{}
			}
			out.SubIndices[k] = v
		}
	}
	return out
}

// putOther flattens other into v unless a name clashes with a named value.
func putOther(v map[string]any, other map[string]float64) {
	keys := make([]string, 0, len(other))
	for k := range other {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, clash := v[k]; !clash && k != "" && !math.IsNaN(other[k]) && !math.IsInf(other[k], 0) {
			v[k] = other[k]
		}
	}
}

// waterValues are the present values of a water observation by their FIWARE
// WaterQualityObserved names, and iochub's flood-watch names.
func waterValues(w *iocv1.WaterObserved) map[string]any {
	v := make(map[string]any, 8)
	put := func(name string, p *float64) {
		if p != nil && finite(*p) {
			v[name] = *p
		}
	}
	put("waterLevel", w.WaterLevel)
	put("alarmLevel1", w.AlarmLevel_1)
	put("alarmLevel2", w.AlarmLevel_2)
	put("alarmLevel3", w.AlarmLevel_3)
	put("flow", w.Flow)
	put("temperature", w.Temperature)
	put("pH", w.Ph)
	put("conductivity", w.Conductivity)
	put("turbidity", w.Turbidity)
	put("O2", w.DissolvedOxygen)
	putOther(v, w.GetOther())
	return v
}

// weatherValues are the present values of a weather observation by their FIWARE WeatherObserved names.
func weatherValues(w *iocv1.WeatherObserved) map[string]any {
	v := make(map[string]any, 8)
	put := func(name string, p *float64) {
		if p != nil && finite(*p) {
			v[name] = *p
		}
	}
	put("temperature", w.Temperature)
	put("relativeHumidity", w.RelativeHumidity)
	put("precipitation", w.Precipitation)
	put("windSpeed", w.WindSpeed)
	put("windDirection", w.WindDirection)
	put("atmosphericPressure", w.AtmosphericPressure)
	putOther(v, w.GetOther())
	return v
}

// encodeWater is the Feature of a water station: its values, the alarm level
// it reached in properties.waterAlarm, its Point.
func encodeWater(st *iocv1.EntityState, entity string) (props kindProps, g geom.T, err error) {
	w := st.GetWater()
	props.Name = w.GetName()
	props.Observation = &observationJSON{ID: w.GetId(), Time: rfc3339(w.GetObservedAt()), Values: waterValues(w)}
	alarm := st.GetWaterAlarm()
	props.WaterAlarm = &alarm
	g, err = decodeWKB(w.GetLocation().GetWkb())
	return props, g, err
}

// encodeWeather is the Feature of a weather station: its values and Point.
func encodeWeather(st *iocv1.EntityState, entity string) (props kindProps, g geom.T, err error) {
	w := st.GetWeather()
	props.Name = w.GetName()
	props.Observation = &observationJSON{ID: w.GetId(), Time: rfc3339(w.GetObservedAt()), Values: weatherValues(w)}
	g, err = decodeWKB(w.GetLocation().GetWkb())
	return props, g, err
}
