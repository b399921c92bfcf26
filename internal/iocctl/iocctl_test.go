package iocctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// run runs iocctl with args and returns its stdout and stderr.
func run(t *testing.T, env Env, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	env.Stdout, env.Stderr = &out, &errOut
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.Home == "" {
		env.Home = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := Run(ctx, args, env)
	return out.String(), errOut.String(), err
}

func TestHelpEverywhere(t *testing.T) {
	for _, args := range [][]string{{"tail", "--help"}, {"replay", "--help"}, {"publish", "--help"}, {"keys", "create", "--help"},
		{"keys", "list", "--help"}, {"keys", "revoke", "--help"}} {
		_, errOut, err := run(t, Env{}, args...)
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut, "usage: iocctl "+args[0]) {
			t.Errorf("%v: err %v, stderr %q; want the usage and flag.ErrHelp", args, err, errOut)
		}
	}
	if out, _, err := run(t, Env{}, "--help"); err != nil || !strings.Contains(out, "tail SUBJECT") {
		t.Errorf("--help: %v %q", err, out)
	}
	if _, _, err := run(t, Env{}, "frobnicate"); !errors.Is(err, ErrUsage) {
		t.Errorf("unknown command: %v; want ErrUsage", err)
	}
}

// publishAir stores n air observations on FEEDS as the ingest does.
func publishAir(t *testing.T, n *testenv.NATSEnv, unit string, count int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < count; i++ {
		id := fmt.Sprintf("a%d", i)
		body, err := proto.Marshal(&iocv1.AirQualityObserved{Id: id, EntityId: "st-1", Pm25: proto.Float64(float64(i)), ObservedAt: timestamppb.New(time.Date(2026, 11, 21, 1, 0, i, 0, time.UTC))})
		if err != nil {
			t.Fatal(err)
		}
		msg := &nats.Msg{Subject: subjects.Feed("01", unit, subjects.KindAir), Data: body,
			Header: ce.Event{ID: id, Source: ce.SourceURN("01", unit), Type: ce.ObservedType("air"), Subject: "st-1", Time: time.Date(2026, 11, 21, 1, 0, i, 0, time.UTC)}.Header()}
		msg.Header.Set("Nats-Msg-Id", "src-"+unit+"/"+id)
		if _, err := n.JS.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTailNATS(t *testing.T) {
	n := testenv.NATS(t)
	publishAir(t, n, "00070", 3)
	publishAir(t, n, "00004", 2)
	out, errOut, err := run(t, Env{}, "tail", "ioc.feed.01.>", "--nats-url", n.URL, "--since", "seq:0", "--unit", "00004", "--limit", "2")
	if err != nil {
		t.Fatalf("tail: %v\n%s", err, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("tail printed %d lines; want 2:\n%s\n%s", len(lines), out, errOut)
	}
	for i, l := range lines {
		var ev struct {
			SpecVersion string         `json:"specversion"`
			ID          string         `json:"id"`
			Type        string         `json:"type"`
			Source      string         `json:"source"`
			IocSeq      uint64         `json:"iocseq"`
			IocSubject  string         `json:"iocsubject"`
			Data        map[string]any `json:"data"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("line %d: %v: %s", i, err, l)
		}
		if ev.SpecVersion != "1.0" || ev.ID != fmt.Sprintf("a%d", i) || ev.Type != "vn.ioc.air.observed.v1" || ev.Source != "urn:ioc:01:00004" ||
			ev.IocSeq != uint64(4+i) || ev.IocSubject != "ioc.feed.01.00004.air" || ev.Data["entityId"] != "st-1" {
			t.Errorf("line %d = %s", i, l)
		}
	}
	// Resume after sequence 4, as a table.
	out, _, err = run(t, Env{}, "tail", "ioc.feed.01.*.air", "--nats-url", n.URL, "--since", "seq:4", "--output", "table", "--limit", "1")
	if err != nil || !strings.Contains(out, "SEQ") || !strings.Contains(out, "5 ") || strings.Contains(out, "\n4 ") {
		t.Errorf("table from seq:4: %v\n%s", err, out)
	}
	if _, _, err := run(t, Env{}, "tail", "ioc.feed.01.>", "--nats-url", n.URL, "--bbox", "1,2,3,4"); err == nil {
		t.Error("tail on NATS took --bbox")
	}
}

func TestNATSContext(t *testing.T) {
	n := testenv.NATS(t)
	publishAir(t, n, "00070", 1)
	home := t.TempDir()
	dir := filepath.Join(home, ".config", "nats", "context")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hub.json"), []byte(`{"description":"x","url":"`+n.URL+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".config", "nats", "context.txt"), []byte("hub\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"hub", "."} {
		out, errOut, err := run(t, Env{Home: home}, "tail", "ioc.feed.>", "--context", c, "--since", "seq:0", "--limit", "1")
		if err != nil || !strings.Contains(out, `"iocseq":1`) {
			t.Errorf("--context %s: %v %s\n%s", c, err, errOut, out)
		}
	}
	if _, _, err := run(t, Env{Home: home}, "tail", "ioc.feed.>", "--context", "../x"); err == nil {
		t.Error("--context ../x was read")
	}
}

func TestReplay(t *testing.T) {
	n := testenv.NATS(t)
	publishAir(t, n, "00070", 3)
	sub, err := n.Conn.SubscribeSync("sandbox.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Conn.Flush(); err != nil {
		t.Fatal(err)
	}
	_, errOut, err := run(t, Env{}, "replay", "--nats-url", n.URL, "--from", "1h", "--speed", "max", "--subject", "ioc.feed.01.>", "--to-subject", "sandbox.>")
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, errOut)
	}
	if !strings.Contains(errOut, "replayed 3 messages") {
		t.Errorf("stderr %q; want 3 replayed", errOut)
	}
	for i := 0; i < 3; i++ {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != "sandbox.ioc.feed.01.00070.air" || m.Header.Get("ce-id") != fmt.Sprintf("a%d", i) || m.Header.Get("Nats-Msg-Id") != fmt.Sprintf("src-00070/a%d", i) {
			t.Errorf("replayed %d: %s %v", i, m.Subject, m.Header)
		}
	}
	if _, _, err := run(t, Env{}, "replay", "--nats-url", n.URL, "--from", "1h", "--subject", "ioc.feed.>", "--to-subject", "ioc.feed.>"); err == nil {
		t.Error("replay into ioc.> was accepted")
	}
	if _, err := parseSpeed("8x"); err != nil {
		t.Error(err)
	}
	if _, err := parseSpeed("-1x"); err == nil {
		t.Error("speed -1x accepted")
	}
}

// TestTailReader tails with dev's read-only NATS user.
func TestTailReader(t *testing.T) {
	s, err := natsx.StartEmbedded(natsx.EmbeddedConfig{StoreDir: t.TempDir(), Port: -1, HubPassword: "h", ReaderPassword: "r"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	hub, err := natsx.Connect(s.ClientURL(), "hub", nats.UserInfo(natsx.HubUser, "h"))
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	n := &testenv.NATSEnv{URL: s.ClientURL(), Conn: hub}
	n.JS, _ = jetstream.New(hub)
	if err := natsx.EnsureStreams(context.Background(), n.JS, natsx.StreamOptions{Memory: true}); err != nil {
		t.Fatal(err)
	}
	publishAir(t, n, "00070", 1)
	readerURL := strings.Replace(s.ClientURL(), "nats://", "nats://reader:r@", 1)
	out, errOut, err := run(t, Env{}, "tail", "ioc.feed.01.>", "--nats-url", readerURL, "--since", "seq:0", "--limit", "1")
	if err != nil || !strings.Contains(out, `"iocseq":1`) {
		t.Fatalf("tail as reader: %v %s\n%s", err, errOut, out)
	}
}

// fakeStreams is an SSE /v1/streams that sends events 1..total, ending the
// first connection after cut events (as a hub ends a slow client), and
// records the Last-Event-ID of each connection.
type fakeStreams struct {
	mu          sync.Mutex
	total, cut  int
	conns       int
	lastEventID []string
	revoke      bool
}

func (f *fakeStreams) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer iocid_k" {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"title":"Forbidden","status":403,"detail":"identity id_x may not read province 79"}`)
		return
	}
	f.mu.Lock()
	f.conns++
	conn := f.conns
	f.lastEventID = append(f.lastEventID, r.Header.Get("Last-Event-ID"))
	f.mu.Unlock()
	from := 1
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		n, _ := strconv.Atoi(id)
		from = n + 1
	}
	w.Header().Set("Content-Type", "text/event-stream")
	for seq := from; seq <= f.total; seq++ {
		fmt.Fprintf(w, ": keepalive\n\nid: %d\ndata: {\"specversion\":\"1.0\",\"id\":\"e%d\",\"source\":\"urn:ioc:01:00070\",\"type\":\"vn.ioc.air.observed.v1\",\"iocseq\":%d,\"iocsubject\":\"ioc.feed.01.00070.air\",\"data\":{}}\n\n", seq, seq, seq)
		w.(http.Flusher).Flush()
		if conn == 1 && seq == f.cut {
			if f.revoke {
				fmt.Fprint(w, "event: revoked\ndata: {\"code\":4003}\n\n")
			} else {
				fmt.Fprintf(w, "event: overflow\ndata: {\"code\":4004,\"lastSequence\":%d}\n\n", seq)
			}
			return
		}
	}
	<-r.Context().Done()
}

func TestTailSSEResumes(t *testing.T) {
	reconnectWait = 10 * time.Millisecond
	f := &fakeStreams{total: 50, cut: 20}
	srv := httptest.NewServer(f)
	defer srv.Close()
	out, errOut, err := run(t, Env{}, "tail", "ioc.feed.01.>", "--url", srv.URL, "--key", "iocid_k", "--limit", "50")
	if err != nil {
		t.Fatalf("tail: %v\n%s", err, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 50 {
		t.Fatalf("%d events; want 50", len(lines))
	}
	for i, l := range lines {
		if !strings.Contains(l, fmt.Sprintf(`"iocseq":%d,`, i+1)) {
			t.Fatalf("event %d = %s: a gap or a duplicate", i+1, l)
		}
	}
	f.mu.Lock()
	ids := f.lastEventID
	f.mu.Unlock()
	if len(ids) != 2 || ids[0] != "" || ids[1] != "20" {
		t.Errorf("Last-Event-ID per connection %q; want none, then 20", ids)
	}
	if !strings.Contains(errOut, "resuming after sequence 20") {
		t.Errorf("stderr %q; want the resumption told", errOut)
	}

	// A refusal is an error naming why; a revoked key ends the tail.
	if _, _, err := run(t, Env{}, "tail", "ioc.feed.79.>", "--url", srv.URL, "--key", "iocid_other"); err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "province 79") {
		t.Errorf("refused tail: %v", err)
	}
	rv := httptest.NewServer(&fakeStreams{total: 5, cut: 2, revoke: true})
	defer rv.Close()
	if _, _, err := run(t, Env{}, "tail", "ioc.feed.01.>", "--url", rv.URL, "--key", "iocid_k"); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("revoked tail: %v", err)
	}
}

func TestPublishChunks(t *testing.T) {
	var (
		mu     sync.Mutex
		bodies []string
		types  []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/feeds/air" || r.Header.Get("Authorization") != "Bearer ioc_src" {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(r.Body)
		mu.Lock()
		bodies, types = append(bodies, b.String()), append(types, r.Header.Get("Content-Type"))
		mu.Unlock()
		lines := strings.Split(strings.TrimSpace(b.String()), "\n")
		var res []map[string]any
		acc, dup, rej := 0, 0, 0
		for i, l := range lines {
			switch {
			case strings.Contains(l, "bad"):
				res = append(res, map[string]any{"index": i, "status": "rejected", "reason": "pm25: want a number", "pointer": fmt.Sprintf("/%d/pm25", i)})
				rej++
			case strings.Contains(l, "dup"):
				res = append(res, map[string]any{"index": i, "status": "duplicate", "id": "dup"})
				dup++
			default:
				res = append(res, map[string]any{"index": i, "status": "accepted"})
				acc++
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]any{"accepted": acc, "duplicates": dup, "rejected": rej, "results": res})
	}))
	defer srv.Close()
	var nd strings.Builder
	for i := 0; i < 7; i++ {
		switch i {
		case 3:
			nd.WriteString(`{"id":"bad"}` + "\n")
		case 5:
			nd.WriteString(`{"id":"dup"}` + "\n\n")
		default:
			fmt.Fprintf(&nd, `{"id":"a%d"}`+"\n", i)
		}
	}
	file := filepath.Join(t.TempDir(), "air.ndjson")
	if err := os.WriteFile(file, []byte(nd.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := run(t, Env{}, "publish", "air", file, "--url", srv.URL, "--token", "ioc_src", "--chunk", "3")
	if err == nil || !strings.Contains(err.Error(), "1 rejected") {
		t.Errorf("publish with a bad item: %v; want an error counting it", err)
	}
	if len(bodies) != 3 || types[0] != "application/x-ndjson" || strings.Count(bodies[0], "\n") != 3 {
		t.Errorf("chunks %q (%v); want 3 NDJSON chunks of at most 3 items", bodies, types)
	}
	for _, want := range []string{"item 3: rejected: pm25: want a number [/0/pm25]", "item 5 (dup): duplicate", "7 items: 5 accepted, 1 duplicate, 1 rejected"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "publishing air") {
		t.Errorf("no progress bar on stderr: %q", errOut)
	}

	// JSON arrays and GeoJSON go as JSON, a FeatureCollection as one.
	chunks, err := split("geojson", []byte(`{"type":"FeatureCollection","features":[{"type":"Feature","id":1},{"type":"Feature","id":2},{"type":"Feature","id":3}]}`), 2, 1<<20)
	if err != nil || len(chunks) != 2 || !strings.HasPrefix(string(chunks[0].body), `{"type":"FeatureCollection","features":[{"type":"Feature","id":1},`) || chunks[1].first != 2 {
		t.Errorf("geojson chunks %v %v", chunks, err)
	}
	if f := sniffFormat("alerts", []byte(" <alert/>")); f != "cap" {
		t.Errorf("sniff XML = %s", f)
	}
	if f := sniffFormat("x", []byte("{\"a\":1}\n{\"a\":2}\n")); f != "ndjson" {
		t.Errorf("sniff NDJSON = %s", f)
	}
}

func TestRedactNATS(t *testing.T) {
	if got := redactNATS("nats://reader:secret@127.0.0.1:4222"); got != "nats://reader:***@127.0.0.1:4222" {
		t.Errorf("redactNATS = %s", got)
	}
}
