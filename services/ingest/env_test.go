package ingest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/seed"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/units"
	"github.com/iochub/iochub/services/ingest"
)

// Tokens of the test sources.
const (
	tokWard     = "tok-hoan-kiem" // source "hk", ward 00070 Hoàn Kiếm
	tokProvince = "tok-ha-noi"    // source "hn", province 01 Hà Nội
	tokHCMC     = "tok-hcmc"      // source "hcm", province 79
	tokDev      = "dev-token"
)

// Points in Hà Nội (each computed to lie in its ward, see internal/units tests).
var (
	hoanKiem = [2]float64{105.8524, 21.0287} // ward 00070
	cauGiay  = [2]float64{105.7833, 21.0285} // ward 00166
)

func testUnits(t testing.TB) []units.Unit {
	t.Helper()
	ps, err := units.FromGeoJSON(bytes.NewReader(seed.Provinces2025()), units.LevelProvince, "")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := units.FromGeoJSON(bytes.NewReader(seed.HanoiWards2025()), units.LevelCommune, "01")
	if err != nil {
		t.Fatal(err)
	}
	return append(ps, ws...)
}

func testSources() []ingest.Source {
	return []ingest.Source{
		ingest.SourceWithToken("hk", "00070", tokWard),
		ingest.SourceWithToken("hn", "01", tokProvince),
		ingest.SourceWithToken("hcm", "79", tokHCMC),
	}
}

type natsEnv struct {
	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
}

// startNATS runs a real NATS server with JetStream in this process, with FEEDS and STATE.
func startNATS(t testing.TB) *natsEnv {
	t.Helper()
	ne := testenv.NATS(t)
	return &natsEnv{srv: ne.Server, nc: ne.Conn, js: ne.JS}
}

// msgID is the Nats-Msg-Id the ingest gives the plain id (ce.FeedMsgID) on
// the NATS server of ne: keyed with the key in its JetStream.
func (ne *natsEnv) msgID(t testing.TB, plain string) string {
	t.Helper()
	k, err := natsx.FeedMsgIDKey(t.Context(), ne.js)
	if err != nil {
		t.Fatal(err)
	}
	return k.ID(plain)
}

type env struct {
	*natsEnv
	svc *ingest.Service
	srv *httptest.Server
}

// newEnv runs the ingest over a fixed catalogue (the 34 provinces, Hà Nội's
// wards and the test sources) on a real NATS server, behind httptest.
func newEnv(t testing.TB, cfg ingest.Config) *env {
	t.Helper()
	return newEnvOn(t, startNATS(t), cfg)
}

// newEnvOn is newEnv on the NATS server of ne.
func newEnvOn(t testing.TB, ne *natsEnv, cfg ingest.Config) *env {
	t.Helper()
	if cfg.DevToken == "" {
		cfg.DevToken = tokDev
	}
	svc, err := ingest.New(t.Context(), cfg, ingest.Deps{JS: ne.js, Units: testUnits(t), Sources: testSources()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &env{natsEnv: ne, svc: svc, srv: hs}
}

type reply struct {
	code    int
	header  http.Header
	resp    ingest.Response
	problem ingest.Problem
	raw     string
}

func (e *env) post(t testing.TB, kind, token, contentType string, body []byte) reply {
	t.Helper()
	return postTo(t, e.srv.URL, kind, token, contentType, body)
}

func postTo(t testing.TB, base, kind, token, contentType string, body []byte) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/feeds/"+kind, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{code: res.StatusCode, header: res.Header, raw: string(b)}
	switch ct := res.Header.Get("Content-Type"); {
	case strings.HasPrefix(ct, "application/problem+json"):
		if err := json.Unmarshal(b, &r.problem); err != nil {
			t.Fatalf("decoding problem %s: %v", b, err)
		}
	case strings.HasPrefix(ct, "application/json"):
		if err := json.Unmarshal(b, &r.resp); err != nil {
			t.Fatalf("decoding response %s: %v", b, err)
		}
	default:
		t.Fatalf("answer %d has Content-Type %q: %s", res.StatusCode, ct, b)
	}
	return r
}

// fixture reads a FIWARE example from testdata as a generic item.
func fixture(t testing.TB, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// moveTo translates the item's location so that its first position is at p.
func moveTo(item map[string]any, p [2]float64) map[string]any {
	loc := item["location"].(map[string]any)
	var first []any
	var walk func(v any) any
	shift := [2]float64{}
	walk = func(v any) any {
		arr, ok := v.([]any)
		if !ok {
			return v
		}
		if len(arr) >= 2 {
			if x, ok := arr[0].(float64); ok {
				if first == nil {
					first = arr
					shift = [2]float64{p[0] - x, p[1] - arr[1].(float64)}
				}
				return []any{x + shift[0], arr[1].(float64) + shift[1]}
			}
		}
		out := make([]any, len(arr))
		for i, e := range arr {
			out[i] = walk(e)
		}
		return out
	}
	loc["coordinates"] = walk(loc["coordinates"])
	return item
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// air returns a minimal valid AirQualityObserved at p.
func air(id string, p [2]float64) map[string]any {
	return map[string]any{
		"id": id, "type": "AirQualityObserved", "dateObserved": "2025-07-01T08:00:00+07:00",
		"location": map[string]any{"type": "Point", "coordinates": []float64{p[0], p[1]}},
		"pm25":     35.5, "pm10": 50.0, "refDevice": "station-" + id,
	}
}

// traffic returns a minimal valid TrafficFlowObserved: a short segment starting at p.
func traffic(id string, p [2]float64) map[string]any {
	return map[string]any{
		"id": id, "type": "TrafficFlowObserved", "dateObserved": "2025-07-01T08:00:00+07:00",
		"location": map[string]any{"type": "LineString", "coordinates": [][]float64{
			{p[0] - 0.0005, p[1]}, {p[0], p[1]}, {p[0] + 0.0005, p[1] + 0.0002}}},
		"intensity": 120.0, "averageVehicleSpeed": 23.5, "refRoadSegment": "seg-" + id,
	}
}
