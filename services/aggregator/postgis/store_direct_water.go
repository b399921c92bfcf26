package postgis

import (
	"strconv"

	"github.com/jackc/pgx/v5"
)

// waterColumns are the columns of water_observation a batch writes.
var waterColumns = []string{
	"source_id", "event_id", "observed_at", "received_at", "station_id", "province", "unit_code",
	"location", "water_level", "alarm_level_1", "alarm_level_2", "alarm_level_3", "water_alarm", "flow",
	"temperature", "ph", "conductivity", "turbidity", "dissolved_oxygen", "extra",
}

// waterDirect writes water rows straight into water_observation, then the
// state of each station (queueWaterStates).
var waterDirect = &direct{
	table:   "water_observation",
	copySQL: copySQL("water_observation", waterColumns),
	encode: func(c *copyRows, b Batch, i int) error {
		r := &b.Water[i]
		c.head(len(waterColumns), r.SourceID, r.EventID, r.ObservedAt, r.ReceivedAt, r.StationID, r.Province, r.UnitCode)
		if err := c.point(r.Location); err != nil {
			return err
		}
		for _, v := range [...]*float64{r.WaterLevel, r.AlarmLevel1, r.AlarmLevel2, r.AlarmLevel3} {
			c.float8(v)
		}
		c.int2(r.WaterAlarm)
		for _, v := range [...]*float64{r.Flow, r.Temperature, r.PH, r.Conductivity, r.Turbidity, r.DissolvedOxygen} {
			c.float8(v)
		}
		return c.extra(r.Extra)
	},
	queue: queueWaterStates,
}

// queueWaterStates is queueAirStates for the stations of b.Water
// (appendWaterValues).
func queueWaterStates(pb *pgx.Batch, b Batch, res *Result) error {
	return queueStates(pb, b.Water, (*WaterRow).entity, (*WaterRow).ewkb, appendWaterValues,
		sqlUpsertSensorWaterRowsOne, sqlUpsertSensorWaterRows, &res.Water.Changed)
}

func (r *WaterRow) entity() entityRow {
	return entityRow{r.StationID, r.Name, r.Province, r.UnitCode, r.SourceID, r.EventID, r.ObservedAt}
}

func (r *WaterRow) ewkb() ([]byte, error) { return ewkbOf(r.Location) }

// appendWaterValues appends to buf the values of r's state as a JSON object,
// the text of the jsonb sqlUpsertSensorWater builds from the same row.
func appendWaterValues(buf []byte, r *WaterRow) ([]byte, error) {
	j := openStateJSON(buf)
	j.float("waterLevel", r.WaterLevel)
	j.float("alarmLevel1", r.AlarmLevel1)
	j.float("alarmLevel2", r.AlarmLevel2)
	j.float("alarmLevel3", r.AlarmLevel3)
	j.member("waterAlarm")
	j.buf = strconv.AppendInt(j.buf, int64(r.WaterAlarm), 10)
	j.float("flow", r.Flow)
	j.float("temperature", r.Temperature)
	j.float("pH", r.PH)
	j.float("conductivity", r.Conductivity)
	j.float("turbidity", r.Turbidity)
	j.float("O2", r.DissolvedOxygen)
	if err := j.extra(r.Extra); err != nil {
		return nil, err
	}
	return j.close(), nil
}

// weatherColumns are the columns of weather_observation a batch writes.
var weatherColumns = []string{
	"source_id", "event_id", "observed_at", "received_at", "station_id", "province", "unit_code",
	"location", "temperature", "relative_humidity", "precipitation", "wind_speed", "wind_direction",
	"atmospheric_pressure", "extra",
}

// weatherDirect writes weather rows straight into weather_observation, then
// the state of each station (queueWeatherStates).
var weatherDirect = &direct{
	table:   "weather_observation",
	copySQL: copySQL("weather_observation", weatherColumns),
	encode: func(c *copyRows, b Batch, i int) error {
		r := &b.Weather[i]
		c.head(len(weatherColumns), r.SourceID, r.EventID, r.ObservedAt, r.ReceivedAt, r.StationID, r.Province, r.UnitCode)
		if err := c.point(r.Location); err != nil {
			return err
		}
		for _, v := range [...]*float64{r.Temperature, r.RelativeHumidity, r.Precipitation, r.WindSpeed, r.WindDirection, r.AtmosphericPressure} {
			c.float8(v)
		}
		return c.extra(r.Extra)
	},
	queue: queueWeatherStates,
}

// queueWeatherStates is queueAirStates for the stations of b.Weather
// (appendWeatherValues).
func queueWeatherStates(pb *pgx.Batch, b Batch, res *Result) error {
	return queueStates(pb, b.Weather, (*WeatherRow).entity, (*WeatherRow).ewkb, appendWeatherValues,
		sqlUpsertSensorWeatherRowsOne, sqlUpsertSensorWeatherRows, &res.Weather.Changed)
}

func (r *WeatherRow) entity() entityRow {
	return entityRow{r.StationID, r.Name, r.Province, r.UnitCode, r.SourceID, r.EventID, r.ObservedAt}
}

func (r *WeatherRow) ewkb() ([]byte, error) { return ewkbOf(r.Location) }

// appendWeatherValues appends to buf the values of r's state as a JSON
// object, the text of the jsonb sqlUpsertSensorWeather builds from the same
// row.
func appendWeatherValues(buf []byte, r *WeatherRow) ([]byte, error) {
	j := openStateJSON(buf)
	j.float("temperature", r.Temperature)
	j.float("relativeHumidity", r.RelativeHumidity)
	j.float("precipitation", r.Precipitation)
	j.float("windSpeed", r.WindSpeed)
	j.float("windDirection", r.WindDirection)
	j.float("atmosphericPressure", r.AtmosphericPressure)
	if err := j.extra(r.Extra); err != nil {
		return nil, err
	}
	return j.close(), nil
}
