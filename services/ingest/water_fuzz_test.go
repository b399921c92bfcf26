package ingest

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/kind"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// fuzzNoise is a kind registered with internal/kind, for FuzzParseStations.
var fuzzNoise = kind.Kind{Name: "noise", Values: []kind.Value{{Name: "LAeq", Min: 0, Max: 200, Required: true}, {Name: "LAmax"}}}

// FuzzParseStations runs the water, weather and registered item parsers on arbitrary JSON
// objects: no panic, a rejection says where and why, and an accepted item
// keeps what the kind promises (alarm levels rising from I to III, humidity a
// fraction, no negative precipitation, finite values).
func FuzzParseStations(f *testing.F) {
	seedBodies(f)
	for _, s := range []string{
		`{"id":"w","dateObserved":"2025-07-01T08:00:00Z","location":{"type":"Point","coordinates":[105.85,21.02]},"waterLevel":9.6,"alarmLevels":[9.5,10.5,11.5]}`,
		`{"id":"w","dateObserved":"2025-07-01T08:00:00Z","location":{"type":"Point","coordinates":[105.85,21.02]},"waterLevel":9.6,"alarmLevels":[null,10.5],"alarmLevel3":11}`,
		`{"id":"w","dateObserved":"2025-07-01T08:00:00Z","location":{"type":"Point","coordinates":[105.85,21.02]},"alarmLevel1":{"type":"Property","value":3},"alarmLevel2":2}`,
		`{"id":"n","type":"NoiseLevelObserved","dateObserved":"2025-07-01T08:00:00Z","location":{"type":"Point","coordinates":[105.85,21.02]},"LAeq":67.5,"LAmax":1e308}`,
		`{"id":"x","type":"WeatherObserved","dateObserved":"2025-07-01T08:00:00Z","location":{"type":"Point","coordinates":[105.85,21.02]},"relativeHumidity":0.5,"precipitation":1e308}`,
	} {
		f.Add([]byte(s))
	}
	env := parseEnv{now: time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC), maxFuture: 10 * time.Minute}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil || m == nil {
			return
		}
		noise := func(f fields, env parseEnv) (*parsed, *itemError) { return parseRegistered(fuzzNoise, f, env) }
		for i, parse := range []func(fields, parseEnv) (*parsed, *itemError){parseWater, parseWeather, noise} {
			it, ierr := sameParse(t, []string{"water", "weather", "noise"}[i], parse, m, raw, env)
			if ierr != nil {
				// A member without a name is the one rejection without a pointer.
				if ierr.reason == "" || ierr.pointer == "" && !strings.HasPrefix(ierr.reason, "member name is empty") {
					t.Fatalf("rejection %q lacks a pointer or a reason", ierr.Error())
				}
				continue
			}
			if it.id == "" || it.entityID == "" || it.time.IsZero() || len(it.geoms) != 1 || it.geoms[0].Type != "Point" {
				t.Fatalf("accepted item lacks an id, entity, time or Point: %+v", it)
			}
			switch msg := it.msg.(type) {
			case *iocv1.WaterObserved:
				var prev *float64
				for _, l := range []*float64{msg.AlarmLevel_1, msg.AlarmLevel_2, msg.AlarmLevel_3} {
					if l != nil && prev != nil && *l <= *prev {
						t.Fatalf("accepted alarm levels that do not rise: %v", msg)
					}
					if l != nil {
						prev = l
					}
				}
				for k, v := range msg.Other {
					if math.IsNaN(v) || math.IsInf(v, 0) {
						t.Fatalf("accepted %s = %v", k, v)
					}
				}
			case *iocv1.WeatherObserved:
				if h := msg.RelativeHumidity; h != nil && (*h < 0 || *h > 1) {
					t.Fatalf("accepted relative humidity %v", *h)
				}
				if p := msg.Precipitation; p != nil && *p < 0 {
					t.Fatalf("accepted precipitation %v", *p)
				}
			case *iocv1.Observation:
				if v, ok := msg.Values["LAeq"]; !ok || v < 0 || v > 200 {
					t.Fatalf("accepted LAeq %v (present %v); want it in [0, 200]", v, ok)
				}
				for k, v := range msg.Values {
					if _, known := fuzzNoise.Value(k); !known || math.IsNaN(v) || math.IsInf(v, 0) {
						t.Fatalf("accepted %s = %v", k, v)
					}
				}
			default:
				t.Fatalf("parsed into a %T", it.msg)
			}
		}
	})
}
