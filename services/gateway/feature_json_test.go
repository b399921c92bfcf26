package gateway

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/iochub/iochub/internal/aqi"
)

// FuzzFeatureJSON holds appendFeatureJSON to encoding/json's bytes for
// every text (escapes, invalid UTF-8, U+2028), number (exponents, -0) and
// member present or absent.
func FuzzFeatureJSON(f *testing.F) {
	f.Add("air/st-1", "air", "st-1", "Hoàn Kiếm \"trạm\"\n<1>", "01", "00070", "2025-07-01T01:00:00Z", "obs-1@t", "pm25", 35.5, int32(3), true, "forward", "pm25", 1.5e-7, uint8(0xff))
	f.Add("x", "", "", "\u2028\u2029\x00\x1f\x7f", "", "", "", "", "", 1e21, int32(-1), false, "\xff\xfe", "", math.Copysign(0, -1), uint8(0))
	f.Add("k", "l", "e", "tab\tcr\rff\fbs\b", "p", "u", "t", "i", "a\"b", 123456789.125, int32(0), true, "\\", "o3", 2.5, uint8(0x55))
	f.Fuzz(func(t *testing.T, id, layer, entity, name, province, unit, updated, obsID, key string, x float64, n int32, flag bool, text, sub string, subX float64, present uint8) {
		p := propertiesJSON{Layer: layer, EntityID: entity, Name: name, Province: province, Unit: unit, UpdatedAt: updated}
		if present&1 != 0 {
			o := &observationJSON{ID: obsID, Time: updated}
			if present&2 != 0 {
				o.Values = map[string]any{"intensity": n, "congested": flag, "laneDirection": text}
				if !math.IsNaN(x) && !math.IsInf(x, 0) {
					o.Values[key] = x
				}
			}
			p.Observation = o
		}
		if present&4 != 0 {
			a := &aqi.JSON{Dominant: key, Band: n % 7, BandVI: name, BandEN: text, Color: sub, Hour: updated, Reason: obsID}
			if present&8 != 0 {
				a.Hourly, a.Daily = &n, &n
			}
			if present&16 != 0 && !math.IsNaN(subX) && !math.IsInf(subX, 0) {
				a.SubIndices = map[string]float64{sub: subX, "pm10": 12}
			}
			p.AQI = a
		}
		if present&32 != 0 {
			p.WaterAlarm = &n
		}
		geometry := []byte("null")
		if present&64 != 0 {
			geometry = []byte(`{"type":"Point","coordinates":[105.8524,21.0287]}`)
		}
		want, err := featureJSONOf(id, geometry, &p)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendFeatureJSON([]byte("prefix"), id, geometry, &p)
		if !ok {
			t.Fatalf("appendFeatureJSON declined %+v", p)
		}
		if !bytes.Equal(got[len("prefix"):], want) {
			t.Fatalf("appendFeatureJSON:\n%s\nencoding/json:\n%s", got[len("prefix"):], want)
		}
		if !json.Valid(want) {
			t.Fatalf("not JSON: %s", want)
		}
	})
}

// TestFeatureJSONDeclines: what appendFeatureJSON does not write is left to
// encoding/json, and the buffer is given back as it was.
func TestFeatureJSONDeclines(t *testing.T) {
	for name, p := range map[string]propertiesJSON{
		"alert":     {Alert: &alertJSON{ID: "a"}},
		"report":    {Report: &reportJSON{}},
		"odd value": {Observation: &observationJSON{ID: "o", Values: map[string]any{"x": int64(1)}}},
		"NaN value": {Observation: &observationJSON{ID: "o", Values: map[string]any{"x": math.NaN()}}},
	} {
		got, ok := appendFeatureJSON([]byte("prefix"), "k", []byte("null"), &p)
		if ok || string(got) != "prefix" {
			t.Errorf("%s: %q, %v; want declined, the buffer as it was", name, got, ok)
		}
	}
}
