package gateway

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/gorilla/websocket"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/testenv"
)

func TestOriginAllowed(t *testing.T) {
	same := &Gateway{}
	listed := &Gateway{cfg: Config{AllowedOrigins: []string{"https://ioc.hanoi.gov.vn/"}}}
	anyOrigin := &Gateway{cfg: Config{AllowedOrigins: []string{"*"}}}
	for _, tc := range []struct {
		name   string
		g      *Gateway
		host   string
		origin string
		want   bool
	}{
		{"no origin (not a browser)", same, "hub:8080", "", true},
		{"same origin", same, "hub:8080", "http://hub:8080", true},
		{"same origin, other case", same, "HUB:8080", "http://hub:8080", true},
		{"other port", same, "hub:8080", "http://hub:9090", false},
		{"other host", same, "hub:8080", "https://evil.example.com", false},
		{"host as a prefix", same, "hub:8080", "http://hub:8080.evil.com", false},
		{"null", same, "hub:8080", "null", false},
		{"listed", listed, "hub:8080", "https://ioc.hanoi.gov.vn", true},
		{"listed only: same origin refused", listed, "hub:8080", "http://hub:8080", false},
		{"any", anyOrigin, "hub:8080", "https://evil.example.com", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://"+tc.host+"/v1/live", nil)
			r.Host = tc.host
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if got := tc.g.originAllowed(r); got != tc.want {
				t.Errorf("got %v; want %v", got, tc.want)
			}
		})
	}
}

func TestAuthenticateAnswers(t *testing.T) {
	g := &Gateway{deps: Deps{Auth: testAuth(t, nil)}, log: slog.New(slog.DiscardHandler)}
	for _, tc := range []struct {
		name, authz, method, origin string
		want                        int
	}{
		{"none", "", "GET", "", 401},
		{"wrong", "Bearer nope", "GET", "", 401},
		{"basic", "Basic dGVzdDo=", "GET", "", 401},
		{"right", "Bearer " + testToken, "GET", "", 0},
		{"change from a foreign origin", "Bearer " + testToken, "POST", "https://evil.example.com", 403},
		{"read from a foreign origin (the data is not changed; CORS keeps it from the page)", "Bearer " + testToken, "GET", "https://evil.example.com", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(tc.method, "/v1/units", nil)
			if tc.authz != "" {
				r.Header.Set("Authorization", tc.authz)
			}
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			_, ok := g.authenticate(w, r)
			if ok != (tc.want == 0) || tc.want != 0 && w.Code != tc.want {
				t.Errorf("got ok %v, %d; want %d", ok, w.Code, tc.want)
			}
			if tc.want == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

// TestRefusedTokenDetail: a 401 says the token is not valid and no more; why
// (the identity provider's answer, its address, the issuer and audience a
// token must have) goes to the log, not to an unauthenticated client.
func TestRefusedTokenDetail(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const secretBody, issuer, audience = "SECRET-BODY of sso-internal.tinh.local", "https://sso-internal.tinh.local/realms/ioc", "iochub-client-7f3a"
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/broken" {
			http.Error(w, secretBody, http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	}))
	t.Cleanup(idp.Close)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	claims, _ := json.Marshal(map[string]any{"iss": issuer, "aud": "grafana", "sub": "u-1", "exp": time.Now().Add(time.Hour).Unix()})
	jws, err := signer.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/broken", "/jwks"} { // the key set fails to load; the token has another audience
		var logs strings.Builder
		a, err := auth.New(auth.Config{OIDC: auth.OIDCConfig{Issuer: issuer, Audience: audience, JWKSURL: idp.URL + path}}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		g := &Gateway{deps: Deps{Auth: a}, log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
		bearer := httptest.NewRequest("GET", "/v1/units", nil)
		bearer.Header.Set("Authorization", "Bearer "+token)
		signIn := httptest.NewRequest("POST", "/v1/session", strings.NewReader(url.Values{"token": {token}}.Encode()))
		signIn.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, tc := range []struct {
			name  string
			r     *http.Request
			serve func(http.ResponseWriter, *http.Request)
		}{
			{"bearer", bearer, func(w http.ResponseWriter, r *http.Request) { g.authenticate(w, r) }},
			{"sign-in", signIn, g.serveSessionPost},
		} {
			w := httptest.NewRecorder()
			tc.serve(w, tc.r)
			body := w.Body.String()
			if w.Code != http.StatusUnauthorized || !strings.Contains(body, "not valid") {
				t.Errorf("%s with key set %s: %d %s; want 401 saying the token is not valid", tc.name, path, w.Code, body)
			}
			for _, secret := range []string{secretBody, idp.URL, strings.TrimPrefix(idp.URL, "http://"), issuer, audience, "oidc"} {
				if strings.Contains(body, secret) {
					t.Errorf("%s with key set %s: the 401 tells %q: %s", tc.name, path, secret, body)
				}
			}
		}
		if want := map[string]string{"/broken": idp.URL + "/broken", "/jwks": audience}[path]; !strings.Contains(logs.String(), want) {
			t.Errorf("with key set %s the log does not say why (%s): %s", path, want, logs.String())
		}
	}
}

// fakeLoader serves a fixed list of identities.
type fakeLoader struct {
	mu   sync.Mutex
	list []auth.Identity
}

func (f *fakeLoader) Identities(context.Context) ([]auth.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.list), nil
}

// revocable is a gateway over httptest that pings every 50 ms, with one
// viewer of 01 whose token it returns, and revoke, which revokes it and
// reloads the identities.
func revocable(t *testing.T) (srv *httptest.Server, token string, revoke func()) {
	t.Helper()
	n := testenv.NATS(t)
	tok, sum := auth.NewToken()
	l := &fakeLoader{list: []auth.Identity{{ID: "id_00000000000000a1", Name: "wall", Role: auth.RoleViewer, Scopes: []string{"01"}, TokenSHA256: sum}}}
	a := testAuth(t, l)
	if err := a.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	g, err := New(Config{PingInterval: 50 * time.Millisecond}, Deps{JS: n.JS, Auth: a})
	if err != nil {
		t.Fatal(err)
	}
	srv = serveGateway(t, g)
	return srv, tok, func() {
		l.mu.Lock()
		l.list[0].Revoked = true
		l.mu.Unlock()
		if err := a.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLiveClosesRevokedIdentity checks that an open live view of an identity
// that is revoked is closed with 4003 at the next ping after the reload, and
// that a new upgrade is refused with 401.
func TestLiveClosesRevokedIdentity(t *testing.T) {
	srv, tok, revoke := revocable(t)
	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/live?province=01"
	hdr := http.Header{"Authorization": {"Bearer " + tok}}
	c, _, err := websocket.DefaultDialer.Dial(u, hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	readFrame(t, c) // the snapshot

	revoke()
	readUntilClose(t, c, CloseRevoked)
	_, resp, err := websocket.DefaultDialer.Dial(u, hdr)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("upgrade after revocation: %v %v; want 401", err, resp)
	}
}

// TestStreamsCloseRevokedIdentity: an open event stream of an identity that
// is revoked ends at the next keepalive after the reload: a WebSocket with
// close 4003, Server-Sent Events with an event "revoked".
func TestStreamsCloseRevokedIdentity(t *testing.T) {
	srv, tok, revoke := revocable(t)
	q := "/v1/streams?subject=" + url.QueryEscape("ioc.feed.01.>")
	hdr := http.Header{"Authorization": {"Bearer " + tok}}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+q, hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	req, err := http.NewRequest(http.MethodGet, srv.URL+q, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("SSE stream: %s", resp.Status)
	}

	revoke()
	readUntilClose(t, ws, CloseRevoked)
	done := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if sc.Text() == "event: revoked" {
				done <- sc.Text()
				return
			}
		}
		done <- "the stream ended without a revoked event"
	}()
	select {
	case got := <-done:
		if got != "event: revoked" {
			t.Fatal(got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no revoked event on the SSE stream within 5 s")
	}
}

// readUntilClose reads c's frames until it is closed, within 5 s, and fails
// unless the close has code.
func readUntilClose(t *testing.T, c *websocket.Conn, code int) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code {
			t.Fatalf("the connection ended with %v; want close %d", err, code)
		}
		return
	}
}
