package gateway

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/twpayne/go-geom"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

func TestEncodeStationFeatures(t *testing.T) {
	pt := mustWKB(t, geom.NewPoint(geom.XY).MustSetCoords(geom.Coord{105.8612345, 21.04}))
	air := airState(t, "st-1", 0, 42)
	air.Aqi = &iocv1.AirQualityIndex{Hourly: proto.Int32(87), Dominant: "pm25", Band: 2, BandVi: "Trung bình", BandEn: "Moderate",
		Color: "#FFFF00", Hour: timestamppb.New(t0), Daily: proto.Int32(75), SubIndices: map[string]float64{"pm25": 86.6, "no2": 12}}
	gap := airState(t, "st-2", 0, 42)
	gap.Aqi = &iocv1.AirQualityIndex{Hour: timestamppb.New(t0), Reason: "AQI could not be computed: needs a PM2.5 or PM10 sub-index"}
	tests := []struct {
		name  string
		st    *iocv1.EntityState
		props map[string]any // expected members of properties (others ignored)
	}{
		{"air with its AQI", air, map[string]any{"aqi": map[string]any{"hourly": 87.0, "dominant": "pm25", "band": 2.0,
			"bandVi": "Trung bình", "bandEn": "Moderate", "color": "#FFFF00", "hour": "2026-11-21T08:00:00Z", "daily": 75.0,
			"subIndices": map[string]any{"pm25": 86.6, "no2": 12.0}}}},
		{"air without an AQI, and why", gap, map[string]any{"aqi": map[string]any{"hour": "2026-11-21T08:00:00Z",
			"reason": "AQI could not be computed: needs a PM2.5 or PM10 sub-index"}}},
		{"water at alarm II", &iocv1.EntityState{Layer: subjects.KindWater, EntityId: "hydro-1", Province: "01", Unit: "00070", WaterAlarm: 2,
			Latest: &iocv1.EntityState_Water{Water: &iocv1.WaterObserved{Id: "h@1", Name: "Trạm Long Biên", ObservedAt: timestamppb.New(t0), Location: pt,
				WaterLevel: proto.Float64(10.8), AlarmLevel_1: proto.Float64(9.5), AlarmLevel_2: proto.Float64(10.5), AlarmLevel_3: proto.Float64(11.5),
				Ph: proto.Float64(7.2), DissolvedOxygen: proto.Float64(6), Other: map[string]float64{"NO3": 0.01, "pH": 1}}}},
			map[string]any{"waterAlarm": 2.0, "name": "Trạm Long Biên", "observation": map[string]any{"id": "h@1", "time": "2026-11-21T08:00:00Z",
				"values": map[string]any{"waterLevel": 10.8, "alarmLevel1": 9.5, "alarmLevel2": 10.5, "alarmLevel3": 11.5, "pH": 7.2, "O2": 6.0, "NO3": 0.01}}}},
		{"water below alarm I says 0", &iocv1.EntityState{Layer: subjects.KindWater, EntityId: "hydro-2", Province: "01",
			Latest: &iocv1.EntityState_Water{Water: &iocv1.WaterObserved{Id: "h@2", Location: pt, WaterLevel: proto.Float64(3)}}},
			map[string]any{"waterAlarm": 0.0}},
		{"weather", &iocv1.EntityState{Layer: subjects.KindWeather, EntityId: "wx-1", Province: "01",
			Latest: &iocv1.EntityState_Weather{Weather: &iocv1.WeatherObserved{Id: "w@1", Location: pt, Temperature: proto.Float64(31.5),
				RelativeHumidity: proto.Float64(0.8), Precipitation: proto.Float64(0), WindSpeed: proto.Float64(2), WindDirection: proto.Float64(135),
				AtmosphericPressure: proto.Float64(1008), Other: map[string]float64{"illuminance": 1000}}}},
			map[string]any{"observation": map[string]any{"id": "w@1", "values": map[string]any{"temperature": 31.5, "relativeHumidity": 0.8,
				"precipitation": 0.0, "windSpeed": 2.0, "windDirection": 135.0, "atmosphericPressure": 1008.0, "illuminance": 1000.0}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := encodeFeature(tt.st, "")
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Geometry   map[string]any `json:"geometry"`
				Properties map[string]any `json:"properties"`
			}
			if err := json.Unmarshal(f.json, &got); err != nil {
				t.Fatalf("%v: %s", err, f.json)
			}
			if got.Geometry["type"] != "Point" {
				t.Errorf("got geometry %v; want a Point", got.Geometry)
			}
			for k, want := range tt.props {
				if !reflect.DeepEqual(got.Properties[k], want) {
					t.Errorf("properties.%s: got %v; want %v", k, got.Properties[k], want)
				}
			}
			if _, has := got.Properties["waterAlarm"]; has != (tt.st.GetLayer() == subjects.KindWater) {
				t.Errorf("waterAlarm present %v on layer %s; want it on water only", has, tt.st.GetLayer())
			}
			if _, has := got.Properties["aqi"]; has != (tt.st.GetAqi() != nil) {
				t.Errorf("aqi present %v; want it where the state has one", has)
			}
		})
	}
}

// FuzzEncodeStationFeature feeds arbitrary water, weather and air-with-AQI
// STATE bodies to the encoder: no panic, valid JSON, and waterAlarm on the
// water layer only.
func FuzzEncodeStationFeature(f *testing.F) {
	pt := mustWKB(f, geom.NewPoint(geom.XY).MustSetCoords(geom.Coord{105.86, 21.04}))
	air := airState(f, "a", 0, 1)
	air.Aqi = &iocv1.AirQualityIndex{Hourly: proto.Int32(87), Band: 2, Color: "#FFFF00", SubIndices: map[string]float64{"pm25": 86.6}}
	for _, st := range []*iocv1.EntityState{
		air,
		{Layer: subjects.KindWater, EntityId: "h", Province: "01", WaterAlarm: 2, Latest: &iocv1.EntityState_Water{Water: &iocv1.WaterObserved{
			Id: "h@1", Location: pt, WaterLevel: proto.Float64(10.8), AlarmLevel_2: proto.Float64(10.5), Other: map[string]float64{"NO3": 1}}}},
		{Layer: subjects.KindWeather, EntityId: "w", Province: "01", Latest: &iocv1.EntityState_Weather{Weather: &iocv1.WeatherObserved{
			Id: "w@1", Location: pt, Temperature: proto.Float64(31), Other: map[string]float64{"illuminance": 1000}}}},
	} {
		b, err := proto.Marshal(st)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, subjects.State("01", st.Layer, st.EntityId))
	}
	f.Fuzz(func(t *testing.T, body []byte, subject string) {
		var st iocv1.EntityState
		if err := proto.Unmarshal(body, &st); err != nil {
			return
		}
		feat, err := encodeFeature(&st, subject)
		if err != nil {
			return
		}
		var got struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal(feat.json, &got); err != nil {
			t.Fatalf("invalid JSON: %v: %s", err, feat.json)
		}
		_, water := st.GetLatest().(*iocv1.EntityState_Water)
		if _, has := got.Properties["waterAlarm"]; has != water {
			t.Fatalf("waterAlarm present %v for %T", has, st.GetLatest())
		}
	})
}
