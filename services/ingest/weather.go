package ingest

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// weatherMeasures maps FIWARE WeatherObserved names onto the proto.
var weatherMeasures = map[string]measure[*iocv1.WeatherObserved]{
	"temperature":         {field: func(m *iocv1.WeatherObserved) **float64 { return &m.Temperature }, check: between(-90, 70)},
	"relativeHumidity":    {field: func(m *iocv1.WeatherObserved) **float64 { return &m.RelativeHumidity }, check: fraction},
	"precipitation":       {field: func(m *iocv1.WeatherObserved) **float64 { return &m.Precipitation }, check: nonNegative},
	"windSpeed":           {field: func(m *iocv1.WeatherObserved) **float64 { return &m.WindSpeed }, check: nonNegative},
	"windDirection":       {field: func(m *iocv1.WeatherObserved) **float64 { return &m.WindDirection }, check: between(-180, 360)},
	"atmosphericPressure": {field: func(m *iocv1.WeatherObserved) **float64 { return &m.AtmosphericPressure }, check: nonNegative},
}

// weatherTable indexes weatherMeasures by member name.
var weatherTable = newMeasureTable(weatherMeasures, nil, nil)

// parseWeather reads a FIWARE WeatherObserved in keyValues form.
func parseWeather(f fields, env parseEnv) (*parsed, *itemError) {
	h, ierr := readStation(f, env, "WeatherObserved")
	if ierr != nil {
		return nil, ierr
	}
	m := &iocv1.WeatherObserved{Id: h.eventID, EntityId: h.entity, ObservedAt: timestamppb.New(h.at), Name: h.name}
	other, ierr := readMeasures(f, m, &weatherTable)
	if ierr != nil {
		return nil, ierr
	}
	m.Other = other
	return h.parsed(shapePoint, m, &m.Location, &m.Origin)
}
