package ingest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/ingest"
)

// water returns a minimal valid water-level observation at p, with the
// station's alarm levels.
func water(id string, p [2]float64) map[string]any {
	return map[string]any{
		"id": id, "type": "WaterQualityObserved", "dateObserved": "2025-07-01T08:00:00+07:00",
		"location":   map[string]any{"type": "Point", "coordinates": []float64{p[0], p[1]}},
		"waterLevel": 9.6, "alarmLevel1": 9.5, "alarmLevel2": 10.5, "alarmLevel3": 11.5, "refDevice": "hydro-" + id,
	}
}

// weather returns a minimal valid WeatherObserved at p.
func weather(id string, p [2]float64) map[string]any {
	return map[string]any{
		"id": id, "type": "WeatherObserved", "dateObserved": "2025-07-01T08:00:00+07:00",
		"location":    map[string]any{"type": "Point", "coordinates": []float64{p[0], p[1]}},
		"temperature": 31.5, "relativeHumidity": 0.78, "precipitation": 12.0, "refDevice": "wx-" + id,
	}
}

// TestWaterWeatherFIWARE posts the FIWARE WaterQualityObserved and
// WeatherObserved examples, moved to Hà Nội and otherwise unchanged, and
// reads the events back from FEEDS.
func TestWaterWeatherFIWARE(t *testing.T) {
	e := newEnv(t, ingest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := e.js.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, kind    string
		body          []byte
		event, entity string
		check         func(t *testing.T, data []byte)
	}{
		{"WaterQualityObserved example", "water", arr(t, moveTo(fixture(t, "WaterQualityObserved.example.json"), hoanKiem)),
			"waterqualityobserved:Sevilla:D1@2017-01-31T06:45:00Z", "waterqualityobserved:Sevilla:D1",
			func(t *testing.T, data []byte) {
				var m iocv1.WaterObserved
				if err := proto.Unmarshal(data, &m); err != nil {
					t.Fatal(err)
				}
				if m.GetTemperature() != 24.4 || m.GetConductivity() != 0.005 || m.GetPh() != 7.4 || m.GetFlow() != 127.53 {
					t.Errorf("got %v; want temperature 24.4, conductivity 0.005, pH 7.4, flow 127.53", &m)
				}
				if m.Other["NO3"] != 0.01 || m.Other["sulphate"] != 143.3 || m.Other["concentration"] != 20 || len(m.Other) != 33 {
					t.Errorf("got other %v (%d); want NO3 0.01, sulphate 143.3, concentration 20 among 33", m.Other, len(m.Other))
				}
				if m.WaterLevel != nil || m.AlarmLevel_1 != nil {
					t.Errorf("got water level %v, alarm I %v; want none (the example has none)", m.WaterLevel, m.AlarmLevel_1)
				}
				if m.Origin.GetUnit() != "00070" || m.Location == nil {
					t.Errorf("got origin %v, location %v; want unit 00070 and a location", m.Origin, m.Location)
				}
			}},
		{"WeatherObserved example", "weather", arr(t, moveTo(fixture(t, "WeatherObserved.example.json"), hoanKiem)),
			"Spain-WeatherObserved-Valladolid-2016-11-30T07:00:00.00Z@2016-11-30T07:00:00Z", "device-0A3478",
			func(t *testing.T, data []byte) {
				var m iocv1.WeatherObserved
				if err := proto.Unmarshal(data, &m); err != nil {
					t.Fatal(err)
				}
				if m.GetAtmosphericPressure() != 938.9 || m.GetTemperature() != 3.3 || m.GetRelativeHumidity() != 1 ||
					m.GetWindDirection() != 135 || m.GetWindSpeed() != 2 || m.Precipitation == nil || m.GetPrecipitation() != 0 {
					t.Errorf("got %v; want pressure 938.9, temperature 3.3, RH 1, wind 2 m/s from 135, precipitation 0", &m)
				}
				if m.Other["pressureTendency"] != 0.5 || m.Other["illuminance"] != 1000 || m.Other["uVIndexMax"] != 1 || len(m.Other) != 5 {
					t.Errorf("got other %v; want pressureTendency, illuminance, streamGauge, snowHeight, uVIndexMax", m.Other)
				}
			}},
		{"water level with alarmLevels array", "water", arr(t, with(water("w1", hoanKiem), "alarmLevel1", nil, "alarmLevel2", nil, "alarmLevel3", nil,
			"alarmLevels", []any{9.5, 10.5, 11.5})),
			"w1@2025-07-01T01:00:00Z", "hydro-w1",
			func(t *testing.T, data []byte) {
				var m iocv1.WaterObserved
				if err := proto.Unmarshal(data, &m); err != nil {
					t.Fatal(err)
				}
				if m.GetWaterLevel() != 9.6 || m.GetAlarmLevel_1() != 9.5 || m.GetAlarmLevel_2() != 10.5 || m.GetAlarmLevel_3() != 11.5 {
					t.Errorf("got %v; want level 9.6, alarms 9.5 / 10.5 / 11.5", &m)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(t, tt.kind, tokWard, "application/json", tt.body)
			if r.code != 202 || r.resp.Accepted != 1 {
				t.Fatalf("got HTTP %d, %d accepted; want 202 with 1: %s", r.code, r.resp.Accepted, r.raw)
			}
			res := r.resp.Results[0]
			if res.Subject != subjects.Feed("01", "00070", tt.kind) || res.EventID != tt.event {
				t.Errorf("got subject %q, event %q; want %q, %q", res.Subject, res.EventID, subjects.Feed("01", "00070", tt.kind), tt.event)
			}
			msg, err := stream.GetLastMsgForSubject(ctx, res.Subject)
			if err != nil {
				t.Fatalf("reading %s from FEEDS: %v", res.Subject, err)
			}
			for k, want := range map[string]string{ce.HeaderID: tt.event, ce.HeaderSubject: tt.entity, ce.HeaderType: ce.ObservedType(tt.kind)} {
				if got := msg.Header.Get(k); got != want {
					t.Errorf("header %s: got %q; want %q", k, got, want)
				}
			}
			tt.check(t, msg.Data)
			again := e.post(t, tt.kind, tokWard, "application/json", tt.body)
			if again.code != 202 || again.resp.Duplicates != 1 {
				t.Fatalf("second POST: got HTTP %d %s; want 202 with 1 duplicate", again.code, again.raw)
			}
		})
	}
}

// TestWaterWeatherRejections: each way a water or weather item is refused, with its message.
func TestWaterWeatherRejections(t *testing.T) {
	e := newEnv(t, ingest.Config{})
	line := map[string]any{"type": "LineString", "coordinates": [][]float64{{105.85, 21.02}, {105.86, 21.03}}}
	tests := []struct {
		name, kind  string
		item        map[string]any
		wantPointer string
		wantReason  string
	}{
		{"water level not a number", "water", with(water("w1", hoanKiem), "waterLevel", "9.6 m"), "/0/waterLevel", "waterLevel: want a number, got a JSON string"},
		{"water missing location", "water", with(water("w1", hoanKiem), "location", nil), "/0/location", "location: missing field"},
		{"water wrong geometry type", "water", with(water("w1", hoanKiem), "location", line), "/0/location/type", "location.type: geometry type LineString is not allowed here; want Point"},
		{"water wrong type", "water", with(water("w1", hoanKiem), "type", "AirQualityObserved"), "/0/type", `type "AirQualityObserved" does not belong on this feed; want WaterQualityObserved or WaterObserved`},
		{"alarm levels out of order", "water", with(water("w1", hoanKiem), "alarmLevel2", 9.0), "/0/alarmLevel2", "alarmLevel2 9 is not above alarmLevel1 9.5; alarm levels rise from I to III"},
		{"alarmLevels not numbers", "water", with(water("w1", hoanKiem), "alarmLevels", []any{"I", "II", "III"}), "/0/alarmLevels", "want an array of up to 3 numbers"},
		{"alarmLevels too many", "water", with(water("w1", hoanKiem), "alarmLevels", []any{1, 2, 3, 4}), "/0/alarmLevels", "has 4 levels; Vietnamese flood warnings have 3"},
		{"alarmLevels disagree", "water", with(water("w1", hoanKiem), "alarmLevels", []any{9.0, nil, nil}), "/0/alarmLevels/0", "9 disagrees with alarmLevel1 9.5"},
		{"pH out of range", "water", with(water("w1", hoanKiem), "pH", 15.2), "/0/pH", "pH 15.2 is outside [0, 14]"},
		{"missing dateObserved", "water", with(water("w1", hoanKiem), "dateObserved", nil), "/0/dateObserved", "dateObserved: missing field"},
		{"humidity in percent", "weather", with(weather("x1", hoanKiem), "relativeHumidity", 78.0), "/0/relativeHumidity", "relativeHumidity 78 is outside [0, 1]; FIWARE gives it as a fraction"},
		{"negative precipitation", "weather", with(weather("x1", hoanKiem), "precipitation", -1.0), "/0/precipitation", "precipitation -1 is negative"},
		{"temperature a string", "weather", with(weather("x1", hoanKiem), "temperature", "hot"), "/0/temperature", "temperature: want a number, got a JSON string"},
		{"weather wrong geometry type", "weather", with(weather("x1", hoanKiem), "location", line), "/0/location/type", "want Point"},
		{"weather missing location", "weather", with(weather("x1", hoanKiem), "location", nil), "/0/location", "location: missing field"},
		{"weather wrong type", "weather", with(weather("x1", hoanKiem), "type", "WaterQualityObserved"), "/0/type", "want WeatherObserved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good := water("ok", hoanKiem)
			if tt.kind == "weather" {
				good = weather("ok", hoanKiem)
			}
			r := e.post(t, tt.kind, tokWard, "application/json", arr(t, tt.item, good))
			if r.code != 202 || len(r.resp.Results) != 2 {
				t.Fatalf("got HTTP %d %s; want 202 with 2 results", r.code, r.raw)
			}
			got := r.resp.Results[0]
			if got.Status != "rejected" || !strings.Contains(got.Reason, tt.wantReason) {
				t.Errorf("got %s %q; want rejected containing %q", got.Status, got.Reason, tt.wantReason)
			}
			if got.Pointer != tt.wantPointer {
				t.Errorf("got pointer %q; want %q", got.Pointer, tt.wantPointer)
			}
			if st := r.resp.Results[1].Status; st != "accepted" && st != "duplicate" {
				t.Errorf("the good item beside it: got %s; want accepted or duplicate", st)
			}
		})
	}
}
