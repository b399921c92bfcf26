package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// idp is an identity provider in a test: a JWKS endpoint and a signer.
type idp struct {
	srv *httptest.Server
	key *rsa.PrivateKey
}

func newIDP(t *testing.T) *idp {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &idp{key: key}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/jwks" {
			http.NotFound(w, r)
			return
		}
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}}
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) sign(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, (&jose.SignerOptions{}).WithType("JWT"))
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
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
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
		b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
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
