package auth

import (
	"flag"
	"time"
)

// Settings are the access-control settings of a gateway as an operator gives
// them (flags and IOCHUB_* variables); the binary turns them into a Config
// (keys parsed, the dev and legacy tokens added).
type Settings struct {
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
	// OIDC, when OIDC.Issuer is set, makes the gateway accept ID tokens of
	// that provider as bearer tokens (Audience required).
	OIDC OIDCConfig
}

// RegisterFlags registers the access-control flags on fs, with s's current
// values as defaults.
func (s *Settings) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&s.SessionKey, "session-key", s.SessionKey, "key signing session cookies: 64 hex digits or base64 of 32 bytes; empty derives it from the seal key (IOCHUB_SESSION_KEY)")
	fs.BoolVar(&s.SecureCookies, "secure-cookies", s.SecureCookies, "mark session cookies Secure even on plain HTTP, as behind a TLS proxy (IOCHUB_SECURE_COOKIES)")
	fs.DurationVar(&s.IdentityRefresh, "identity-refresh", s.IdentityRefresh, "how often identities are reloaded; a revocation applies within it; 0 means 10s (IOCHUB_IDENTITY_REFRESH)")
	fs.StringVar(&s.OIDC.Issuer, "oidc-issuer", s.OIDC.Issuer, "issuer URL of an OIDC provider whose ID tokens are accepted as bearer tokens; empty turns OIDC off (IOCHUB_OIDC_ISSUER)")
	fs.StringVar(&s.OIDC.Audience, "oidc-audience", s.OIDC.Audience, "client id the OIDC tokens must be issued to (IOCHUB_OIDC_AUDIENCE)")
	fs.StringVar(&s.OIDC.JWKSURL, "oidc-jwks-url", s.OIDC.JWKSURL, "the provider's JWKS URL; empty discovers it from the issuer (IOCHUB_OIDC_JWKS_URL)")
	fs.StringVar(&s.OIDC.RoleClaim, "oidc-role-claim", s.OIDC.RoleClaim, "claim holding viewer, operator or admin; empty means iochub_role (IOCHUB_OIDC_ROLE_CLAIM)")
	fs.StringVar(&s.OIDC.ScopesClaim, "oidc-scopes-claim", s.OIDC.ScopesClaim, "claim holding the scopes (unit codes, list or comma-separated, * for all); empty means iochub_provinces (IOCHUB_OIDC_SCOPES_CLAIM)")
}
