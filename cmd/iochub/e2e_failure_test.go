package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/pgcluster"
	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
	"github.com/iochub/iochub/services/gateway"
)

// The failure tests stream observations through the running roles while a
// backing server (PostgreSQL, then NATS) goes away and comes back, and check
// that nothing accepted is lost or stored twice. They wait for conditions
// with deadlines; nothing is asserted about how long anything takes.

const (
	failStations  = 10 // stations the stream spreads over
	failPerBatch  = 20 // items per POST
	failMaxBatch  = 200
	failTailBatch = 6 // batches posted after the server is back
)

// failItem is item j of the stream: a new observation of station j%failStations.
func failItem(base time.Time, j int) (item map[string]any, eventID, station string, err error) {
	station = fmt.Sprintf("fail-st-%d", j%failStations)
	id := fmt.Sprintf("fail-obs-%d", j)
	at := base.Add(time.Duration(j) * time.Second)
	item, err = newAirItem(id, station, 105.80+float64(j%failStations)*0.002, 21.02, at)
	return item, id + "@" + at.UTC().Format(time.RFC3339), station, err
}

// streamLog is what a client learnt from its POSTs.
type streamLog struct {
	mu        sync.Mutex
	accepted  map[string]bool           // eventIDs answered accepted or duplicate
	retry     map[string]map[string]any // eventID -> item not accepted, to send again
	unavail   int                       // 503 answers and retryable items seen
	latest    map[string]string         // station -> eventID of its newest item sent
	latestIdx map[string]int
	batches   atomic.Int64
}

func newStreamLog() *streamLog {
	return &streamLog{accepted: map[string]bool{}, retry: map[string]map[string]any{}, latest: map[string]string{}, latestIdx: map[string]int{}}
}

// postBatch sends items j0..j0+n-1 and records the answer. Only 202 (and,
// when allow503 is set, 503 "nats-unavailable") are acceptable answers.
// Like record and stream, it may run on a goroutine of its own: it reports
// with t.Errorf, never t.Fatal, and returns false on a failure that should
// end the stream.
func (l *streamLog) postBatch(t testing.TB, url string, base time.Time, j0, n int, allow503 bool) bool {
	items := make([]any, n)
	ids := make([]string, n)
	byID := make(map[string]map[string]any, n)
	l.mu.Lock()
	for k := range n {
		item, id, station, err := failItem(base, j0+k)
		if err != nil {
			l.mu.Unlock()
			t.Errorf("building item %d: %v", j0+k, err)
			return false
		}
		items[k], ids[k], byID[id] = item, id, item
		if j0+k >= l.latestIdx[station] {
			l.latestIdx[station], l.latest[station] = j0+k, id
		}
	}
	l.mu.Unlock()
	l.record(t, url, items, ids, byID, allow503)
	return true
}

func (l *streamLog) record(t testing.TB, url string, items []any, ids []string, byID map[string]map[string]any, allow503 bool) {
	code, _, raw, err := tryPost(url, devToken, items)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err != nil:
		t.Errorf("POST of %d items: %v", len(items), err)
		for _, id := range ids {
			l.retry[id] = byID[id]
		}
		return
	case code == http.StatusServiceUnavailable && allow503:
		if !strings.Contains(raw, "nats-unavailable") {
			t.Errorf("503 answer does not say NATS is unavailable: %s", raw)
		}
		l.unavail++
		for _, id := range ids {
			l.retry[id] = byID[id]
		}
		return
	case code != http.StatusAccepted:
		t.Errorf("POST of %d items = %d %s; want 202", len(items), code, raw)
		for _, id := range ids {
			l.retry[id] = byID[id]
		}
		return
	}
	var res struct {
		Results []struct {
			Status    string `json:"status"`
			Reason    string `json:"reason"`
			Retryable bool   `json:"retryable"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(raw), &res); err != nil || len(res.Results) != len(ids) {
		t.Errorf("202 answer does not hold one result per item (%d items, err %v): %s", len(ids), err, raw)
		return
	}
	for k, r := range res.Results {
		id := ids[k]
		switch {
		case r.Status == "accepted" || r.Status == "duplicate":
			l.accepted[id] = true
			delete(l.retry, id)
		case r.Retryable && allow503:
			l.unavail++
			l.retry[id] = byID[id]
		default:
			t.Errorf("item %s: status %q (%s); want accepted", id, r.Status, r.Reason)
			l.retry[id] = byID[id]
		}
	}
}

// stream posts batches every pause until stop is closed, then failTailBatch
// more, never more than failMaxBatch in all.
func (l *streamLog) stream(t testing.TB, url string, base time.Time, stop <-chan struct{}, allow503 bool) {
	tail := -1
	for b := 0; b < failMaxBatch; b++ {
		if tail < 0 {
			select {
			case <-stop:
				tail = failTailBatch
			default:
			}
		}
		if tail == 0 {
			return
		}
		if tail > 0 {
			tail--
		}
		if !l.postBatch(t, url, base, b*failPerBatch, failPerBatch, allow503) {
			return
		}
		l.batches.Add(1)
		time.Sleep(50 * time.Millisecond) // a steady stream, not a flood
	}
	t.Errorf("the stream reached %d batches before the server came back", failMaxBatch)
}

func (l *streamLog) acceptedIDs() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]bool, len(l.accepted))
	for id := range l.accepted {
		out[id] = true
	}
	return out
}

// storedIDs is every event id in air_observation and the number of rows.
func storedIDs(ctx context.Context, db *testenv.DBEnv) (map[string]int, int, error) {
	rows, err := db.Pool.Query(ctx, `SELECT event_id, count(*) FROM air_observation WHERE source_id = 'dev' GROUP BY event_id`)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	ids := map[string]int{}
	total := 0
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, 0, err
		}
		ids[id], total = n, total+n
	}
	return ids, total, rows.Err()
}

// waitStored waits until every id in want is stored, then checks that each
// is stored exactly once and that nothing else was stored (unless extra).
func waitStored(t *testing.T, db *testenv.DBEnv, want map[string]bool, extra bool, timeout time.Duration) map[string]int {
	t.Helper()
	var got map[string]int
	var total int
	testkit.Eventually(t, timeout, "every accepted item stored", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		if got, total, err = storedIDs(ctx, db); err != nil {
			return false, err.Error()
		}
		missing := 0
		for id := range want {
			if got[id] == 0 {
				missing++
			}
		}
		return missing == 0, fmt.Sprintf("%d of %d accepted items not stored (%d rows)", missing, len(want), total)
	})
	for id, n := range got {
		if n != 1 {
			t.Errorf("event %s stored %d times; want once", id, n)
		}
		if !want[id] && !extra {
			t.Errorf("event %s stored but never accepted", id)
		}
	}
	if !extra && total != len(want) {
		t.Errorf("stored %d rows; want %d (N accepted = N rows)", total, len(want))
	}
	return got
}

// checkLiveLatest dials the live view until its snapshot shows the newest
// observation of every station.
func checkLiveLatest(t *testing.T, base string, latest map[string]string, timeout time.Duration) {
	t.Helper()
	testkit.Eventually(t, timeout, "the live snapshot to show the latest state of every station", func() (bool, string) {
		snap := liveSnapshot(t, base)
		var diff []string
		for station, want := range latest {
			if got := snap[station]; got != want {
				diff = append(diff, fmt.Sprintf("%s: %q, want %q", station, got, want))
			}
		}
		sort.Strings(diff)
		return len(diff) == 0, strings.Join(diff, "\n")
	})
}

// liveSnapshot maps entity id to observation id in a new client's snapshot of Hà Nội.
func liveSnapshot(t *testing.T, base string) map[string]string {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/v1/live?province=01", devHeader())
	if err != nil {
		t.Fatalf("dialing live: %v", err)
	}
	resp.Body.Close()
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, msg, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("reading the live snapshot: %v", err)
	}
	var f liveFrame
	if err := json.Unmarshal(msg, &f); err != nil || f.Type != "snapshot" {
		t.Fatalf("first live frame is not a snapshot (%v): %.200s", err, msg)
	}
	out := map[string]string{}
	for _, raw := range f.Entities {
		var ft feature
		if err := json.Unmarshal(raw, &ft); err != nil {
			t.Fatalf("entity is not a feature: %v: %s", err, raw)
		}
		out[ft.Properties.EntityID] = ft.Properties.Observation.ID
	}
	return out
}

// hubAlive fails the test when the roles have exited.
func hubAlive(t *testing.T, h *hub) {
	t.Helper()
	select {
	case <-h.roles.Done():
		t.Fatalf("the roles exited: %v", h.roles.Err())
	default:
	}
}

// TestFailurePostGISRestart stops the database while observations stream
// in, starts it again, and checks that every accepted item is stored once and
// the live view ends on the newest state of every station.
func TestFailurePostGISRestart(t *testing.T) {
	ctx := context.Background()
	// The postgres system user must enter the directory when the tests run as
	// root: os.TempDir is world-traversable, t.TempDir's parents are not.
	dir, err := os.MkdirTemp("", "iochub-failpg-")
	if err != nil {
		t.Fatal(err)
	}
	// owner stops the cluster and removes dir at the end, or its watchdog does
	// if the test process dies.
	owner, err := pgcluster.Start(ctx, pgcluster.Config{Dir: dir, Fast: true, Ephemeral: true})
	if err != nil {
		_ = os.RemoveAll(dir)
		if (errors.Is(err, pgcluster.ErrNoPostgres) || errors.Is(err, pgcluster.ErrNoPostGIS)) && os.Getenv("CI") == "" {
			t.Skipf("no PostgreSQL with PostGIS: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := owner.Stop(context.Background()); err != nil {
			t.Errorf("stopping the cluster: %v", err)
		}
	})
	if err := owner.CreateDatabase(ctx, "iochub"); err != nil {
		t.Fatal(err)
	}
	url := owner.URL("iochub")
	if err := schema.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	pool, err := schema.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	db := &testenv.DBEnv{URL: url, Name: "iochub", Pool: pool}
	testenv.WithUnits(t, db)

	n := testenv.NATS(t)
	h := startHub(t, "all", n, db)

	// stop and restart act on the running server without removing its
	// directory: a second, non-ephemeral handle on the same directory
	// (pgcluster.Start reuses a running server) stops it, and a third starts it
	// again on the same port, which the pool's URL names.
	stopDB := func() {
		c, err := pgcluster.Start(ctx, pgcluster.Config{Dir: dir})
		if err != nil {
			t.Fatalf("attaching to the cluster: %v", err)
		}
		if !c.Reused() {
			t.Fatal("the cluster was not running")
		}
		if err := c.Stop(ctx); err != nil {
			t.Fatalf("stopping the cluster: %v", err)
		}
	}
	// The port may be taken for a moment while the server is down (another
	// test's socket, on a busy machine): start again until it is free.
	startDB := func() {
		testkit.Eventually(t, 30*time.Second, "the cluster started again on its port", func() (bool, string) {
			c, err := pgcluster.Start(ctx, pgcluster.Config{Dir: dir, Port: owner.Port(), Fast: true})
			if err != nil {
				return false, err.Error()
			}
			if c.Reused() {
				t.Fatal("the cluster was still running")
			}
			return true, ""
		})
	}

	log := newStreamLog()
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	back := make(chan struct{})
	var backOnce sync.Once
	streamed := make(chan struct{})
	go func() {
		defer close(streamed)
		log.stream(t, h.url+"/v1/feeds/air", base, back, false)
	}()
	// A test that ends early still ends its stream before it completes (the
	// stream reports with t.Errorf).
	t.Cleanup(func() {
		backOnce.Do(func() { close(back) })
		<-streamed
	})
	// Stop once the aggregator has stored some of the stream.
	testkit.Eventually(t, 30*time.Second, "the first rows", func() (bool, string) {
		_, total, err := storedIDs(ctx, db)
		if err != nil {
			return false, err.Error()
		}
		return total > 0, "no rows"
	})
	_, rowsAtStop, _ := storedIDs(ctx, db)
	stopDB()
	atStop := log.batches.Load()
	// Keep it down a few seconds while items keep coming.
	time.Sleep(3 * time.Second)
	testkit.Eventually(t, 30*time.Second, "batches posted while the database is down", func() (bool, string) {
		n := log.batches.Load()
		return n >= atStop+5, fmt.Sprintf("%d batches, %d at the stop", n, atStop)
	})
	startDB()
	atStart := log.batches.Load()
	backOnce.Do(func() { close(back) })
	<-streamed
	hubAlive(t, h)
	t.Logf("database stopped after batch %d with %d rows stored, started after batch %d; %d batches in all",
		atStop, rowsAtStop, atStart, log.batches.Load())

	accepted := log.acceptedIDs()
	if got, want := len(accepted), int(log.batches.Load())*failPerBatch; got != want {
		t.Errorf("accepted %d items; want all %d (the ingest needs no database to accept)", got, want)
	}
	waitStored(t, db, accepted, false, 90*time.Second)
	checkLiveLatest(t, h.url, log.latest, 30*time.Second)
	hubAlive(t, h)
}

// TestFailureNATSRestart shuts the NATS server down while observations
// stream in and starts a new one on the same port and store: the ingest
// refuses what it cannot publish (503 or retryable items), never accepts what
// is not stored, a client resending the refused items gets everything stored
// exactly once, and the live view goes on.
func TestFailureNATSRestart(t *testing.T) {
	ctx := context.Background()
	store := t.TempDir()
	port := freeTCPPort(t)
	var (
		smu sync.Mutex
		srv *server.Server
	)
	startNATS := func() {
		s, err := natsx.StartEmbedded(natsx.EmbeddedConfig{StoreDir: store, Port: port})
		if err != nil {
			t.Fatalf("starting NATS: %v", err)
		}
		smu.Lock()
		srv = s
		smu.Unlock()
	}
	stopNATS := func() {
		smu.Lock()
		s := srv
		srv = nil
		smu.Unlock()
		if s != nil {
			s.Shutdown()
			s.WaitForShutdown()
		}
	}
	startNATS()
	t.Cleanup(stopNATS)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	nc, err := natsx.Connect(url, "failure test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := natsx.EnsureStreams(ctx, js, natsx.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	n := &testenv.NATSEnv{URL: url, Server: srv, Conn: nc, JS: js}
	db := testenv.PostGISWithUnits(t)
	h := startHub(t, "all", n, db)

	// A live client connected before the outage.
	ws := dialLive(t, h.url, "01")
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, _, err := ws.ReadMessage(); err != nil {
		t.Fatalf("reading the live snapshot: %v", err)
	}

	log := newStreamLog()
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	back := make(chan struct{})
	streamed := make(chan struct{})
	go func() {
		defer close(streamed)
		log.stream(t, h.url+"/v1/feeds/air", base, back, true)
	}()
	testkit.Eventually(t, 30*time.Second, "accepted items", testkit.Holds(func() bool { return len(log.acceptedIDs()) > 0 }))
	stopNATS()
	testkit.Eventually(t, time.Minute, "the ingest to refuse items while NATS is down", testkit.Holds(func() bool {
		log.mu.Lock()
		defer log.mu.Unlock()
		return log.unavail > 0
	}))
	time.Sleep(time.Second)
	startNATS()
	testkit.Eventually(t, time.Minute, "the roles' connection to come back", func() (bool, string) {
		st := nc.Status()
		return st == nats.CONNECTED, st.String()
	})
	close(back)
	<-streamed
	hubAlive(t, h)

	// Everything accepted so far is stored, each once; refused items may be
	// stored too (sent before the connection broke, ack lost) but only once.
	accepted := log.acceptedIDs()
	log.mu.Lock()
	refused := len(log.retry)
	log.mu.Unlock()
	t.Logf("NATS down after %d accepted items; %d unavailable answers; %d items to resend; %d batches in all",
		len(accepted), log.unavail, refused, log.batches.Load())
	if log.unavail == 0 || refused == 0 {
		t.Fatalf("no item was refused (unavailable answers %d, to retry %d); the outage did not hit the stream", log.unavail, refused)
	}
	waitStored(t, db, accepted, true, 90*time.Second)

	// The client sends the refused items again until all are accepted (or
	// found duplicate: stored from the first send).
	testkit.Eventually(t, time.Minute, "the refused items to be accepted after NATS came back", func() (bool, string) {
		log.mu.Lock()
		var items []any
		var ids []string
		byID := map[string]map[string]any{}
		for id, item := range log.retry {
			items, ids, byID[id] = append(items, item), append(ids, id), item
			if len(items) == 100 {
				break
			}
		}
		log.mu.Unlock()
		if len(items) == 0 {
			return true, ""
		}
		log.record(t, h.url+"/v1/feeds/air", items, ids, byID, true)
		return false, fmt.Sprintf("%d or more refused items still not accepted", len(items))
	})
	all := log.acceptedIDs()
	t.Logf("%d items accepted after resending", len(all)-len(accepted))
	if want := int(log.batches.Load()) * failPerBatch; len(all) != want {
		t.Errorf("accepted %d distinct items after retries; want %d", len(all), want)
	}
	waitStored(t, db, all, false, 90*time.Second)
	checkLiveLatest(t, h.url, log.latest, 30*time.Second)

	// The client connected before the outage keeps receiving: the gateway
	// recreates its STATE consumer after a reconnect (ResetAttempts 0 = no
	// limit), so it is not closed with CloseStreamFailure.
	const station = "fail-after-restart"
	item, _, _, err := failItem(base.Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	item["refPointOfInterest"] = station
	if code, _, raw := post(t, h.url+"/v1/feeds/air", devToken, []any{item}); code != http.StatusAccepted {
		t.Fatalf("POST after the restart = %d %s", code, raw)
	}
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code == gateway.CloseStreamFailure {
				t.Fatalf("live client closed with %d (%s); want it to keep receiving (ResetAttempts unlimited)", ce.Code, ce.Text)
			}
			t.Fatalf("live client connected before the outage: %v", err)
		}
		if strings.Contains(string(msg), `"entityId":"`+station+`"`) {
			break
		}
	}
	hubAlive(t, h)
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
