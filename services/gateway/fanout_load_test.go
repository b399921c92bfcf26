package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/iochub/iochub/internal/testenv"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// BenchmarkFanoutLoad is the live fan-out load test of issue 12, in one run
// for two servers on loopback:
//
//   - hub: the gateway's /v1/live, fed through JetStream (STATE → ordered
//     consumer → decode, encode → tick → clients);
//   - hub_batch: the same with batch=1: each send's updates reach a client
//     as one batch frame;
//   - gorilla: the baseline, a bare gorilla/websocket broadcast server shaped
//     like gorilla's chat example (a reader and a writer goroutine and a
//     channel of 256 frames per connection, 1 KiB buffers), fed the same
//     frame bytes in process; like the chat example, it drops a client whose
//     channel is full (counted in client_errors);
//   - centrifugo: Centrifugo, the server issue 12 measured the hub against,
//     in a process of its own (see startCentrifugoServer), when
//     CENTRIFUGO_BIN names its binary.
//
// The clients run in a child process (this test binary again, see
// TestMain): FANOUT_LOAD_CLIENTS (default 1000) sockets of one province
// read every frame (every update of a batch frame). The publisher sends FANOUT_LOAD_RATE (200) updates/s of
// about 1 KiB over FANOUT_LOAD_ENTITIES (2000) entities for
// FANOUT_LOAD_SECONDS (10; 3 with BENCH_QUICK) on a fixed schedule: update k
// of entity k mod E is due at T0 + k/rate. Each client keeps, per entity, the
// newest update it got; a frame of update k satisfies every update of that
// entity since the previous one the client had, each with latency (arrival −
// due time): the age of the newest state the client shows. Reported, per
// server: delivered updates/s during the publishing (and the WebSocket
// messages/s that carried them), newest-state
// latency p50/p99 over every (client, update) pair (an update never
// satisfied within 3 s after the end counts as infinite; a client stops
// reading once every update it was sent is satisfied, and the drain ends when
// every client did), the share of pairs satisfied, the server process's CPU
// (cores used from T0 to the end of the drain: server, NATS and publisher,
// not the clients) and its idle bytes per connection (live heap and stacks
// after GC, before and after the clients connected; and the resident set's
// growth, the one figure a server in another process gives), and the
// clients' process's CPU over the same time.
//
// One run per invocation: b.N is not used (run with -benchtime 1x).
func BenchmarkFanoutLoad(b *testing.B) {
	cfg := loadConfig{
		Clients:  envInt("FANOUT_LOAD_CLIENTS", 1000),
		Rate:     envInt("FANOUT_LOAD_RATE", 200),
		Entities: envInt("FANOUT_LOAD_ENTITIES", 2000),
		Seconds:  envInt("FANOUT_LOAD_SECONDS", 10),
		Drain:    3,
	}
	if os.Getenv("BENCH_QUICK") != "" && os.Getenv("FANOUT_LOAD_SECONDS") == "" {
		cfg.Seconds = 3
	}
	raiseFileLimit(b)
	servers := []struct {
		name  string
		start func(b *testing.B, cfg loadConfig) loadServer
	}{
		{"hub", startHubServer},
		{"hub_batch", startHubBatchServer},
		{"gorilla", startGorillaServer},
	}
	if os.Getenv(centrifugoEnv) != "" {
		servers = append(servers, struct {
			name  string
			start func(b *testing.B, cfg loadConfig) loadServer
		}{"centrifugo", startCentrifugoServer})
	} else {
		b.Logf("%s not set (scripts/bench.sh sets it): no Centrifugo in this run", centrifugoEnv)
	}
	for _, s := range servers {
		b.Run(fmt.Sprintf("%s/clients=%d", s.name, cfg.Clients), func(b *testing.B) {
			srv := s.start(b, cfg)
			runLoad(b, cfg, srv)
		})
	}
}

// loadConfig is what the parent and the child process agree on.
type loadConfig struct {
	URL      string `json:"url"`
	Clients  int    `json:"clients"`
	Rate     int    `json:"rate"`
	Entities int    `json:"entities"`
	Seconds  int    `json:"seconds"`
	Drain    int    `json:"drain"`
	// Hello, when set, is what a client sends once connected; it is
	// ready at the first message that holds Ready (without them, at the
	// first message: the hub's snapshot).
	Hello string `json:"hello,omitempty"`
	Ready string `json:"ready,omitempty"`
}

// loadResult is the child's answer.
type loadResult struct {
	Frames    int64   `json:"frames"`    // updates received while publishing
	Messages  int64   `json:"messages"`  // WebSocket messages received while publishing
	Pairs     int64   `json:"pairs"`     // (client, update) pairs published
	Satisfied int64   `json:"satisfied"` // pairs satisfied by the end
	P50ms     float64 `json:"p50_ms"`    // -1: infinite (not satisfied by the end)
	P99ms     float64 `json:"p99_ms"`
	Errors    int64   `json:"errors"` // clients whose socket failed
	CPUms     float64 `json:"cpu_ms"` // the clients' process's CPU from T0 to the end of the drain
	// Ms is the time from T0 to the end of the drain: Seconds, then until
	// every client had every update or Drain seconds passed.
	Ms float64 `json:"ms"`
}

// loadServer is one server under test.
type loadServer struct {
	url string
	// connected reports how many clients the server holds, all idle.
	connected func() int
	// publish sends update k (its payload built by loadState).
	publish func(k int)
	// hello and ready are loadConfig's Hello and Ready.
	hello, ready string
	// cpu, when set, is the server's CPU time so far (this process's
	// otherwise); rss, when set, is the resident set of a server in a
	// process of its own, whose heap this process cannot see.
	cpu func() time.Duration
	rss func() int64
}

const loadClientsEnv = "IOCHUB_FANOUT_LOAD_CLIENTS"

// loadName is the padded name of update k: "~k" and 10 digits, then filler,
// so that its Feature is about 1 KiB. The clients find it by its "~", a byte
// found nowhere else in a state, so scanning a batch for every update costs
// no more than finding the one update of a single frame.
func loadName(k int) string { return fmt.Sprintf("~k%010d ", k) + strings.Repeat("x", 700) }

func startHubServer(b *testing.B, cfg loadConfig) loadServer { return startHub(b, cfg, "") }

func startHubBatchServer(b *testing.B, cfg loadConfig) loadServer {
	return startHub(b, cfg, "&batch=1")
}

// startHub starts the gateway; its clients add query to the live URL.
func startHub(b *testing.B, cfg loadConfig, query string) loadServer {
	env := testenv.NATS(b)
	g, err := New(Config{MaxClientsPerIdentity: cfg.Clients + 1, OpenRate: -1}, Deps{JS: env.JS, Metrics: prometheus.NewRegistry(), Auth: testAuth(b, nil)})
	if err != nil {
		b.Fatal(err)
	}
	srv := serveGateway(b, g, withTestToken)
	states := loadStates(b, cfg)
	return loadServer{
		url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/live?province=01" + query,
		connected: func() int {
			g.mu.Lock()
			h := g.hubs["01"]
			g.mu.Unlock()
			if h == nil {
				return 0
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			n := 0
			for c := range h.clients {
				c.mu.Lock()
				if !c.running {
					n++
				}
				c.mu.Unlock()
			}
			return n
		},
		publish: func(k int) {
			if _, err := env.JS.PublishMsgAsync(states[k%len(states)](k)); err != nil {
				b.Errorf("publishing update %d: %v", k, err)
			}
		},
	}
}

// loadStates returns, per entity, a builder of the STATE message of update k.
func loadStates(b *testing.B, cfg loadConfig) []func(k int) *nats.Msg {
	fs := make([]func(int) *nats.Msg, cfg.Entities)
	for e := range fs {
		id := fmt.Sprintf("load-%05d", e)
		fs[e] = func(k int) *nats.Msg {
			st := airState(b, id, k/cfg.Entities, float64(k%500))
			st.GetAir().Name = loadName(k)
			return stateMsg(b, st)
		}
	}
	return fs
}

func startGorillaServer(b *testing.B, cfg loadConfig) loadServer {
	type conn struct {
		ws   *websocket.Conn
		send chan []byte
	}
	var mu sync.Mutex
	conns := map[*conn]struct{}{}
	up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c := &conn{ws: ws, send: make(chan []byte, 256)}
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		go func() { // the writer
			defer ws.Close()
			ping := time.NewTicker(20 * time.Second)
			defer ping.Stop()
			for {
				select {
				case m, ok := <-c.send:
					if !ok {
						_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""))
						return
					}
					_ = ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
					if err := ws.WriteMessage(websocket.TextMessage, m); err != nil {
						return
					}
				case <-ping.C:
					if err := ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(10*time.Second)); err != nil {
						return
					}
				}
			}
		}()
		go func() { // the reader
			ws.SetReadLimit(4096)
			for {
				if _, _, err := ws.NextReader(); err != nil {
					return
				}
			}
		}()
		// The same first frame as the hub's: an (empty) snapshot.
		c.send <- []byte(`{"type":"snapshot","province":"01","entities":[]}`)
	}))
	b.Cleanup(func() {
		mu.Lock()
		for c := range conns {
			close(c.send)
		}
		clear(conns)
		mu.Unlock()
		srv.Close()
	})
	states := loadStates(b, cfg)
	return loadServer{
		url: "ws" + strings.TrimPrefix(srv.URL, "http"),
		connected: func() int {
			mu.Lock()
			defer mu.Unlock()
			return len(conns)
		},
		publish: func(k int) {
			// The same bytes the hub sends: decode and encode once, then broadcast.
			f, ok := loadFeature(b, states, k)
			if !ok {
				return
			}
			frame := stateFrame(f)
			mu.Lock()
			defer mu.Unlock()
			for c := range conns {
				select {
				case c.send <- frame:
				default: // too slow: dropped
					close(c.send)
					delete(conns, c)
				}
			}
		},
	}
}

// loadFeature is the Feature the hub sends for update k: its STATE message
// decoded and encoded once, as the hub does (false, with the error
// reported, if either fails).
func loadFeature(b *testing.B, states []func(k int) *nats.Msg, k int) ([]byte, bool) {
	m := states[k%len(states)](k)
	var st iocv1.EntityState
	if err := proto.Unmarshal(m.Data, &st); err != nil {
		b.Errorf("decoding update %d: %v", k, err)
		return nil, false
	}
	f, err := encodeFeature(&st, m.Subject)
	if err != nil {
		b.Errorf("encoding update %d: %v", k, err)
		return nil, false
	}
	return f.json, true
}

func runLoad(b *testing.B, cfg loadConfig, srv loadServer) {
	cfg.URL, cfg.Hello, cfg.Ready = srv.url, srv.hello, srv.ready
	spec, err := json.Marshal(cfg)
	if err != nil {
		b.Fatal(err)
	}
	serverCPU, rss := srv.cpu, srv.rss
	if serverCPU == nil {
		serverCPU = cpuTime
	}
	if rss == nil {
		rss = func() int64 {
			debug.FreeOSMemory() // what the collector freed, back to the system
			return processRSS(b, os.Getpid())
		}
	}
	runtime.GC()
	runtime.GC()
	before, rssBefore := liveBytes(), rss()

	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.Seconds+cfg.Drain)*time.Second+5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), loadClientsEnv+"="+string(spec))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Wait() }()
	out := bufio.NewScanner(stdout)
	out.Buffer(nil, 1<<20)
	line := func(what string) string {
		if !out.Scan() {
			cancel()
			_ = cmd.Wait()
			b.Fatalf("load clients ended before %s: %v\n%s", what, out.Err(), stderr.String())
		}
		return out.Text()
	}
	if l := line("connecting"); l != "ready" {
		b.Fatalf("load clients: %q; want ready", l)
	}
	// Every client has its first frame; wait until the server holds them all idle.
	deadline := time.Now().Add(time.Minute)
	for srv.connected() < cfg.Clients {
		if time.Now().After(deadline) {
			b.Fatalf("server holds %d idle clients of %d", srv.connected(), cfg.Clients)
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond)
	}
	runtime.GC()
	runtime.GC()
	idle := float64(liveBytes()-before) / float64(cfg.Clients)
	idleRSS := float64(rss()-rssBefore) / float64(cfg.Clients)

	t0 := time.Now().Add(200 * time.Millisecond)
	if _, err := fmt.Fprintf(stdin, "%d\n", t0.UnixNano()); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu0, began := serverCPU(), time.Now()
	total := cfg.Rate * cfg.Seconds
	for k := 0; k < total; k++ {
		time.Sleep(time.Until(t0.Add(time.Duration(k) * time.Second / time.Duration(cfg.Rate))))
		srv.publish(k)
	}
	var res loadResult
	if l := line("the result"); json.Unmarshal([]byte(l), &res) != nil {
		b.Fatalf("load clients answered %q\n%s", l, stderr.String())
	}
	b.StopTimer()
	cpu := serverCPU() - cpu0
	b.ReportMetric(float64(res.Frames)/float64(cfg.Seconds), "updates/s")
	b.ReportMetric(float64(res.Messages)/float64(cfg.Seconds), "messages/s")
	b.ReportMetric(cpu.Seconds()/time.Since(began).Seconds(), "server_cores")
	b.ReportMetric(res.CPUms/res.Ms, "client_cores")
	inf := func(ms float64) float64 {
		if ms < 0 {
			return math.Inf(1)
		}
		return ms
	}
	b.ReportMetric(inf(res.P50ms), "p50_ms")
	b.ReportMetric(inf(res.P99ms), "p99_ms")
	b.ReportMetric(100*float64(res.Satisfied)/float64(max(res.Pairs, 1)), "seen_%")
	if srv.rss == nil { // in this process: its heap and stacks
		b.ReportMetric(idle, "idle_B/conn")
	}
	b.ReportMetric(idleRSS, "idle_rss_B/conn")
	b.ReportMetric(float64(res.Errors), "client_errors")
	if res.Errors > 0 {
		_ = cmd.Wait()
		b.Logf("load clients: %s", stderr.String())
	}
}

// cpuTime is the CPU time of this process (the server, its NATS and the
// publisher; not the clients).
func cpuTime() time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// liveBytes is the live heap and the goroutine stacks.
func liveBytes() int64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + m.StackInuse)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// raiseFileLimit lifts this process's open-file limit to its hard limit
// (every socket is a file).
func raiseFileLimit(tb testing.TB) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		tb.Fatal(err)
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		tb.Fatal(err)
	}
}

// runLoadClients is the child process of BenchmarkFanoutLoad: it opens the
// clients, says "ready" once each has its first frame, reads T0 from stdin,
// reads frames until the publishing and the drain are over and prints its
// loadResult as JSON.
func runLoadClients(spec string) int {
	var cfg loadConfig
	if err := json.Unmarshal([]byte(spec), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err == nil {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
	lat := newHistogram()
	var frames, messages, satisfied, errs atomic.Int64
	var start, stop atomic.Int64 // unix nanos: T0 and the end of publishing
	stop.Store(math.MaxInt64)
	period := int64(time.Second) / int64(cfg.Rate)
	total := int64(cfg.Rate * cfg.Seconds)

	conns := make([]*websocket.Conn, cfg.Clients)
	dialer := &websocket.Dialer{HandshakeTimeout: time.Minute, ReadBufferSize: 16 << 10}
	var dial sync.WaitGroup
	sem := make(chan struct{}, 32)
	var dialErr atomic.Value
	for i := range conns {
		dial.Add(1)
		sem <- struct{}{}
		go func() {
			defer dial.Done()
			defer func() { <-sem }()
			c, _, err := dialer.Dial(cfg.URL, nil)
			if err == nil && cfg.Hello != "" {
				err = c.WriteMessage(websocket.TextMessage, []byte(cfg.Hello))
			}
			for err == nil { // until the snapshot, or the message that holds Ready
				var m []byte
				if _, m, err = c.ReadMessage(); err == nil && bytes.Contains(m, []byte(cfg.Ready)) {
					break
				}
			}
			if err != nil {
				dialErr.Store(err)
				return
			}
			conns[i] = c
		}()
	}
	dial.Wait()
	if err, ok := dialErr.Load().(error); ok {
		fmt.Fprintln(os.Stderr, "dialing:", err)
		return 1
	}
	fmt.Println("ready")
	var t0 int64
	if _, err := fmt.Fscan(os.Stdin, &t0); err != nil {
		fmt.Fprintln(os.Stderr, "reading T0:", err)
		return 1
	}
	start.Store(t0)
	if path := os.Getenv("FANOUT_LOAD_CLIENT_PROFILE"); path != "" { // the clients' CPU profile
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	cpu0, began := cpuTime(), time.Now()
	end := t0 + int64(cfg.Seconds)*int64(time.Second)
	stop.Store(end)
	drainEnd := time.Unix(0, end+int64(cfg.Drain)*int64(time.Second))

	marker := []byte(`~k`)
	var readers sync.WaitGroup
	for _, c := range conns {
		readers.Add(1)
		go func() {
			defer readers.Done()
			last := make([]int32, cfg.Entities) // newest update per entity, -1 none
			for i := range last {
				last[i] = -1
			}
			_ = c.SetReadDeadline(drainEnd)
			chunk := make([]byte, 16<<10)
			var ks []int
			var got int64 // the client's (update) pairs satisfied
			for {
				_, r, err := c.NextReader()
				if err == nil {
					ks, err = scanUpdates(r, chunk, marker, ks[:0])
				}
				if err != nil {
					// The read deadline (the end of the drain) is no error.
					if ne, ok := err.(interface{ Timeout() bool }); !ok || !ne.Timeout() {
						if errs.Add(1) == 1 {
							fmt.Fprintln(os.Stderr, "first client error:", err)
						}
					}
					return
				}
				if len(ks) == 0 {
					continue
				}
				// Every update of a message arrives with its last byte.
				now := time.Now().UnixNano()
				if now <= stop.Load() {
					messages.Add(1)
					frames.Add(int64(len(ks)))
				}
				for _, k := range ks {
					e := k % cfg.Entities
					from := int(last[e]) + cfg.Entities
					if last[e] < 0 {
						from = e
					}
					for u := from; u <= k; u += cfg.Entities {
						lat.add(now - (start.Load() + int64(u)*period))
						satisfied.Add(1)
						got++
					}
					if int32(k) > last[e] {
						last[e] = int32(k)
					}
				}
				if got == total { // every update it was sent: nothing left to measure
					return
				}
			}
		}()
	}
	readers.Wait()
	for _, c := range conns {
		_ = c.Close()
	}
	pairs := total * int64(cfg.Clients)
	res := loadResult{
		Frames: frames.Load(), Messages: messages.Load(), Pairs: pairs, Satisfied: satisfied.Load(), Errors: errs.Load(),
		P50ms: lat.quantile(pairs, 0.50), P99ms: lat.quantile(pairs, 0.99),
		CPUms: float64((cpuTime() - cpu0).Milliseconds()), Ms: float64(time.Since(began).Milliseconds()),
	}
	out, err := json.Marshal(res)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(string(out))
	return 0
}

// scanUpdates reads one message from r through chunk (so that a client
// holds no more than chunk, however long a batch is) and appends to ks the
// number of every update in it: the 10 digits after each marker.
func scanUpdates(r io.Reader, chunk, marker []byte, ks []int) ([]int, error) {
	keep := len(marker) + 10 - 1 // a marker and its digits cut by the chunk's end
	carry := 0
	for {
		n, err := r.Read(chunk[carry:])
		data := chunk[:carry+n]
		next := 0 // where the next marker may start
		for {
			i := bytes.Index(data[next:], marker)
			if i < 0 {
				break
			}
			i += next + len(marker)
			if len(data)-i < 10 {
				next = i - len(marker)
				break
			}
			k, perr := strconv.Atoi(string(data[i : i+10]))
			if perr != nil {
				return ks, fmt.Errorf("update number: %w", perr)
			}
			ks = append(ks, k)
			next = i + 10
		}
		if err == io.EOF {
			return ks, nil
		}
		if err != nil {
			return ks, err
		}
		from := max(next, len(data)-keep)
		carry = copy(chunk, data[from:])
	}
}

// histogram counts latencies in 1 ms buckets up to 10 minutes.
type histogram struct{ b []atomic.Int64 }

func newHistogram() *histogram { return &histogram{b: make([]atomic.Int64, 600_000)} }

func (h *histogram) add(ns int64) {
	i := max(ns/int64(time.Millisecond), 0)
	h.b[min(i, int64(len(h.b)-1))].Add(1)
}

// quantile is the q-quantile in ms over total samples, those never added
// counting as infinite (-1).
func (h *histogram) quantile(total int64, q float64) float64 {
	want := int64(math.Ceil(q * float64(total)))
	var n int64
	for i := range h.b {
		n += h.b[i].Load()
		if n >= want {
			return float64(i + 1)
		}
	}
	return -1
}
