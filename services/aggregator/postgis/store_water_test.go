package postgis_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/twpayne/go-geom"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

func waterRow(station string, at time.Time, level float64, alarm int16) postgis.WaterRow {
	return postgis.WaterRow{
		SourceID: "src-w", EventID: station + "@" + at.Format(time.RFC3339), StationID: station, Name: "Trạm " + station,
		Province: "01", UnitCode: "00070", ObservedAt: at, ReceivedAt: at,
		Location:   geom.NewPointFlat(geom.XY, []float64{105.86, 21.03}),
		WaterLevel: f64(level), AlarmLevel1: f64(9.5), AlarmLevel2: f64(10.5), AlarmLevel3: f64(11.5), WaterAlarm: alarm,
		PH: f64(7.4), Extra: map[string]any{"NO3": 0.01},
	}
}

func weatherRow(station string, at time.Time, temp float64) postgis.WeatherRow {
	return postgis.WeatherRow{
		SourceID: "src-x", EventID: station + "@" + at.Format(time.RFC3339), StationID: station,
		Province: "01", UnitCode: "00070", ObservedAt: at, ReceivedAt: at,
		Location:    geom.NewPointFlat(geom.XY, []float64{105.84, 21.02}),
		Temperature: f64(temp), RelativeHumidity: f64(0.8), Precipitation: f64(2.5),
		Extra: map[string]any{"illuminance": 1000.0},
	}
}

// TestWriteBatchStations stores water, weather and air rows with their AQI in
// one batch, again as a redelivery, and reads the air history back.
func TestWriteBatchStations(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	s := postgis.NewStore(pool)
	ctx := context.Background()
	aqi := int32(87)
	a0 := airRow("air-1", t0, 30)
	a0.AQI = postgis.AQI{Value: &aqi, Band: 2, Dominant: "pm25", JSON: []byte(`{"hourly":87,"band":2}`)}
	a1 := airRow("air-1", t0.Add(-time.Hour), 20) // no AQI computed
	b := postgis.Batch{
		Air:     []postgis.AirRow{a1, a0},
		Water:   []postgis.WaterRow{waterRow("hydro-1", t0, 9.6, 1), waterRow("hydro-1", t0.Add(-time.Hour), 9.2, 0), waterRow("hydro-2", t0, 12, 3)},
		Weather: []postgis.WeatherRow{weatherRow("wx-1", t0, 31.5), weatherRow("wx-1", t0.AddDate(0, 1, 0), 25)},
	}
	res, err := s.WriteBatch(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if res.Water.New != 3 || res.Weather.New != 2 || res.Air.New != 2 || len(res.Air.Inserted) != 2 {
		t.Errorf("got new water %d, weather %d, air %d (inserted %v); want 3, 2, 2 (both)", res.Water.New, res.Weather.New, res.Air.New, res.Air.Inserted)
	}
	if got := changedIndexes(res.Water.Changed); len(got) != 2 || got[0] != 0 || got[1] != 2 {
		t.Errorf("got water changed %v; want [0 2] (the latest of each station)", got)
	}
	if got := changedIndexes(res.Weather.Changed); len(got) != 1 || got[0] != 1 {
		t.Errorf("got weather changed %v; want [1] (next month's)", got)
	}
	if n := count(t, pool, `SELECT count(*) FROM water_observation WHERE water_alarm = 3 AND alarm_level_3 = 11.5`); n != 1 {
		t.Errorf("got %d water rows at alarm III; want 1", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM weather_observation_p202612`); n != 1 {
		t.Errorf("got %d rows in next month's weather partition; want 1", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM air_observation WHERE aqi = 87 AND aqi_band = 2 AND aqi_dominant = 'pm25'`); n != 1 {
		t.Errorf("got %d air rows with AQI 87 band 2 pm25; want 1", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM air_observation WHERE aqi IS NULL AND aqi_band IS NULL AND aqi_dominant IS NULL`); n != 1 {
		t.Errorf("got %d air rows without AQI; want 1", n)
	}
	var wv, xv, av []byte
	if err := pool.QueryRow(ctx, `SELECT last_values FROM sensor WHERE kind = 'water' AND id = 'hydro-1'`).Scan(&wv); err != nil {
		t.Fatal(err)
	}
	var water map[string]any
	if err := json.Unmarshal(wv, &water); err != nil {
		t.Fatal(err)
	}
	if water["waterLevel"] != 9.6 || water["waterAlarm"] != 1.0 || water["pH"] != 7.4 || water["NO3"] != 0.01 || water["alarmLevel2"] != 10.5 {
		t.Errorf("got water last_values %s; want waterLevel 9.6, waterAlarm 1, pH 7.4, NO3 0.01, alarmLevel2 10.5", wv)
	}
	if err := pool.QueryRow(ctx, `SELECT last_values FROM sensor WHERE kind = 'weather' AND id = 'wx-1'`).Scan(&xv); err != nil {
		t.Fatal(err)
	}
	var wx map[string]any
	if err := json.Unmarshal(xv, &wx); err != nil {
		t.Fatal(err)
	}
	if wx["temperature"] != 25.0 || wx["relativeHumidity"] != 0.8 || wx["illuminance"] != 1000.0 {
		t.Errorf("got weather last_values %s; want temperature 25, relativeHumidity 0.8, illuminance 1000", xv)
	}
	if err := pool.QueryRow(ctx, `SELECT last_values->'aqi' FROM sensor WHERE kind = 'air' AND id = 'air-1'`).Scan(&av); err != nil {
		t.Fatal(err)
	}
	if string(av) != `{"band": 2, "hourly": 87}` {
		t.Errorf("got air last_values.aqi %s; want {\"band\": 2, \"hourly\": 87}", av)
	}

	again, err := s.WriteBatch(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if again.Water.Duplicates != 3 || again.Weather.Duplicates != 2 || again.Air.Duplicates != 2 || len(again.Air.Inserted) != 0 {
		t.Errorf("redelivery: got duplicates water %d, weather %d, air %d, inserted %v; want 3, 2, 2 and none",
			again.Water.Duplicates, again.Weather.Duplicates, again.Air.Duplicates, again.Air.Inserted)
	}
	if n := count(t, pool, `SELECT count(*) FROM sensor WHERE kind IN ('water', 'weather')`); n != 3 {
		t.Errorf("got %d water and weather sensors; want 3", n)
	}

	levels, err := s.WaterAlarmLevels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l := levels[postgis.StationRef{Province: "01", ID: "hydro-1"}]; len(levels) != 2 || l[0] == nil || *l[0] != 9.5 || *l[2] != 11.5 {
		t.Errorf("got alarm levels %v; want hydro-1 and hydro-2 at 9.5 / 10.5 / 11.5", levels)
	}

	hist, err := s.AirHistory(ctx, t0.Add(-90*time.Minute), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || !hist[0].ObservedAt.Equal(t0.Add(-time.Hour)) || *hist[1].PM25 != 30 || hist[1].StationID != "air-1" || *hist[1].NO2 != 12 {
		t.Errorf("got history %+v; want the two air-1 rows, oldest first", hist)
	}
	if hist, err := s.AirHistory(ctx, t0.Add(-90*time.Minute), []string{"other"}); err != nil || len(hist) != 0 {
		t.Errorf("history of another station: got %d rows, %v; want none", len(hist), err)
	}
	if hist, err := s.AirHistory(ctx, t0.Add(-30*time.Minute), []string{"air-1"}); err != nil || len(hist) != 1 {
		t.Errorf("history of air-1 in the last half hour: got %d rows, %v; want 1", len(hist), err)
	}
}
