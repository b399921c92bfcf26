package main

import (
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/seal"
	"github.com/iochub/iochub/services/gateway/pgread"
)

// authConfig is the access-control part of config (embedded in it); the
// gateway's own part (allowed origins, live views per identity) is in
// gateway.Config.
type authConfig struct {
	// SessionKey signs session cookies (64 hex digits or base64 of 32 bytes);
	// empty derives it from the seal key, or, without one, makes a random key
	// per process (sessions then end with it and are not shared by gateways).
	SessionKey string
	// SecureCookies marks session cookies Secure on plain HTTP too (behind a
	// TLS-terminating proxy); requests over TLS always get Secure cookies.
	SecureCookies bool
	// IdentityRefresh is how often identities are reloaded: a revocation is
	// in effect on every gateway within it. 0 means 10s.
	IdentityRefresh time.Duration
	// OIDCIssuer, when set, makes the gateway accept ID tokens of that
	// provider as bearer tokens (OIDCAudience required; keys from
	// OIDCJWKSURL or discovery; role and provinces from two claims).
	OIDCIssuer, OIDCAudience, OIDCJWKSURL, OIDCRoleClaim, OIDCScopesClaim string
}

// registerAuth registers the access-control flags on fs.
func (c *config) registerAuth(fs *flag.FlagSet) {
	fs.StringVar(&c.SessionKey, "session-key", c.SessionKey, "key signing session cookies: 64 hex digits or base64 of 32 bytes; empty derives it from the seal key (IOCHUB_SESSION_KEY)")
	fs.BoolVar(&c.SecureCookies, "secure-cookies", c.SecureCookies, "mark session cookies Secure even on plain HTTP, as behind a TLS proxy (IOCHUB_SECURE_COOKIES)")
	fs.DurationVar(&c.IdentityRefresh, "identity-refresh", c.IdentityRefresh, "how often identities are reloaded; a revocation applies within it; 0 means 10s (IOCHUB_IDENTITY_REFRESH)")
	fs.StringVar(&c.OIDCIssuer, "oidc-issuer", c.OIDCIssuer, "issuer URL of an OIDC provider whose ID tokens are accepted as bearer tokens; empty turns OIDC off (IOCHUB_OIDC_ISSUER)")
	fs.StringVar(&c.OIDCAudience, "oidc-audience", c.OIDCAudience, "client id the OIDC tokens must be issued to (IOCHUB_OIDC_AUDIENCE)")
	fs.StringVar(&c.OIDCJWKSURL, "oidc-jwks-url", c.OIDCJWKSURL, "the provider's JWKS URL; empty discovers it from the issuer (IOCHUB_OIDC_JWKS_URL)")
	fs.StringVar(&c.OIDCRoleClaim, "oidc-role-claim", c.OIDCRoleClaim, "claim holding viewer, operator or admin; empty means iochub_role (IOCHUB_OIDC_ROLE_CLAIM)")
	fs.StringVar(&c.OIDCScopesClaim, "oidc-scopes-claim", c.OIDCScopesClaim, "claim holding the province codes (list or comma-separated, * for all); empty means iochub_provinces (IOCHUB_OIDC_SCOPES_CLAIM)")
}

// Principals of the tokens given on the command line.
const (
	devPrincipalID      = "dev"
	operatorPrincipalID = "operator-token"
)

// newAuthenticator builds the access control of the gateway (and of
// /metrics): stored identities read through pool (nil: none), the dev token
// and the legacy operator token as admins of every province.
func newAuthenticator(cfg config, pool *pgxpool.Pool, log *slog.Logger) (*auth.Authenticator, error) {
	all := []string{auth.AllScopes}
	ac := auth.Config{
		Static: []auth.StaticToken{
			{Token: cfg.DevToken, Principal: auth.Principal{ID: devPrincipalID, Name: "dev token", Role: auth.RoleAdmin, Scopes: all}},
			// Deprecated: create identities instead (iochub identities create).
			{Token: cfg.OperatorToken, Principal: auth.Principal{ID: operatorPrincipalID, Name: "--operator-token", Role: auth.RoleAdmin, Scopes: all}},
		},
		SecureCookie: cfg.SecureCookies,
		Refresh:      cfg.IdentityRefresh,
		OIDC: auth.OIDCConfig{Issuer: cfg.OIDCIssuer, Audience: cfg.OIDCAudience, JWKSURL: cfg.OIDCJWKSURL,
			RoleClaim: cfg.OIDCRoleClaim, ScopesClaim: cfg.OIDCScopesClaim},
	}
	switch {
	case cfg.SessionKey != "":
		k, err := seal.ParseKey(cfg.SessionKey)
		if err != nil {
			return nil, fmt.Errorf("--session-key: %w", err)
		}
		ac.SessionKey = k
	case cfg.SealKey != "":
		k, err := cfg.sealKey()
		if err != nil {
			return nil, err
		}
		ac.SessionKey = auth.DeriveSessionKey(k)
	default:
		log.Warn("no --session-key or --seal-key: sessions are signed with a random key and end when this process does")
	}
	var loader auth.Loader
	if pool != nil {
		loader = pgread.New(pool)
	}
	a, err := auth.New(ac, loader, log.With("role", "auth"))
	if err != nil {
		return nil, err
	}
	return a, nil
}
