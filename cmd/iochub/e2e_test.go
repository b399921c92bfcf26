package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
	"github.com/iochub/iochub/services/aggregator"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// TestMain runs the package's tests and benchmarks with the collector a
// hub process of every role runs with (tuneMemory), so that the end-to-end
// load measures what ships; both its hub and its bare pipeline run in this
// process.
func TestMain(m *testing.M) {
	tuneMemory(slog.New(slog.DiscardHandler), true)
	testenv.Main(m)
}

// hub is a running set of roles on a real NATS server and a real PostGIS.
type hub struct {
	url   string
	nats  *testenv.NATSEnv
	db    *testenv.DBEnv
	roles *testkit.Running
	// authn is the hub's access control (to mint one-time codes).
	authn *auth.Authenticator
}

const devToken = "e2e-dev-token"

// startHub runs the roles of target through the same wiring as `iochub serve`.
// hoanKiemHub is a whole hub ("all") on fresh NATS and PostGIS with the
// seed units, with source hn-hoankiem bound to ward 00070 Hoàn Kiếm, whose
// token it returns.
func hoanKiemHub(t *testing.T) (*testenv.DBEnv, string, *hub) {
	t.Helper()
	n := testenv.NATS(t)
	db := testenv.PostGISWithUnits(t)
	token, err := postgis.AddSource(context.Background(), db.Pool, postgis.Source{ID: "hn-hoankiem", Name: "Hoàn Kiếm IOC", UnitCode: "00070"})
	if err != nil {
		t.Fatal(err)
	}
	return db, token, startHub(t, "all", n, db)
}

func startHub(t *testing.T, target string, n *testenv.NATSEnv, db *testenv.DBEnv) *hub {
	return startHubTB(t, target, n, db)
}

// startHubTB is startHub for tests and benchmarks; tune changes the
// configuration before the roles start.
func startHubTB(t testing.TB, target string, n *testenv.NATSEnv, db *testenv.DBEnv, tune ...func(*config)) *hub {
	t.Helper()
	cfg := defaults()
	cfg.HTTP = "127.0.0.1:0"
	cfg.Target = target
	cfg.DevToken = devToken
	cfg.LogLevel = "warn"
	for _, f := range tune {
		f(&cfg)
	}
	ready := make(chan string, 1)
	authn, err := newAuthenticator(cfg, db.Pool, cfg.logger(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	h := &hub{nats: n, db: db, authn: authn}
	h.roles = testkit.Start(t, "roles "+target, func(ctx context.Context) error {
		return serveRoles(ctx, roleDeps{cfg: cfg, log: cfg.logger(io.Discard), nc: n.Conn, js: n.JS, pool: db.Pool, ready: ready, authn: authn})
	})
	select {
	case h.url = <-ready:
	case <-h.roles.Done():
		t.Fatalf("roles exited at start: %v", h.roles.Err())
	case <-time.After(30 * time.Second):
		t.Fatal("roles did not start in 30 s")
	}
	return h
}

// airItem is the FIWARE AirQualityObserved example, moved to (lon, lat) and
// observed by station (its refPointOfInterest, which names the entity).
func airItem(t *testing.T, id, station string, lon, lat float64, at time.Time) map[string]any {
	return airItemTB(t, id, station, lon, lat, at)
}

func airItemTB(t testing.TB, id, station string, lon, lat float64, at time.Time) map[string]any {
	t.Helper()
	item, err := newAirItem(id, station, lon, lat, at)
	if err != nil {
		t.Fatal(err)
	}
	return item
}

// airExample is the FIWARE example, read once.
var airExample = sync.OnceValues(func() ([]byte, error) { return os.ReadFile("testdata/AirQualityObserved.example.json") })

// newAirItem is airItem for goroutines other than the test's, which must not call t.Fatal.
func newAirItem(id, station string, lon, lat float64, at time.Time) (map[string]any, error) {
	b, err := airExample()
	if err != nil {
		return nil, err
	}
	var item map[string]any
	if err := json.Unmarshal(b, &item); err != nil {
		return nil, fmt.Errorf("decoding the air example: %w", err)
	}
	item["id"] = id
	item["refPointOfInterest"] = station
	item["location"] = map[string]any{"type": "Point", "coordinates": []float64{lon, lat}}
	item["dateObserved"] = at.UTC().Format(time.RFC3339)
	item["pm25"] = 42.5
	return item, nil
}

type feedResult struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	Rejected   int `json:"rejected"`
	Results    []struct {
		Status string `json:"status"`
		Reason string `json:"reason"`
		Unit   string `json:"unit"`
	} `json:"results"`
}

func post(t testing.TB, url, token string, items any) (int, feedResult, string) {
	t.Helper()
	body, err := json.Marshal(items)
	if err != nil {
		t.Fatal(err)
	}
	return postBody(t, url, token, "application/json", body)
}

// postBody POSTs body as contentType with the bearer token and decodes the per-item answer.
func postBody(t testing.TB, url, token, contentType string, body []byte) (int, feedResult, string) {
	t.Helper()
	code, res, raw, err := tryPostBody(url, token, contentType, body)
	if err != nil {
		t.Fatal(err)
	}
	return code, res, raw
}

// tryPost is post for goroutines other than the test's, which must not call t.Fatal.
func tryPost(url, token string, items any) (int, feedResult, string, error) {
	body, err := json.Marshal(items)
	if err != nil {
		return 0, feedResult{}, "", fmt.Errorf("encoding the items: %w", err)
	}
	return tryPostBody(url, token, "application/json", body)
}

func tryPostBody(url, token, contentType string, body []byte) (int, feedResult, string, error) {
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		return 0, feedResult{}, "", fmt.Errorf("POST %s: %w", url, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, feedResult{}, "", fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var res feedResult
	_ = json.Unmarshal(raw, &res)
	return resp.StatusCode, res, string(raw), nil
}

type liveFrame struct {
	Type     string            `json:"type"`
	Entities []json.RawMessage `json:"entities"`
	Entity   json.RawMessage   `json:"entity"`
}

type feature struct {
	ID       string `json:"id"`
	Geometry struct {
		Type        string    `json:"type"`
		Coordinates []float64 `json:"coordinates"`
	} `json:"geometry"`
	Properties struct {
		Layer       string `json:"layer"`
		EntityID    string `json:"entityId"`
		Unit        string `json:"unit"`
		Observation struct {
			ID     string             `json:"id"`
			Time   string             `json:"time"`
			Values map[string]float64 `json:"values"`
		} `json:"observation"`
	} `json:"properties"`
}

// devHeader carries the dev token, which reads and acts everywhere.
func devHeader() http.Header { return http.Header{"Authorization": {"Bearer " + devToken}} }

func dialLive(t *testing.T, base, province string) *websocket.Conn {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/v1/live?province="+province, devHeader())
	if err != nil {
		t.Fatalf("dialing live: %v", err)
	}
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	return ws
}

// waitEntity reads frames until one carries entityID, and returns its feature.
func waitEntity(t *testing.T, ws *websocket.Conn, entityID string, timeout time.Duration) feature {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(timeout))
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s on the live view: %v", entityID, err)
		}
		var f liveFrame
		if err := json.Unmarshal(msg, &f); err != nil {
			t.Fatalf("live frame is not JSON: %v: %s", err, msg)
		}
		for _, raw := range append(f.Entities, f.Entity) {
			if len(raw) == 0 {
				continue
			}
			var ft feature
			if err := json.Unmarshal(raw, &ft); err != nil {
				t.Fatalf("entity is not a feature: %v: %s", err, raw)
			}
			if ft.Properties.EntityID == entityID {
				return ft
			}
		}
	}
}

func TestEndToEndAirObservation(t *testing.T) {
	db, token, h := hoanKiemHub(t)
	ctx := context.Background()
	ws := dialLive(t, h.url, "01")

	// A point by Hoàn Kiếm lake, inside ward 00070.
	lon, lat := 105.8522, 21.0288
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	const station = "urn:ngsi-ld:PointOfInterest:HN-HoanKiem"
	item := airItem(t, "urn:ngsi-ld:AirQualityObserved:HN-HK-1", station, lon, lat, at)
	code, res, raw := post(t, h.url+"/v1/feeds/air", token, []any{item})
	if code != http.StatusAccepted || res.Accepted != 1 {
		t.Fatalf("POST = %d %s; want 202 with 1 accepted", code, raw)
	}

	ft := waitEntity(t, ws, station, 20*time.Second)
	if ft.Properties.Observation.ID == "" || ft.Properties.Observation.Time != at.UTC().Format(time.RFC3339) {
		t.Errorf("live observation id/time = %q/%q; want an id and %s", ft.Properties.Observation.ID, ft.Properties.Observation.Time, at.UTC().Format(time.RFC3339))
	}
	if ft.Properties.Layer != "air" || ft.Properties.Unit != "00070" {
		t.Errorf("live entity layer/unit = %q/%q; want air/00070", ft.Properties.Layer, ft.Properties.Unit)
	}
	if got := ft.Properties.Observation.Values["pm25"]; got != 42.5 {
		t.Errorf("live pm25 = %v; want 42.5", got)
	}
	if ft.Geometry.Type != "Point" || len(ft.Geometry.Coordinates) != 2 || ft.Geometry.Coordinates[0] != lon || ft.Geometry.Coordinates[1] != lat {
		t.Errorf("live geometry = %+v; want Point [%v %v]", ft.Geometry, lon, lat)
	}

	var rows int
	var x, y float64
	err := db.Pool.QueryRow(ctx, `SELECT count(*), min(ST_X(location)), min(ST_Y(location)) FROM air_observation WHERE station_id = $1`, station).Scan(&rows, &x, &y)
	if err != nil {
		t.Fatal(err)
	}
	if rows != 1 || x != lon || y != lat {
		t.Fatalf("air_observation rows = %d at (%v %v); want 1 at (%v %v)", rows, x, y, lon, lat)
	}

	// The same POST again is a duplicate and changes nothing.
	code, res, raw = post(t, h.url+"/v1/feeds/air", token, []any{item})
	if code != http.StatusAccepted || res.Duplicates != 1 || res.Accepted != 0 {
		t.Fatalf("second POST = %d %s; want 202 with 1 duplicate", code, raw)
	}
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM air_observation`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 {
		t.Fatalf("rows after duplicate POST = %d; want 1", rows)
	}

	// Another ward's point with this source's token is rejected; nothing is stored.
	far := airItem(t, "urn:ngsi-ld:AirQualityObserved:ES-1", "ES-1", -3.7122, 40.4238, at)
	code, res, raw = post(t, h.url+"/v1/feeds/air", token, []any{far})
	if rejected := code/100 == 4 || code == http.StatusAccepted && res.Rejected == 1; !rejected {
		t.Fatalf("POST of a point in Spain = %d %s; want a rejection", code, raw)
	}
	if !strings.Contains(raw, "00070") {
		t.Errorf("rejection does not name the source's unit: %s", raw)
	}
}

// TestAggregatorKilledMidStream kills the aggregator while items stream in and
// starts it again: every accepted item is stored exactly once.
func TestAggregatorKilledMidStream(t *testing.T) {
	n := testenv.NATS(t)
	db := testenv.PostGISWithUnits(t)
	h := startHub(t, "ingest", n, db)
	h2 := startHub(t, "gateway", n, db)
	_ = h2

	const batches, perBatch = 20, 100
	runAgg := func() *testkit.Running {
		// What the killed aggregator had fetched and not acked comes back after
		// AckWait: 5 s instead of 30 keeps the test short on a loaded machine.
		agg, err := aggregator.New(aggregator.Config{BatchSize: 50, AckWait: 5 * time.Second}, aggregator.Deps{JS: n.JS, Store: postgis.NewStore(db.Pool), Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		return testkit.Start(t, "aggregator", agg.Run)
	}
	agg1 := runAgg()

	// The sender streams batches while the aggregator is killed once it has
	// stored some, but not all, of them.
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for b := 0; b < batches; b++ {
			items := make([]any, perBatch)
			for i := range items {
				// 25 stations over central Hà Nội; each item is a new observation.
				item, err := newAirItem(fmt.Sprintf("obs-%d-%d", b, i), fmt.Sprintf("st-%d", i%25), 105.80+float64(i%25)*0.002, 21.02, base.Add(time.Duration(b*perBatch+i)*time.Second))
				if err != nil {
					t.Error(err)
					return
				}
				items[i] = item
			}
			code, res, raw, err := tryPost(h.url+"/v1/feeds/air", devToken, items)
			if err != nil {
				t.Error(err)
				return
			}
			if code != http.StatusAccepted {
				t.Errorf("POST = %d %s", code, raw)
				return
			}
			mu.Lock()
			accepted += res.Accepted
			mu.Unlock()
		}
	}()
	count := func() int {
		var rows int
		if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM air_observation`).Scan(&rows); err != nil {
			t.Error(err)
		}
		return rows
	}
	testkit.Eventually(t, 30*time.Second, "the first rows", testkit.Holds(func() bool { return count() > 0 }))
	// The aggregator dies while the stream goes on.
	if err := agg1.Stop(); err != nil {
		t.Error(err)
	}
	killedAt := count()
	wg.Wait()
	if accepted != batches*perBatch {
		t.Fatalf("accepted %d of %d", accepted, batches*perBatch)
	}
	if killedAt == 0 || killedAt >= accepted {
		t.Fatalf("the aggregator was killed after %d of %d rows; the kill did not land mid-stream, so this run proves nothing", killedAt, accepted)
	}
	agg2 := runAgg()
	testkit.Eventually(t, 2*time.Minute, fmt.Sprintf("%d rows stored", accepted), func() (bool, string) {
		rows := count()
		return rows >= accepted, fmt.Sprintf("%d rows", rows)
	})
	if rows := count(); rows != accepted {
		t.Fatalf("stored %d rows; want %d (N sent = N stored)", rows, accepted)
	}
	if err := agg2.Stop(); err != nil {
		t.Error(err)
	}
}

func testLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
