package gateway

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/iochub/iochub/services/gateway/pgread"
)

func TestAlertID(t *testing.T) {
	for _, entity := range []string{"dev/HN-1", "wmo/urn:oid:2.49.0.0.690.0.2024.5.19.13.18.0", "s/a.cap", "s/x/y?z#%", "s/Cảnh báo"} {
		id := AlertID(entity)
		if strings.ContainsAny(id, "/.?#%+= ") {
			t.Errorf("AlertID(%q) = %q holds a character unsafe in a path segment", entity, id)
		}
		got, ok := alertEntityID(id)
		if !ok || got != entity {
			t.Errorf("alertEntityID(%q) = %q, %v; want %q, true", id, got, ok, entity)
		}
	}
	for _, bad := range []string{"", "!!", "a.cap", "Zm9v="} {
		if got, ok := alertEntityID(bad); ok {
			t.Errorf("alertEntityID(%q) = %q, true; want false", bad, got)
		}
	}
}

func TestParseAlertsQuery(t *testing.T) {
	box := [4]float64{105.7, 20.9, 106, 21.2}
	tests := []struct {
		query string
		want  pgread.AlertsQuery
		err   string
	}{
		{"", pgread.AlertsQuery{Limit: 100}, ""},
		{"active=true&province=01", pgread.AlertsQuery{Province: "01", Active: true, Limit: 100}, ""},
		{"active=false&limit=5&bbox=105.7,20.9,106,21.2", pgread.AlertsQuery{Limit: 5, BBox: &box}, ""},
		{"active=yes", pgread.AlertsQuery{}, `parameter active: "yes" is not true or false`},
		{"limit=0", pgread.AlertsQuery{}, `parameter limit: "0" is not a whole number from 1 to 1000`},
		{"limit=1001", pgread.AlertsQuery{}, `parameter limit: "1001" is not a whole number from 1 to 1000`},
		{"limit=1&limit=2", pgread.AlertsQuery{}, "parameter limit: give it once"},
		{"province=1", pgread.AlertsQuery{}, `parameter province: "1" is not a two-digit province code such as 01`},
		{"bbox=1,2,3", pgread.AlertsQuery{}, `parameter bbox: "1,2,3" is not minLon,minLat,maxLon,maxLat`},
		{"bbox=1,2,x,4", pgread.AlertsQuery{}, `parameter bbox: "x" is not a number`},
		{"bbox=3,2,1,4", pgread.AlertsQuery{}, `parameter bbox: "3,2,1,4" is not minLon,minLat,maxLon,maxLat within [-180,180]×[-90,90]`},
		{"bbox=-181,2,1,4", pgread.AlertsQuery{}, "is not minLon,minLat,maxLon,maxLat within"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseAlertsQuery(q)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrBadParam) {
					t.Fatalf("got %v; want an ErrBadParam containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v; want %+v", got, tc.want)
			}
		})
	}
}
