package gateway

import (
	"errors"
	"math"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/services/gateway/pgread"
)

func TestParseLiveQuery(t *testing.T) {
	tests := []struct {
		query      string
		wantLayers []string
		wantBatch  bool
		wantErr    string // substring; "" means success
	}{
		{query: "province=01"},
		{query: "province=96&layers=air", wantLayers: []string{"air"}},
		{query: "province=01&layers=traffic,air,air", wantLayers: []string{"air", "traffic"}},
		{query: "province=01&bbox=1,2,3,4"},
		{query: "", wantErr: "parameter province: missing"},
		{query: "layers=air", wantErr: "parameter province: missing"},
		{query: "province=1", wantErr: `parameter province: "1" is not a two-digit`},
		{query: "province=001", wantErr: `parameter province: "001"`},
		{query: "province=ab", wantErr: `parameter province: "ab"`},
		{query: "province=01&province=02", wantErr: "parameter province: given 2 times"},
		{query: "province=01&layers=", wantErr: "parameter layers: empty"},
		{query: "province=01&layers=air,fire", wantErr: `parameter layers: unknown layer "fire"`},
		{query: "province=01&layers=air,", wantErr: `parameter layers: unknown layer ""`},
		{query: "province=01&layers=air&layers=traffic", wantErr: "parameter layers: given 2 times"},
		{query: "province=01&layers=" + strings.Repeat("air,", 100), wantErr: "parameter layers: longer than"},
		{query: "province=01&batch=1", wantBatch: true},
		{query: "province=01&batch=0"},
		{query: "province=01&batch=", wantErr: "parameter batch: give it once"},
		{query: "province=01&batch=true", wantErr: "parameter batch: give it once"},
		{query: "province=01&batch=1&batch=1", wantErr: "parameter batch: give it once"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			p, err := parseLiveQuery(q)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrBadParam) {
					t.Fatalf("got error %v; want one containing %q wrapping ErrBadParam", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v; want none", err)
			}
			if !slices.Equal(p.Layers, tt.wantLayers) {
				t.Errorf("got layers %v; want %v", p.Layers, tt.wantLayers)
			}
			if p.Batch != tt.wantBatch {
				t.Errorf("got batch %v; want %v", p.Batch, tt.wantBatch)
			}
		})
	}
}

func TestParseLiveQueryBBox(t *testing.T) {
	tests := []struct {
		name    string
		bbox    string
		want    bbox
		wantErr string // substring; "" means success
	}{
		{name: "Hanoi centre", bbox: "105.75,20.95,105.90,21.10", want: bbox{105.75, 20.95, 105.90, 21.10}},
		{name: "spaces and signs", bbox: " -1.5, -2 ,+3,4e0", want: bbox{-1.5, -2, 3, 4}},
		{name: "a point", bbox: "105.8,21,105.8,21", want: bbox{105.8, 21, 105.8, 21}},
		{name: "the world", bbox: "-180,-90,180,90", want: bbox{-180, -90, 180, 90}},
		{name: "three values", bbox: "105,20,106", wantErr: `parameter bbox: "105,20,106" has 3 values; give minLon,minLat,maxLon,maxLat`},
		{name: "five values", bbox: "1,2,3,4,5", wantErr: "has 5 values"},
		{name: "empty", bbox: "", wantErr: `parameter bbox: "" has 1 values`},
		{name: "empty value", bbox: "105,,106,21", wantErr: `parameter bbox: minLat "" is not a number`},
		{name: "word", bbox: "105,20,east,21", wantErr: `parameter bbox: maxLon "east" is not a number`},
		{name: "NaN", bbox: "NaN,20,106,21", wantErr: `parameter bbox: minLon "NaN" is not a finite number`},
		{name: "Inf", bbox: "105,20,106,+Inf", wantErr: `parameter bbox: maxLat "+Inf" is not a finite number`},
		{name: "overflow", bbox: "105,20,1e999,21", wantErr: `parameter bbox: maxLon "1e999" is not a finite number`},
		{name: "lat,lon order", bbox: "20.95,105.75,21.10,105.90",
			wantErr: "bbox looks like lat,lon order; RFC 7946 wants minLon,minLat,maxLon,maxLat"},
		{name: "lat,lon order in the max corner only", bbox: "105.75,20.95,21.10,105.90",
			wantErr: "bbox looks like lat,lon order; RFC 7946 wants minLon,minLat,maxLon,maxLat"},
		{name: "lon out of range", bbox: "-181,20,106,21", wantErr: "parameter bbox: minLon -181 is outside [-180, 180]"},
		{name: "lon out of range east", bbox: "105,20,200,21", wantErr: "parameter bbox: maxLon 200 is outside [-180, 180]"},
		{name: "lat out of range", bbox: "105,-91,106,21", wantErr: "parameter bbox: minLat -91 is outside [-90, 90]"},
		{name: "lat far out of range", bbox: "105,20,106,300", wantErr: "parameter bbox: maxLat 300 is outside [-90, 90]"},
		{name: "crossing the antimeridian", bbox: "179,-20,-179,-10",
			wantErr: "parameter bbox: minLon 179 is greater than maxLon -179; boxes crossing the antimeridian are not supported"},
		{name: "min lat above max lat", bbox: "105,21.1,106,20.9",
			wantErr: "parameter bbox: minLat 21.1 is greater than maxLat 20.9; give the south edge first"},
		{name: "too long", bbox: strings.Repeat("1", 300), wantErr: "parameter bbox: longer than 256 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parseLiveQuery(url.Values{"province": {"01"}, "bbox": {tt.bbox}})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrBadParam) {
					t.Fatalf("got error %v; want one containing %q wrapping ErrBadParam", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v; want none", err)
			}
			if p.BBox == nil || *p.BBox != tt.want {
				t.Errorf("got bbox %v; want %v", p.BBox, tt.want)
			}
		})
	}
	t.Run("given twice", func(t *testing.T) {
		_, err := parseLiveQuery(url.Values{"province": {"01"}, "bbox": {"1,2,3,4", "1,2,3,4"}})
		if err == nil || !strings.Contains(err.Error(), "parameter bbox: given 2 times") {
			t.Errorf("got error %v; want one saying bbox was given 2 times", err)
		}
	})
	t.Run("absent", func(t *testing.T) {
		p, err := parseLiveQuery(url.Values{"province": {"01"}})
		if err != nil || p.BBox != nil {
			t.Errorf("got bbox %v, error %v; want no bbox and no error", p.BBox, err)
		}
	})
}

func TestParseUnitsQuery(t *testing.T) {
	tests := []struct {
		query    string
		simplify float64
		wantErr  string
	}{
		{query: "province=01"},
		{query: "province=01&simplify=0.001", simplify: 0.001},
		{query: "province=01&simplify=0"},
		{query: "province=01&simplify=-1", wantErr: "parameter simplify"},
		{query: "province=01&simplify=1", wantErr: "parameter simplify"},
		{query: "province=01&simplify=NaN", wantErr: "parameter simplify"},
		{query: "province=01&simplify=x", wantErr: "parameter simplify"},
		{query: "simplify=0.1", wantErr: "parameter province: missing"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			p, err := parseUnitsQuery(q)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v; want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v; want none", err)
			}
			if p.Simplify != tt.simplify {
				t.Errorf("got simplify %v; want %v", p.Simplify, tt.simplify)
			}
		})
	}
}

// FuzzParseQuery throws raw query strings (untrusted) at both parsers: no
// panic, and whatever passes is well formed.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"province=01", "province=01&layers=air,traffic", "province=1", "layers=%ff", "province=01&simplify=0.01", "province=01&layers=,,",
		"province=01&bbox=105.75,20.95,105.9,21.1", "province=01&bbox=20.95,105.75,21.1,105.9", "province=01&bbox=179,0,-179,1",
		"province=01&bbox=NaN,0,1,1", "province=01&bbox=1,2,3", "province=01&bbox=0x1p-2,-90,180,90e0", "province=01&bbox=1,2,3,4&bbox=1,2,3,4", "province=01&batch=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		if p, err := parseLiveQuery(q); err == nil {
			if len(p.Province) != 2 {
				t.Fatalf("accepted province %q", p.Province)
			}
			if p.Layers != nil && len(p.Layers) == 0 {
				t.Fatalf("accepted an empty, non-nil layer list")
			}
			for _, l := range p.Layers {
				if !subjects.ValidKind(l) {
					t.Fatalf("accepted layer %q", l)
				}
			}
			if p.Batch && q.Get("batch") != "1" {
				t.Fatalf("batch on for %q", q["batch"])
			}
			if _, given := q["bbox"]; given != (p.BBox != nil) {
				t.Fatalf("bbox given %v but parsed %v", given, p.BBox)
			}
			if b := p.BBox; b != nil {
				for _, v := range [4]float64{b.MinLon, b.MinLat, b.MaxLon, b.MaxLat} {
					if math.IsNaN(v) || math.IsInf(v, 0) {
						t.Fatalf("accepted bbox %v with a value that is not finite", *b)
					}
				}
				if b.MinLon < -180 || b.MaxLon > 180 || b.MinLat < -90 || b.MaxLat > 90 || b.MinLon > b.MaxLon || b.MinLat > b.MaxLat {
					t.Fatalf("accepted bbox %v out of range or inverted", *b)
				}
				if !b.intersects(*b) {
					t.Fatalf("accepted bbox %v does not intersect itself", *b)
				}
			}
		} else if !errors.Is(err, ErrBadParam) {
			t.Fatalf("error %v does not wrap ErrBadParam", err)
		}
		if p, err := parseUnitsQuery(q); err == nil && (p.Simplify < 0 || p.Simplify > maxSimplify) {
			t.Fatalf("accepted simplify %v", p.Simplify)
		}
	})
}

// FuzzParseItemsQuery throws raw queries at the OGC items parser of every
// collection and at the alerts parser: no panic; a refusal is ErrBadParam
// (a 400); what passes has a limit within its bounds.
func FuzzParseItemsQuery(f *testing.F) {
	for _, s := range []string{"limit=10", "bbox=105,20,106,21&datetime=2025-07-01T00:00:00Z/..", "filter=" + url.QueryEscape("unit = '00070' AND aqi > 50"),
		"cursor=" + encodeCursor("a", []string{"2026-01-01T00:00:00Z", "01", "air"}), "cursor=%FF", "f=json&zoom=3", "province=01&active=true&limit=5",
		"filter-lang=cql2-text&filter=" + url.QueryEscape("S_INTERSECTS(geometry, POLYGON((105 20, 106 20, 106 21, 105 20)))")} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		for _, c := range pgread.Collections {
			fq, err := parseItemsQuery(c, q)
			if err != nil {
				if !errors.Is(err, ErrBadParam) {
					t.Fatalf("%s: refusal %v is not ErrBadParam", c.ID, err)
				}
				continue
			}
			if fq.Limit < 1 || fq.Limit > ogcMaxLimit {
				t.Fatalf("%s: accepted limit %d", c.ID, fq.Limit)
			}
		}
		p, err := parseAlertsQuery(q)
		if err != nil {
			if !errors.Is(err, ErrBadParam) {
				t.Fatalf("alerts: refusal %v is not ErrBadParam", err)
			}
			return
		}
		if p.Limit < 1 || p.Limit > alertsMaxLimit {
			t.Fatalf("alerts: accepted limit %d", p.Limit)
		}
	})
}
