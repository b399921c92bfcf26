package gateway

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/iochub/iochub/internal/subjects"
)

func TestParseLiveQuery(t *testing.T) {
	tests := []struct {
		query      string
		wantLayers []string
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
		})
	}
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
	for _, s := range []string{"province=01", "province=01&layers=air,traffic", "province=1", "layers=%ff", "province=01&simplify=0.01", "province=01&layers=,,"} {
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
		} else if !errors.Is(err, ErrBadParam) {
			t.Fatalf("error %v does not wrap ErrBadParam", err)
		}
		if p, err := parseUnitsQuery(q); err == nil && (p.Simplify < 0 || p.Simplify > maxSimplify) {
			t.Fatalf("accepted simplify %v", p.Simplify)
		}
	})
}
