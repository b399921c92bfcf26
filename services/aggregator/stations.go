package aggregator

import (
	"fmt"
	"strings"
	"time"

	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// checkValues rejects values that are not finite numbers and names in other
// that cannot be stored; it returns other as a map for the extra column.
func checkValues(named map[string]*float64, other map[string]float64) (map[string]any, error) {
	for name, v := range named {
		if v != nil && !finite(*v) {
			return nil, fmt.Errorf("%s is %v; want a finite number", name, *v)
		}
	}
	extra := map[string]any{}
	for name, v := range other {
		if name == "" || strings.ContainsRune(name, 0) {
			return nil, fmt.Errorf("other has an empty name or one with a NUL byte")
		}
		if !finite(v) {
			return nil, fmt.Errorf("%s is %v; want a finite number", name, v)
		}
		if _, taken := named[name]; !taken {
			extra[name] = v
		}
	}
	return extra, nil
}

// WaterAlarm is the highest alarm level (báo động I, II, III) that level has
// reached: 0 when none, or when the level or the thresholds are unknown. A
// threshold the station lacks is skipped.
func WaterAlarm(level, l1, l2, l3 *float64) int16 {
	if level == nil {
		return 0
	}
	var alarm int16
	for i, l := range []*float64{l1, l2, l3} {
		if l != nil && *level >= *l {
			alarm = int16(i + 1)
		}
	}
	return alarm
}

func (d *decoded) decodeWater(data []byte, source string, now time.Time) error {
	m := &iocv1.WaterObserved{}
	c, loc, err := decodeStation(data, m, source, now)
	if err != nil {
		return err
	}
	extra, err := checkValues(map[string]*float64{
		"waterLevel": m.WaterLevel, "alarmLevel1": m.AlarmLevel_1, "alarmLevel2": m.AlarmLevel_2, "alarmLevel3": m.AlarmLevel_3,
		"flow": m.Flow, "temperature": m.Temperature, "pH": m.Ph, "conductivity": m.Conductivity,
		"turbidity": m.Turbidity, "O2": m.DissolvedOxygen,
	}, m.GetOther())
	if err != nil {
		return err
	}
	d.water = m
	d.waterRow = postgis.WaterRow{
		SourceID: c.source, EventID: m.GetId(), StationID: m.GetEntityId(), Name: m.GetName(),
		Province: d.province, UnitCode: d.unit, ObservedAt: c.observed, ReceivedAt: c.received, Location: loc,
		WaterLevel: m.WaterLevel, AlarmLevel1: m.AlarmLevel_1, AlarmLevel2: m.AlarmLevel_2, AlarmLevel3: m.AlarmLevel_3,
		WaterAlarm: WaterAlarm(m.WaterLevel, m.AlarmLevel_1, m.AlarmLevel_2, m.AlarmLevel_3),
		Flow:       m.Flow, Temperature: m.Temperature, PH: m.Ph, Conductivity: m.Conductivity, Turbidity: m.Turbidity,
		DissolvedOxygen: m.DissolvedOxygen, Extra: extra,
	}
	return nil
}

func (d *decoded) decodeWeather(data []byte, source string, now time.Time) error {
	m := &iocv1.WeatherObserved{}
	c, loc, err := decodeStation(data, m, source, now)
	if err != nil {
		return err
	}
	extra, err := checkValues(map[string]*float64{
		"temperature": m.Temperature, "relativeHumidity": m.RelativeHumidity, "precipitation": m.Precipitation,
		"windSpeed": m.WindSpeed, "windDirection": m.WindDirection, "atmosphericPressure": m.AtmosphericPressure,
	}, m.GetOther())
	if err != nil {
		return err
	}
	d.weather = m
	d.weatherRow = postgis.WeatherRow{
		SourceID: c.source, EventID: m.GetId(), StationID: m.GetEntityId(), Name: m.GetName(),
		Province: d.province, UnitCode: d.unit, ObservedAt: c.observed, ReceivedAt: c.received, Location: loc,
		Temperature: m.Temperature, RelativeHumidity: m.RelativeHumidity, Precipitation: m.Precipitation,
		WindSpeed: m.WindSpeed, WindDirection: m.WindDirection, AtmosphericPressure: m.AtmosphericPressure, Extra: extra,
	}
	return nil
}
