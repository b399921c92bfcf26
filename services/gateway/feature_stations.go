package gateway

import (
	"math"
	"sort"

	"github.com/twpayne/go-geom"

	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

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
