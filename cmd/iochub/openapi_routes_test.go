package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/iochub/iochub/docs"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
)

var pathParam = regexp.MustCompile(`\{[^}]*\}`)

// normRoute is "METHOD /path" with every path parameter written {}, so that
// the code's names and the document's may differ ({id}, {collectionId}).
func normRoute(method, path string) string {
	return strings.ToUpper(method) + " " + pathParam.ReplaceAllString(path, "{}")
}

// documentedRoutes are the method and path of every operation of docs/openapi.yaml.
func documentedRoutes(t *testing.T) []string {
	t.Helper()
	var doc struct {
		OpenAPI string                               `yaml:"openapi"`
		Paths   map[string]map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(docs.OpenAPI, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("docs/openapi.yaml is OpenAPI %q; want 3.1", doc.OpenAPI)
	}
	var out []string
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
				out = append(out, normRoute(method, path))
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestOpenAPIRoutes builds every role as `iochub serve --target=all` does,
// takes the patterns they registered on the public and ops muxes, and fails
// when one is missing from docs/openapi.yaml or the document has an
// operation no role registered. It also fetches GET
// /api and checks it is the same document.
func TestOpenAPIRoutes(t *testing.T) {
	got := make(chan []string, 1)
	base := startHubWith(t, testenv.NATS(t), testenv.PostGISWithUnits(t), func(d *roleDeps) {
		d.routes = func(public, ops []string) { got <- append(public, ops...) }
	})
	registered := map[string]bool{}
	for _, p := range <-got {
		method, path, ok := strings.Cut(p, " ")
		if !ok {
			t.Errorf("pattern %q has no method: every route names its method", p)
			continue
		}
		registered[normRoute(method, path)] = true
	}
	if len(registered) < 20 {
		t.Fatalf("only %d routes recorded: %v", len(registered), registered)
	}
	documented := map[string]bool{}
	for _, r := range documentedRoutes(t) {
		documented[r] = true
	}
	for r := range registered {
		if !documented[r] {
			t.Errorf("route %s is registered but not in docs/openapi.yaml", r)
		}
	}
	for r := range documented {
		if !registered[r] {
			t.Errorf("docs/openapi.yaml has %s, which no role registers", r)
		}
	}

	resp, err := http.Get(base + "/api")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(body), `"openapi":"3.1.0"`) {
		t.Errorf("GET /api = %d %s %.200s; want the document as JSON", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/api", nil)
	req.Header.Set("Accept", "application/vnd.oai.openapi;version=3.1")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != string(docs.OpenAPI) {
		t.Errorf("GET /api as YAML = %d %s; want docs/openapi.yaml as is", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// startHubWith runs every role as `iochub serve --target=all` on n and db,
// with tune changing the wiring first, and returns the base URL.
func startHubWith(t *testing.T, n *testenv.NATSEnv, db *testenv.DBEnv, tune func(*roleDeps)) string {
	t.Helper()
	cfg := defaults()
	cfg.HTTP = "127.0.0.1:0"
	cfg.Target = "all"
	cfg.DevToken = devToken
	cfg.LogLevel = "warn"
	authn, err := newAuthenticator(cfg, db.Pool, cfg.logger(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	d := roleDeps{cfg: cfg, log: cfg.logger(io.Discard), nc: n.Conn, js: n.JS, pool: db.Pool, ready: ready, authn: authn}
	tune(&d)
	roles := testkit.Start(t, "roles all", func(ctx context.Context) error { return serveRoles(ctx, d) })
	select {
	case base := <-ready:
		return base
	case <-roles.Done():
		t.Fatalf("roles exited at start: %v", roles.Err())
	case <-time.After(30 * time.Second):
		t.Fatal("roles did not start in 30 s")
	}
	return ""
}

// TestHistoryThroughReadPool: observations fed through the ingest are read
// back by GET /v1/history through the gateway's read pool (openReadPool:
// read-only, statement timeout), as JSON and CSV.
func TestHistoryThroughReadPool(t *testing.T) {
	n := testenv.NATS(t)
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	cfg := defaults()
	read, err := openReadPool(ctx, cfg, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(read.Close)
	if _, err := read.Exec(ctx, `CREATE TABLE nope (x int)`); err == nil {
		t.Error("CREATE TABLE through the read pool succeeded; want a read-only transaction error")
	}
	base := startHubWith(t, n, db, func(d *roleDeps) { d.readPool = read })
	const station = "urn:ngsi-ld:Device:HK-HIST-1"
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	var items []any
	for i := range 6 {
		items = append(items, stationItem(station, t0.Add(time.Duration(i)*20*time.Minute), 10+float64(i), 20))
	}
	if code, res, raw := post(t, base+"/v1/feeds/air", devToken, items); code != http.StatusAccepted || res.Accepted != len(items) {
		t.Fatalf("POST = %d %s", code, raw)
	}
	url := base + "/v1/history?layer=air&points=3&entity=" + station + "&from=" + t0.Format(time.RFC3339) + "&to=" + t0.Add(2*time.Hour).Format(time.RFC3339)
	var h struct {
		Source string           `json:"source"`
		Items  []map[string]any `json:"items"`
	}
	testkit.Eventually(t, 30*time.Second, "the history of the 6 observations", func() (bool, string) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+devToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		h.Items = nil
		err = json.NewDecoder(resp.Body).Decode(&h)
		return resp.StatusCode == http.StatusOK && err == nil && len(h.Items) == 3 && h.Items[2]["count"] == 2.0,
			fmt.Sprintf("%d %v %+v", resp.StatusCode, err, h)
	})
	pm := h.Items[0]["pm25"].(map[string]any)
	if h.Source != "raw" || pm["min"] != 10.0 || pm["max"] != 11.0 || pm["mean"] != 10.5 {
		t.Errorf("history = %+v; want raw, first bucket pm25 10..11 mean 10.5", h)
	}
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+devToken)
	req.Header.Set("Accept", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); resp.StatusCode != http.StatusOK || len(lines) != 4 ||
		!strings.HasPrefix(lines[0], "t,count,aqi_min,aqi_mean,aqi_max,pm25_min,pm25_mean,pm25_max,") {
		t.Errorf("CSV = %d %q", resp.StatusCode, b)
	}
}
