package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/testenv"
)

type unitsFC struct {
	Type     string `json:"type"`
	Features []struct {
		Type     string `json:"type"`
		ID       string `json:"id"`
		Geometry struct {
			Type        string          `json:"type"`
			Coordinates [][][][]float64 `json:"coordinates"`
		} `json:"geometry"`
		Properties struct {
			Code       string  `json:"code"`
			Level      string  `json:"level"`
			ParentCode *string `json:"parentCode"`
			Name       string  `json:"name"`
			NameEN     string  `json:"nameEn"`
		} `json:"properties"`
	} `json:"features"`
}

func getUnits(t *testing.T, base, query string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(base + "/v1/units?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestUnits(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	n := testenv.NATS(t)
	g, err := New(Config{}, Deps{JS: n.JS, Pool: db.Pool, Metrics: prometheus.NewRegistry(), Auth: testAuth(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	g.units.now = func() time.Time { return now } // the test moves the cache's clock
	srv := serveGateway(t, g, withTestToken)

	resp, body := getUnits(t, srv.URL, "province=01")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/geo+json" {
		t.Errorf("content type %q; want application/geo+json", ct)
	}
	var fc unitsFC
	if err := json.Unmarshal(body, &fc); err != nil {
		t.Fatal(err)
	}
	if fc.Type != "FeatureCollection" || len(fc.Features) != 127 {
		t.Fatalf("got %s with %d features; want a FeatureCollection of 1 province + 126 wards", fc.Type, len(fc.Features))
	}
	first := fc.Features[0]
	if first.ID != "01" || first.Properties.Level != "province" || first.Properties.ParentCode != nil || first.Properties.Name == "" {
		t.Errorf("first feature %+v; want province 01 without parent", first.Properties)
	}
	for _, f := range fc.Features[1:] {
		if f.ID != f.Properties.Code || len(f.ID) != 5 || f.Properties.ParentCode == nil || *f.Properties.ParentCode != "01" {
			t.Fatalf("ward %s: properties %+v; want a 5-digit code with parent 01", f.ID, f.Properties)
		}
	}
	vertices := 0
	for _, f := range fc.Features {
		if f.Geometry.Type != "MultiPolygon" {
			t.Fatalf("%s: geometry %s; want MultiPolygon", f.ID, f.Geometry.Type)
		}
		for _, poly := range f.Geometry.Coordinates {
			for i, ring := range poly {
				flat := make([]float64, 0, 2*len(ring))
				for _, c := range ring {
					flat = append(flat, c[0], c[1])
				}
				vertices += len(ring)
				if a := signedArea(flat, 2); (i == 0) != (a > 0) {
					t.Fatalf("%s: ring %d has signed area %v; want outer rings counter-clockwise, holes clockwise", f.ID, i, a)
				}
			}
		}
	}

	t.Run("simplify drops vertices", func(t *testing.T) {
		_, body := getUnits(t, srv.URL, "province=01&simplify=0.01")
		var s unitsFC
		if err := json.Unmarshal(body, &s); err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, f := range s.Features {
			for _, poly := range f.Geometry.Coordinates {
				for _, ring := range poly {
					got += len(ring)
				}
			}
		}
		if len(s.Features) != 127 || got >= vertices {
			t.Errorf("simplified: %d features, %d vertices; want 127 and fewer than %d", len(s.Features), got, vertices)
		}
	})

	t.Run("answers are cached for the TTL", func(t *testing.T) {
		if _, err := db.Pool.Exec(context.Background(), `UPDATE admin_unit SET name_vi = 'Đổi tên' WHERE code = '01'`); err != nil {
			t.Fatal(err)
		}
		if _, body := getUnits(t, srv.URL, "province=01"); strings.Contains(string(body), "Đổi tên") {
			t.Errorf("within the TTL the answer changed")
		}
		now = now.Add(time.Minute + time.Second)
		if _, body := getUnits(t, srv.URL, "province=01"); !strings.Contains(string(body), "Đổi tên") {
			t.Errorf("after the TTL the answer did not change")
		}
	})

	t.Run("VN and its provinces, the national wall's map", func(t *testing.T) {
		if err := schema.EnsureNational(context.Background(), db.Pool); err != nil { // what iochub dev and units import do
			t.Fatal(err)
		}
		resp, body := getUnits(t, srv.URL, "province=VN&simplify=0.01")
		var vn unitsFC
		if err := json.Unmarshal(body, &vn); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d %s, %v", resp.StatusCode, body, err)
		}
		var want int
		if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM admin_unit WHERE level = 'province' AND valid_to IS NULL`).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if len(vn.Features) != want+1 || vn.Features[0].ID != "VN" || want < 34 {
			t.Fatalf("got %d features, first %s; want VN then its %d provinces (34)", len(vn.Features), vn.Features[0].ID, want)
		}
		for _, f := range vn.Features[1:] {
			if f.Properties.Level != "province" || f.Properties.ParentCode == nil || *f.Properties.ParentCode != "VN" || f.Geometry.Type != "MultiPolygon" {
				t.Fatalf("%s: %+v; want a province of VN with its boundary", f.ID, f.Properties)
			}
		}
	})

	for _, tt := range []struct {
		query  string
		status int
	}{
		{"province=99", http.StatusNotFound},
		{"province=VN&province=VN", http.StatusBadRequest},
		{"province=VN&at=2025-06-01", http.StatusBadRequest},
		{"province=1", http.StatusBadRequest},
		{"province=01&simplify=5", http.StatusBadRequest},
		{"", http.StatusBadRequest},
	} {
		t.Run(tt.query, func(t *testing.T) {
			resp, body := getUnits(t, srv.URL, tt.query)
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("status %d (%s) %s; want %d problem", resp.StatusCode, resp.Header.Get("Content-Type"), body, tt.status)
			}
		})
	}
}

func TestUnitsWithoutDatabase(t *testing.T) {
	n := testenv.NATS(t)
	g, err := New(Config{}, Deps{JS: n.JS, Auth: testAuth(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	mux := http.NewServeMux()
	g.Register(mux)
	srv := httptest.NewServer(withTestToken(mux))
	defer srv.Close()
	if resp, _ := getUnits(t, srv.URL, "province=01"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d; want 503", resp.StatusCode)
	}
}
