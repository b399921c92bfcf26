package gateway

import (
	"sort"

	"github.com/twpayne/go-geom"

	"github.com/iochub/iochub/internal/aqi"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// encodeAir is the Feature of an air station: its values, its VN_AQI in
// properties.aqi, its Point.
func encodeAir(st *iocv1.EntityState, entity string) (props kindProps, g geom.T, err error) {
	a := st.GetAir()
	props.Name = a.GetName()
	props.Observation = &observationJSON{ID: a.GetId(), Time: rfc3339(a.GetObservedAt()), Values: airValues(a)}
	props.AQI = aqi.JSONOf(st.GetAqi())
	g, err = decodeWKB(a.GetLocation().GetWkb())
	return props, g, err
}

// airValues are the present values of an air observation by their FIWARE
// names; "other" entries are flattened in unless they clash with a named one.
func airValues(a *iocv1.AirQualityObserved) map[string]any {
	v := make(map[string]any, 8)
	put := func(name string, p *float64) {
		if p != nil && finite(*p) {
			v[name] = *p
		}
	}
	put("pm25", a.Pm25)
	put("pm10", a.Pm10)
	put("pm1", a.Pm1)
	put("no2", a.No2)
	put("o3", a.O3)
	put("co", a.Co)
	put("so2", a.So2)
	put("nh3", a.Nh3)
	put("no", a.No)
	put("nox", a.Nox)
	put("temperature", a.Temperature)
	put("relativeHumidity", a.RelativeHumidity)
	put("windSpeed", a.WindSpeed)
	put("windDirection", a.WindDirection)
	keys := make([]string, 0, len(a.GetOther()))
	for k := range a.GetOther() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, clash := v[k]; !clash && k != "" && finite(a.GetOther()[k]) {
			v[k] = a.GetOther()[k]
		}
	}
	return v
}
