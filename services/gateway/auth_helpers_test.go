package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/iochub/iochub/internal/auth"
)

// testToken is the static admin-of-everything token of the tests' authenticator.
const testToken = "test-admin-token"

// testAuth is an authenticator knowing testToken (admin of every province)
// and, when loader is not nil, the identities it loads.
func testAuth(t testing.TB, loader auth.Loader) *auth.Authenticator {
	t.Helper()
	a, err := auth.New(auth.Config{
		Static: []auth.StaticToken{{Token: testToken, Principal: auth.Principal{ID: "test-admin", Name: "tests", Role: auth.RoleAdmin, Scopes: []string{auth.AllScopes}}}},
	}, loader, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// withTestToken signs every request that carries no credentials in as
// testToken: the tests of what the endpoints do, not of who may call them
// (auth_test.go tests that), keep their plain http.Get and Dial.
func withTestToken(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			if _, err := r.Cookie(auth.CookieName); err != nil {
				r.Header.Set("Authorization", "Bearer "+testToken)
			}
		}
		h.ServeHTTP(w, r)
	})
}

// serveGateway serves g's routes over httptest until the test ends, then
// closes both; each wrap (withTestToken, ValidURL…) wraps the routes in
// turn, the first innermost.
func serveGateway(tb testing.TB, g *Gateway, wrap ...func(http.Handler) http.Handler) *httptest.Server {
	tb.Helper()
	mux := http.NewServeMux()
	g.Register(mux)
	var h http.Handler = mux
	for _, w := range wrap {
		h = w(h)
	}
	srv := httptest.NewServer(h)
	tb.Cleanup(func() {
		g.Close()
		srv.Close()
	})
	return srv
}
