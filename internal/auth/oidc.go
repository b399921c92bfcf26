package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
)

// OIDCConfig lets the gateway accept ID tokens (JWTs) of a province's
// identity provider as bearer tokens, verified against its JWKS; two claims
// name the role and the provinces. The zero Issuer turns it off.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL; tokens must carry it as iss.
	Issuer string
	// Audience is the client id tokens must be issued to (aud); required.
	Audience string
	// JWKSURL is where the provider's signing keys are; empty discovers it
	// from Issuer/.well-known/openid-configuration when the Authenticator is made.
	JWKSURL string
	// RoleClaim names the claim holding viewer, operator or admin; empty means "iochub_role".
	RoleClaim string
	// ScopesClaim names the claim holding the scopes (unit codes: provinces,
	// or wards such as 00070; a code of no current unit grants nothing), a list ("01","79") or
	// a comma-separated string, "*" for all; empty means "iochub_provinces".
	ScopesClaim string
	// Algorithms are the accepted signing algorithms; empty means RS256 (or,
	// with discovery, what the provider announces).
	Algorithms []string
	// Timeout bounds each request to the provider (discovery, the key set):
	// a provider that stops answering delays a sign-in by at most this, not
	// forever. 0 means 10s.
	Timeout time.Duration
}

// defaultOIDCTimeout is OIDCConfig.Timeout's default.
const defaultOIDCTimeout = 10 * time.Second

// maxProviderBody bounds a discovery document or key set read from the
// provider: go-oidc reads a whole body into memory.
const maxProviderBody = 1 << 20

// OIDCPrefix starts the principal id of an OIDC subject: "oidc:<sub>".
const OIDCPrefix = "oidc:"

// maxJWT bounds a bearer JWT before it is parsed.
const maxJWT = 16 << 10

type oidcVerifier struct {
	cfg      OIDCConfig
	verifier *oidc.IDTokenVerifier
}

// newOIDC makes the verifier of cfg's tokens; ctx bounds discovery, when
// cfg.JWKSURL is empty. Keys are fetched as keySet says.
func newOIDC(ctx context.Context, cfg OIDCConfig, now func() time.Time, log *slog.Logger) (*oidcVerifier, error) {
	if cfg.Audience == "" {
		return nil, fmt.Errorf("OIDC issuer %s: an audience (client id) is required: %w", cfg.Issuer, ErrBadIdentity)
	}
	if cfg.RoleClaim == "" {
		cfg.RoleClaim = "iochub_role"
	}
	if cfg.ScopesClaim == "" {
		cfg.ScopesClaim = "iochub_provinces"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultOIDCTimeout
	}
	oc := &oidc.Config{ClientID: cfg.Audience, SupportedSigningAlgs: cfg.Algorithms, Now: now}
	client := providerClient(cfg.Timeout)
	jwksURL := cfg.JWKSURL
	if jwksURL == "" {
		var err error
		if jwksURL, err = discover(ctx, client, oc, cfg.Issuer); err != nil {
			return nil, err
		}
	}
	keys := newKeySet(jwksURL, client, now, log)
	return &oidcVerifier{cfg: cfg, verifier: oidc.NewVerifier(cfg.Issuer, keys, oc)}, nil
}

// discover fetches issuer's discovery document and returns its JWKS URL;
// when oc names no algorithms, it takes those the provider announces (as
// go-oidc's Provider.Verifier does).
func discover(ctx context.Context, client *http.Client, oc *oidc.Config, issuer string) (string, error) {
	// Without a client of its own, go-oidc uses http.DefaultClient, which never times out.
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, client), issuer)
	if err != nil {
		return "", fmt.Errorf("discovering OIDC issuer %s: %w", issuer, err)
	}
	var doc struct {
		JWKSURL    string   `json:"jwks_uri"`
		Algorithms []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := p.Claims(&doc); err != nil {
		return "", fmt.Errorf("discovering OIDC issuer %s: %w", issuer, err)
	}
	if doc.JWKSURL == "" {
		return "", fmt.Errorf("discovering OIDC issuer %s: the document has no jwks_uri; set the JWKS URL: %w", issuer, ErrBadIdentity)
	}
	if len(oc.SupportedSigningAlgs) == 0 {
		for _, a := range doc.Algorithms {
			if slices.Contains(signingAlgs, jose.SignatureAlgorithm(a)) {
				oc.SupportedSigningAlgs = append(oc.SupportedSigningAlgs, a)
			}
		}
	}
	return doc.JWKSURL, nil
}

// providerClient is the HTTP client for the identity provider: each request
// bounded by timeout, each body by maxProviderBody.
func providerClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: capBodies{base: http.DefaultTransport, limit: maxProviderBody}}
}

// capBodies is a transport whose response bodies fail to read past limit
// bytes, so a provider (or whatever answers at its URL) cannot make the
// gateway buffer an endless body.
type capBodies struct {
	base  http.RoundTripper
	limit int64
}

func (c capBodies) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = http.MaxBytesReader(nil, resp.Body, c.limit)
	return resp, nil
}

// looksLikeJWT reports whether token has the shape of a compact JWS.
func looksLikeJWT(token string) bool {
	return strings.HasPrefix(token, "eyJ") && strings.Count(token, ".") == 2
}

// principal verifies raw and maps its claims to a principal.
func (o *oidcVerifier) principal(ctx context.Context, raw string) (Principal, error) {
	if len(raw) > maxJWT {
		return Principal{}, fmt.Errorf("OIDC token longer than %d bytes: %w", maxJWT, ErrInvalidCredentials)
	}
	tok, err := o.verifier.Verify(ctx, raw)
	if err != nil {
		return Principal{}, fmt.Errorf("OIDC token: %w: %w", err, ErrInvalidCredentials)
	}
	var claims map[string]json.RawMessage
	if err := tok.Claims(&claims); err != nil {
		return Principal{}, fmt.Errorf("OIDC token claims: %w: %w", err, ErrInvalidCredentials)
	}
	var roleName string
	if err := json.Unmarshal(claims[o.cfg.RoleClaim], &roleName); err != nil {
		return Principal{}, fmt.Errorf("OIDC token: claim %s: want a string: %w", o.cfg.RoleClaim, ErrInvalidCredentials)
	}
	role, err := ParseRole(roleName)
	if err != nil {
		return Principal{}, fmt.Errorf("OIDC token: claim %s: %w: %w", o.cfg.RoleClaim, err, ErrInvalidCredentials)
	}
	var scopes []string
	raw2 := claims[o.cfg.ScopesClaim]
	if err := json.Unmarshal(raw2, &scopes); err != nil {
		var s string
		if err := json.Unmarshal(raw2, &s); err != nil {
			return Principal{}, fmt.Errorf("OIDC token: claim %s: want a list of unit codes (provinces such as 01, wards such as 00070): %w", o.cfg.ScopesClaim, ErrInvalidCredentials)
		}
		scopes = strings.Split(s, ",")
		for i := range scopes {
			scopes[i] = strings.TrimSpace(scopes[i])
		}
	}
	if scopes, err = NormalizeScopes(scopes); err != nil {
		return Principal{}, fmt.Errorf("OIDC token: claim %s: %w: %w", o.cfg.ScopesClaim, err, ErrInvalidCredentials)
	}
	var name string
	for _, c := range []string{"name", "preferred_username", "email"} {
		if json.Unmarshal(claims[c], &name) == nil && name != "" {
			break
		}
	}
	if tok.Subject == "" {
		return Principal{}, fmt.Errorf("OIDC token without sub: %w", ErrInvalidCredentials)
	}
	return Principal{ID: OIDCPrefix + tok.Subject, Name: name, Role: role, Scopes: scopes, Expires: tok.Expiry}, nil
}

// errNoOIDC is returned for a JWT when no issuer is configured.
var errNoOIDC = errors.New("a JWT was sent but no OIDC issuer is configured")
