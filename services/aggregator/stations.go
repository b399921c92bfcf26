package aggregator

import (
	"fmt"
	"strings"
	"time"

	"github.com/twpayne/go-geom"
	"google.golang.org/protobuf/proto"

	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// decodeStationPoint decodes the optional Point of a station's observation.
func decodeStationPoint(g *iocv1.Geometry) (*geom.Point, error) {
	if g == nil || len(g.GetWkb()) == 0 {
		return nil, nil
	}
	t, err := decodeWKB(g.GetWkb())
	if err != nil {
		return nil, fmt.Errorf("location: %w", err)
	}
	p, ok := t.(*geom.Point)
	if !ok {
		return nil, fmt.Errorf("location is a %T; want a Point", t)
	}
	return p, nil
}

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
	if err := proto.Unmarshal(data, m); err != nil {
		return fmt.Errorf("unmarshalling WaterObserved: %w", err)
	}
	src, received, err := origin(m.GetOrigin(), source, now)
	if err != nil {
		return err
	}
	observed, err := required("observed_at", m.GetObservedAt())
	if err != nil {
		return err
	}
	if err := checkText(map[string]string{"id": m.GetId(), "entity_id": m.GetEntityId()}, m.GetName()); err != nil {
		return err
	}
	loc, err := decodeStationPoint(m.GetLocation())
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
		SourceID: src, EventID: m.GetId(), StationID: m.GetEntityId(), Name: m.GetName(),
		Province: d.province, UnitCode: d.unit, ObservedAt: observed, ReceivedAt: received, Location: loc,
		WaterLevel: m.WaterLevel, AlarmLevel1: m.AlarmLevel_1, AlarmLevel2: m.AlarmLevel_2, AlarmLevel3: m.AlarmLevel_3,
		WaterAlarm: WaterAlarm(m.WaterLevel, m.AlarmLevel_1, m.AlarmLevel_2, m.AlarmLevel_3),
		Flow:       m.Flow, Temperature: m.Temperature, PH: m.Ph, Conductivity: m.Conductivity, Turbidity: m.Turbidity,
		DissolvedOxygen: m.DissolvedOxygen, Extra: extra,
	}
	return nil
}

func (d *decoded) decodeWeather(data []byte, source string, now time.Time) error {
	m := &iocv1.WeatherObserved{}
	if err := proto.Unmarshal(data, m); err != nil {
		return fmt.Errorf("unmarshalling WeatherObserved: %w", err)
	}
	src, received, err := origin(m.GetOrigin(), source, now)
	if err != nil {
		return err
	}
	observed, err := required("observed_at", m.GetObservedAt())
	if err != nil {
		return err
	}
	if err := checkText(map[string]string{"id": m.GetId(), "entity_id": m.GetEntityId()}, m.GetName()); err != nil {
		return err
	}
	loc, err := decodeStationPoint(m.GetLocation())
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
		SourceID: src, EventID: m.GetId(), StationID: m.GetEntityId(), Name: m.GetName(),
		Province: d.province, UnitCode: d.unit, ObservedAt: observed, ReceivedAt: received, Location: loc,
		Temperature: m.Temperature, RelativeHumidity: m.RelativeHumidity, Precipitation: m.Precipitation,
		WindSpeed: m.WindSpeed, WindDirection: m.WindDirection, AtmosphericPressure: m.AtmosphericPressure, Extra: extra,
	}
	return nil
}
