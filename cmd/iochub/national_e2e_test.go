package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
	"github.com/iochub/iochub/services/aggregator/postgis"
	"github.com/iochub/iochub/services/gateway"
)

const (
	nationalHubPassword = "national-e2e-hub-password"
	provinceUserPass    = "national-e2e-province-password"
)

// federation is a national hub and the hub of province 01 under it, each
// the whole of iochub serve on its own NATS server and its own PostGIS; the
// province's NATS server (JetStream domain province-01) is a leaf node of
// the national one through a testkit.LinkProxy.
type federation struct {
	national, province       *hub
	nationalJS, provinceJS   jetstream.JetStream
	proxy                    *testkit.LinkProxy
	domain                   string
	provinceDB               *testenv.DBEnv
	nationalNATS, provinceNS *server.Server
}

// startFederation starts both hubs; setup runs on the province's database
// before its hub starts (the ingest reads the sources at start).
func startFederation(t *testing.T, staleAfter time.Duration, setup func(*testenv.DBEnv)) *federation {
	t.Helper()
	ctx := context.Background()
	domain, err := natsx.ProvinceDomain("01")
	if err != nil {
		t.Fatal(err)
	}
	f := &federation{domain: domain}
	// The national hub: its NATS accepts the province hub's leaf connection as
	// the user iochub national-nats-user prints.
	ns, err := natsx.StartEmbedded(natsx.EmbeddedConfig{StoreDir: t.TempDir(), Port: -1, LeafPort: -1, HubPassword: nationalHubPassword,
		LeafUsers: []*server.User{natsx.ProvinceLeafUser(domain, provinceUserPass)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	f.nationalNATS = ns
	nnc, err := natsx.Connect(ns.ClientURL(), "national e2e", nats.UserInfo(natsx.HubUser, nationalHubPassword))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nnc.Close)
	if f.nationalJS, err = jetstream.New(nnc); err != nil {
		t.Fatal(err)
	}
	f.national = startHubTB(t, "all", &testenv.NATSEnv{URL: ns.ClientURL(), Server: ns, Conn: nnc, JS: f.nationalJS}, testenv.PostGISWithUnits(t),
		func(c *config) { c.Gateway.Level, c.Gateway.ProvinceStaleAfter = gateway.LevelNational, staleAfter })
	leaf, err := url.Parse(natsx.LeafURL(ns))
	if err != nil {
		t.Fatal(err)
	}
	f.proxy = testkit.NewLinkProxy(t, leaf.Host)

	// The province hub: its own domain, a leaf node of the national hub that carries no ioc.> subject.
	remote, err := url.Parse("nats-leaf://" + domain + ":" + provinceUserPass + "@" + f.proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	ps, err := natsx.StartEmbedded(natsx.EmbeddedConfig{StoreDir: t.TempDir(), Port: -1, ServerName: "iochub-" + domain, Domain: domain,
		LeafRemotes: []*url.URL{remote}, LeafDeny: natsx.ProvinceLeafDeny, LeafReconnect: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ps.Shutdown(); ps.WaitForShutdown() })
	f.provinceNS = ps
	pnc, err := natsx.Connect(ps.ClientURL(), "province e2e")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pnc.Close)
	if f.provinceJS, err = jetstream.New(pnc); err != nil {
		t.Fatal(err)
	}
	f.provinceDB = testenv.PostGISWithUnits(t)
	setup(f.provinceDB)
	f.province = startHubTB(t, "all", &testenv.NATSEnv{URL: ps.ClientURL(), Server: ps, Conn: pnc, JS: f.provinceJS}, f.provinceDB)
	testkit.Eventually(t, 20*time.Second, "the province's leaf link", testkit.Holds(func() bool { return ps.NumLeafNodes() == 1 }))

	// What iochub national-add does.
	if err := natsx.AddProvinceSources(ctx, f.nationalJS, "01", domain); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 3*time.Minute, "the national hub reaching the province's streams", func() (bool, string) {
		srcs, err := natsx.ProvinceSources(ctx, f.nationalJS)
		if err != nil || len(srcs) != 2 {
			t.Fatalf("province sources %+v, %v; want two", srcs, err)
		}
		return srcs[0].Active >= 0 && srcs[1].Active >= 0, fmt.Sprintf("%+v", srcs)
	})
	return f
}

// rollupView reads roll-up frames of a live view by unit.
type rollupView struct {
	ws   *websocket.Conn
	last map[string]map[string]any // by "<unit>/<layer>/<window>"
}

func dialRollups(t *testing.T, base, query string) *rollupView {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/v1/live?"+query, devHeader())
	if err != nil {
		t.Fatalf("dialing live %s: %v", query, err)
	}
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	return &rollupView{ws: ws, last: map[string]map[string]any{}}
}

// wait reads frames until the roll-up of key satisfies ok, and returns it.
func (v *rollupView) wait(t *testing.T, key string, timeout time.Duration, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	if r := v.last[key]; r != nil && ok(r) {
		return r
	}
	_ = v.ws.SetReadDeadline(time.Now().Add(timeout))
	for {
		_, msg, err := v.ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for roll-up %s: %v; last seen %v", key, err, v.last[key])
		}
		var f struct {
			Rollups []map[string]any `json:"rollups"`
			Rollup  map[string]any   `json:"rollup"`
		}
		if err := json.Unmarshal(msg, &f); err != nil {
			t.Fatalf("live frame is not JSON: %v: %s", err, msg)
		}
		for _, r := range append(f.Rollups, f.Rollup) {
			if r != nil {
				v.last[fmt.Sprintf("%v/%v/%v", r["unit"], r["layer"], r["window"])] = r
			}
		}
		if r := v.last[key]; r != nil && ok(r) {
			return r
		}
	}
}

// areaAlert is a CAP-shaped JSON alert over a box around (lon, lat).
func areaAlert(id string, lon, lat float64) map[string]any {
	return map[string]any{"identifier": id, "sender": "ioc@hanoi.example", "sent": time.Now().UTC().Format(time.RFC3339),
		"status": "Actual", "msgType": "Alert", "scope": "Public",
		"info": []any{map[string]any{"category": []string{"Met"}, "event": "Flood", "urgency": "Immediate", "severity": "Severe", "certainty": "Observed",
			"expires": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
			"area": []any{map[string]any{"areaDesc": "box", "geometry": map[string]any{"type": "Polygon",
				"coordinates": [][][2]float64{{{lon - 0.001, lat - 0.001}, {lon + 0.001, lat - 0.001}, {lon + 0.001, lat + 0.001}, {lon - 0.001, lat + 0.001}, {lon - 0.001, lat - 0.001}}}}}}}}}
}

// lastRollup is the body of the last message of a roll-up subject on js.
func lastRollup(t *testing.T, js jetstream.JetStream, subject string) map[string]any {
	t.Helper()
	st, err := js.Stream(context.Background(), subjects.StreamRollups)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(context.Background(), subject)
	if err != nil {
		return nil
	}
	var r map[string]any
	if err := json.Unmarshal(m.Data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// streamSubjects are the subjects a stream holds messages on.
func streamSubjects(t *testing.T, js jetstream.JetStream, stream, filter string) map[string]uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects
}

// TestNationalFederation is the province → national contract (docs/edge.md)
// on real servers: a national hub and the hub of Hà Nội (01), each iochub
// serve on its own NATS server (the province's in its own JetStream domain,
// a leaf node of the national one through a TCP proxy) and its own PostGIS.
// Observations and alerts posted at the province reach the national hub as
// the province's roll-ups (on /v1/live?unit=VN) and alerts (on
// /v1/live?province=01); the link is cut, the national view marks 01 stale;
// the link is mended, the national hub catches up (the alert sent during the
// cut, the province's last roll-ups) and the mark clears. No feed item, no
// entity's state and no ward's roll-up ever reaches the national hub.
func TestNationalFederation(t *testing.T) {
	const staleAfter = 4 * time.Second
	ctx := context.Background()
	var tokAir, tokAlert string
	f := startFederation(t, staleAfter, func(db *testenv.DBEnv) {
		var err error
		if tokAir, err = postgis.AddSource(ctx, db.Pool, postgis.Source{ID: "fed-air", UnitCode: wardIn}); err != nil {
			t.Fatal(err)
		}
		if tokAlert, err = postgis.AddSource(ctx, db.Pool, postgis.Source{ID: "fed-alerts", UnitCode: "01"}); err != nil {
			t.Fatal(err)
		}
	})
	lon, lat := pointIn(t, f.provinceDB, wardIn)

	// Observations keep coming at the province, so its roll-ups keep being updated.
	load, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var posted int
	loadErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(100 * time.Millisecond) // a sensor's pace, not a wait
		defer tk.Stop()
		for n := 0; ; n++ {
			select {
			case <-load.Done():
				return
			case <-tk.C:
			}
			item, err := newAirItem(fmt.Sprintf("fed-%06d", n), "fed-st", lon, lat, time.Now())
			if err == nil {
				var code int
				code, _, _, err = tryPostBody(f.province.url+"/v1/feeds/air", tokAir, "application/json", mustJSON([]any{item}))
				if err == nil && code != http.StatusAccepted {
					err = fmt.Errorf("POST at the province: HTTP %d", code)
				}
			}
			if err != nil {
				if load.Err() == nil {
					loadErr <- err
				}
				return
			}
			mu.Lock()
			posted++
			mu.Unlock()
		}
	}()
	defer func() { stopLoad(); wg.Wait() }()
	checkLoad := func() {
		select {
		case err := <-loadErr:
			t.Fatal(err)
		default:
		}
	}

	key := "01/air/1h"
	view := dialRollups(t, f.national.url, "unit=VN&rollups=1h")
	r := view.wait(t, key, time.Minute, func(r map[string]any) bool { checkLoad(); return r["observations"].(float64) > 0 })
	if r["hubStale"] != nil || r["province"] != "01" {
		t.Fatalf("the national view's roll-up of 01: %v; want province 01, not stale", r)
	}
	if code, res, raw := post(t, f.province.url+"/v1/feeds/alert", tokAlert, []any{areaAlert("FED-1", lon, lat)}); code != http.StatusAccepted || res.Accepted != 1 {
		t.Fatalf("POST alert at the province = %d %s", code, raw)
	}
	alerts := newLiveView(t, f.national.url, "01&layers=alert")
	alerts.wait(t, "fed-alerts/FED-1", time.Minute, any1)

	// The link is cut: the national view marks 01 stale, while the province goes on.
	f.proxy.Cut()
	testkit.Eventually(t, 20*time.Second, "the province to see its link down", testkit.Holds(func() bool { return f.provinceNS.NumLeafNodes() == 0 }))
	r = view.wait(t, key, time.Minute, func(r map[string]any) bool { checkLoad(); return r["hubStale"] == true })
	staleAt := r["observations"].(float64)
	if code, res, raw := post(t, f.province.url+"/v1/feeds/alert", tokAlert, []any{areaAlert("FED-2", lon, lat)}); code != http.StatusAccepted || res.Accepted != 1 {
		t.Fatalf("POST alert at the province during the cut = %d %s", code, raw)
	}
	mu.Lock()
	atCut := posted
	mu.Unlock()
	// The province stores what it is sent meanwhile: its own roll-up grows past what the national hub shows.
	testkit.Eventually(t, time.Minute, "the province's roll-up to move on during the cut", func() (bool, string) {
		checkLoad()
		p := lastRollup(t, f.provinceJS, subjects.Rollup("01", "01", "air", "1h"))
		return p != nil && p["observations"].(float64) > staleAt+5, fmt.Sprintf("province %v; national shows %v", p["observations"], staleAt)
	})

	// Mended: the national hub catches up, the mark clears.
	f.proxy.Restore()
	r = view.wait(t, key, time.Minute, func(r map[string]any) bool {
		checkLoad()
		return r["hubStale"] == nil && r["observations"].(float64) > staleAt+5
	})
	alerts.wait(t, "fed-alerts/FED-2", time.Minute, any1)
	stopLoad()
	wg.Wait()
	checkLoad()
	mu.Lock()
	t.Logf("posted %d observations at the province, %d before the cut; the national view showed %v at the cut, %v after it",
		posted, atCut, staleAt, r["observations"])
	mu.Unlock()
	// Every roll-up of the province's own catches up to the province's last.
	for _, w := range []string{"1m", "15m", "1h", "1d"} {
		subject := subjects.Rollup("01", "01", "air", w)
		testkit.Eventually(t, time.Minute, "the national copy of "+subject, func() (bool, string) {
			p, n := lastRollup(t, f.provinceJS, subject), lastRollup(t, f.nationalJS, subject)
			return p != nil && n != nil && p["observations"] == n["observations"] && p["updatedAt"] == n["updatedAt"],
				fmt.Sprintf("province %v, national %v", p, n)
		})
	}

	// Only roll-ups of the province itself and alerts crossed: no feed item, no state of another layer, no ward's roll-up.
	if n := streamCount(t, f.nationalJS, subjects.StreamFeeds); n != 0 {
		t.Errorf("the national FEEDS holds %d items; want none", n)
	}
	for s := range streamSubjects(t, f.nationalJS, subjects.StreamState, subjects.StateAll) {
		if !strings.HasPrefix(s, strings.TrimSuffix(subjects.StateLayerAll("01", subjects.KindAlert), ">")) {
			t.Errorf("the national STATE holds %s; want alerts of 01 only", s)
		}
	}
	rollups := streamSubjects(t, f.nationalJS, subjects.StreamRollups, subjects.RollupsAll)
	for s := range rollups {
		if !strings.HasPrefix(s, strings.TrimSuffix(subjects.RollupUnitAll("01", "01"), ">")) {
			t.Errorf("the national ROLLUPS holds %s; want roll-ups of province 01 itself only", s)
		}
	}
	if len(rollups) == 0 || len(streamSubjects(t, f.provinceJS, subjects.StreamRollups, subjects.RollupProvince("01"))) <= len(rollups) {
		t.Errorf("the national ROLLUPS holds %d subjects; want some, fewer than the province's", len(rollups))
	}
	srcs, err := natsx.ProvinceSources(ctx, f.nationalJS)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range srcs {
		if s.Province != "01" || s.Domain != f.domain || s.Lag != 0 || s.Error != "" {
			t.Errorf("province source %+v; want 01 at %s with no lag and no error", s, f.domain)
		}
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
