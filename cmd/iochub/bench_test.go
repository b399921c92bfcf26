package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/iochub/iochub/internal/testenv"
)

// BenchmarkEndToEndLatency measures the time from the POST of one air
// observation to the arrival of its state on a live WebSocket, through the
// ingest, FEEDS, the aggregator (PostGIS commit), STATE and the gateway, at a
// fixed rate of 50 observations per second. Compare with
// BenchmarkWebSocketEchoLatency, a bare WebSocket round trip on the same machine.
func BenchmarkEndToEndLatency(b *testing.B) {
	n := testenv.NATS(b)
	db := testenv.PostGISWithUnits(b)
	h := startHubTB(b, "all", n, db, func(c *config) { c.Ingest.Limits.SourceRate = -1 }) // 50 posts/s from one source: no rate limit in the way
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(h.url, "http")+"/v1/live?province=01", devHeader())
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	defer ws.Close()

	var mu sync.Mutex
	sent := map[string]time.Time{}
	var lat []time.Duration
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			now := time.Now()
			var f liveFrame
			if json.Unmarshal(msg, &f) != nil || f.Type != "state" {
				continue
			}
			var ft feature
			if json.Unmarshal(f.Entity, &ft) != nil {
				continue
			}
			mu.Lock()
			if t0, ok := sent[ft.Properties.EntityID]; ok {
				lat = append(lat, now.Sub(t0))
				delete(sent, ft.Properties.EntityID)
			}
			mu.Unlock()
		}
	}()

	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		<-tick.C
		station := fmt.Sprintf("lat-%d", i)
		item := airItemTB(b, "obs-"+station, station, 105.80+float64(i%50)*0.002, 21.02, at)
		mu.Lock()
		sent[station] = time.Now()
		mu.Unlock()
		if code, _, raw := post(b, h.url+"/v1/feeds/air", devToken, []any{item}); code != http.StatusAccepted {
			b.Fatalf("POST = %d %s", code, raw)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		left := len(sent)
		mu.Unlock()
		if left == 0 {
			break
		}
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	if len(sent) > 0 {
		b.Fatalf("%d of %d observations never reached the live view", len(sent), b.N)
	}
	reportPercentiles(b, lat)
}

// BenchmarkWebSocketEchoLatency is the baseline: a bare gorilla/websocket echo
// round trip on loopback, at the same fixed rate.
func BenchmarkWebSocketEchoLatency(b *testing.B) {
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if c.WriteMessage(mt, msg) != nil {
				return
			}
		}
	}))
	defer srv.Close()
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	defer ws.Close()
	payload := []byte(`{"type":"state","entity":{"type":"Feature","id":"air/x","geometry":{"type":"Point","coordinates":[105.8,21.02]},"properties":{"layer":"air"}}}`)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		<-tick.C
		t0 := time.Now()
		if err := ws.WriteMessage(websocket.TextMessage, payload); err != nil {
			b.Fatal(err)
		}
		if _, _, err := ws.ReadMessage(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(p(0.50), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}
