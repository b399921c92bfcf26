package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(loadClientsEnv); spec != "" {
		os.Exit(runLoadClients(spec)) // the clients of BenchmarkFanoutLoad
	}
	testenv.Main(m)
}

// hangGuard bounds every wait in these tests so a bug fails the test instead
// of hanging it; it is never what a test asserts.
const hangGuard = 2 * time.Minute

type liveEnv struct {
	nats *testenv.NATSEnv
	g    *Gateway
	srv  *httptest.Server
}

func newLiveEnv(t *testing.T, cfg Config) *liveEnv {
	t.Helper()
	n := testenv.NATS(t)
	g, err := New(cfg, Deps{JS: n.JS, Metrics: prometheus.NewRegistry(), Auth: testAuth(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	srv := serveGateway(t, g, withTestToken)
	return &liveEnv{nats: n, g: g, srv: srv}
}

func (e *liveEnv) wsURL(query string) string {
	return "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/v1/live?" + query
}

func (e *liveEnv) dial(t *testing.T, query string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(e.wsURL(query), nil)
	if err != nil {
		t.Fatalf("dialing %s: %v (response %v)", query, err, resp)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// stateMsg is the STATE message the aggregator would publish for st.
func stateMsg(t testing.TB, st *iocv1.EntityState) *nats.Msg {
	body, err := proto.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(subjects.State(st.Province, st.Layer, st.EntityId))
	m.Data = body
	m.Header = ce.Event{
		ID: "evt-" + st.EntityId, Source: ce.SourceURN(st.Province, st.Unit),
		Type: ce.StateType(st.Layer), Subject: st.EntityId, Time: st.UpdatedAt.AsTime(),
	}.Header()
	return m
}

func publish(t testing.TB, js jetstream.JetStream, sts ...*iocv1.EntityState) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	for _, st := range sts {
		if _, err := js.PublishMsg(ctx, stateMsg(t, st)); err != nil {
			t.Fatalf("publishing state: %v", err)
		}
	}
}

// publishAsync publishes many states with JetStream async publish and waits for every ack.
func publishAsync(t testing.TB, js jetstream.JetStream, sts []*iocv1.EntityState) {
	t.Helper()
	for i, st := range sts {
		if _, err := js.PublishMsgAsync(stateMsg(t, st)); err != nil {
			t.Fatalf("publishing state: %v", err)
		}
		if i%1000 == 999 || i == len(sts)-1 {
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(hangGuard):
				t.Fatal("async publish did not complete")
			}
		}
	}
}

type frame struct {
	Type     string           `json:"type"`
	ID       string           `json:"id"` // of a remove frame
	Province string           `json:"province"`
	Entities []map[string]any `json:"entities"`
	Entity   map[string]any   `json:"entity"`
}

func readFrame(t testing.TB, c *websocket.Conn) frame {
	t.Helper()
	f, err := tryReadFrame(c)
	if err != nil {
		t.Fatalf("reading frame: %v", err)
	}
	return f
}

// readMessage reads c's next message, failing t after hangGuard.
func readMessage(t testing.TB, c *websocket.Conn) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(hangGuard))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("reading frame: %v", err)
	}
	return b
}

func tryReadFrame(c *websocket.Conn) (frame, error) {
	_ = c.SetReadDeadline(time.Now().Add(hangGuard))
	typ, b, err := c.ReadMessage()
	if err != nil {
		return frame{}, err
	}
	if typ != websocket.TextMessage {
		return frame{}, fmt.Errorf("got message type %d; want text", typ)
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		return frame{}, fmt.Errorf("decoding frame %s: %w", b, err)
	}
	return f, nil
}

// obsOf is the observation id of a Feature.
func obsOf(f map[string]any) string {
	p, _ := f["properties"].(map[string]any)
	o, _ := p["observation"].(map[string]any)
	s, _ := o["id"].(string)
	return s
}

func idOf(f map[string]any) string { s, _ := f["id"].(string); return s }

func TestLiveSnapshotThenDeltas(t *testing.T) {
	e := newLiveEnv(t, Config{})
	// 300 stations, 3 versions each, a segment, an alert, and a station of
	// another province that must not show up.
	var sts []*iocv1.EntityState
	for v := 0; v < 3; v++ {
		for i := 0; i < 300; i++ {
			sts = append(sts, airState(t, fmt.Sprintf("st-%03d", i), v, float64(v)))
		}
	}
	other := airState(t, "hcm-1", 0, 1)
	other.Province = "79"
	sts = append(sts, trafficState(t, "seg-1", 0), alertState(t, "cap-1", cwSquare(105, 21)), other)
	publishAsync(t, e.nats.JS, sts)

	c := e.dial(t, "province=01")
	snap := readFrame(t, c)
	if snap.Type != "snapshot" || snap.Province != "01" {
		t.Fatalf("first frame type %q province %q; want snapshot of 01", snap.Type, snap.Province)
	}
	if got, want := len(snap.Entities), 302; got != want {
		t.Fatalf("snapshot has %d entities; want %d", got, want)
	}
	seen := map[string]string{}
	for _, f := range snap.Entities {
		seen[idOf(f)] = obsOf(f)
	}
	for i := 0; i < 300; i++ {
		id := fmt.Sprintf("st-%03d", i)
		if got, want := seen["air/"+id], obsID(id, 2); got != want {
			t.Fatalf("snapshot state of %s is %q; want the newest %q", id, got, want)
		}
	}
	if _, ok := seen["alert/cap-1"]; !ok {
		t.Errorf("snapshot lacks alert/cap-1")
	}
	if _, ok := seen["air/hcm-1"]; ok {
		t.Errorf("snapshot of 01 has a station of province 79")
	}

	// Deltas arrive one per change, in publish order.
	publish(t, e.nats.JS, airState(t, "st-007", 3, 9), trafficState(t, "seg-1", 1), airState(t, "new", 0, 1))
	for _, want := range []struct{ id, obs string }{
		{"air/st-007", obsID("st-007", 3)}, {"traffic/seg-1", obsID("seg-1", 1)}, {"air/new", obsID("new", 0)},
	} {
		f := readFrame(t, c)
		if f.Type != "state" || idOf(f.Entity) != want.id || obsOf(f.Entity) != want.obs {
			t.Fatalf("got %s frame of %s at %s; want state of %s at %s", f.Type, idOf(f.Entity), obsOf(f.Entity), want.id, want.obs)
		}
	}
}

func TestLiveEmptyProvince(t *testing.T) {
	e := newLiveEnv(t, Config{})
	c := e.dial(t, "province=02")
	if f := readFrame(t, c); f.Type != "snapshot" || len(f.Entities) != 0 || f.Entities == nil {
		t.Fatalf("got %+v; want an empty snapshot with entities []", f)
	}
	st := airState(t, "x", 0, 1)
	st.Province = "02"
	publish(t, e.nats.JS, st)
	if f := readFrame(t, c); f.Type != "state" || idOf(f.Entity) != "air/x" {
		t.Fatalf("got %s of %s; want state of air/x", f.Type, idOf(f.Entity))
	}
}

func TestLiveLayersFilter(t *testing.T) {
	e := newLiveEnv(t, Config{})
	publish(t, e.nats.JS, airState(t, "a1", 0, 1), trafficState(t, "t1", 0), alertState(t, "c1"))
	tests := []struct {
		layers string
		snap   []string
		delta  string // the first delta after publishing traffic t2, alert c2, air a2
	}{
		{"air", []string{"air/a1"}, "air/a2"},
		{"traffic,alert", []string{"alert/c1", "traffic/t1"}, "traffic/t2"},
		{"alert", []string{"alert/c1"}, "alert/c2"},
	}
	conns := make([]*websocket.Conn, len(tests))
	for i, tt := range tests {
		conns[i] = e.dial(t, "province=01&layers="+tt.layers)
		f := readFrame(t, conns[i])
		var got []string
		for _, ent := range f.Entities {
			got = append(got, idOf(ent))
		}
		if strings.Join(got, " ") != strings.Join(tt.snap, " ") {
			t.Errorf("layers=%s: snapshot %v; want %v", tt.layers, got, tt.snap)
		}
	}
	publish(t, e.nats.JS, trafficState(t, "t2", 0), alertState(t, "c2"), airState(t, "a2", 0, 1))
	for i, tt := range tests {
		if f := readFrame(t, conns[i]); idOf(f.Entity) != tt.delta {
			t.Errorf("layers=%s: first delta %s; want %s", tt.layers, idOf(f.Entity), tt.delta)
		}
	}
}

func TestLiveBadParams(t *testing.T) {
	e := newLiveEnv(t, Config{})
	for _, q := range []string{"", "province=1", "province=01&layers=fire", "province=01&layers=", "province=0x", "province=01&snapshot=columns", "province=01&snapshot=compact&snapshot=compact"} {
		t.Run(q, func(t *testing.T) {
			// Plain GET and a real WebSocket handshake must both be refused before any upgrade.
			resp, err := http.Get(e.srv.URL + "/v1/live?" + q)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d; want 400", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("content type %q; want application/problem+json", ct)
			}
			var p problem
			if err := json.Unmarshal(body, &p); err != nil || p.Status != 400 || !strings.Contains(p.Detail, "parameter ") {
				t.Errorf("problem %s; want status 400 and a detail naming the parameter", body)
			}
			_, wsResp, err := websocket.DefaultDialer.Dial(e.wsURL(q), nil)
			if err == nil || wsResp == nil || wsResp.StatusCode != http.StatusBadRequest {
				t.Errorf("handshake: err %v resp %v; want a refused handshake with 400", err, wsResp)
			}
		})
	}
}

// smallRecvDialer dials with a tiny receive buffer so that a client that does
// not read pushes back on the gateway's writes after a few kilobytes.
func smallRecvDialer() *websocket.Dialer {
	nd := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	return &websocket.Dialer{NetDialContext: nd.DialContext, HandshakeTimeout: 30 * time.Second}
}

// tracker reads a client's frames and records the newest observation per entity.
type tracker struct {
	mu     sync.Mutex
	latest map[string]string
	frames int
}

func (tr *tracker) apply(f frame) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.frames++
	for _, ent := range f.Entities {
		tr.latest[idOf(ent)] = obsOf(ent)
	}
	if f.Entity != nil {
		tr.latest[idOf(f.Entity)] = obsOf(f.Entity)
	}
}

// complete reports whether every entity in want is at its wanted observation.
func (tr *tracker) complete(want map[string]string) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for id, obs := range want {
		if tr.latest[id] != obs {
			return false
		}
	}
	return true
}

func TestLiveSlowClientDoesNotSlowOthers(t *testing.T) {
	// WriteTimeout is long so the non-reading client is neither conflated away
	// nor timed out while the test runs; only conflation or 4001 may happen to it.
	e := newLiveEnv(t, Config{WriteTimeout: hangGuard})
	const entities, versions = 500, 40
	reader := e.dial(t, "province=01")
	idle, _, err := smallRecvDialer().Dial(e.wsURL("province=01"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()

	sts, want := versionedStates(t, entities, versions)

	tr := &tracker{latest: map[string]string{}}
	done := make(chan error, 1)
	go func() {
		for !tr.complete(want) {
			f, err := tryReadFrame(reader)
			if err != nil {
				done <- err
				return
			}
			tr.apply(f)
		}
		done <- nil
	}()
	publishAsync(t, e.nats.JS, sts)
	if err := <-done; err != nil {
		t.Fatalf("reading client: %v", err)
	}
	t.Logf("reading client got the final state of all %d entities in %d frames", entities, tr.frames)

	// Now read the idle client: it must have been conflated (and then get the
	// final state of every entity) or closed with 4001; nothing else.
	idleTr := &tracker{latest: map[string]string{}}
	for !idleTr.complete(want) {
		f, err := tryReadFrame(idle)
		if websocket.IsCloseError(err, CloseTooSlow) {
			t.Logf("idle client closed with 4001 after %d frames", idleTr.frames)
			// The writer counts the drop after the close handshake.
			testkit.Eventually(t, hangGuard, "the too_slow drop to be counted", func() (bool, string) {
				n := testutil.ToFloat64(e.g.m.dropped.WithLabelValues("too_slow"))
				return n == 1, fmt.Sprintf("%v drops", n)
			})
			return
		}
		if err != nil {
			t.Fatalf("idle client: %v; want frames or close 4001", err)
		}
		idleTr.apply(f)
	}
	conflated := testutil.ToFloat64(e.g.m.framesConflate)
	t.Logf("idle client conflated: final state of all entities in %d frames (%v conflated)", idleTr.frames, conflated)
	if idleTr.frames >= len(sts) || conflated == 0 {
		t.Errorf("idle client got %d frames for %d states with %v conflated; want conflation", idleTr.frames, len(sts), conflated)
	}
}

// tcpWmemMax is the kernel's largest TCP send buffer, which bounds what a
// non-reading client can absorb before the gateway's writes block.
func tcpWmemMax(t *testing.T) int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_wmem")
	if err != nil {
		return 16 << 20
	}
	f := strings.Fields(string(b))
	n, err := strconv.Atoi(f[len(f)-1])
	if err != nil {
		t.Fatalf("reading tcp_wmem %q: %v", b, err)
	}
	return n
}

func TestLiveOverflowClosesTooSlow(t *testing.T) {
	const sendQueue = 10
	e := newLiveEnv(t, Config{SendQueue: sendQueue, WriteTimeout: hangGuard})
	idle, _, err := smallRecvDialer().Dial(e.wsURL("province=01"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	// Publish three times what the socket buffers can hold, over more distinct
	// entities than the queue allows: the writer must block, and then the queue
	// must overflow whatever the timing. The hub sends the newest state of each
	// entity per tick, so the states go in rounds of every entity, each round
	// published once the hub holds the one before (sent at a tick of its own).
	name := strings.Repeat("n", 2000)
	const entities = 200
	total := 3 * (tcpWmemMax(t) + 1<<20) / 2000
	for round := 0; round*entities < total; round++ {
		sts := make([]*iocv1.EntityState, 0, entities)
		final := map[string]string{}
		for i := 0; i < entities; i++ {
			st := airState(t, fmt.Sprintf("st-%03d", i), round, 1)
			st.GetAir().Name = name
			sts = append(sts, st)
			final[st.Layer+"/"+st.EntityId] = st.GetAir().GetId()
		}
		publishAsync(t, e.nats.JS, sts)
		testkit.Eventually(t, hangGuard, "the hub to hold the round's states", testkit.Holds(func() bool { return hubHolds(e.g, "01", final) }))
	}
	frames := 0
	for {
		_, err := tryReadFrame(idle)
		if websocket.IsCloseError(err, CloseTooSlow) {
			break
		}
		if err != nil {
			t.Fatalf("after %d frames: %v; want close 4001", frames, err)
		}
		frames++
	}
	t.Logf("closed with 4001 after %d of %d frames", frames, total)
	// The writer counts the drop after the close handshake.
	testkit.Eventually(t, hangGuard, "the too_slow drop to be counted", func() (bool, string) {
		n := testutil.ToFloat64(e.g.m.dropped.WithLabelValues("too_slow"))
		return n == 1, fmt.Sprintf("%v drops", n)
	})
}

// hubHolds reports whether the province's hub stores the wanted observation of every entity.
func hubHolds(g *Gateway, province string, want map[string]string) bool {
	g.mu.Lock()
	h := g.hubs[province]
	g.mu.Unlock()
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for key, obs := range want {
		e, ok := h.entities[key]
		if !ok || !strings.Contains(string(e.json), `"id":"`+obs+`"`) {
			return false
		}
	}
	return true
}

func TestLiveCloseSendsGoingAway(t *testing.T) {
	e := newLiveEnv(t, Config{})
	publish(t, e.nats.JS, airState(t, "a", 0, 1))
	c1, c2 := e.dial(t, "province=01"), e.dial(t, "province=02")
	readFrame(t, c1)
	readFrame(t, c2)
	go e.g.Close()
	for i, c := range []*websocket.Conn{c1, c2} {
		_, err := tryReadFrame(c)
		if !websocket.IsCloseError(err, CloseGoingAway) {
			t.Errorf("client %d: got %v; want close 1001", i, err)
		}
	}
	e.g.Close() // waits for the first Close's writers
	resp, err := http.Get(e.srv.URL + "/v1/live?province=01")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after Close: status %d; want 503", resp.StatusCode)
	}
}

func TestLivePingPong(t *testing.T) {
	// PongWait is generous: on a loaded machine a goroutine can stall for a
	// good fraction of a second, and that must not count as a dead client.
	const interval, pongWait = 40 * time.Millisecond, 2 * time.Second
	e := newLiveEnv(t, Config{PingInterval: interval, PongWait: pongWait})

	t.Run("a client that answers pings stays", func(t *testing.T) {
		c := e.dial(t, "province=01")
		var pings atomic.Int64
		c.SetPingHandler(func(d string) error {
			pings.Add(1)
			return c.WriteControl(websocket.PongMessage, []byte(d), time.Now().Add(time.Second))
		})
		frames := make(chan frame, 16)
		errs := make(chan error, 1)
		go func() {
			for {
				f, err := tryReadFrame(c)
				if err != nil {
					errs <- err
					return
				}
				frames <- f
			}
		}()
		if f := <-frames; f.Type != "snapshot" {
			t.Fatalf("first frame %s; want snapshot", f.Type)
		}
		// These pings span twice PongWait: only pongs can have kept the client.
		n := int64(2*pongWait/interval) + 10
		testkit.Eventually(t, hangGuard, fmt.Sprintf("%d pings", n), func() (bool, string) {
			got := pings.Load()
			return got >= n, fmt.Sprintf("%d pings", got)
		})
		publish(t, e.nats.JS, airState(t, "p", 0, 1))
		select {
		case f := <-frames:
			if idOf(f.Entity) != "air/p" {
				t.Errorf("got %s; want state of air/p", idOf(f.Entity))
			}
		case err := <-errs:
			t.Fatalf("client dropped: %v", err)
		}
	})

	t.Run("a client that never answers is closed with 4002", func(t *testing.T) {
		c := e.dial(t, "province=01")
		c.SetPingHandler(func(string) error { return nil })
		for {
			_, err := tryReadFrame(c)
			if websocket.IsCloseError(err, ClosePingTimeout) {
				break
			}
			if err != nil {
				t.Fatalf("got %v; want close 4002", err)
			}
		}
		testkit.Eventually(t, hangGuard, "the ping_timeout drop to be counted", func() (bool, string) {
			n := testutil.ToFloat64(e.g.m.dropped.WithLabelValues("ping_timeout"))
			return n == 1, fmt.Sprintf("%v drops", n)
		})
	})
}

func TestLiveStreamFailureCloses4000(t *testing.T) {
	e := newLiveEnv(t, Config{ResetAttempts: 1})
	c := e.dial(t, "province=01")
	readFrame(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := e.nats.JS.DeleteStream(ctx, subjects.StreamState); err != nil {
		t.Fatal(err)
	}
	_, err := tryReadFrame(c)
	if !websocket.IsCloseError(err, CloseStreamFailure) {
		t.Fatalf("got %v; want close 4000", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	n := testenv.NATS(t)
	for name, cfg := range map[string]Config{
		"pong wait not above ping": {PingInterval: time.Second, PongWait: time.Second},
		"negative send queue":      {SendQueue: -1},
		"bad warm province":        {Provinces: []string{"1"}},
		"negative client cap":      {MaxClients: -2},
		"negative reset attempts":  {ResetAttempts: -1},
		"negative write timeout":   {WriteTimeout: -time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(cfg, Deps{JS: n.JS, Auth: testAuth(t, nil)}); !errors.Is(err, ErrBadConfig) {
				t.Errorf("got %v; want ErrBadConfig", err)
			}
		})
	}
	if _, err := New(Config{}, Deps{Auth: testAuth(t, nil)}); !errors.Is(err, ErrBadConfig) {
		t.Errorf("without JS: got %v; want ErrBadConfig", err)
	}
	if _, err := New(Config{}, Deps{JS: n.JS}); !errors.Is(err, ErrBadConfig) {
		t.Errorf("without Auth: got %v; want ErrBadConfig", err)
	}
}

func TestLiveLimits(t *testing.T) {
	e := newLiveEnv(t, Config{MaxClients: 1, AllowedOrigins: []string{"https://ioc.example.vn"}})

	t.Run("a foreign origin is refused", func(t *testing.T) {
		h := http.Header{"Origin": {"https://evil.example.com"}}
		_, resp, err := websocket.DefaultDialer.Dial(e.wsURL("province=01"), h)
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("err %v resp %v; want 403", err, resp)
		}
	})

	h := http.Header{"Origin": {"https://ioc.example.vn"}}
	// A write buffer above the read limit makes the big message below one frame
	// (gorilla checks the limit per frame header; discarded fragments are never buffered).
	d := &websocket.Dialer{WriteBufferSize: 4 * readLimit}
	c, _, err := d.Dial(e.wsURL("province=01"), h)
	if err != nil {
		t.Fatalf("allowed origin: %v", err)
	}
	defer c.Close()
	readFrame(t, c)

	t.Run("more than MaxClients get 503", func(t *testing.T) {
		_, resp, err := websocket.DefaultDialer.Dial(e.wsURL("province=01"), nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("err %v resp %v; want 503", err, resp)
		}
	})

	t.Run("a client sending more than the read limit gets 1009", func(t *testing.T) {
		if err := c.WriteMessage(websocket.TextMessage, make([]byte, 2*readLimit)); err != nil {
			t.Fatal(err)
		}
		_, err := tryReadFrame(c)
		if !websocket.IsCloseError(err, CloseTooBig) {
			t.Fatalf("got %v; want close 1009", err)
		}
		testkit.Eventually(t, hangGuard, "the slot to be free again", func() (bool, string) {
			n := e.g.active.Load()
			return n == 0, fmt.Sprintf("%d active", n)
		})
		c2 := e.dial(t, "province=01")
		if f := readFrame(t, c2); f.Type != "snapshot" {
			t.Errorf("after the drop: first frame %s; want snapshot", f.Type)
		}
	})
}

// TestLiveSendsWithoutTick: with a tick too long to matter, a change still
// reaches a live view at once (nudgeLocked sends when the last send is older
// than the hub's gap), and changes that follow within the gap arrive too,
// sent by the send it schedules for the gap's end.
func TestLiveSendsWithoutTick(t *testing.T) {
	e := newLiveEnv(t, Config{LiveTick: time.Hour})
	c := e.dial(t, "province=01")
	if f := readFrame(t, c); f.Type != "snapshot" {
		t.Fatalf("first frame %q; want snapshot", f.Type)
	}
	publish(t, e.nats.JS, airState(t, "st-1", 0, 1))
	if f := readFrame(t, c); f.Type != "state" || obsOf(f.Entity) != obsID("st-1", 0) {
		t.Fatalf("got %s frame at %s; want the state of st-1 without waiting for the tick", f.Type, obsOf(f.Entity))
	}
	publish(t, e.nats.JS, airState(t, "st-2", 0, 1), airState(t, "st-3", 0, 1), airState(t, "st-2", 1, 2))
	got := map[string]string{}
	for len(got) < 2 || got["air/st-2"] != obsID("st-2", 1) {
		f := readFrame(t, c)
		got[idOf(f.Entity)] = obsOf(f.Entity)
	}
	if got["air/st-3"] != obsID("st-3", 0) {
		t.Errorf("frames %v; want st-3 too", got)
	}
}

// versionedStates are versions states of each of entities air stations,
// version after version, and the observation id of each one's newest.
func versionedStates(t *testing.T, entities, versions int) ([]*iocv1.EntityState, map[string]string) {
	t.Helper()
	want := map[string]string{}
	var sts []*iocv1.EntityState
	for v := 0; v < versions; v++ {
		for i := 0; i < entities; i++ {
			id := fmt.Sprintf("st-%03d", i)
			sts = append(sts, airState(t, id, v, float64(v)))
			want["air/"+id] = obsID(id, v)
		}
	}
	return sts, want
}
