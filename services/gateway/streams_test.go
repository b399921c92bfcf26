package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twpayne/go-geom"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// streamEnv is a gateway on real NATS (and PostGIS with the seed units when
// db is set) serving /v1/streams, signed in as the tests' admin by default.
type streamEnv struct {
	url string // the NATS server's
	js  jetstream.JetStream
	g   *Gateway
	srv *httptest.Server
}

func newStreamEnv(t testing.TB, cfg Config, db *testenv.DBEnv, loader auth.Loader) *streamEnv {
	t.Helper()
	n := testenv.NATS(t)
	a := testAuth(t, loader)
	if loader != nil {
		if err := a.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	deps := Deps{JS: n.JS, Metrics: prometheus.NewRegistry(), Auth: a}
	if db != nil {
		deps.Pool = db.Pool
	}
	g, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	var wrap []func(http.Handler) http.Handler
	if loader == nil {
		wrap = append(wrap, withTestToken)
	}
	srv := serveGateway(t, g, wrap...)
	return &streamEnv{url: n.URL, js: n.JS, g: g, srv: srv}
}

// airFeed is the FEEDS message of observation i of station st in a unit of
// province, at lon/lat.
func airFeed(t testing.TB, province, unit, st string, i int, lon, lat float64) *nats.Msg {
	t.Helper()
	loc := mustWKB(t, geom.NewPointFlat(geom.XY, []float64{lon, lat}))
	at := time.Date(2026, 11, 21, 1, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
	pm := float64(i % 300)
	body, err := proto.Marshal(&iocv1.AirQualityObserved{
		Id: fmt.Sprintf("%s-%d", st, i), EntityId: st, ObservedAt: timestamppb.New(at),
		Location: loc, Pm25: &pm, Name: "Trạm " + st,
		Origin: &iocv1.Origin{SourceId: "src", Province: province, Unit: unit},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(subjects.Feed(province, unit, subjects.KindAir))
	m.Data = body
	m.Header = ce.Event{ID: fmt.Sprintf("%s-%d", st, i), Source: ce.SourceURN(province, unit),
		Type: ce.ObservedType(subjects.KindAir), Subject: st, Time: at}.Header()
	return m
}

// alertFeed is the FEEDS message of a CAP alert of severity over a square at lon/lat.
func alertFeed(t testing.TB, province, unit, id, severity string, lon, lat float64) *nats.Msg {
	t.Helper()
	sq := geom.NewPolygonFlat(geom.XY, []float64{lon, lat, lon + 0.01, lat, lon + 0.01, lat + 0.01, lon, lat + 0.01, lon, lat}, []int{10})
	body, err := proto.Marshal(&iocv1.Alert{Id: id, Identifier: id, Sender: "kttv", Status: "Actual", MsgType: "Alert",
		Sent: timestamppb.Now(), Info: []*iocv1.AlertInfo{{Event: "Lũ", Severity: severity,
			Area: []*iocv1.AlertArea{{AreaDesc: "ô", Geometry: mustWKB(t, sq)}}}}})
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(subjects.Feed(province, unit, subjects.KindAlert))
	m.Data = body
	m.Header = ce.Event{ID: id, Source: ce.SourceURN(province, unit), Type: ce.AlertType, Subject: id, Time: time.Now()}.Header()
	return m
}

// publishMsgs publishes msgs with async publish and waits for every ack.
func publishMsgs(t testing.TB, js jetstream.JetStream, msgs ...*nats.Msg) {
	t.Helper()
	for i, m := range msgs {
		if _, err := js.PublishMsgAsync(m); err != nil {
			t.Fatalf("publishing: %v", err)
		}
		if i%1000 == 999 || i == len(msgs)-1 {
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(hangGuard):
				t.Fatal("async publish did not complete")
			}
		}
	}
}

// airFeeds is n air observations of province 01, ward 00004, numbered from first.
func airFeeds(t testing.TB, first, n int) []*nats.Msg {
	out := make([]*nats.Msg, n)
	for i := range n {
		out[i] = airFeed(t, "01", "00004", "st-"+strconv.Itoa((first+i)%50), first+i, 105.84, 21.03)
	}
	return out
}

// gotEvent is what the tests read of one event.
type gotEvent struct {
	Seq  uint64          `json:"iocseq"`
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
	raw  []byte
}

// checkCloudEvent fails t unless b is a valid CloudEvent to the CloudEvents
// Go SDK, with iochub's extensions, and returns it decoded.
func checkCloudEvent(t testing.TB, b []byte) gotEvent {
	t.Helper()
	var e cloudevents.Event
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("the CloudEvents SDK refuses %s: %v", b, err)
	}
	if err := e.Validate(); err != nil {
		t.Fatalf("the CloudEvents SDK finds %s invalid: %v", b, err)
	}
	if e.SpecVersion() != "1.0" || e.DataContentType() != "application/json" || e.Time().IsZero() {
		t.Fatalf("event %s: specversion %q, datacontenttype %q, time %v; want 1.0, application/json and a time", b, e.SpecVersion(), e.DataContentType(), e.Time())
	}
	if _, ok := e.Extensions()["iocseq"]; !ok {
		t.Fatalf("event %s lacks the extension iocseq", b)
	}
	var g gotEvent
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	g.raw = b
	return g
}

func (e *streamEnv) wsURL(query string) string {
	return "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/v1/streams?" + query
}

// dialStream opens a WebSocket stream.
func (e *streamEnv) dialStream(t testing.TB, query string, hdr http.Header) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(e.wsURL(query), hdr)
	if err != nil {
		t.Fatalf("dialing /v1/streams?%s: %v (response %v)", query, err, resp)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readWS reads n events from c, checking each with the CloudEvents SDK.
func readWS(t testing.TB, c *websocket.Conn, n int) []gotEvent {
	t.Helper()
	out := make([]gotEvent, 0, n)
	for len(out) < n {
		_ = c.SetReadDeadline(time.Now().Add(hangGuard))
		typ, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("reading event %d of %d: %v", len(out)+1, n, err)
		}
		if typ != websocket.TextMessage {
			t.Fatalf("message type %d; want text", typ)
		}
		out = append(out, checkCloudEvent(t, b))
	}
	return out
}

// sseStream is an open SSE response. lastID is the id of the last block
// read, as an EventSource keeps it (a block without data sets it too).
type sseStream struct {
	resp   *http.Response
	rd     *bufio.Reader
	lastID string
}

// sseEvent is one SSE event as read.
type sseEvent struct {
	id, event string
	data      []byte
}

func (e *streamEnv) openSSE(t testing.TB, query string, hdr http.Header) *sseStream {
	t.Helper()
	req, err := http.NewRequest("GET", e.srv.URL+"/v1/streams?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /v1/streams?%s as SSE = %d %s %s; want 200 text/event-stream", query, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return &sseStream{resp: resp, rd: bufio.NewReader(resp.Body)}
}

// next reads the next event (comments skipped; a block with an id and no
// data, as an EventSource does, only sets lastID).
func (s *sseStream) next() (sseEvent, error) {
	var ev sseEvent
	seen := false
	for {
		line, err := s.rd.ReadBytes('\n')
		if err != nil {
			return ev, err
		}
		line = bytes.TrimRight(line, "\n")
		switch {
		case len(line) == 0:
			if ev.id != "" {
				s.lastID = ev.id
			}
			if seen && len(ev.data) == 0 && ev.event == "" {
				ev, seen = sseEvent{}, false
				continue
			}
			if seen {
				return ev, nil
			}
		case line[0] == ':':
		default:
			k, v, _ := bytes.Cut(line, []byte(":"))
			v = bytes.TrimPrefix(v, []byte(" "))
			seen = true
			switch string(k) {
			case "id":
				ev.id = string(v)
			case "event":
				ev.event = string(v)
			case "data":
				ev.data = append(ev.data, v...)
			}
		}
	}
}

// readSSE reads n events, checking each (its id is its iocseq).
func readSSE(t testing.TB, s *sseStream, n int) []gotEvent {
	t.Helper()
	out := make([]gotEvent, 0, n)
	for len(out) < n {
		ev, err := s.next()
		if err != nil {
			t.Fatalf("reading SSE event %d of %d: %v", len(out)+1, n, err)
		}
		if ev.event != "" {
			t.Fatalf("SSE event %q %s; want a data event", ev.event, ev.data)
		}
		g := checkCloudEvent(t, ev.data)
		if ev.id != strconv.FormatUint(g.Seq, 10) {
			t.Fatalf("SSE id %q for iocseq %d; want them equal", ev.id, g.Seq)
		}
		out = append(out, g)
	}
	return out
}

// checkContiguous fails t unless evs have the sequences from, from+1, … and distinct ids.
func checkContiguous(t testing.TB, evs []gotEvent, from uint64) {
	t.Helper()
	ids := make(map[string]bool, len(evs))
	for i, e := range evs {
		if want := from + uint64(i); e.Seq != want {
			t.Fatalf("event %d has sequence %d; want %d (a gap or a duplicate)", i, e.Seq, want)
		}
		if ids[e.ID] {
			t.Fatalf("event id %s delivered twice", e.ID)
		}
		ids[e.ID] = true
	}
}

// TestStreamsResumeWebSocket: 10 000 events, a disconnect in the middle (with
// events published while away), a resume with since=seq: — no gap, no duplicate.
func TestStreamsResumeWebSocket(t *testing.T) {
	e := newStreamEnv(t, Config{}, nil, nil)
	publishMsgs(t, e.js, airFeeds(t, 0, 5000)...)
	c := e.dialStream(t, "subject=ioc.feed.01.>&since=seq:0", nil)
	first := readWS(t, c, 3000)
	c.Close() // abruptly, in the middle of the replay
	publishMsgs(t, e.js, airFeeds(t, 5000, 5000)...)
	last := first[len(first)-1].Seq
	c2 := e.dialStream(t, "subject=ioc.feed.01.>&since=seq:"+strconv.FormatUint(last, 10), nil)
	rest := readWS(t, c2, 7000)
	all := append(first, rest...)
	checkContiguous(t, all, 1)
	// Live events after the replay arrive on the same connection.
	publishMsgs(t, e.js, airFeeds(t, 10000, 10)...)
	checkContiguous(t, append(all, readWS(t, c2, 10)...), 1)
}

// TestStreamsResumeSSE: the same with Server-Sent Events and Last-Event-ID.
func TestStreamsResumeSSE(t *testing.T) {
	e := newStreamEnv(t, Config{}, nil, nil)
	publishMsgs(t, e.js, airFeeds(t, 0, 5000)...)
	s := e.openSSE(t, "subject=ioc.feed.01.*.air&since=seq:0", nil)
	first := readSSE(t, s, 3000)
	s.resp.Body.Close()
	publishMsgs(t, e.js, airFeeds(t, 5000, 5000)...)
	// Last-Event-ID wins over since, as a browser's EventSource resends the URL it opened.
	s2 := e.openSSE(t, "subject=ioc.feed.01.*.air&since=seq:0", http.Header{"Last-Event-Id": {strconv.FormatUint(first[len(first)-1].Seq, 10)}})
	rest := readSSE(t, s2, 7000)
	checkContiguous(t, append(first, rest...), 1)
}

// TestStreamsSSEOpensWithItsPosition: an SSE stream opens with the position
// it starts after (an id without data), so that an EventSource whose stream
// ends before its first event resumes from there, not from what is new by
// the time it reconnects: the events published in between are not lost.
func TestStreamsSSEOpensWithItsPosition(t *testing.T) {
	e := newStreamEnv(t, Config{}, nil, nil)
	publishMsgs(t, e.js, airFeeds(t, 0, 5)...)
	var err error
	s := e.openSSE(t, "subject=ioc.feed.01.*.air", nil) // since=new
	publishMsgs(t, e.js, airFeeds(t, 5, 1)...)
	first := readSSE(t, s, 1)
	if first[0].Seq != 6 {
		t.Fatalf("first event %d; want 6", first[0].Seq)
	}
	// A stream that ends before its first event: the browser reconnects
	// with Last-Event-ID = the opening id, and gets what came meanwhile.
	s2 := e.openSSE(t, "subject=ioc.feed.01.*.air", nil)
	opening := make([]string, 3)
	for i := range opening {
		if opening[i], err = s2.rd.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{": iochub event stream ioc.feed.01.*.air\n", "id: 6\n", "\n"}; !slices.Equal(opening, want) {
		t.Fatalf("opening block %q; want %q (the stream's last message when it opened, no data)", opening, want)
	}
	s2.resp.Body.Close()
	publishMsgs(t, e.js, airFeeds(t, 6, 3)...)
	s3 := e.openSSE(t, "subject=ioc.feed.01.*.air", http.Header{"Last-Event-Id": {"6"}})
	checkContiguous(t, readSSE(t, s3, 3), 7)
	if s3.lastID != "9" {
		t.Errorf("lastID after the events %q; want 9", s3.lastID)
	}
}

// TestStreamsSSEAndWebSocketAgree: both transports deliver the same events, byte for byte.
func TestStreamsSSEAndWebSocketAgree(t *testing.T) {
	e := newStreamEnv(t, Config{}, nil, nil)
	msgs := airFeeds(t, 0, 300)
	msgs = append(msgs, alertFeed(t, "01", "00004", "cap-1", "Severe", 105.8, 21.0))
	publishMsgs(t, e.js, msgs...)
	ws := readWS(t, e.dialStream(t, "subject=ioc.feed.01.>&since=seq:0", nil), 301)
	sse := readSSE(t, e.openSSE(t, "subject=ioc.feed.01.>&since=seq:0", nil), 301)
	for i := range ws {
		if !bytes.Equal(ws[i].raw, sse[i].raw) {
			t.Fatalf("event %d differs:\nWS  %s\nSSE %s", i, ws[i].raw, sse[i].raw)
		}
	}
	var data struct {
		ID   string  `json:"id"`
		Pm25 float64 `json:"pm25"`
	}
	if err := json.Unmarshal(ws[7].Data, &data); err != nil || data.ID != "st-7-7" || data.Pm25 != 7 || ws[7].Type != "vn.ioc.air.observed.v1" {
		t.Errorf("event 7 = %s (%v); want the air observation st-7-7 rendered with protojson", ws[7].raw, err)
	}
	if !strings.Contains(string(ws[300].Data), `"severity":"Severe"`) {
		t.Errorf("the alert's data %s lacks its severity", ws[300].Data)
	}
}

// TestStreamsSince: since=new starts after what is stored; since=<time> at the first event at or after it.
func TestStreamsSince(t *testing.T) {
	e := newStreamEnv(t, Config{}, nil, nil)
	publishMsgs(t, e.js, airFeeds(t, 0, 20)...)
	c := e.dialStream(t, "subject=ioc.feed.01.>", nil)
	// The consumer exists once the upgrade is answered: what follows is new.
	publishMsgs(t, e.js, airFeeds(t, 20, 5)...)
	checkContiguous(t, readWS(t, c, 5), 21)

	from := time.Now().Add(-time.Hour).Format(time.RFC3339)
	checkContiguous(t, readWS(t, e.dialStream(t, "subject=ioc.feed.01.>&since="+from, nil), 25), 1)

	// A time between two batches (the stream's stored times, not ce-time):
	// the client starts at the first event after it, and knows the sequence
	// before it to resume from should it be cut before its first event.
	mid := time.Now()
	publishMsgs(t, e.js, airFeeds(t, 25, 5)...)
	q := url.Values{"subject": {"ioc.feed.01.>"}, "since": {mid.Format(time.RFC3339Nano)}}
	checkContiguous(t, readWS(t, e.dialStream(t, q.Encode(), nil), 5), 26)
	p, err := parseStreamQuery(q, "")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := e.g.newStreamClient(context.Background(), auth.Principal{}, p, streamFilter{shape: p.Shape})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.stop()
	if sc.start != 25 || sc.replay != 30 {
		t.Errorf("since %s: start %d, replay up to %d; want 25 and 30", mid.Format(time.RFC3339Nano), sc.start, sc.replay)
	}

	// A position past the stream's last message (30) is no position of it
	// (a stream recreated since): 409 saying so, over WebSocket and SSE.
	// The last message itself is a position: what follows it.
	for _, hdr := range []http.Header{nil, {"Accept": {"text/event-stream"}, "Last-Event-Id": {"31"}}} {
		query := "subject=ioc.feed.01.>&since=seq:31"
		if hdr != nil {
			query = "subject=ioc.feed.01.>"
		}
		req, _ := http.NewRequest("GET", e.srv.URL+"/v1/streams?"+query, nil)
		req.Header = hdr
		if hdr == nil {
			req.Header = http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body) // a stream that opened ends at the client's timeout
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict || !strings.Contains(string(b), "past the last message of FEEDS, 30") {
			t.Errorf("resuming at 31 of 30 (%v) = %d %s; want 409 naming the stream's last message", hdr, resp.StatusCode, b)
		}
	}
	c30 := e.dialStream(t, "subject=ioc.feed.01.>&since=seq:30", nil)
	publishMsgs(t, e.js, airFeeds(t, 30, 1)...)
	checkContiguous(t, readWS(t, c30, 1), 31)
}

// scopedIdentities serves identities: a viewer of province 01, a viewer of ward
// 00004, a viewer of province 01's air only, and their tokens.
func scopedIdentities(t testing.TB) (l *fakeLoader, province01, ward, air01 string) {
	t.Helper()
	tokP, sumP := auth.NewToken()
	tokW, sumW := auth.NewToken()
	tokK, sumK := auth.NewToken()
	return &fakeLoader{list: []auth.Identity{
		{ID: "id_00000000000000b1", Name: "hanoi-app", Role: auth.RoleViewer, Scopes: []string{"01"}, TokenSHA256: sumP},
		{ID: "id_00000000000000b2", Name: "ba-dinh-bot", Role: auth.RoleViewer, Scopes: []string{"00004"}, TokenSHA256: sumW},
		{ID: "id_00000000000000b3", Name: "air-app", Role: auth.RoleViewer, Scopes: []string{"01"}, Kinds: []string{"air"}, TokenSHA256: sumK},
	}}, tokP, tokW, tokK
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// TestStreamsAccess: 401 without credentials, 403 for another province or a
// subject spanning provinces, 405 for writes, 400 naming the parameter, 403
// for a foreign Origin; a ward-scoped key gets only its ward.
func TestStreamsAccess(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	l, tokP, tokW, tokK := scopedIdentities(t)
	e := newStreamEnv(t, Config{}, db, l)
	get := func(method, query string, hdr http.Header) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, e.srv.URL+"/v1/streams?"+query, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		if req.Header.Get("Accept") == "" {
			req.Header.Set("Accept", "text/event-stream")
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return resp.StatusCode, ""
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		name, method, query string
		hdr                 http.Header
		want                int
		says                string
	}{
		{"no credentials", "GET", "subject=ioc.feed.01.>", nil, 401, "sign in"},
		{"no credentials, no Accept", "GET", "subject=ioc.feed.01.>", http.Header{"Accept": {"*/*"}}, 401, "sign in"},
		{"own province", "GET", "subject=ioc.feed.01.>", bearer(tokP), 200, ""},
		{"other province", "GET", "subject=ioc.feed.79.>", bearer(tokP), 403, "province 79 is outside"},
		{"other province's state", "GET", "subject=ioc.state.79.alert.*", bearer(tokP), 403, "province 79"},
		{"wildcard province", "GET", "subject=ioc.feed.*.*.air", bearer(tokP), 403, "wildcard province"},
		{"everything", "GET", "subject=ioc.feed.>", bearer(tokP), 403, "wildcard province"},
		{"kind the key does not read", "GET", "subject=ioc.feed.01.*.alert", bearer(tokK), 403, "kind alert"},
		{"kind= the key does not read", "GET", "subject=ioc.feed.01.>&kind=alert", bearer(tokK), 403, "read alert"},
		{"unit of another province", "GET", "subject=ioc.feed.01.>&unit=79", bearer(tokP), 403, "unit 79"},
		{"write", "POST", "subject=ioc.feed.01.>", bearer(tokP), 405, ""},
		{"delete", "DELETE", "subject=ioc.feed.01.>", bearer(tokP), 405, ""},
		{"head", "HEAD", "subject=ioc.feed.01.>", bearer(tokP), 405, ""},
		{"no subject", "GET", "", bearer(tokP), 400, "parameter subject"},
		{"spans streams", "GET", "subject=ioc.>", bearer(tokP), 400, "several streams"},
		{"other stream", "GET", "subject=ioc.action.01.>", bearer(tokP), 400, "parameter subject"},
		{"too many tokens", "GET", "subject=ioc.feed.01.a.b.c", bearer(tokP), 400, "parameter subject"},
		{"form feed", "GET", "subject=ioc.feed.01.%0C.air", bearer(tokP), 400, "parameter subject"}, // NATS refuses it: not a 503 to retry
		{"bad since", "GET", "subject=ioc.feed.01.>&since=yesterday", bearer(tokP), 400, "parameter since"},
		{"bad kind", "GET", "subject=ioc.feed.01.>&kind=ufo", bearer(tokP), 400, "parameter kind"},
		{"bad severity", "GET", "subject=ioc.feed.01.>&severity=awful", bearer(tokP), 400, "parameter severity"},
		{"bad bbox", "GET", "subject=ioc.feed.01.>&bbox=1,2,3", bearer(tokP), 400, "parameter bbox"},
		{"unknown unit", "GET", "subject=ioc.feed.01.>&unit=99999", bearer(tokP), 400, "parameter unit"},
		{"bad Last-Event-ID", "GET", "subject=ioc.feed.01.>", http.Header{"Authorization": {"Bearer " + tokP}, "Last-Event-Id": {"x"}}, 400, "Last-Event-ID"},
		{"neither WebSocket nor SSE", "GET", "subject=ioc.feed.01.>", http.Header{"Authorization": {"Bearer " + tokP}, "Accept": {"application/json"}}, 406, "text/event-stream"},
		{"foreign origin", "GET", "subject=ioc.feed.01.>", http.Header{"Authorization": {"Bearer " + tokP}, "Origin": {"https://evil.example.com"}}, 403, "Origin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(tc.method, tc.query, tc.hdr)
			if code != tc.want || !strings.Contains(body, tc.says) {
				t.Errorf("%s /v1/streams?%s = %d %s; want %d saying %q", tc.method, tc.query, code, body, tc.want, tc.says)
			}
		})
	}
	// The WebSocket upgrade is refused the same way.
	_, resp, err := websocket.DefaultDialer.Dial(e.wsURL("subject=ioc.feed.79.>"), bearer(tokP))
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("WebSocket for 79 with a key of 01: %v %v; want 403", err, resp)
	}
	_, resp, err = websocket.DefaultDialer.Dial(e.wsURL("subject=ioc.feed.01.>"), http.Header{"Authorization": {"Bearer " + tokP}, "Origin": {"https://evil.example.com"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("WebSocket from a foreign Origin: %v %v; want 403", err, resp)
	}

	// A key of ward 00004 reads ioc.feed.01.> but only gets its ward's events.
	publishMsgs(t, e.js,
		airFeed(t, "01", "00008", "other-ward", 0, 105.83, 21.04),
		airFeed(t, "01", "00004", "own-ward", 1, 105.84, 21.03))
	evs := readWS(t, e.dialStream(t, "subject=ioc.feed.01.>&since=seq:0", bearer(tokW)), 1)
	if evs[0].Seq != 2 {
		t.Errorf("ward key got %s first; want only its ward's event, sequence 2", evs[0].raw)
	}
	// A key of air only, on every kind of 01, gets the air observations only.
	publishMsgs(t, e.js, alertFeed(t, "01", "00004", "cap-k", "Severe", 105.8, 21.0), airFeed(t, "01", "00004", "air-k", 2, 105.84, 21.03))
	evs = readWS(t, e.dialStream(t, "subject=ioc.feed.01.>&since=seq:2", bearer(tokK)), 1)
	if evs[0].Seq != 4 {
		t.Errorf("air key got %s first after 2; want the air observation, sequence 4 (not the alert, 3)", evs[0].raw)
	}
	// On STATE the units come from the payload: a station of ward 00070 is
	// left out, an alert touching 00004 comes.
	publish(t, e.js, airState(t, "st-00070", 0, 10), alertState(t, "cap-1", cwSquare(105, 21)))
	evs = readWS(t, e.dialStream(t, "subject=ioc.state.01.>&since=seq:0", bearer(tokW)), 1)
	if evs[0].Seq != 2 || evs[0].Type != "vn.ioc.alert.state.v1" {
		t.Errorf("ward key got %s first on STATE; want the alert, sequence 2", evs[0].raw)
	}
}

// TestStreamsFilters: kind, unit with its descendants (from PostGIS), bbox and alert severity.
func TestStreamsFilters(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	e := newStreamEnv(t, Config{}, db, nil)
	publishMsgs(t, e.js,
		airFeed(t, "01", "00004", "a", 0, 105.84, 21.03),                 // 1
		airFeed(t, "01", "00008", "b", 1, 105.70, 21.20),                 // 2
		alertFeed(t, "01", "00004", "minor", "Minor", 105.84, 21.03),     // 3
		alertFeed(t, "01", "00008", "extreme", "Extreme", 105.84, 21.03), // 4
		airFeed(t, "79", "26734", "c", 2, 106.7, 10.8),                   // 5
		alertFeed(t, "01", "00004", "end", "Extreme", 105.84, 21.03),     // 6
		airFeed(t, "01", "00004", "end", 3, 105.84, 21.03),               // 7
	)
	// Each case ends with 6 or 7: reading exactly the wanted events in order
	// shows that nothing else before them passed the filters.
	for _, tc := range []struct {
		query string
		want  []uint64
	}{
		{"subject=ioc.feed.01.>", []uint64{1, 2, 3, 4, 6, 7}},
		{"subject=ioc.feed.>&kind=air", []uint64{1, 2, 5, 7}},
		{"subject=ioc.feed.>&unit=01", []uint64{1, 2, 3, 4, 6, 7}}, // the province and its wards
		{"subject=ioc.feed.01.>&unit=00004", []uint64{1, 3, 6, 7}},
		{"subject=ioc.feed.>&bbox=105.8,21.0,105.9,21.1", []uint64{1, 3, 4, 6, 7}},
		{"subject=ioc.feed.01.*.alert&severity=severe", []uint64{4, 6}},
		{"subject=ioc.feed.01.*.alert&severity=Minor", []uint64{3, 4, 6}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			evs := readWS(t, e.dialStream(t, tc.query+"&since=seq:0", nil), len(tc.want))
			for i, ev := range evs {
				if ev.Seq != tc.want[i] {
					t.Fatalf("got sequence %d at %d; want %v", ev.Seq, i, tc.want)
				}
			}
		})
	}
}

// smallRcvBuf dials with a tiny receive buffer so that a client that does
// not read fills the path quickly.
var smallRcvBuf = &websocket.Dialer{
	NetDial: func(network, addr string) (net.Conn, error) {
		d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
			return errors.Join(err, serr)
		}}
		return d.Dial(network, addr)
	},
}

// TestStreamsSlowClientCut: a client that never reads is cut with 4004 and
// told where to resume, without a gap, while a fast client on the same
// subject gets every event.
func TestStreamsSlowClientCut(t *testing.T) {
	e := newStreamEnv(t, Config{StreamQueue: 64, StreamStall: time.Second, WriteTimeout: hangGuard, ReplayRate: -1}, nil, nil)
	slow, _, err := smallRcvBuf.Dial(e.wsURL("subject=ioc.feed.01.>"), http.Header{"Authorization": {"Bearer " + testToken}})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fast := e.dialStream(t, "subject=ioc.feed.01.>", nil)
	cut := func() bool {
		return testutil.ToFloat64(e.g.m.streamClosed.WithLabelValues("stream_too_slow")) >= 1
	}
	// Publish in rounds until the slow client is cut, then 10 more; the fast
	// client reads all the while, in its own goroutine, and gets every event.
	published := 0
	fastDone := make(chan []gotEvent, 1)
	go func() {
		var got []gotEvent
		for {
			_ = fast.SetReadDeadline(time.Now().Add(hangGuard))
			_, b, err := fast.ReadMessage()
			if err != nil {
				fastDone <- got
				return
			}
			var g gotEvent
			if json.Unmarshal(b, &g) != nil {
				fastDone <- got
				return
			}
			g.raw = b
			if got = append(got, g); g.ID == "end-0" {
				fastDone <- got
				return
			}
		}
	}()
	for round := 0; !cut(); round++ {
		if round > 200 {
			t.Fatal("the slow client was never cut")
		}
		publishMsgs(t, e.js, airFeeds(t, round*500, 500)...)
		published += 500
	}
	end := airFeed(t, "01", "00004", "end", 0, 105.84, 21.03)
	end.Header.Set(ce.HeaderID, "end-0")
	publishMsgs(t, e.js, end)
	got := <-fastDone
	if len(got) != published+1 {
		t.Fatalf("the fast client got %d events; want all %d", len(got), published+1)
	}
	checkContiguous(t, got, 1)

	// The slow client now reads what reached it, then the close with where to resume.
	var seen []gotEvent
	for {
		_ = slow.SetReadDeadline(time.Now().Add(hangGuard))
		_, b, err := slow.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != CloseStreamTooSlow {
				t.Fatalf("slow client ended with %v; want close %d", err, CloseStreamTooSlow)
			}
			last := uint64(0)
			if len(seen) > 0 {
				last = seen[len(seen)-1].Seq
			}
			if want := "since=seq:" + strconv.FormatUint(last, 10); !strings.HasSuffix(ce.Text, want) {
				t.Fatalf("close text %q; want it to end with %s (the last event sent)", ce.Text, want)
			}
			break
		}
		seen = append(seen, checkCloudEvent(t, b))
	}
	if len(seen) == 0 {
		t.Fatal("the slow client got no event before it was cut")
	}
	checkContiguous(t, seen, 1)
	testkit.Eventually(t, hangGuard, "the slow client to be gone and the fast one to stay", func() (bool, string) {
		n := testutil.ToFloat64(e.g.m.streamClients)
		return n == 1, fmt.Sprintf("%v stream clients", n)
	})
}

// TestStreamsSlowSSE: an SSE client that does not read gets a final event
// overflow naming the last sequence sent.
func TestStreamsSlowSSE(t *testing.T) {
	e := newStreamEnv(t, Config{StreamQueue: 4, StreamStall: 20 * time.Millisecond, WriteTimeout: hangGuard, ReplayRate: -1}, nil, nil)
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return smallRcvBuf.NetDial(network, addr)
	}}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/streams?subject=ioc.feed.01.>", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cut := func() bool {
		return testutil.ToFloat64(e.g.m.streamClosed.WithLabelValues("stream_too_slow")) >= 1
	}
	for round := 0; !cut(); round++ {
		if round > 200 {
			t.Fatalf("the slow SSE client was never cut; %v events sent, %v clients", testutil.ToFloat64(e.g.m.streamEvents), testutil.ToFloat64(e.g.m.streamClients))
		}
		publishMsgs(t, e.js, airFeeds(t, round*500, 500)...)
	}
	s := &sseStream{resp: resp, rd: bufio.NewReader(resp.Body)}
	var last uint64
	for {
		ev, err := s.next()
		if err != nil {
			t.Fatalf("the SSE stream ended without an overflow event: %v", err)
		}
		if ev.event == "" {
			g := checkCloudEvent(t, ev.data)
			if last != 0 && g.Seq != last+1 {
				t.Fatalf("sequence %d after %d", g.Seq, last)
			}
			last = g.Seq
			continue
		}
		var end struct {
			Code         int    `json:"code"`
			LastSequence uint64 `json:"lastSequence"`
			Resume       string `json:"resume"`
		}
		if ev.event != "overflow" || json.Unmarshal(ev.data, &end) != nil || end.LastSequence != last || end.Code != CloseStreamTooSlow {
			t.Fatalf("final event %q %s; want overflow with lastSequence %d", ev.event, ev.data, last)
		}
		break
	}
	if _, err := s.next(); !errors.Is(err, io.EOF) {
		t.Errorf("after overflow: %v; want the end of the response", err)
	}
}

// TestStreamsReplayPaced: a long replay takes its events from the gateway's
// replay budget (ReplayRate 200/s, burst 64) while a live client on the same
// gateway gets new events at once. The replay client reads all the time; it
// can never have more than burst + slice + rate × elapsed events, where an
// unpaced replay would have thousands.
func TestStreamsReplayPaced(t *testing.T) {
	e := newStreamEnv(t, Config{ReplayRate: 200, ReplayRatePerIdentity: -1}, nil, nil) // the gateway's budget alone (TestStreamsReplayShareOfAnIdentity: one identity's share)
	publishMsgs(t, e.js, airFeeds(t, 0, 10000)...)
	start := time.Now()
	replay := e.dialStream(t, "subject=ioc.feed.01.>&since=seq:0", nil)
	var got atomic.Int64
	go func() {
		for {
			if _, _, err := replay.ReadMessage(); err != nil {
				return
			}
			got.Add(1)
		}
	}()
	testkit.Eventually(t, hangGuard, "the replay to start", func() (bool, string) {
		return got.Load() > 0, fmt.Sprintf("%d events", got.Load())
	})
	live := e.dialStream(t, "subject=ioc.feed.01.>", nil)
	publishMsgs(t, e.js, airFeeds(t, 10000, 10)...)
	checkContiguous(t, readWS(t, live, 10), 10001)
	n, el := got.Load(), time.Since(start)
	if most := int64(64 + 32 + 200*el.Seconds() + 1); n > most {
		t.Errorf("the replay client got %d events in %s; paced at 200/s it can have at most %d", n, el, most)
	}
}

// TestStreamsReplayShareOfAnIdentity: one identity replaying on three
// streams takes no more than its own share of the replay budget
// (ReplayRatePerIdentity 200/s within ReplayRate 2000/s), all three
// together, while another identity's replay goes on beside it. Its three
// clients read all the time; together they can never have more than the
// share's burst + 200 × elapsed events, where the gateway's budget alone
// would give them three quarters of 2000/s.
func TestStreamsReplayShareOfAnIdentity(t *testing.T) {
	tok, sum := auth.NewToken()
	l := &fakeLoader{list: []auth.Identity{{ID: "id_00000000000000b1", Name: "app", Role: auth.RoleViewer, Scopes: []string{"01"}, TokenSHA256: sum}}}
	e := newStreamEnv(t, Config{ReplayRate: 2000, ReplayRatePerIdentity: 200}, nil, l)
	publishMsgs(t, e.js, airFeeds(t, 0, 10000)...)
	count := func(c *websocket.Conn, n *atomic.Int64) {
		go func() {
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
				n.Add(1)
			}
		}()
	}
	const query = "subject=ioc.feed.01.>&since=seq:0"
	start := time.Now()
	var (
		many, other atomic.Int64
		conns       []*websocket.Conn
	)
	for range 3 {
		conns = append(conns, e.dialStream(t, query, http.Header{"Authorization": {"Bearer " + testToken}}))
		count(conns[len(conns)-1], &many)
	}
	conns = append(conns, e.dialStream(t, query, http.Header{"Authorization": {"Bearer " + tok}}))
	count(conns[len(conns)-1], &other)
	testkit.Eventually(t, hangGuard, "the other identity's replay past 300 events", func() (bool, string) {
		return other.Load() >= 300, fmt.Sprintf("%d events", other.Load())
	})
	n, el := many.Load(), time.Since(start)
	if most := int64(float64(replayBurst(200)) + 200*el.Seconds() + 1); n > most {
		t.Errorf("one identity's three replays got %d events in %s; within its share of 200/s they can have at most %d", n, el, most)
	}
	// An identity's share lives while it has a replaying stream.
	for _, c := range conns {
		c.Close()
	}
	testkit.Eventually(t, hangGuard, "the identities' shares forgotten with their streams", func() (bool, string) {
		e.g.perIDMu.Lock()
		defer e.g.perIDMu.Unlock()
		return len(e.g.replays) == 0, fmt.Sprint(len(e.g.replays), " shares")
	})
}

// TestStreamsGatewayCap: past Config.MaxStreams streams across identities a
// new one is refused with 503 and Retry-After (the per-identity cap is
// higher here, so the gateway's is what refuses), and a closed stream frees
// its place.
func TestStreamsGatewayCap(t *testing.T) {
	e := newStreamEnv(t, Config{MaxStreams: 2, MaxStreamsPerIdentity: 5}, nil, nil)
	c1 := e.dialStream(t, "subject=ioc.feed.01.>", nil)
	_ = e.dialStream(t, "subject=ioc.feed.01.>", nil)
	_, resp, err := websocket.DefaultDialer.Dial(e.wsURL("subject=ioc.feed.01.>"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third stream: %v %v; want 503 with Retry-After", err, resp)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "at most 2 event streams") {
		t.Errorf("third stream's problem %s; want it to name the cap", b)
	}
	c1.Close()
	testkit.Eventually(t, hangGuard, "a stream's place freed by its close", func() (bool, string) {
		c, resp, err := websocket.DefaultDialer.Dial(e.wsURL("subject=ioc.feed.01.>"), nil)
		if err != nil {
			if resp != nil {
				return false, resp.Status
			}
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
}
