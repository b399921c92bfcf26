package gateway

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/time/rate"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/testenv"
)

func TestOpenLimiterBuckets(t *testing.T) {
	l := newOpenLimiter(Config{OpenRate: 1, OpenBurst: 2})
	t0 := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	for i := range 2 {
		if ok, _ := l.allow("a", t0); !ok {
			t.Fatalf("opening %d of a burst of 2 refused", i+1)
		}
	}
	ok, d := l.allow("a", t0)
	if ok || d <= 0 || d > time.Second {
		t.Fatalf("third opening at once: ok %v, retry %s; want refused, retry within 1s", ok, d)
	}
	if ok, _ := l.allow("b", t0); !ok {
		t.Fatal("another identity's first opening refused: the buckets are not per identity")
	}
	if ok, _ := l.allow("a", t0.Add(time.Second)); !ok {
		t.Fatal("an opening a second later refused at 1 per second")
	}
	if ok, _ := l.allow("a", t0.Add(time.Second)); ok {
		t.Fatal("a second opening in that second allowed")
	}

	// A full map forgets the buckets a new one would equal (full) first,
	// then the least recently used: never an identity's empty bucket while
	// a full one can go.
	l = newOpenLimiter(Config{OpenRate: 1, OpenBurst: 2})
	l.max = 3
	l.allow("idle", t0.Add(-10*time.Second)) // full again at t0
	l.allow("idle-too", t0.Add(-9*time.Second))
	l.allow("drained", t0)
	l.allow("drained", t0)
	if ok, _ := l.allow("new", t0); !ok {
		t.Fatal("a new identity refused")
	}
	if _, ok := l.buckets["idle"]; ok || len(l.buckets) != 2 {
		t.Errorf("buckets %v; want every full one forgotten when the map was full (drained and new kept)", l.buckets)
	}
	l.max = 2
	if _, ok := l.buckets["drained"]; !ok {
		t.Fatal("the drained bucket was forgotten while a full one could go")
	}
	if ok, _ := l.allow("drained", t0); ok {
		t.Error("a drained bucket allowed an opening: it was forgotten (and so refilled)")
	}
	// Past the bound with no full bucket, the least recently used goes.
	t1 := t0.Add(time.Millisecond)
	l.allow("new", t1)
	l.allow("new", t1)
	if ok, _ := l.allow("third", t1); !ok {
		t.Fatal("a third identity refused")
	}
	if _, ok := l.buckets["drained"]; ok || len(l.buckets) > 2 {
		t.Errorf("buckets %v; want the least recently used (drained) forgotten, at most 2 kept", l.buckets)
	}

	if newOpenLimiter(Config{OpenRate: -1, OpenBurst: 1}) != nil {
		t.Error("a negative rate has a limiter")
	}
	var none *openLimiter
	if ok, _ := none.allow("a", t0); !ok {
		t.Error("no limiter refused")
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

// BenchmarkOpenLimiterAllow: what an opening pays for the per-identity
// bucket (a map look-up under a mutex and a reservation), beside its
// baseline, one bare rate.Limiter reservation; 1,000 identities.
func BenchmarkOpenLimiterAllow(b *testing.B) {
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("id_%016x", i)
	}
	now := time.Now()
	b.Run("per-identity", func(b *testing.B) {
		l := newOpenLimiter(Config{OpenRate: 1e9, OpenBurst: 1 << 30})
		i := 0
		for b.Loop() {
			l.allow(ids[i%len(ids)], now)
			i++
		}
	})
	b.Run("bare-limiter", func(b *testing.B) {
		l := rate.NewLimiter(1e9, 1<<30)
		for b.Loop() {
			r := l.ReserveN(now, 1)
			_ = r.DelayFrom(now)
		}
	})
}
