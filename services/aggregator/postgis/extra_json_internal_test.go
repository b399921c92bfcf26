package postgis

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
)

// checkExtraJSON fails t unless appendExtraJSON writes m, after prefix, as
// the bytes json.Marshal writes.
func checkExtraJSON(t *testing.T, m map[string]any) {
	t.Helper()
	want, wantErr := json.Marshal(m)
	got, err := appendExtraJSON([]byte("prefix"), m)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%v: error %v; json.Marshal's %v", m, err, wantErr)
	}
	if err == nil && !bytes.Equal(got, append([]byte("prefix"), want...)) {
		t.Fatalf("%#v:\n got %s\nwant prefix%s", m, got, want)
	}
}

// TestAppendExtraJSON: the same bytes as json.Marshal, on the values it
// writes itself and on those it leaves to json.Marshal.
func TestAppendExtraJSON(t *testing.T) {
	for _, m := range []map[string]any{
		{},
		{"temperature": 28.5},
		{"temperature": 28.5, "relativeHumidity": 0.81, "windDirection": 270.0, "a": math.Copysign(0, -1), "z": 0.0},
		{"tiny": 1e-7, "small": 0.000001, "smaller": 9.99e-7, "big": 1e21, "under": 9.99e20, "neg": -1.5e-300, "max": math.MaxFloat64},
		{"int": 123456789.0, "frac": 0.1 + 0.2, "e": 2.5e-10},
		{"laneDirection": "forward", "unit": "µg/m³"}, // non-ASCII: json.Marshal's
		{"q": `say "hi"`}, {"b": `a\b`}, {"h": "<b>&"}, {"c": "tab\there"}, // escapes: json.Marshal's
		{"k\"ey": 1.0}, {"ok": 1.0, "nested": map[string]any{"x": 1.0}}, {"n": nil}, {"t": true}, {"i": 3},
		{"nan": math.NaN()}, {"inf": math.Inf(1)}, // errors, as json.Marshal's
	} {
		checkExtraJSON(t, m)
	}
}

// TestExtraValue: a row's extra values go to pgx as appendExtraJSON's bytes
// (sent as they are), NULL when there are none, and as the map when
// json.Marshal refuses it, for pgx to report.
func TestExtraValue(t *testing.T) {
	m := map[string]any{"temperature": 28.5, "windDirection": "N"}
	if got, ok := extraValue(m).(json.RawMessage); !ok || string(got) != `{"temperature":28.5,"windDirection":"N"}` {
		t.Errorf("extraValue(%v) = %#v; want its JSON as a json.RawMessage", m, extraValue(m))
	}
	if got := extraValue(nil); got != nil {
		t.Errorf("extraValue(nil) = %#v; want nil", got)
	}
	bad := map[string]any{"nan": math.NaN()}
	if got, ok := extraValue(bad).(map[string]any); !ok || len(got) != 1 {
		t.Errorf("extraValue(%v) = %#v; want the map", bad, extraValue(bad))
	}
}

// FuzzAppendExtraJSON: for any names, numbers and strings, the bytes of
// json.Marshal.
func FuzzAppendExtraJSON(f *testing.F) {
	f.Add("temperature", 28.5, "laneDirection", "forward", 1e-7)
	f.Add("a<b", math.Copysign(0, -1), "", "é\x00\"", 1e21)
	f.Fuzz(func(t *testing.T, k1 string, f1 float64, k2, s2 string, f3 float64) {
		checkExtraJSON(t, map[string]any{k1: f1, k2: s2, k1 + k2: f3})
	})
}

// BenchmarkExtraJSON: an air row's usual extra values, as appendExtraJSON
// writes them against json.Marshal.
func BenchmarkExtraJSON(b *testing.B) {
	m := map[string]any{"temperature": 31.0, "relativeHumidity": 0.74, "windSpeed": 2.4}
	b.Run("appendExtraJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = appendExtraJSON(buf[:0], m)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(m)
		}
	})
}
