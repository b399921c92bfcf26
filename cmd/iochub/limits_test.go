package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
	"github.com/iochub/iochub/services/ingest"
	"github.com/iochub/iochub/web"
)

// serveTest runs h on newHTTPServer(h, cfg) on loopback and returns its address.
func serveTest(t *testing.T, h http.Handler, cfg config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(h, cfg)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// TestServerNoSniff: every answer of the hub's HTTP servers, an API's
// JSON as well as the wall's files, says X-Content-Type-Options: nosniff
// (the gateway's static handler no longer sets it: noSniff does, whatever
// the handler).
func TestServerNoSniff(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/reports", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"text":"<script>alert(1)</script>"}`)
	})
	mux.Handle("GET /", http.FileServerFS(web.FS()))
	addr := serveTest(t, mux, defaults())
	for _, path := range []string{"/v1/reports", "/", "/app.js", "/vendor/maplibre-gl-csp.js", "/missing.js"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q; want nosniff", path, got)
		}
	}
}

// TestServerRefusesNonText: every server of the hub answers 400 to a path
// or a query parameter that is not UTF-8 or holds a NUL, naming it, before
// any handler runs (a handler would hand it to the database, whose refusal
// read as the database failing: 503, retry).
func TestServerRefusesNonText(t *testing.T) {
	var reached atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/history", func(http.ResponseWriter, *http.Request) { reached.Add(1) })
	mux.HandleFunc("GET /v1/alerts/{id}", func(http.ResponseWriter, *http.Request) { reached.Add(1) })
	addr := serveTest(t, mux, defaults())
	for _, tc := range []struct {
		path string
		want int
		says string
	}{
		{"/v1/history?entity=%00&layer=air", 400, "query parameter entity holds a NUL byte (byte 0)"},
		{"/v1/history?entity=a%FFb", 400, "query parameter entity is not UTF-8 (byte 1)"},
		{"/v1/history?%FF=1", 400, "a query parameter's name is not UTF-8"},
		{"/v1/alerts/%C3%28", 400, "the path is not UTF-8"},
		{"/v1/history?entity=tr%E1%BA%A1m-1", 200, ""}, // trạm-1: UTF-8 goes through
		{"/v1/alerts/a1", 200, ""},
	} {
		resp, err := http.Get("http://" + addr + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != tc.want || !strings.Contains(string(b), tc.says) {
			t.Errorf("%s = %d %s; want %d saying %q", tc.path, resp.StatusCode, b, tc.want, tc.says)
		}
	}
	if n := reached.Load(); n != 2 {
		t.Errorf("handlers reached %d times; want 2 (the text requests)", n)
	}
}

// trickle writes head, then one byte every second until the server closes
// the connection, and returns how long after the start the server did.
func trickle(t *testing.T, addr, head string) time.Duration {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := conn.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // the test's own guard
		_, _ = io.Copy(io.Discard, conn)                           // returns when the server closes
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-closed:
			return time.Since(start)
		case <-tick.C:
			_, _ = conn.Write([]byte("x"))
		}
	}
}

// TestServerCutsSlowClients: headers or a body at 1 byte/s end within the
// bounds, and a WebSocket outlives them.
func TestServerCutsSlowClients(t *testing.T) {
	cfg := defaults()
	cfg.HeaderTimeout, cfg.BodyTimeout, cfg.IdleTimeout = time.Second, 2*time.Second, time.Second
	var mu sync.Mutex
	var bodyErr error
	mux := http.NewServeMux()
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		mu.Lock()
		bodyErr = err
		mu.Unlock()
	})
	up := websocket.Upgrader{}
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil || c.WriteMessage(mt, msg) != nil {
				return
			}
		}
	})
	addr := serveTest(t, mux, cfg)

	t.Run("slow headers", func(t *testing.T) {
		if took := trickle(t, addr, "POST /echo HTTP/1.1\r\nHost: x\r\nX-Slow: "); took > cfg.HeaderTimeout+3*time.Second {
			t.Errorf("closed after %s; want within %s", took, cfg.HeaderTimeout)
		}
	})
	t.Run("slow body", func(t *testing.T) {
		took := trickle(t, addr, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
		if took < cfg.BodyTimeout || took > cfg.BodyTimeout+3*time.Second {
			t.Errorf("closed after %s; want soon after %s", took, cfg.BodyTimeout)
		}
		mu.Lock()
		defer mu.Unlock()
		var ne net.Error
		if !errors.As(bodyErr, &ne) || !ne.Timeout() {
			t.Errorf("handler's read error: %v; want a timeout", bodyErr)
		}
	})
	t.Run("large headers", func(t *testing.T) {
		req, _ := http.NewRequest("POST", "http://"+addr+"/echo", strings.NewReader("x"))
		req.Header.Set("X-Big", strings.Repeat("a", 2*maxHeaderBytes))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("got %d; want 431", resp.StatusCode)
		}
	})
	t.Run("websocket outlives the bounds", func(t *testing.T) {
		ws, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		defer ws.Close()
		// Waiting past every bound is the point of this test.
		time.Sleep(cfg.BodyTimeout + cfg.IdleTimeout + cfg.HeaderTimeout)
		if err := ws.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != "still here" {
			t.Errorf("echo after the bounds: %q %v; want the message back", msg, err)
		}
	})
}

// TestOpsListenerAndIngestLimits runs the ingest through the wiring of serve
// with --ops-http and small limits.
func TestOpsListenerAndIngestLimits(t *testing.T) {
	n := testenv.NATS(t)
	db := testenv.PostGISWithUnits(t)
	cfg := defaults()
	cfg.HTTP, cfg.OpsHTTP = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Target, cfg.DevToken, cfg.LogLevel = "ingest", devToken, "warn"
	cfg.BodyTimeout, cfg.Ingest.Limits.SourceRate, cfg.Ingest.Limits.SourceBurst = time.Second, 0.01, 3
	ready, opsReady := make(chan string, 1), make(chan string, 1)
	roles := testkit.Start(t, "roles", func(ctx context.Context) error {
		return serveRoles(ctx, roleDeps{cfg: cfg, log: cfg.logger(io.Discard), nc: n.Conn, js: n.JS, pool: db.Pool, ready: ready, opsReady: opsReady})
	})
	var base, ops string
	select {
	case base = <-ready:
		ops = <-opsReady
	case <-roles.Done():
		t.Fatalf("roles exited at start: %v", roles.Err())
	case <-time.After(30 * time.Second):
		t.Fatal("roles did not start in 30 s")
	}

	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(ops + "/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("ops /metrics: %d; want 200 with metrics", code)
	}
	if code, _ := get(base + "/metrics"); code != http.StatusNotFound {
		t.Errorf("public /metrics with --ops-http: %d; want 404", code)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _ := get(base + p); code != 200 {
			t.Errorf("public %s: %d; want 200", p, code)
		}
		if code, _ := get(ops + p); code != 200 {
			t.Errorf("ops %s: %d; want 200", p, code)
		}
	}

	// A body at 1 byte/s: 408 from the ingest within the bound.
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	_, _ = conn.Write([]byte("POST /v1/feeds/air HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + devToken +
		"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n["))
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("slow body: %v", err)
	}
	resp.Body.Close()
	if took := time.Since(start); resp.StatusCode != http.StatusRequestTimeout || took > cfg.BodyTimeout+3*time.Second {
		t.Errorf("slow body: %d after %s; want 408 within %s", resp.StatusCode, took, cfg.BodyTimeout)
	}

	// Burst 3: the slow body took one token, two more pass, the next is refused.
	for i := range 2 {
		if code, _, raw := postBody(t, base+"/v1/feeds/air", devToken, "application/json", []byte("[]")); code != http.StatusBadRequest {
			t.Fatalf("request %d: %d %s; want 400 (no items)", i, code, raw)
		}
	}
	req, _ := http.NewRequest("POST", base+"/v1/feeds/air", strings.NewReader("[]"))
	req.Header.Set("Authorization", "Bearer "+devToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// One token every 100 s, and the slow body's went a few seconds ago.
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != http.StatusTooManyRequests || ra < 80 || ra > 100 {
		t.Errorf("past the burst: %d Retry-After %q; want 429 Retry-After about 100", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if _, body := get(ops + "/metrics"); !strings.Contains(body, `iochub_ingest_limited_total{reason="source_rate"} 1`) {
		t.Error("ops /metrics does not count the refused request")
	}
}

func TestConfigLimitsValidate(t *testing.T) {
	for _, args := range [][]string{
		{"--source-rate", "-1"}, {"--body-timeout", "-1s"}, {"--max-concurrent", "-2"},
		{"--source-rate", "5", "--source-burst", "0"}, {"--ops-http", "nocolon"},
	} {
		_, _, err := runCLI(t, append([]string{"serve", "--target", "gateway", "--check-config"}, args...)...)
		// "-name": the flag package's own errors name a flag with one dash.
		if want := strings.TrimPrefix(args[len(args)-2], "-"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: got %v; want an error naming %s", args, err, want)
		}
	}
	t.Setenv("IOCHUB_SOURCE_RATE", "7.5")
	out, _, err := runCLI(t, "serve", "--target", "gateway", "--check-config", "--source-concurrency", "0")
	// 0 (no limit) on the command line is a negative value (off) in ingest.Limits.
	if err != nil || !strings.Contains(out, "SourceRate:7.5") || !strings.Contains(out, "SourceConcurrency:-1") {
		t.Errorf("limits from env and flags: %q %v", out, err)
	}
	out, _, err = runCLI(t, "serve", "--target", "gateway", "--check-config", "--source-rate", "0", "--max-concurrent", "0")
	if err != nil || !strings.Contains(out, "SourceRate:-1") || !strings.Contains(out, "MaxConcurrent:-1") {
		t.Errorf("--source-rate 0 --max-concurrent 0: %q %v; want both off (-1) in the ingest's limits", out, err)
	}
	if got := ingest.OffDuration(0); got >= 0 {
		t.Errorf("--body-timeout 0 maps to %s; want negative (off) in the ingest", got)
	}
}
