package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// idp is an identity provider in a test: a JWKS endpoint serving key as
// "k1" until serve changes it, counting its fetches, and a signer.
type idp struct {
	srv     *httptest.Server
	key     *rsa.PrivateKey
	fetches atomic.Int64
	set     atomic.Pointer[jose.JSONWebKeySet]
}

func newIDP(t *testing.T) *idp {
	t.Helper()
	p := &idp{key: newKey(t)}
	p.serve(publicKey(p.key, "k1"))
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": p.srv.URL, "jwks_uri": p.srv.URL + "/jwks",
				"id_token_signing_alg_values_supported": []string{"RS256", "HS256"}})
		case "/jwks":
			p.fetches.Add(1)
			_ = json.NewEncoder(w).Encode(p.set.Load())
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func newKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func publicKey(key *rsa.PrivateKey, kid string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: &key.PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"}
}

// serve makes the JWKS endpoint answer keys from now on.
func (p *idp) serve(keys ...jose.JSONWebKey) {
	p.set.Store(&jose.JSONWebKeySet{Keys: keys})
}

// sign is a JWT of claims signed by key, naming the key id k1.
func (p *idp) sign(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	return p.signKID(t, key, "k1", claims)
}

func (p *idp) signKID(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	jws, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestOIDCTokens(t *testing.T) {
	p := newIDP(t)
	issuer := "https://sso.hanoi.gov.vn/realms/ioc"
	now := time.Now()
	a, err := New(Config{OIDC: OIDCConfig{Issuer: issuer, Audience: "iochub", JWKSURL: p.srv.URL + "/jwks"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	claims := func(change func(map[string]any)) map[string]any {
		c := map[string]any{"iss": issuer, "aud": "iochub", "sub": "u-42", "name": "Nguyễn Văn B",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "iochub_role": "operator", "iochub_provinces": []string{"01"}}
		if change != nil {
			change(c)
		}
		return c
	}
	p2, err := a.Token(context.Background(), p.sign(t, p.key, claims(nil)))
	if err != nil {
		t.Fatalf("a good token: %v", err)
	}
	if p2.ID != "oidc:u-42" || p2.Name != "Nguyễn Văn B" || p2.Role != RoleOperator || !slices.Equal(p2.Scopes, []string{"01"}) || p2.Expires.Unix() != now.Add(time.Hour).Unix() {
		t.Errorf("principal %+v; want oidc:u-42, operator of 01, expiring in an hour", p2)
	}
	if !a.Live(p2) || a.Live(Principal{ID: p2.ID, Expires: now.Add(-time.Second)}) {
		t.Error("Live does not follow the token's expiry")
	}
	if p3, err := a.Token(context.Background(), p.sign(t, p.key, claims(func(c map[string]any) { c["iochub_provinces"] = "79, 01" }))); err != nil || !slices.Equal(p3.Scopes, []string{"01", "79"}) {
		t.Errorf("provinces as a string = %v, %v; want 01,79", p3.Scopes, err)
	}
	other := newKey(t)
	for name, raw := range map[string]string{
		"expired":        p.sign(t, p.key, claims(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })),
		"other audience": p.sign(t, p.key, claims(func(c map[string]any) { c["aud"] = "grafana" })),
		"other issuer":   p.sign(t, p.key, claims(func(c map[string]any) { c["iss"] = "https://evil.example.com" })),
		"other key":      p.sign(t, other, claims(nil)),
		"no role":        p.sign(t, p.key, claims(func(c map[string]any) { delete(c, "iochub_role") })),
		"bad role":       p.sign(t, p.key, claims(func(c map[string]any) { c["iochub_role"] = "root" })),
		"no provinces":   p.sign(t, p.key, claims(func(c map[string]any) { delete(c, "iochub_provinces") })),
		"bad province":   p.sign(t, p.key, claims(func(c map[string]any) { c["iochub_provinces"] = []string{"hà nội"} })),
		"no sub":         p.sign(t, p.key, claims(func(c map[string]any) { delete(c, "sub") })),
		"alg none":       unsigned(claims(nil)),
		"tampered":       tamper(p.sign(t, p.key, claims(nil))),
		"huge":           "eyJ" + strings.Repeat("a", maxJWT) + ".a.b",
	} {
		if _, err := a.Token(context.Background(), raw); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("%s: %v; want ErrInvalidCredentials", name, err)
		}
	}
	// Without an issuer configured, a JWT is refused, not looked up as a key.
	plain, err := New(Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Token(context.Background(), p.sign(t, p.key, claims(nil))); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("JWT without OIDC: %v; want ErrInvalidCredentials", err)
	}
	if _, err := New(Config{OIDC: OIDCConfig{Issuer: issuer, JWKSURL: p.srv.URL + "/jwks"}}, nil, nil); err == nil {
		t.Error("OIDC without an audience was accepted")
	}
}

// TestOIDCDiscovery: without a JWKS URL, the key set and the algorithms are
// those of the issuer's discovery document (only the asymmetric ones).
func TestOIDCDiscovery(t *testing.T) {
	p := newIDP(t)
	a, err := New(Config{OIDC: OIDCConfig{Issuer: p.srv.URL, Audience: "iochub"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{"iss": p.srv.URL, "aud": "iochub", "sub": "u-1", "exp": time.Now().Add(time.Hour).Unix(),
		"iochub_role": "viewer", "iochub_provinces": []string{"01"}}
	if _, err := a.Token(context.Background(), p.sign(t, p.key, claims)); err != nil {
		t.Errorf("a token of the discovered key set: %v", err)
	}
	hs, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(strings.Repeat("k", 32))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	jws, _ := hs.Sign(b)
	raw, _ := jws.CompactSerialize()
	if _, err := a.Token(context.Background(), raw); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("an HS256 token the provider announces: %v; want ErrInvalidCredentials", err)
	}
	if _, err := New(Config{OIDC: OIDCConfig{Issuer: p.srv.URL + "/other", Audience: "iochub"}}, nil, nil); err == nil {
		t.Error("an issuer without a discovery document was accepted")
	}
}

// unsigned is a JWT with alg none.
func unsigned(claims map[string]any) string {
	b, _ := json.Marshal(claims)
	return b64(`{"alg":"none","typ":"JWT"}`) + "." + b64(string(b)) + "."
}

// tamper changes the payload of a signed JWT, keeping its signature.
func tamper(raw string) string {
	parts := strings.Split(raw, ".")
	var c map[string]any
	b, _ := b64dec(parts[1])
	_ = json.Unmarshal(b, &c)
	c["iochub_role"] = "admin"
	nb, _ := json.Marshal(c)
	return parts[0] + "." + b64(string(nb)) + "." + parts[2]
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func b64dec(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// hangingServer answers no request until the test ends.
func hangingServer(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: srv.Close waits for the handlers
	return srv
}

// returnsWithin fails the test when f has not returned within limit, and returns its error.
func returnsWithin(t *testing.T, limit time.Duration, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("%s still waits after %v", what, limit)
		return nil
	}
}

// TestOIDCProviderThatHangs: a provider that never answers makes New fail
// (discovery) and a token be refused (the key set) within
// OIDCConfig.Timeout, not hang the gateway's start or its requests.
func TestOIDCProviderThatHangs(t *testing.T) {
	hang := hangingServer(t)
	cfg := OIDCConfig{Issuer: hang.URL, Audience: "iochub", Timeout: 200 * time.Millisecond}
	err := returnsWithin(t, 5*time.Second, "New discovering a silent issuer", func() error {
		_, err := New(Config{OIDC: cfg}, nil, nil)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "discovering OIDC issuer") {
		t.Errorf("New with a silent issuer: %v; want a discovery error", err)
	}

	p := newIDP(t)
	cfg.JWKSURL = hang.URL + "/jwks"
	a, err := New(Config{OIDC: cfg}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw := p.sign(t, p.key, map[string]any{"iss": hang.URL, "aud": "iochub", "sub": "u-1", "exp": time.Now().Add(time.Hour).Unix()})
	err = returnsWithin(t, 5*time.Second, "verifying against a silent JWKS", func() error {
		_, err := a.Token(context.Background(), raw)
		return err
	})
	if !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("a token against a silent JWKS: %v; want ErrInvalidCredentials", err)
	}
}

// TestOIDCKeySetTooLarge: a key set larger than maxProviderBody is not read,
// even when it holds the right key.
func TestOIDCKeySetTooLarge(t *testing.T) {
	p := newIDP(t)
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{publicKey(p.key, "k1")}})
		_, _ = w.Write(b)
		_, _ = w.Write([]byte(strings.Repeat(" ", maxProviderBody))) // still valid JSON
	}))
	t.Cleanup(big.Close)
	issuer := "https://sso.hanoi.gov.vn/realms/ioc"
	a, err := New(Config{OIDC: OIDCConfig{Issuer: issuer, Audience: "iochub", JWKSURL: big.URL}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw := p.sign(t, p.key, map[string]any{"iss": issuer, "aud": "iochub", "sub": "u-1", "exp": time.Now().Add(time.Hour).Unix(),
		"iochub_role": "viewer", "iochub_provinces": []string{"01"}})
	if _, err := a.Token(context.Background(), raw); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("a token verified against a key set of %d bytes: %v; want ErrInvalidCredentials", maxProviderBody+400, err)
	}
}

// TestOIDCKeyFetches: forged tokens, whatever key id they name, make the
// gateway fetch the key set at most once per keysMinRefresh; a key the
// provider adds verifies once that has passed, and a key it removes stops
// verifying once the keys are keysMaxAge old.
func TestOIDCKeyFetches(t *testing.T) {
	p := newIDP(t)
	issuer := "https://sso.hanoi.gov.vn/realms/ioc"
	now := time.Now()
	clock := now
	a, err := New(Config{Now: func() time.Time { return clock }, OIDC: OIDCConfig{Issuer: issuer, Audience: "iochub", JWKSURL: p.srv.URL + "/jwks"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{"iss": issuer, "aud": "iochub", "sub": "u-42", "exp": now.Add(time.Hour).Unix(),
		"iochub_role": "viewer", "iochub_provinces": []string{"01"}}
	ctx := context.Background()
	accepts := func(what, raw string, want bool, fetches int64) {
		t.Helper()
		_, err := a.Token(ctx, raw)
		if (err == nil) != want {
			t.Errorf("%s: %v; want accepted %v", what, err, want)
		}
		if n := p.fetches.Load(); n != fetches {
			t.Errorf("after %s: %d fetches of the key set; want %d", what, n, fetches)
		}
	}
	k1 := p.sign(t, p.key, claims)
	accepts("the first token", k1, true, 1)

	forger := newKey(t)
	for i := range 50 {
		accepts("a forged token naming k1", p.sign(t, forger, claims), false, 1)
		accepts("a forged token naming an unknown key", p.signKID(t, forger, fmt.Sprintf("forged-%d", i), claims), false, 1)
		accepts("a forged token naming no key", p.signKID(t, forger, "", claims), false, 1)
	}

	rotated := newKey(t)
	p.serve(publicKey(p.key, "k1"), publicKey(rotated, "k2"))
	k2 := p.signKID(t, rotated, "k2", claims)
	clock = now.Add(keysMinRefresh / 2)
	accepts("a token of a new key within keysMinRefresh of the last fetch", k2, false, 1)
	clock = now.Add(keysMinRefresh)
	accepts("a token of a new key keysMinRefresh after the last fetch", k2, true, 2)
	for i := range 50 {
		accepts("a forged token after the new key", p.signKID(t, forger, fmt.Sprintf("forged-%d", i), claims), false, 2)
	}

	p.serve(publicKey(rotated, "k2"))
	accepts("a token of a removed key, the keys not keysMaxAge old", k1, true, 2)
	clock = now.Add(keysMinRefresh + keysMaxAge)
	accepts("a token of a removed key, the keys keysMaxAge old", k1, false, 3)
	accepts("a token of the key kept", k2, true, 3)
}

// TestOIDCKeyFetchShared: tokens verified at once by a gateway that has no
// keys yet wait for one fetch, all of them.
func TestOIDCKeyFetchShared(t *testing.T) {
	p := newIDP(t)
	a, err := New(Config{OIDC: OIDCConfig{Issuer: p.srv.URL, Audience: "iochub", JWKSURL: p.srv.URL + "/jwks"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw := p.sign(t, p.key, map[string]any{"iss": p.srv.URL, "aud": "iochub", "sub": "u-1", "exp": time.Now().Add(time.Hour).Unix(),
		"iochub_role": "viewer", "iochub_provinces": []string{"01"}})
	errs := make(chan error, 20)
	for range cap(errs) {
		go func() {
			_, err := a.Token(context.Background(), raw)
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Errorf("a token verified at the same time as others: %v", err)
		}
	}
	if n := p.fetches.Load(); n != 1 {
		t.Errorf("%d fetches of the key set; want 1", n)
	}
}
