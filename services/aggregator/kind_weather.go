package aggregator

import (
	"time"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

func (d *decoded) decodeWeather(data []byte, source string, now time.Time) error {
	m := &iocv1.WeatherObserved{}
	c, loc, err := decodeStation(data, m, source, now)
	if err != nil {
		return err
	}
	extra, err := checkValues([]namedValue{
		{"temperature", m.Temperature}, {"relativeHumidity", m.RelativeHumidity}, {"precipitation", m.Precipitation},
		{"windSpeed", m.WindSpeed}, {"windDirection", m.WindDirection}, {"atmosphericPressure", m.AtmosphericPressure},
	}, m.GetOther())
	if err != nil {
		return err
	}
	d.msg = m
	d.row = postgis.WeatherRow{
		SourceID: c.source, EventID: m.GetId(), StationID: m.GetEntityId(), Name: m.GetName(),
		Province: d.province, UnitCode: d.unit, ObservedAt: c.observed, ReceivedAt: c.received, Location: loc,
		Temperature: m.Temperature, RelativeHumidity: m.RelativeHumidity, Precipitation: m.Precipitation,
		WindSpeed: m.WindSpeed, WindDirection: m.WindDirection, AtmosphericPressure: m.AtmosphericPressure, Extra: extra,
	}
	return nil
}

// weatherKind is the aggregator's side of weather: rows of
// weather_observation and sensor.
var weatherKind = &kindOps{
	name:    subjects.KindWeather,
	decode:  (*decoded).decodeWeather,
	add:     func(b *postgis.Batch, row any) { b.Weather = append(b.Weather, row.(postgis.WeatherRow)) },
	changed: func(res postgis.Result) []postgis.Changed { return res.Weather.Changed },
	state: func(d *decoded, _ postgis.Changed, st *iocv1.EntityState, ev *ce.Event) {
		r, _ := d.row.(postgis.WeatherRow)
		m, _ := d.msg.(*iocv1.WeatherObserved)
		st.EntityId = r.StationID
		st.Latest = &iocv1.EntityState_Weather{Weather: m}
		ev.ID, ev.Time = r.EventID, r.ObservedAt
	},
	result: func(res postgis.Result) postgis.KindResult { return res.Weather },
}
