package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestOriginAllowed(t *testing.T) {
	same := &Gateway{}
	listed := &Gateway{cfg: Config{AllowedOrigins: []string{"https://ioc.hanoi.gov.vn/"}}}
	anyOrigin := &Gateway{cfg: Config{AllowedOrigins: []string{"*"}}}
	for _, tc := range []struct {
		name   string
		g      *Gateway
		host   string
		origin string
		want   bool
	}{
		{"no origin (not a browser)", same, "hub:8080", "", true},
		{"same origin", same, "hub:8080", "http://hub:8080", true},
		{"same origin, other case", same, "HUB:8080", "http://hub:8080", true},
		{"other port", same, "hub:8080", "http://hub:9090", false},
		{"other host", same, "hub:8080", "https://evil.example.com", false},
		{"host as a prefix", same, "hub:8080", "http://hub:8080.evil.com", false},
		{"null", same, "hub:8080", "null", false},
		{"listed", listed, "hub:8080", "https://ioc.hanoi.gov.vn", true},
		{"listed only: same origin refused", listed, "hub:8080", "http://hub:8080", false},
		{"any", anyOrigin, "hub:8080", "https://evil.example.com", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://"+tc.host+"/v1/live", nil)
			r.Host = tc.host
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if got := tc.g.originAllowed(r); got != tc.want {
				t.Errorf("got %v; want %v", got, tc.want)
			}
		})
	}
}

func TestAuthenticateAnswers(t *testing.T) {
	g := &Gateway{deps: Deps{Auth: testAuth(t, nil)}}
	for _, tc := range []struct {
		name, authz, method, origin string
		want                        int
	}{
		{"none", "", "GET", "", 401},
		{"wrong", "Bearer nope", "GET", "", 401},
		{"basic", "Basic dGVzdDo=", "GET", "", 401},
		{"right", "Bearer " + testToken, "GET", "", 0},
		{"change from a foreign origin", "Bearer " + testToken, "POST", "https://evil.example.com", 403},
		{"read from a foreign origin (the data is not changed; CORS keeps it from the page)", "Bearer " + testToken, "GET", "https://evil.example.com", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(tc.method, "/v1/units", nil)
			if tc.authz != "" {
				r.Header.Set("Authorization", tc.authz)
			}
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			_, ok := g.authenticate(w, r)
			if ok != (tc.want == 0) || tc.want != 0 && w.Code != tc.want {
				t.Errorf("got ok %v, %d; want %d", ok, w.Code, tc.want)
			}
			if tc.want == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}
