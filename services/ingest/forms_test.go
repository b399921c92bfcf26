package ingest_test

import (
	"testing"

	"github.com/iochub/iochub/services/ingest"
)

// TestItemForms covers the time forms and the NGSI-LD normalized values the ingest reads.
func TestItemForms(t *testing.T) {
	e := newEnv(t, ingest.Config{})
	tests := []struct {
		name      string
		item      map[string]any
		wantEvent string
		wantErr   string
	}{
		{"interval", with(air("i1", hoanKiem), "dateObserved", "2025-07-01T07:00:00+07:00/2025-07-01T08:00:00+07:00"), "i1@2025-07-01T01:00:00Z", ""},
		{"no zone is UTC", with(air("i2", hoanKiem), "dateObserved", "2025-07-01T08:00:00.5"), "i2@2025-07-01T08:00:00Z", ""},
		{"dateObservedTo only", with(air("i3", hoanKiem), "dateObserved", nil, "dateObservedFrom", "2025-07-01T00:00:00Z", "dateObservedTo", "2025-07-01T01:00:00Z"), "i3@2025-07-01T01:00:00Z", ""},
		{"NGSI-LD property values", with(air("i4", hoanKiem),
			"pm25", map[string]any{"type": "Property", "value": 12.5, "unitCode": "GQ"},
			"location", map[string]any{"type": "GeoProperty", "value": point(hoanKiem[0], hoanKiem[1])},
			"refDevice", map[string]any{"type": "Relationship", "object": "urn:ngsi-ld:Device:st-4"}), "i4@2025-07-01T01:00:00Z", ""},
		{"interval backwards", with(air("i5", hoanKiem), "dateObserved", "2025-07-01T08:00:00Z/2025-07-01T07:00:00Z"), "", "dateObserved: interval ends (2025-07-01T07:00:00Z) before it starts (2025-07-01T08:00:00Z)"},
		{"from after to", with(air("i6", hoanKiem), "dateObserved", nil, "dateObservedFrom", "2025-07-01T02:00:00Z", "dateObservedTo", "2025-07-01T01:00:00Z"), "", "dateObservedTo: observation ends"},
		{"huge number", with(air("i7", hoanKiem), "pm10", 1e308), "", "pm10: pm10 1e+308 is outside the plausible range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(t, "air", tokWard, "", arr(t, tt.item))
			if r.code != 202 || len(r.resp.Results) != 1 {
				t.Fatalf("got HTTP %d; want 202: %s", r.code, r.raw)
			}
			got := r.resp.Results[0]
			if tt.wantErr != "" {
				if got.Status != "rejected" || len(got.Reason) < len(tt.wantErr) || got.Reason[:len(tt.wantErr)] != tt.wantErr {
					t.Errorf("got %s %q; want rejected starting %q", got.Status, got.Reason, tt.wantErr)
				}
				return
			}
			if got.Status != "accepted" || got.EventID != tt.wantEvent {
				t.Errorf("got %s %q (%s); want accepted %q", got.Status, got.EventID, got.Reason, tt.wantEvent)
			}
		})
	}
	r := e.post(t, "air", tokWard, "application/json", []byte(`[{"id":"i8","type":"AirQualityObserved","dateObserved":"2025-07-01T08:00:00Z","location":{"type":"Point","coordinates":[105.8524,21.0287]},"pm25":1e999}]`))
	if r.code != 202 || r.resp.Results[0].Reason != "pm25: number 1e999 is out of range" {
		t.Errorf("got HTTP %d %s; want pm25 out of range", r.code, r.raw)
	}
}
