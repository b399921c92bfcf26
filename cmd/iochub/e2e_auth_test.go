package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
	"github.com/iochub/iochub/services/aggregator/postgis"
	"github.com/iochub/iochub/services/gateway"
)

// cred is how a request of the matrix proves who it is.
type cred struct {
	name   string
	token  string       // bearer token; empty sends none
	cookie *http.Cookie // session cookie; nil sends none
}

// call sends one request and returns its status, headers and body.
func call(t *testing.T, c cred, method, u, body string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.cookie != nil {
		req.AddCookie(c.cookie)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
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

// dialStatus opens the live WebSocket and returns the HTTP status of the
// upgrade (101 when it succeeded; the socket is then closed).
func dialStatus(t *testing.T, base, query string, c cred, origin string) int {
	t.Helper()
	h := http.Header{}
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	if c.cookie != nil {
		h.Set("Cookie", c.cookie.String())
	}
	if origin != "" {
		h.Set("Origin", origin)
	}
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/v1/live?"+query, h)
	if err == nil {
		_ = ws.Close()
	}
	if resp == nil {
		t.Fatalf("dialing live %s: %v", query, err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// mustIdentity creates an identity the way `iochub identities create` does.
func mustIdentity(t *testing.T, db *testenv.DBEnv, name string, role auth.Role, scopes ...string) (auth.Identity, string) {
	t.Helper()
	id, tok, err := postgis.CreateIdentityCLI(context.Background(), db.Pool, name, role, scopes, nil)
	if err != nil {
		t.Fatal(err)
	}
	return id, tok
}

// cellLabel names a cell of the matrix.
func cellLabel(who, what string) string { return who + " " + what }

// TestAccessControlMatrix checks every cell of identity × province ×
// endpoint on a whole hub (real NATS, real PostGIS): reads, the live
// WebSocket (with foreign Origins), operator actions, rule edits, the
// identities admin API and /metrics; then sessions, revocation and one-time codes.
func TestAccessControlMatrix(t *testing.T) {
	n := testenv.NATS(t)
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()

	viewer01, viewer01Tok := mustIdentity(t, db, "viewer of Hà Nội", auth.RoleViewer, "01")
	operator01, operator01Tok := mustIdentity(t, db, "operator of Hà Nội", auth.RoleOperator, "01")
	admin01, admin01Tok := mustIdentity(t, db, "admin of Hà Nội", auth.RoleAdmin, "01")
	viewer79, _ := mustIdentity(t, db, "viewer of TP.HCM", auth.RoleViewer, "79")
	_, adminAllTok := mustIdentity(t, db, "admin of every province", auth.RoleAdmin, auth.AllScopes)
	_, waterOperatorTok, err := postgis.CreateIdentityCLI(ctx, db.Pool, "operator of Hà Nội for water", auth.RoleOperator, []string{"01"}, []string{"water"})
	if err != nil {
		t.Fatal(err)
	}
	revoked, revokedTok := mustIdentity(t, db, "revoked viewer", auth.RoleViewer, "01")
	if err := postgis.RevokeIdentityCLI(ctx, db.Pool, revoked.ID); err != nil {
		t.Fatal(err)
	}
	src01, err := postgis.AddSource(ctx, db.Pool, postgis.Source{ID: "src01", UnitCode: "01"})
	if err != nil {
		t.Fatal(err)
	}
	src79, err := postgis.AddSource(ctx, db.Pool, postgis.Source{ID: "src79", UnitCode: "79"})
	if err != nil {
		t.Fatal(err)
	}
	h := startHubTB(t, "all", n, db, func(c *config) {
		c.Auth.IdentityRefresh = 200 * time.Millisecond
		c.Gateway.MaxClientsPerIdentity = 3
	})

	// One report, one alert and one rule in each of 01 and 79.
	now := time.Now().UTC().Truncate(time.Second)
	for _, r := range []struct {
		token    string
		lon, lat float64
	}{{src01, 105.8342, 21.0278}, {src79, 106.7009, 10.7769}} {
		item := map[string]any{"id": "r1", "type": "FieldReport", "category": "flooding", "dateReported": now.Format(time.RFC3339),
			"location": map[string]any{"type": "Point", "coordinates": []float64{r.lon, r.lat}}, "description": "Ngập"}
		if code, res, raw := post(t, h.url+"/v1/feeds/report", r.token, []any{item}); code != http.StatusAccepted || res.Accepted != 1 {
			t.Fatalf("POST report = %d %s", code, raw)
		}
	}
	for _, a := range []struct{ token, id, polygon string }{
		{src01, "a01", "<polygon>21.00,105.80 21.00,105.90 21.10,105.90 21.10,105.80 21.00,105.80</polygon>"},
		{src79, "a79", "<polygon>10.70,106.60 10.70,106.70 10.80,106.70 10.80,106.60 10.70,106.60</polygon>"},
	} {
		doc := scAlert(t, a.id, "Alert", "", now, now.Add(2*time.Hour), a.polygon)
		if code, res, raw := postCAP(t, h.url, a.token, doc); code != http.StatusAccepted || res.Accepted != 1 {
			t.Fatalf("POST alert = %d %s", code, raw)
		}
	}
	dev := cred{name: "dev", token: devToken}
	for _, p := range []string{"01", "79"} {
		body := fmt.Sprintf(`{"province":%q,"kind":"congestion","params":{"maxSpeed":15},"for":"10m","severity":"Severe"}`, p)
		if code, _, raw := call(t, dev, "PUT", h.url+"/v1/rules/r"+p, body, nil); code != http.StatusAccepted {
			t.Fatalf("PUT rule r%s = %d %s", p, code, raw)
		}
	}
	waitRows(t, db, `SELECT count(*) FROM report`, 2)
	waitRows(t, db, `SELECT count(*) FROM alert`, 2)
	waitRows(t, db, `SELECT count(*) FROM alert_rule`, 2)
	var alert01, alert79 string
	if err := db.Pool.QueryRow(ctx, `SELECT (SELECT id FROM alert WHERE province = '01'), (SELECT id FROM alert WHERE province = '79')`).Scan(&alert01, &alert79); err != nil {
		t.Fatalf("alerts of 01 and 79: %v", err)
	}
	alert01, alert79 = gateway.AlertID(alert01), gateway.AlertID(alert79)

	viewer := cred{name: "viewer01", token: viewer01Tok}
	operator := cred{name: "operator01", token: operator01Tok}
	admin := cred{name: "admin01", token: admin01Tok}
	source := cred{name: "source token", token: src01}
	revokedC := cred{name: "revoked", token: revokedTok}
	nobody := cred{name: "no token"}

	type cell struct {
		who                cred
		method, path, body string
		want               int
	}
	var cells []cell
	add := func(who cred, method, path, body string, want int) {
		cells = append(cells, cell{who, method, path, body, want})
	}
	reads := func(p string) []string {
		return []string{"/v1/units?province=" + p, "/v1/alerts?province=" + p, "/v1/rules?province=" + p}
	}
	// Reads: every role of 01 reads 01 and is refused 79.
	for _, who := range []cred{viewer, operator, admin} {
		for _, path := range reads("01") {
			add(who, "GET", path, "", 200)
		}
		for _, path := range reads("79") {
			add(who, "GET", path, "", 403)
		}
		add(who, "GET", "/v1/alerts", "", 200) // the list of its province
		add(who, "GET", "/v1/alerts/"+alert01, "", 200)
		add(who, "GET", "/v1/alerts/"+alert79, "", 404) // out of scope looks absent
		add(who, "GET", "/v1/rules/r01", "", 200)
		add(who, "GET", "/v1/rules/r79", "", 404)
		add(who, "GET", "/v1/rules/r01/history", "", 200)
		add(who, "GET", "/v1/rules/r79/history", "", 404)
		add(who, "GET", "/v1/reports/"+url.PathEscape("src01/r1"), "", 200)
		add(who, "GET", "/v1/reports/"+url.PathEscape("src79/r1"), "", 404)
		add(who, "POST", "/v1/reports/"+url.PathEscape("src79/r1")+"/status", `{"status":"in_progress"}`, 404)
	}
	// Actions: an operator (and an admin) of 01 acts on 01; a viewer does not.
	add(viewer, "POST", "/v1/reports/"+url.PathEscape("src01/r1")+"/status", `{"status":"in_progress"}`, 403)
	add(operator, "POST", "/v1/reports/"+url.PathEscape("src01/r1")+"/status", `{"status":"in_progress"}`, 202)
	add(admin, "POST", "/v1/reports/"+url.PathEscape("src01/r1")+"/status", `{"status":"resolved"}`, 202)
	// A key of other kinds than reports acts on none, as it reads none.
	add(cred{name: "water operator01", token: waterOperatorTok}, "POST", "/v1/reports/"+url.PathEscape("src01/r1")+"/status", `{"status":"in_progress"}`, 403)
	// Rules: only an admin writes, in its provinces.
	rule := func(p string) string {
		return fmt.Sprintf(`{"province":%q,"kind":"congestion","params":{"maxSpeed":10},"for":"5m","severity":"Minor"}`, p)
	}
	add(viewer, "PUT", "/v1/rules/n01", rule("01"), 403)
	add(operator, "PUT", "/v1/rules/n01", rule("01"), 403)
	add(admin, "PUT", "/v1/rules/n01", rule("01"), 202)
	add(admin, "PUT", "/v1/rules/n79", rule("79"), 403)
	add(admin, "PUT", "/v1/rules/r79", rule("01"), 409) // 79's id: taken, by a province not named
	add(operator, "DELETE", "/v1/rules/r01", "", 403)
	add(admin, "DELETE", "/v1/rules/r79", "", 404)
	// Identities: an admin of 01 manages identities within 01 only.
	ident := func(role string, scopes ...string) string {
		b, _ := json.Marshal(map[string]any{"name": "made by the matrix", "role": role, "scopes": scopes})
		return string(b)
	}
	add(viewer, "POST", "/v1/admin/identities", ident("viewer", "01"), 403)
	add(operator, "POST", "/v1/admin/identities", ident("viewer", "01"), 403)
	add(admin, "POST", "/v1/admin/identities", ident("viewer", "01"), 201)
	add(admin, "POST", "/v1/admin/identities", ident("viewer", "79"), 403)
	add(admin, "POST", "/v1/admin/identities", ident("admin", "01", "79"), 403)
	add(admin, "POST", "/v1/admin/identities", ident("viewer", "*"), 403)
	add(viewer, "GET", "/v1/admin/identities", "", 403)
	add(admin, "GET", "/v1/admin/identities", "", 200)
	add(admin, "DELETE", "/v1/admin/identities/"+viewer79.ID, "", 404)
	add(operator, "DELETE", "/v1/admin/identities/"+viewer01.ID, "", 403)
	// /metrics is the admins'.
	add(viewer, "GET", "/metrics", "", 403)
	add(operator, "GET", "/metrics", "", 403)
	add(admin, "GET", "/metrics", "", 403) // the hub's figures: an admin of every province only
	add(cred{name: "adminAll", token: adminAllTok}, "GET", "/metrics", "", 200)
	// The dev token reads everything; a province that does not exist is 404.
	add(dev, "GET", "/v1/units?province=79", "", 200)
	add(dev, "GET", "/v1/alerts/"+alert79, "", 200)
	// Who is not signed in, a source and a revoked identity read nothing.
	for _, who := range []cred{nobody, source, revokedC, {name: "garbage", token: "iocid_nope"}} {
		for _, path := range append(reads("01"), "/v1/alerts/"+alert01, "/v1/rules/r01",
			"/v1/reports/"+url.PathEscape("src01/r1"), "/v1/admin/identities", "/metrics", "/v1/session") {
			add(who, "GET", path, "", 401)
		}
		add(who, "POST", "/v1/reports/"+url.PathEscape("src01/r1")+"/status", `{"status":"in_progress"}`, 401)
		add(who, "PUT", "/v1/rules/n01", rule("01"), 401)
		add(who, "POST", "/v1/admin/identities", ident("viewer", "01"), 401)
	}
	for _, c := range cells {
		t.Run(cellLabel(c.who.name, c.method+" "+c.path), func(t *testing.T) {
			code, hdr, body := call(t, c.who, c.method, h.url+c.path, c.body, nil)
			if code != c.want {
				t.Fatalf("got %d %s; want %d", code, body, c.want)
			}
			if code >= 400 && hdr.Get("Content-Type") != "application/problem+json" {
				t.Errorf("a %d answer of type %q; want application/problem+json", code, hdr.Get("Content-Type"))
			}
			if code == 401 && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: Bearer (got %q)", hdr.Get("WWW-Authenticate"))
			}
		})
	}

	t.Run("the alerts list holds only the alerts of the identity's provinces", func(t *testing.T) {
		_, _, body := call(t, viewer, "GET", h.url+"/v1/alerts", "", nil)
		var fc struct {
			Features []struct {
				ID string `json:"id"`
			} `json:"features"`
		}
		if err := json.Unmarshal([]byte(body), &fc); err != nil {
			t.Fatal(err)
		}
		if len(fc.Features) != 1 || fc.Features[0].ID != alert01 {
			t.Errorf("viewer of 01 lists %v; want only %s", fc.Features, alert01)
		}
	})

	t.Run("live WebSocket", func(t *testing.T) {
		self := h.url // the Origin a browser sends for a page served by the hub
		for _, tc := range []struct {
			who    cred
			query  string
			origin string
			want   int
		}{
			{viewer, "province=01", "", 101},
			{viewer, "province=01", self, 101},
			{viewer, "province=79", "", 403},
			{viewer, "province=99", "", 403},
			{operator, "province=01", "", 101},
			{admin, "province=79", "", 403},
			{dev, "province=79", "", 101},
			{dev, "province=98", "", 404}, // no such province
			{viewer, "province=01", "https://evil.example.com", 403},
			{dev, "province=01", "http://127.0.0.1:1", 403}, // same host, other port: another origin
			{dev, "province=01", "null", 403},
			{nobody, "province=01", "", 401},
			{source, "province=01", "", 401},
			{revokedC, "province=01", "", 401},
		} {
			t.Run(fmt.Sprintf("%s %s origin %q", tc.who.name, tc.query, tc.origin), func(t *testing.T) {
				if got := dialStatus(t, h.url, tc.query, tc.who, tc.origin); got != tc.want {
					t.Errorf("upgrade answered %d; want %d", got, tc.want)
				}
			})
		}
	})

	t.Run("live views per identity are capped", func(t *testing.T) {
		_, capTok := mustIdentity(t, db, "wall screens", auth.RoleViewer, "01")
		if err := h.authn.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		hdr := http.Header{"Authorization": {"Bearer " + capTok}}
		u := "ws" + strings.TrimPrefix(h.url, "http") + "/v1/live?province=01"
		for i := range 3 {
			ws, resp, err := websocket.DefaultDialer.Dial(u, hdr)
			if err != nil {
				t.Fatalf("live view %d: %v", i+1, err)
			}
			resp.Body.Close()
			defer ws.Close()
		}
		_, resp, err := websocket.DefaultDialer.Dial(u, hdr)
		if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("fourth live view: %v %v; want 429", err, resp)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), "3 live views open") {
			t.Errorf("refusal %s does not say why", b)
		}
	})

	t.Run("actions name who acted", func(t *testing.T) {
		waitRows(t, db, fmt.Sprintf(`SELECT count(*) FROM audit_log WHERE action = 'report.status' AND actor = '%s'`, operator01.ID), 1)
		waitRows(t, db, fmt.Sprintf(`SELECT count(*) FROM audit_log WHERE action = 'identity.create' AND actor = '%s'`, admin01.ID), 1)
		waitRows(t, db, fmt.Sprintf(`SELECT count(*) FROM identity WHERE created_by = '%s' AND scopes = '{01}'`, admin01.ID), 1)
	})

	t.Run("an admin lists the identities of its provinces only", func(t *testing.T) {
		_, _, body := call(t, admin, "GET", h.url+"/v1/admin/identities", "", nil)
		var l struct {
			Identities []struct {
				ID     string   `json:"id"`
				Scopes []string `json:"scopes"`
				Token  string   `json:"token"`
			} `json:"identities"`
		}
		if err := json.Unmarshal([]byte(body), &l); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, v := range l.Identities {
			if !slices.Equal(v.Scopes, []string{"01"}) || v.Token != "" {
				t.Errorf("listed %+v; want identities of 01 only, without tokens", v)
			}
			ids = append(ids, v.ID)
		}
		if !slices.Contains(ids, viewer01.ID) || slices.Contains(ids, viewer79.ID) || strings.Contains(body, "tokenSha256") {
			t.Errorf("listed %v; want %s and not %s", ids, viewer01.ID, viewer79.ID)
		}
	})

	t.Run("a create retried with its Idempotency-Key makes one identity", func(t *testing.T) {
		key := map[string]string{"Idempotency-Key": "create-viewer-7f3a"}
		code, _, body := call(t, admin, "POST", h.url+"/v1/admin/identities", ident("viewer", "01"), key)
		var created struct {
			ID    string `json:"id"`
			Token string `json:"token"`
		}
		if err := json.Unmarshal([]byte(body), &created); err != nil || code != 201 {
			t.Fatalf("create = %d %s; want 201", code, body)
		}
		// The retry: 409 naming the identity, no token (the first one's is the only one).
		code, _, body = call(t, admin, "POST", h.url+"/v1/admin/identities", ident("viewer", "01"), key)
		if code != 409 || !strings.Contains(body, created.ID) || strings.Contains(body, auth.TokenPrefix) {
			t.Fatalf("retry = %d %s; want 409 naming %s without a token", code, body, created.ID)
		}
		if code, _, body := call(t, cred{name: "created", token: created.Token}, "GET", h.url+"/v1/units?province=01", "", nil); code != 200 {
			t.Fatalf("the first answer's token reads 01: %d %s", code, body)
		}
		waitRows(t, db, fmt.Sprintf(`SELECT count(*) FROM audit_log WHERE action = 'identity.create' AND actor = '%s' AND target = 'identity:%s'`, admin01.ID, created.ID), 1)
		// Another key is another identity; so is a request without a key.
		code, _, body = call(t, admin, "POST", h.url+"/v1/admin/identities", ident("viewer", "01"), map[string]string{"Idempotency-Key": "create-viewer-8b1c"})
		if code != 201 || strings.Contains(body, created.ID) {
			t.Fatalf("create with another key = %d %s; want 201, another identity", code, body)
		}
	})

	t.Run("a created identity works at once and a revoked one stops", func(t *testing.T) {
		code, _, body := call(t, admin, "POST", h.url+"/v1/admin/identities", ident("viewer", "01"), nil)
		var created struct {
			ID     string `json:"id"`
			Token  string `json:"token"`
			Active bool   `json:"active"`
		}
		if err := json.Unmarshal([]byte(body), &created); err != nil || code != 201 || !created.Active || !strings.HasPrefix(created.Token, auth.TokenPrefix) {
			t.Fatalf("create = %d %s; want 201, active, with an %s token", code, body, auth.TokenPrefix)
		}
		c := cred{name: "new viewer", token: created.Token}
		if code, _, body := call(t, c, "GET", h.url+"/v1/units?province=01", "", nil); code != 200 {
			t.Fatalf("the new token reads 01: %d %s", code, body)
		}
		// A session of the same identity, by the login form's POST.
		code, _, body = call(t, cred{}, "POST", h.url+"/v1/session", "", nil)
		if code != 400 {
			t.Errorf("POST /v1/session without token = %d %s; want 400", code, body)
		}
		req, _ := http.NewRequest("POST", h.url+"/v1/session", strings.NewReader(url.Values{"token": {created.Token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		session := sessionCookie(t, resp)
		sc := cred{name: "session", cookie: session}
		if code, _, body := call(t, sc, "GET", h.url+"/v1/units?province=01", "", nil); code != 200 {
			t.Fatalf("the session reads 01: %d %s", code, body)
		}
		if code, _, _ := call(t, sc, "GET", h.url+"/v1/units?province=79", "", nil); code != 403 {
			t.Errorf("the session reads 79: %d; want 403", code)
		}
		if got := dialStatus(t, h.url, "province=01", sc, h.url); got != 101 {
			t.Errorf("live view by cookie: %d; want 101", got)
		}
		forged := *session
		forged.Value = strings.Replace(forged.Value, created.ID, admin01.ID, 1)
		if code, _, _ := call(t, cred{name: "forged", cookie: &forged}, "GET", h.url+"/v1/units?province=01", "", nil); code != 401 {
			t.Errorf("a cookie naming another identity with the old signature: %d; want 401", code)
		}
		// A cookie-borne change from a foreign Origin is refused.
		if code, _, _ := call(t, sc, "POST", h.url+"/v1/reports/"+url.PathEscape("src01/r1")+"/status", `{"status":"in_progress"}`,
			map[string]string{"Origin": "https://evil.example.com"}); code != 403 {
			t.Errorf("change from a foreign Origin: %d; want 403", code)
		}

		code, _, body = call(t, admin, "DELETE", h.url+"/v1/admin/identities/"+created.ID, "", nil)
		if code != 200 || !strings.Contains(body, `"active":true`) {
			t.Fatalf("revoke = %d %s; want 200, active", code, body)
		}
		if code, _, _ := call(t, c, "GET", h.url+"/v1/units?province=01", "", nil); code != 401 {
			t.Errorf("the revoked token: %d; want 401", code)
		}
		if code, _, _ := call(t, sc, "GET", h.url+"/v1/units?province=01", "", nil); code != 401 {
			t.Errorf("the revoked identity's session: %d; want 401", code)
		}
		if got := dialStatus(t, h.url, "province=01", sc, ""); got != 401 {
			t.Errorf("live view by the revoked session: %d; want 401", got)
		}
		waitRows(t, db, fmt.Sprintf(`SELECT count(*) FROM audit_log WHERE action = 'identity.revoke' AND actor = '%s' AND target = 'identity:%s'`, admin01.ID, created.ID), 1)
	})

	t.Run("a revocation by the CLI applies within the refresh interval", func(t *testing.T) {
		if err := postgis.RevokeIdentityCLI(ctx, db.Pool, operator01.ID); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 5*time.Second, "the revoked operator to get 401 (refresh 200 ms)", func() (bool, string) {
			code, _, _ := call(t, operator, "GET", h.url+"/v1/units?province=01", "", nil)
			return code == 401, fmt.Sprintf("GET /v1/units = %d", code)
		})
	})

	t.Run("a one-time code signs in once", func(t *testing.T) {
		code, err := h.authn.MintCode(devPrincipalID)
		if err != nil {
			t.Fatal(err)
		}
		// Followed from a link on another site (login CSRF): refused, and the
		// code is not spent.
		req, _ := http.NewRequest("GET", h.url+"/v1/session?code="+url.QueryEscape(code), nil)
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 || len(resp.Cookies()) != 0 {
			t.Fatalf("use from another site = %d with cookies %v; want 403 and none", resp.StatusCode, resp.Cookies())
		}
		resp, err = http.Get(h.url + "/v1/session?code=" + url.QueryEscape(code))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("first use = %d; want 200", resp.StatusCode)
		}
		sc := cred{name: "code session", cookie: sessionCookie(t, resp)}
		if st, _, body := call(t, sc, "GET", h.url+"/v1/session", "", nil); st != 200 || !strings.Contains(body, `"id":"dev"`) {
			t.Errorf("who am I = %d %s; want the dev principal", st, body)
		}
		if got := dialStatus(t, h.url, "province=79", sc, ""); got != 101 {
			t.Errorf("live view by the code's session: %d; want 101", got)
		}
		resp, err = http.Get(h.url + "/v1/session?code=" + url.QueryEscape(code))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
			t.Errorf("second use = %d with cookies %v; want 401 and none", resp.StatusCode, resp.Cookies())
		}
		// Signing out clears the cookie.
		req, _ = http.NewRequest("DELETE", h.url+"/v1/session", nil)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if cs := resp.Cookies(); resp.StatusCode != 204 || len(cs) != 1 || cs[0].MaxAge >= 0 {
			t.Errorf("logout = %d %v; want 204 clearing the cookie", resp.StatusCode, cs)
		}
	})
}

// sessionCookie is the session cookie set by resp, checked for its flags.
func sessionCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == auth.CookieName {
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.MaxAge <= 0 || c.Path != "/" {
				t.Errorf("session cookie %+v; want HttpOnly, SameSite=Strict, a Max-Age and Path /", c)
			}
			return &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	t.Fatalf("no %s cookie in %v", auth.CookieName, resp.Cookies())
	return nil
}
