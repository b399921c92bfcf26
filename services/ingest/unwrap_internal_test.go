package ingest

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestUnwrap: the normalized forms read like keyValues, a DateTime inside a
// Property included; a value nested deeper is unwrapped twice only (each
// level would cost a parse of all that is inside it).
func TestUnwrap(t *testing.T) {
	deep := strings.Repeat(`{"type":"Property","value":`, 1000) + `1` + strings.Repeat(`}`, 1000)
	for _, c := range []struct{ in, want string }{
		{`12.5`, `12.5`},
		{`{"type":"Property","value":12.5}`, `12.5`},
		{`{"type":"Property","value":{"@type":"DateTime","@value":"2026-01-01T00:00:00Z"}}`, `"2026-01-01T00:00:00Z"`},
		{`{"type":"Relationship","object":"urn:ngsi-ld:Road:1"}`, `"urn:ngsi-ld:Road:1"`},
		{`{"@type":"DateTime","@value":"2026-01-01T00:00:00Z"}`, `"2026-01-01T00:00:00Z"`},
		{`{"a":1}`, `{"a":1}`},
		{deep, deep[2*len(`{"type":"Property","value":`) : len(deep)-2]},
	} {
		got, ok := unwrap(json.RawMessage(c.in))
		if !ok || string(got) != c.want {
			name := c.in
			if len(name) > 80 {
				name = name[:80] + "…"
			}
			t.Errorf("unwrap(%s) = %.80s, %v; want %.80s", name, got, ok, c.want)
		}
	}
	if got, ok := unwrap(nil); ok || got != nil {
		t.Errorf("unwrap(nil) = %s, %v; want nothing", got, ok)
	}
}
