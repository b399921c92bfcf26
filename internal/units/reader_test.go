package units_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/iochub/iochub/internal/units"
)

// FuzzUnitReader checks that no units file makes the Reader panic, that it
// fails only with ErrInvalidUnits, and that what it returns is complete.
func FuzzUnitReader(f *testing.F) {
	f.Add(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"01","name":"a"},"geometry":{"type":"Polygon","coordinates":[[[105.7,20.9],[105.9,20.9],[105.9,21.1],[105.7,21.1],[105.7,20.9]]]}}]}`)
	f.Add(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"00001","name":"a"},"geometry":{"type":"MultiPolygon","coordinates":[[[[105.7,20.9],[105.9,20.9],[105.9,21.1],[105.7,21.1],[105.7,20.9]]]]}}]}`)
	f.Add(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"02"},"geometry":{"type":"LineString","coordinates":[[105,21],[106,22]]}}]}`)
	f.Add(`{"features":[{"type":"Feature","properties":{"code":1},"geometry":null}],"type":"FeatureCollection"}`)
	f.Add(`{"type":"FeatureCollection","features":[],"bbox":[1,2,3,4]}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, s string) {
		r := units.NewReader(strings.NewReader(s), units.ReadOptions{})
		for i := 0; ; i++ {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				if !errors.Is(err, units.ErrInvalidUnits) {
					t.Fatalf("got %v; want an error wrapping ErrInvalidUnits", err)
				}
				return
			}
			if rec.Index != i || rec.Code == "" || rec.Boundary == nil || rec.Boundary.Empty() ||
				(rec.Level != units.LevelProvince && rec.Level != units.LevelCommune) {
				t.Fatalf("got record %+v at %d; want index %d, a code, a level and a boundary", rec, i, i)
			}
		}
	})
}
