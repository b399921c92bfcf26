package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func TestStatic(t *testing.T) {
	app := fstest.MapFS{
		"index.html":         {Data: []byte("<!doctype html><title>IOC</title>")},
		"app.js":             {Data: []byte("console.log(1)")},
		"style.css":          {Data: []byte("body{}")},
		"data/units.geojson": {Data: []byte(`{"type":"FeatureCollection","features":[]}`)},
		"fonts/x.woff2":      {Data: []byte("wOF2")},
		"empty/.keep":        {Data: nil},
	}
	mux := http.NewServeMux()
	mux.Handle("GET /", staticHandler(app))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tests := []struct {
		path, status, ctype, cache, body string
	}{
		{"/", "200", "text/html; charset=utf-8", "no-cache", "<!doctype html>"},
		{"/app.js", "200", "text/javascript; charset=utf-8", "public, max-age=3600", "console.log"},
		{"/style.css", "200", "text/css; charset=utf-8", "public, max-age=3600", "body"},
		{"/data/units.geojson", "200", "application/geo+json", "public, max-age=3600", "FeatureCollection"},
		{"/fonts/x.woff2", "200", "font/woff2", "public, max-age=3600", "wOF2"},
		{"/missing.js", "404", "application/problem+json", "no-store", "no such file"},
		{"/empty/", "404", "application/problem+json", "no-store", "no such file"},
		{"/../../etc/passwd", "404", "application/problem+json", "no-store", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := resp.Status[:3]; got != tt.status {
				t.Errorf("status %s; want %s", got, tt.status)
			}
			if got := resp.Header.Get("Content-Type"); got != tt.ctype {
				t.Errorf("content type %q; want %q", got, tt.ctype)
			}
			if got := resp.Header.Get("Cache-Control"); got != tt.cache {
				t.Errorf("cache control %q; want %q", got, tt.cache)
			}
			if tt.status == "200" {
				csp := ""
				if strings.HasPrefix(tt.ctype, "text/html") {
					csp = "frame-ancestors 'none'"
				}
				if got := resp.Header.Get("Content-Security-Policy"); got != csp {
					t.Errorf("Content-Security-Policy %q; want %q", got, csp)
				}
			}
			if !strings.Contains(string(b), tt.body) {
				t.Errorf("body %q; want it to contain %q", b, tt.body)
			}
		})
	}
}
