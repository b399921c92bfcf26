package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/iochub/iochub/internal/alertrule"
	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

const rulesToken = testToken

func rulesServer(t *testing.T) (*httptest.Server, *testenv.NATSEnv, *testenv.DBEnv) {
	t.Helper()
	return operatorServer(t, testenv.PostGIS(t))
}

// operatorServer serves the operator API of a gateway on db and a fresh NATS,
// with the clock at 2026-11-21 09:00 UTC.
func operatorServer(t *testing.T, db *testenv.DBEnv) (*httptest.Server, *testenv.NATSEnv, *testenv.DBEnv) {
	t.Helper()
	return operatorServerOf(t, db, nil)
}

// operatorServerOf is operatorServer with the identities of ids besides the
// tests' admin of every province.
func operatorServerOf(t *testing.T, db *testenv.DBEnv, ids []auth.Identity) (*httptest.Server, *testenv.NATSEnv, *testenv.DBEnv) {
	t.Helper()
	n := testenv.NATS(t)
	a := testAuth(t, nil)
	if ids != nil {
		a = testAuth(t, &fakeLoader{list: ids})
		if err := a.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	g, err := New(Config{}, Deps{JS: n.JS, Pool: db.Pool, Metrics: prometheus.NewRegistry(), Auth: a})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	g.RegisterOperator(mux, OperatorConfig{Now: func() time.Time { return time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC) }})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(g.Close)
	return srv, n, db
}

func do(t *testing.T, method, url, token, ct, body string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// nextAction reads the next action on ACTIONS.
func nextAction(t *testing.T, it jetstream.MessagesContext) (*iocv1.Action, jetstream.Msg) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := it.Next(jetstream.NextContext(ctx))
	if err != nil {
		t.Fatalf("waiting for an action: %v", err)
	}
	var a iocv1.Action
	if err := proto.Unmarshal(m.Data(), &a); err != nil {
		t.Fatal(err)
	}
	return &a, m
}

func TestRulesAPIRejections(t *testing.T) {
	srv, _, _ := rulesServer(t)
	valid := `{"province":"01","kind":"congestion","params":{"maxSpeed":15},"for":"10m","severity":"Severe"}`
	tests := []struct {
		name, method, path, token, ct, body string
		hdr                                 map[string]string
		status                              int
		want                                string
	}{
		{"no token", "PUT", "/v1/rules/r1", "", "application/json", valid, nil, 401, "sign in"},
		{"wrong token", "DELETE", "/v1/rules/r1", "nope", "", "", nil, 401, "the token or session is not valid"},
		{"xml", "PUT", "/v1/rules/r1", rulesToken, "application/xml", valid, nil, 415, `Content-Type \"application/xml\": send application/json`},
		{"too big", "PUT", "/v1/rules/r1", rulesToken, "application/json", strings.Repeat(" ", maxActionBody+1) + valid, nil, 413, "body: larger than 16384 bytes"},
		{"unknown kind", "PUT", "/v1/rules/r1", rulesToken, "application/json",
			`{"province":"01","kind":"fog","params":{},"for":"1m","severity":"Minor"}`, nil, 400,
			`"errors":[{"field":"kind","reason":"\"fog\" is not a kind of rule; want one of aqi_band, congestion, water_level"}]`},
		{"missing threshold and negative duration", "PUT", "/v1/rules/r1", rulesToken, "application/json",
			`{"province":"01","kind":"congestion","params":{},"for":"-1m","severity":"Minor"}`, nil, 400,
			`"detail":"invalid alert rule: params.maxSpeed: is missing; want the speed in km/h below which a segment is congested; for: \"-1m\" is negative; want 0 or more"`},
		{"bad id", "PUT", "/v1/rules/r.1", rulesToken, "application/json", valid, nil, 400,
			`id: \"r.1\" has characters other than letters, digits, '-' and '_'`},
		{"bad idempotency key", "PUT", "/v1/rules/r1", rulesToken, "application/json", valid,
			map[string]string{HeaderIdempotencyKey: "a b"}, 400, "header Idempotency-Key: want visible ASCII characters only"},
		{"long actor", "PUT", "/v1/rules/r1", rulesToken, "application/json", valid,
			map[string]string{HeaderActor: strings.Repeat("x", maxAssignee+1)}, 400, "header Iochub-Actor is longer than 200 characters"},
		{"actor not UTF-8", "PUT", "/v1/rules/r1", rulesToken, "application/json", valid,
			map[string]string{HeaderActor: "ca tr\xe1c"}, 400, "header Iochub-Actor is not UTF-8 (byte 5)"},
		{"delete bad id", "DELETE", "/v1/rules/a,b", rulesToken, "", "", nil, 400, `id: \"a,b\" has characters other`},
		{"delete missing", "DELETE", "/v1/rules/nope", rulesToken, "", "", nil, 404, `alert rule \"nope\" does not exist`},
		{"get missing", "GET", "/v1/rules/nope", rulesToken, "", "", nil, 404, `alert rule \"nope\" does not exist`},
		{"history of nothing", "GET", "/v1/rules/nope/history", rulesToken, "", "", nil, 404, `alert rule \"nope\" has no history: it never existed`},
		{"bad province", "GET", "/v1/rules?province=HN", rulesToken, "", "", nil, 400, `province: \"HN\" is not a province code (two digits, such as 01)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, h, body := do(t, tt.method, srv.URL+tt.path, tt.token, tt.ct, tt.body, tt.hdr)
			if code != tt.status || !strings.Contains(body, tt.want) {
				t.Errorf("got %d %s; want %d containing %s", code, body, tt.status, tt.want)
			}
			if ct := h.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q; want application/problem+json", ct)
			}
		})
	}
}

func TestRulesAPI(t *testing.T) {
	srv, n, db := rulesServer(t)
	ctx := context.Background()
	cons, err := n.JS.OrderedConsumer(ctx, subjects.StreamActions, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	it, err := cons.Messages()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Stop()

	// PUT publishes rule.put with the rule as understood (defaults filled, duration normalised).
	code, _, body := do(t, "PUT", srv.URL+"/v1/rules/hk-jam", rulesToken, "application/json",
		`{"province":"01","kind":"congestion","params":{"segments":["s1"],"maxSpeed":15},"for":"90s","severity":"Severe"}`,
		map[string]string{HeaderIdempotencyKey: "put-1", HeaderActor: "Nguyễn Văn A"})
	putID := keyID(t, "test-admin", "PUT", "/v1/rules/hk-jam", "put-1")
	if code != http.StatusAccepted || body != `{"actionId":"`+putID+`","type":"rule.put","target":"hk-jam"}`+"\n" {
		t.Fatalf("PUT = %d %s", code, body)
	}
	a, m := nextAction(t, it)
	if m.Subject() != "ioc.action.01.rule.hk-jam" || m.Headers().Get("Nats-Msg-Id") != putID || a.GetType() != "rule.put" ||
		a.GetActor() != "test-admin as Nguyễn Văn A" || a.GetProvince() != "01" || a.GetTargetKind() != "rule" || a.GetTarget() != "hk-jam" {
		t.Errorf("action %v on %s", a, m.Subject())
	}
	want := `{"id":"hk-jam","province":"01","kind":"congestion","params":{"maxSpeed":15,"segments":["s1"]},"for":"1m30s","severity":"Severe","enabled":true}`
	if string(a.GetPayload()) != want {
		t.Errorf("payload %s; want %s", a.GetPayload(), want)
	}

	// The aggregator's rows, as its rule.put would write them.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO alert_rule (id, province, kind, params, for_duration, severity, enabled, version, updated_by)
VALUES ('hk-jam', '01', 'congestion', '{"maxSpeed": 15}', '90 seconds', 'Severe', true, 2, 'op'),
       ('hcm-flood', '79', 'water_level', '{"minAlarm": 3}', '0', 'Extreme', false, 1, 'op')`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO audit_log (actor, action, target, detail) VALUES
('op', 'rule.version', 'rule:hk-jam', '{"actionId":"a1","version":1,"before":null,"after":{"id":"hk-jam"}}'),
('op', 'rule.put', 'rule:hk-jam', '{}'),
('op', 'rule.version', 'rule:hk-jam', '{"actionId":"a2","before":{"id":"hk-jam"},"after":null}')`); err != nil {
		t.Fatal(err)
	}
	code, _, body = do(t, "GET", srv.URL+"/v1/rules?province=01", rulesToken, "", "", nil)
	wantList := `{"province":"01","rules":[{"id":"hk-jam","province":"01","kind":"congestion","params":{"maxSpeed":15},"for":"1m30s","severity":"Severe","enabled":true,"version":2,"updatedAt":`
	if code != http.StatusOK || !strings.HasPrefix(body, wantList) || strings.Contains(body, "hcm-flood") {
		t.Errorf("GET /v1/rules?province=01 = %d %s", code, body)
	}
	code, _, body = do(t, "GET", srv.URL+"/v1/rules", rulesToken, "", "", nil)
	var all rulesListJSON
	if code != http.StatusOK || json.Unmarshal([]byte(body), &all) != nil || len(all.Rules) != 2 || all.Rules[0].ID != "hcm-flood" || all.Rules[0].Enabled {
		t.Errorf("GET /v1/rules = %d %s", code, body)
	}
	code, _, body = do(t, "GET", srv.URL+"/v1/rules/hcm-flood", rulesToken, "", "", nil)
	if code != http.StatusOK || !strings.Contains(body, `"params":{"minAlarm":3},"for":"0s","severity":"Extreme","enabled":false,"version":1`) {
		t.Errorf("GET /v1/rules/hcm-flood = %d %s", code, body)
	}
	code, _, body = do(t, "GET", srv.URL+"/v1/rules/hk-jam/history", rulesToken, "", "", nil)
	var hist struct {
		ID       string `json:"id"`
		Versions []struct {
			ActionID string          `json:"actionId"`
			Version  int             `json:"version"`
			Before   json.RawMessage `json:"before"`
			After    json.RawMessage `json:"after"`
		} `json:"versions"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &hist) != nil || len(hist.Versions) != 2 ||
		hist.Versions[0].ActionID != "a1" || string(hist.Versions[0].Before) != "null" || hist.Versions[0].Version != 1 ||
		hist.Versions[1].ActionID != "a2" || string(hist.Versions[1].After) != "null" {
		t.Errorf("history = %d %s", code, body)
	}

	// DELETE publishes rule.delete on the rule's province.
	code, _, body = do(t, "DELETE", srv.URL+"/v1/rules/hcm-flood", rulesToken, "", "", nil)
	if code != http.StatusAccepted || !strings.Contains(body, `"type":"rule.delete","target":"hcm-flood"`) {
		t.Fatalf("DELETE = %d %s", code, body)
	}
	a, m = nextAction(t, it)
	if m.Subject() != "ioc.action.79.rule.hcm-flood" || a.GetType() != "rule.delete" || a.GetActor() != "test-admin" || len(a.GetPayload()) != 0 {
		t.Errorf("action %v on %s", a, m.Subject())
	}
}

type rulesListJSON struct {
	Rules []struct {
		ID      string `json:"id"`
		Enabled bool   `json:"enabled"`
	} `json:"rules"`
}

// TestRulesAPICapPerProvince: a rule new to a province that has
// alertrule.MaxPerProvince already is 409 naming the cap; a change of one of
// its rules, and a rule of another province, are queued.
func TestRulesAPICapPerProvince(t *testing.T) {
	srv, _, db := rulesServer(t)
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO alert_rule (id, province, kind, params, severity)
		SELECT 'r' || i, '01', 'congestion', '{"maxSpeed":15}', 'Minor' FROM generate_series(1, $1) i`, alertrule.MaxPerProvince); err != nil {
		t.Fatal(err)
	}
	rule := func(p string) string {
		return fmt.Sprintf(`{"province":%q,"kind":"congestion","params":{"maxSpeed":10},"for":"5m","severity":"Minor"}`, p)
	}
	for _, c := range []struct {
		id, province string
		want         int
	}{
		{"one-more", "01", http.StatusConflict},
		{"r1", "01", http.StatusAccepted},
		{"hcm-1", "79", http.StatusAccepted},
	} {
		code, _, body := do(t, "PUT", srv.URL+"/v1/rules/"+c.id, rulesToken, "application/json", rule(c.province), nil)
		if code != c.want || (c.want == http.StatusConflict && !strings.Contains(body, fmt.Sprintf("province 01 has %d alert rules, the most it may have", alertrule.MaxPerProvince))) {
			t.Errorf("PUT %s of %s: %d %s; want %d", c.id, c.province, code, body, c.want)
		}
	}
}

// TestRulesAPIKindsOfAKey: an admin key of some kinds (auth.Principal.Kinds,
// here air) neither sees nor changes the rules of others: a congestion rule
// (traffic) is left out of its list, 404 by id and by history, a PUT over it
// is 409 as for an id it does not read, a new one is 403, and a DELETE 404;
// its own kind's rules it reads and changes.
func TestRulesAPIKindsOfAKey(t *testing.T) {
	airTok, airSum := auth.NewToken()
	srv, _, db := operatorServerOf(t, testenv.PostGIS(t), []auth.Identity{
		{ID: "id_00000000000000a7", Name: "air admin", Role: auth.RoleAdmin, Scopes: []string{"01"}, Kinds: []string{"air"}, TokenSHA256: airSum},
	})
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO alert_rule (id, province, kind, params, for_duration, severity, enabled, version, updated_by)
VALUES ('hk-jam', '01', 'congestion', '{"maxSpeed": 15}', '90 seconds', 'Severe', true, 1, 'op'),
       ('hn-air', '01', 'aqi_band', '{"minBand": 4}', '0', 'Moderate', true, 1, 'op')`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO audit_log (actor, action, target, detail) VALUES
('op', 'rule.version', 'rule:hk-jam', '{"actionId":"a1","version":1,"before":null,"after":{"id":"hk-jam","province":"01","kind":"congestion"}}')`); err != nil {
		t.Fatal(err)
	}
	code, _, body := do(t, "GET", srv.URL+"/v1/rules?province=01", airTok, "", "", nil)
	if code != http.StatusOK || strings.Contains(body, "hk-jam") || !strings.Contains(body, "hn-air") {
		t.Errorf("GET /v1/rules?province=01 as an air key = %d %s; want hn-air alone", code, body)
	}
	for _, path := range []string{"/v1/rules/hk-jam", "/v1/rules/hk-jam/history"} {
		if code, _, body := do(t, "GET", srv.URL+path, airTok, "", "", nil); code != http.StatusNotFound {
			t.Errorf("GET %s as an air key = %d %s; want 404", path, code, body)
		}
	}
	jam := `{"province":"01","kind":"congestion","params":{"maxSpeed":10},"for":"0s","severity":"Severe"}`
	if code, _, body := do(t, "PUT", srv.URL+"/v1/rules/hk-jam", airTok, "application/json", jam, nil); code != http.StatusForbidden {
		t.Errorf("PUT of a congestion rule as an air key = %d %s; want 403", code, body)
	}
	air := `{"province":"01","kind":"aqi_band","params":{"minBand":5},"for":"0s","severity":"Severe"}`
	if code, _, body := do(t, "PUT", srv.URL+"/v1/rules/hk-jam", airTok, "application/json", air, nil); code != http.StatusConflict || strings.Contains(body, "congestion") {
		t.Errorf("PUT of an air rule over the congestion rule's id as an air key = %d %s; want 409 naming nothing of it", code, body)
	}
	if code, _, body := do(t, "DELETE", srv.URL+"/v1/rules/hk-jam", airTok, "", "", nil); code != http.StatusNotFound {
		t.Errorf("DELETE of the congestion rule as an air key = %d %s; want 404", code, body)
	}
	if code, _, body := do(t, "PUT", srv.URL+"/v1/rules/hn-air", airTok, "application/json", air, nil); code != http.StatusAccepted {
		t.Errorf("PUT of its own kind's rule as an air key = %d %s; want 202", code, body)
	}
}
