package gateway

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/testenv"
)

// TestOpenLimiterOff: a negative OpenRate means no limit (the buckets
// themselves are tested in internal/keyrate).
func TestOpenLimiterOff(t *testing.T) {
	if newOpenLimiter(Config{OpenRate: -1, OpenBurst: 1}) != nil {
		t.Error("a negative rate has a limiter")
	}
	l := newOpenLimiter(Config{OpenRate: 0.001, OpenBurst: 1})
	if ok, _ := l.Allow("a", time.Now()); !ok {
		t.Fatal("the first opening of a burst of 1 refused")
	}
	if ok, _ := l.Allow("a", time.Now()); ok {
		t.Error("an opening past a burst of 1 allowed")
	}
}

// TestOpenRatePerIdentity: an identity that opens live views and event
// streams faster than Config.OpenRate after its burst is refused with 429
// and Retry-After, live views and streams counting together, even though it
// closed each before opening the next (so the counts per identity never
// refuse it); another identity is not held back by it.
func TestOpenRatePerIdentity(t *testing.T) {
	n := testenv.NATS(t)
	a, err := auth.New(auth.Config{Static: []auth.StaticToken{
		{Token: "token-a", Principal: auth.Principal{ID: "a", Role: auth.RoleViewer, Scopes: []string{"01"}}},
		{Token: "token-b", Principal: auth.Principal{ID: "b", Role: auth.RoleViewer, Scopes: []string{"01"}}},
	}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	g, err := New(Config{OpenRate: 0.001, OpenBurst: 3}, Deps{JS: n.JS, Metrics: reg, Auth: a})
	if err != nil {
		t.Fatal(err)
	}
	srv := serveGateway(t, g)
	ws := "ws" + strings.TrimPrefix(srv.URL, "http")
	live, stream := ws+"/v1/live?province=01", ws+"/v1/streams?subject=ioc.feed.01.>"
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	open := func(url, tok string) (*http.Response, error) {
		c, resp, err := websocket.DefaultDialer.Dial(url, bearer(tok))
		if err == nil {
			c.Close()
		}
		return resp, err
	}
	for i, url := range []string{live, stream, live} {
		if resp, err := open(url, "token-a"); err != nil {
			t.Fatalf("opening %d of a's burst of 3 (%s): %v %v", i+1, url, err, resp)
		}
	}
	for _, c := range []struct{ url, endpoint string }{{live, "live"}, {stream, "streams"}} {
		resp, err := open(c.url, "token-a")
		if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("a's opening of %s past its burst: %v %v; want 429", c.endpoint, err, resp)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || secs < 1 {
			t.Errorf("429 of %s has Retry-After %q; want whole seconds", c.endpoint, resp.Header.Get("Retry-After"))
		}
		if !strings.Contains(string(b), "identity a opens live views and event streams faster than 0.001 per second (bursts of 3)") {
			t.Errorf("429 of %s says %s; want the identity and the limit named", c.endpoint, b)
		}
		if got := testutil.ToFloat64(g.m.opensLimited.WithLabelValues(c.endpoint)); got != 1 {
			t.Errorf("opens_limited_total{endpoint=%q} = %v; want 1", c.endpoint, got)
		}
	}
	for _, url := range []string{live, stream} {
		if resp, err := open(url, "token-b"); err != nil {
			t.Fatalf("identity b refused after a was limited (%s): %v %v", url, err, resp)
		}
	}
}
