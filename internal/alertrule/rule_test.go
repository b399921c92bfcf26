package alertrule

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Rule
	}{
		{"congestion with segments", `{"province":"01","kind":"congestion","params":{"maxSpeed":15,"segments":["s1","s2"]},"for":"10m","severity":"Severe"}`,
			Rule{ID: "r1", Province: "01", Kind: KindCongestion, Params: Params{MaxSpeed: 15, Segments: []string{"s1", "s2"}}, For: 10 * time.Minute, Severity: "Severe", Enabled: true}},
		{"aqi disabled", `{"province":"79","kind":"aqi_band","params":{"minBand":4},"for":"1h30m","severity":"Moderate","enabled":false}`,
			Rule{ID: "r1", Province: "79", Kind: KindAQIBand, Params: Params{MinBand: 4}, For: 90 * time.Minute, Severity: "Moderate"}},
		{"water without duration", `{"province":"01","kind":"water_level","params":{"minAlarm":2},"severity":"Extreme"}`,
			Rule{ID: "r1", Province: "01", Kind: KindWaterLevel, Params: Params{MinAlarm: 2}, Severity: "Extreme", Enabled: true}},
		{"water with its own stale", `{"province":"01","kind":"water_level","params":{"minAlarm":2},"stale":"90m","severity":"Extreme"}`,
			Rule{ID: "r1", Province: "01", Kind: KindWaterLevel, Params: Params{MinAlarm: 2, Stale: 90 * time.Minute}, Severity: "Extreme", Enabled: true}},
		{"same id in body", `{"id":"r1","province":"01","kind":"congestion","params":{"maxSpeed":20.5},"for":"0s","severity":"Minor"}`,
			Rule{ID: "r1", Province: "01", Kind: KindCongestion, Params: Params{MaxSpeed: 20.5}, Severity: "Minor", Enabled: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("r1", []byte(tt.body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !got.Same(tt.want) || got.Province != tt.want.Province {
				t.Errorf("got %+v; want %+v", got, tt.want)
			}
			// The document form parses back to the same rule.
			doc, err := got.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			again, err := Parse("r1", doc)
			if err != nil {
				t.Fatalf("parsing %s again: %v", doc, err)
			}
			if !again.Same(got) {
				t.Errorf("round trip of %s: got %+v; want %+v", doc, again, got)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name, id, body string
		want           []string // every problem, in order
	}{
		{"unknown kind", "r1", `{"province":"01","kind":"rain","params":{},"for":"1m","severity":"Minor"}`,
			[]string{`kind: "rain" is not a kind of rule; want one of aqi_band, congestion, water_level`}},
		{"missing threshold", "r1", `{"province":"01","kind":"congestion","params":{},"for":"1m","severity":"Minor"}`,
			[]string{"params.maxSpeed: is missing; want the speed in km/h below which a segment is congested"}},
		{"negative duration", "r1", `{"province":"01","kind":"aqi_band","params":{"minBand":4},"for":"-5m","severity":"Minor"}`,
			[]string{`for: "-5m" is negative; want 0 or more`}},
		{"bad duration", "r1", `{"province":"01","kind":"aqi_band","params":{"minBand":4},"for":"10","severity":"Minor"}`,
			[]string{`for: "10" is not a duration; want one such as "10m" or "1h30m"`}},
		{"too long", "r1", `{"province":"01","kind":"aqi_band","params":{"minBand":4},"for":"200h","severity":"Minor"}`,
			[]string{`for: "200h" is longer than the most, 168h0m0s`}},
		{"missing duration", "r1", `{"province":"01","kind":"aqi_band","params":{"minBand":4},"severity":"Minor"}`,
			[]string{`for: is missing; want how long the condition must hold, such as "10m" ("0s" raises at once)`}},
		{"band out of range", "r1", `{"province":"01","kind":"aqi_band","params":{"minBand":7},"for":"1m","severity":"Minor"}`,
			[]string{"params.minBand: is 7; want a VN_AQI band from 1 to 6"}},
		{"alarm out of range", "r1", `{"province":"01","kind":"water_level","params":{"minAlarm":0},"severity":"Minor"}`,
			[]string{"params.minAlarm: is 0; want an alarm level from 1 to 3"}},
		{"speed zero", "r1", `{"province":"01","kind":"congestion","params":{"maxSpeed":0},"for":"1m","severity":"Minor"}`,
			[]string{"params.maxSpeed: is 0; want a speed in km/h above 0 and at most 300"}},
		{"param of another kind", "r1", `{"province":"01","kind":"water_level","params":{"minAlarm":1,"maxSpeed":3},"severity":"Minor"}`,
			[]string{"params.maxSpeed: is a parameter of congestion rules, not of water_level"}},
		{"unknown param", "r1", `{"province":"01","kind":"water_level","params":{"minAlarm":1,"level":3},"severity":"Minor"}`,
			[]string{`params: is not a params object: json: unknown field "level"`}},
		{"segments empty and twice", "r1", `{"province":"01","kind":"congestion","params":{"maxSpeed":9,"segments":["a"," ","a"]},"for":"1m","severity":"Minor"}`,
			[]string{"params.segments[1]: is empty; want a segment id", `params.segments[2]: "a" is listed twice`}},
		{"threshold of wrong type", "r1", `{"province":"01","kind":"congestion","params":{"maxSpeed":"15"},"for":"1m","severity":"Minor"}`,
			[]string{"params: is not a params object: maxSpeed is a JSON string; want a number"}},
		{"severity and province", "r1", `{"province":"Hà Nội","kind":"congestion","params":{"maxSpeed":9},"for":"1m","severity":"High"}`,
			[]string{`province: "Hà Nội" is not a province code (two digits, such as "01")`,
				`severity: "High" is not a CAP severity; want one of Extreme, Severe, Moderate, Minor, Unknown`}},
		{"everything missing", "r1", `{}`,
			[]string{`province: is missing; want a province code such as "01"`, "kind: is missing; want one of aqi_band, congestion, water_level",
				`for: is missing; want how long the condition must hold, such as "10m" ("0s" raises at once)`,
				"severity: is missing; want one of Extreme, Severe, Moderate, Minor, Unknown"}},
		{"stale not a duration", "r1", `{"province":"01","kind":"water_level","params":{"minAlarm":1},"stale":"2","severity":"Minor"}`,
			[]string{`stale: "2" is not a duration; want one such as "2h" or "90m" (omit it for 2h0m0s)`}},
		{"stale too short", "r1", `{"province":"01","kind":"water_level","params":{"minAlarm":1},"stale":"0s","severity":"Minor"}`,
			[]string{`stale: "0s" is shorter than the least, 1m0s (omit it for 2h0m0s)`}},
		{"stale too long", "r1", `{"province":"01","kind":"water_level","params":{"minAlarm":1},"stale":"169h","severity":"Minor"}`,
			[]string{`stale: "169h" is longer than the most, 168h0m0s`}},
		{"stale in params", "r1", `{"province":"01","kind":"water_level","params":{"minAlarm":1,"stale":"1h"},"severity":"Minor"}`,
			[]string{`params.stale: is a member of the rule, not of its params; write it next to "for"`}},
		{"unknown field", "r1", `{"province":"01","kind":"congestion","params":{"maxSpeed":9},"for":"1m","severity":"Minor","window":3}`,
			[]string{`(body): is not a rule document: json: unknown field "window"`}},
		{"not JSON", "r1", `kind=congestion`,
			[]string{"(body): is not a rule document: invalid character 'k' looking for beginning of value"}},
		{"trailing data", "r1", `{"province":"01"} {}`, []string{"(body): has data after the rule document"}},
		{"other id in body", "r1", `{"id":"r2","province":"01","kind":"congestion","params":{"maxSpeed":9},"for":"1m","severity":"Minor"}`,
			[]string{`id: "r2" differs from the rule id "r1" in the path`}},
		{"bad id", "r 1", `{}`, []string{`id: "r 1" has characters other than letters, digits, '-' and '_'`}},
		{"empty id", "", `{}`, []string{"id: is empty"}},
		{"long id", strings.Repeat("x", 65), `{}`, []string{"id: is 65 bytes long; the most is 64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.id, []byte(tt.body))
			if !errors.Is(err, ErrInvalidRule) {
				t.Fatalf("got %v; want ErrInvalidRule", err)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("got %T; want *ValidationError", err)
			}
			var got []string
			for _, p := range ve.Problems {
				got = append(got, p.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if !strings.HasPrefix(err.Error(), "invalid alert rule: ") {
				t.Errorf("got message %q; want it to start with the sentinel's", err)
			}
		})
	}
}

// FuzzRuleParams checks that no rule document or params object makes the
// decoder panic, and that whatever it accepts encodes to a document that
// decodes to the same rule.
func FuzzRuleParams(f *testing.F) {
	f.Add(KindCongestion, []byte(`{"maxSpeed":15,"segments":["a","b"]}`), "10m")
	f.Add(KindAQIBand, []byte(`{"minBand":4}`), "1h")
	f.Add(KindWaterLevel, []byte(`{"minAlarm":2}`), "")
	f.Add(KindWaterLevel, []byte(`null`), "0s")
	f.Add(KindWaterLevel, []byte(`{"minAlarm":2,"stale":"90m"}`), "")
	f.Add(KindAQIBand, []byte(`{"minBand":3,"stale":"1s"}`), "1h")
	f.Add("rain", []byte(`{"maxSpeed":1e400}`), "-1m")
	f.Add(KindCongestion, []byte(`{"maxSpeed":-0,"segments":[""]}`), "9999999h")
	f.Fuzz(func(t *testing.T, kind string, params []byte, dur string) {
		p, err := ParseParams(kind, params)
		if err != nil {
			if !errors.Is(err, ErrInvalidRule) {
				t.Fatalf("ParseParams error %v does not wrap ErrInvalidRule", err)
			}
		} else {
			r := Rule{Kind: kind, Params: p}
			back, err := ParseParams(kind, r.ParamsJSON())
			if err != nil {
				t.Fatalf("params %s accepted, but their encoding %s is rejected: %v", params, r.ParamsJSON(), err)
			}
			r2 := Rule{Kind: kind, Params: back}
			if string(r2.ParamsJSON()) != string(r.ParamsJSON()) {
				t.Fatalf("params round trip: got %s; want %s", r2.ParamsJSON(), r.ParamsJSON())
			}
		}
		doc := []byte(`{"province":"01","kind":` + quote(kind) + `,"params":` + string(params) + `,"for":` + quote(dur) + `,"severity":"Minor"}`)
		r, err := Parse("fuzz", doc)
		if err != nil {
			if !errors.Is(err, ErrInvalidRule) {
				t.Fatalf("Parse error %v does not wrap ErrInvalidRule", err)
			}
			return
		}
		enc, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse("fuzz", enc)
		if err != nil || !again.Same(r) {
			t.Fatalf("document %s: got %+v, %v; want %+v", enc, again, err, r)
		}
	})
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestStaleStored checks where a rule's stale duration goes: a member of the
// document, next to "for", and stored with the params, where the store reads it.
func TestStaleStored(t *testing.T) {
	r, err := Parse("r1", []byte(`{"province":"01","kind":"water_level","params":{"minAlarm":2},"stale":"45m","severity":"Extreme"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(r.ParamsJSON()), `{"minAlarm":2,"stale":"45m0s"}`; got != want {
		t.Errorf("stored params %s; want %s", got, want)
	}
	doc, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), `"params":{"minAlarm":2},"for":"0s","stale":"45m0s"`) {
		t.Errorf("document %s; want params without stale and stale after for", doc)
	}
	p, err := ParseParams(KindWaterLevel, r.ParamsJSON())
	if err != nil || p.Stale != 45*time.Minute || p.MinAlarm != 2 {
		t.Errorf("ParseParams of the stored form = %+v, %v; want minAlarm 2, stale 45m", p, err)
	}
	if got := r.StaleAfter(); got != 45*time.Minute {
		t.Errorf("StaleAfter = %v; want 45m", got)
	}
	// Without stale: nothing stored, nothing shown, the default applies.
	d, err := Parse("r2", []byte(`{"province":"01","kind":"water_level","params":{"minAlarm":2},"severity":"Extreme"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(d.ParamsJSON()); got != `{"minAlarm":2}` || d.StaleAfter() != DefaultStale {
		t.Errorf("default: stored %s, StaleAfter %v; want {\"minAlarm\":2} and %v", got, d.StaleAfter(), DefaultStale)
	}
	if d.Same(r) {
		t.Error("rules that differ in stale are the Same")
	}
	for _, bad := range []string{`{"minAlarm":2,"stale":""}`, `{"minAlarm":2,"stale":"5s"}`} {
		if _, err := ParseParams(KindWaterLevel, []byte(bad)); !errors.Is(err, ErrInvalidRule) {
			t.Errorf("ParseParams(%s) = %v; want ErrInvalidRule", bad, err)
		}
	}
}
