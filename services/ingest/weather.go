package ingest

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// weatherMeasures maps FIWARE WeatherObserved names onto the proto.
func weatherMeasures(m *iocv1.WeatherObserved) map[string]measure {
	set := func(dst **float64) func(float64) { return func(v float64) { *dst = &v } }
	return map[string]measure{
		"temperature":         {dst: set(&m.Temperature), check: between(-90, 70)},
		"relativeHumidity":    {dst: set(&m.RelativeHumidity), check: fraction},
		"precipitation":       {dst: set(&m.Precipitation), check: nonNegative},
		"windSpeed":           {dst: set(&m.WindSpeed), check: nonNegative},
		"windDirection":       {dst: set(&m.WindDirection), check: between(-180, 360)},
		"atmosphericPressure": {dst: set(&m.AtmosphericPressure), check: nonNegative},
	}
}

// parseWeather reads a FIWARE WeatherObserved in keyValues form.
func parseWeather(f fields, env parseEnv) (*parsed, *itemError) {
	h, ierr := readStation(f, env, "WeatherObserved")
	if ierr != nil {
		return nil, ierr
	}
	m := &iocv1.WeatherObserved{Id: h.eventID, EntityId: h.entity, ObservedAt: timestamppb.New(h.at), Name: h.name}
	other, ierr := readMeasures(f, weatherMeasures(m), nil, nil)
	if ierr != nil {
		return nil, ierr
	}
	m.Other = other
	return h.parsed(shapePoint, m, &m.Location, &m.Origin)
}
