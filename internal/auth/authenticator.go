package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/iochub/iochub/internal/ops"
)

// Loader reads every identity, revoked ones included; the gateway's is a
// read-only query (pgread), so the gateway never writes identities.
type Loader interface {
	Identities(ctx context.Context) ([]Identity, error)
}

// StaticToken is a token configured on the command line (the dev token, the
// legacy operator token) rather than stored: it acts as Principal.
type StaticToken struct {
	Token     string
	Principal Principal
}

// CookieName is the name of the session cookie.
const CookieName = "iochub_session"

// Config configures an Authenticator. The zero value of each field means its default.
type Config struct {
	// Static are tokens accepted besides the stored identities; empty Token entries are ignored.
	Static []StaticToken
	// SessionKey signs session cookies (HMAC-SHA256), at least 32 bytes.
	// Every gateway behind one load balancer needs the same key. Nil means a
	// random key per process: sessions then end with the process.
	SessionKey []byte
	// SessionTTL is how long a session cookie is valid. 0 means 12h.
	SessionTTL time.Duration
	// SecureCookie marks the cookie Secure (HTTPS only) even on a plain-HTTP
	// request, as behind a TLS-terminating proxy. Requests that came over TLS
	// always get a Secure cookie.
	SecureCookie bool
	// Refresh is how often the identity cache is reloaded; a revocation is in
	// effect on every gateway within it. 0 means 10s.
	Refresh time.Duration
	// CodeTTL is how long a one-time sign-in code stays valid. 0 means 10 minutes.
	CodeTTL time.Duration
	// OIDC, when its Issuer is set, also accepts ID tokens of that provider.
	OIDC OIDCConfig
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.SessionTTL == 0 {
		c.SessionTTL = 12 * time.Hour
	}
	if c.Refresh == 0 {
		c.Refresh = 10 * time.Second
	}
	if c.CodeTTL == 0 {
		c.CodeTTL = 10 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Authenticator resolves a request's bearer token or session cookie into a
// Principal. Stored identities come from a cache that Run reloads every
// Config.Refresh; a revoked identity stops authenticating, by token or by
// session, at the first reload after its revocation.
type Authenticator struct {
	cfg    Config
	loader Loader
	log    *slog.Logger
	oidc   *oidcVerifier // nil: no OIDC
	static map[[32]byte]Principal
	byID   map[string]Principal // static principals by id, for sessions
	sums   map[string][32]byte  // static principals' token hashes by id: their sessions are bound to them

	mu     sync.RWMutex
	loaded bool
	tokens map[[32]byte]Principal // live identities by token hash
	ids    map[string]Principal   // live identities by id

	codesMu sync.Mutex
	codes   map[string]oneTimeCode
}

type oneTimeCode struct {
	principalID string
	expires     time.Time
}

// New returns an Authenticator; loader may be nil (static tokens only).
// Call Refresh (or Run) before serving identity tokens. With Config.OIDC and
// no JWKSURL, New fetches the provider's discovery document.
func New(cfg Config, loader Loader, log *slog.Logger) (*Authenticator, error) {
	cfg = cfg.withDefaults()
	if cfg.SessionTTL < 0 || cfg.Refresh < 0 || cfg.CodeTTL < 0 {
		return nil, fmt.Errorf("configuring authentication: durations must not be negative: %w", ErrBadIdentity)
	}
	if cfg.SessionKey == nil {
		cfg.SessionKey = make([]byte, 32)
		_, _ = rand.Read(cfg.SessionKey)
	} else if len(cfg.SessionKey) < 32 {
		return nil, fmt.Errorf("configuring authentication: the session key has %d bytes; want at least 32: %w", len(cfg.SessionKey), ErrBadIdentity)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{cfg: cfg, loader: loader, log: log, static: map[[32]byte]Principal{}, byID: map[string]Principal{},
		sums: map[string][32]byte{}, tokens: map[[32]byte]Principal{}, ids: map[string]Principal{}, codes: map[string]oneTimeCode{}}
	for _, s := range cfg.Static {
		if s.Token == "" {
			continue
		}
		p := s.Principal
		if p.ID == "" || strings.ContainsAny(p.ID, ".|") || p.Role.rank() == 0 {
			return nil, fmt.Errorf("configuring authentication: static principal %q: want an id without '.' and a role: %w", p.ID, ErrBadIdentity)
		}
		if strings.HasPrefix(p.ID, idPrefix) {
			return nil, fmt.Errorf("configuring authentication: static principal %q: ids starting %s are stored identities': %w", p.ID, idPrefix, ErrBadIdentity)
		}
		sum := sha256.Sum256([]byte(s.Token))
		a.static[sum] = p
		a.byID[p.ID], a.sums[p.ID] = p, sum
	}
	if loader == nil {
		a.loaded = true
	}
	if cfg.OIDC.Issuer != "" {
		// Discovery is bounded as a whole, besides each request's
		// OIDCConfig.Timeout: a gateway whose provider does not answer fails
		// to start, saying so, rather than hanging.
		ctx, cancel := context.WithTimeout(context.Background(), discoveryTimeout)
		defer cancel()
		v, err := newOIDC(ctx, cfg.OIDC, cfg.Now, log)
		if err != nil {
			return nil, fmt.Errorf("configuring authentication: %w", err)
		}
		a.oidc = v
	}
	return a, nil
}

// discoveryTimeout bounds New's discovery of an OIDC provider.
const discoveryTimeout = 30 * time.Second

// DeriveSessionKey derives the session-signing key from the hub's seal key,
// so one configured secret serves both without one revealing the other.
func DeriveSessionKey(sealKey []byte) []byte {
	m := hmac.New(sha256.New, sealKey)
	m.Write([]byte("iochub session cookie v1"))
	return m.Sum(nil)
}

// Refresh reloads the identity cache.
func (a *Authenticator) Refresh(ctx context.Context) error {
	if a.loader == nil {
		return nil
	}
	list, err := a.loader.Identities(ctx)
	if err != nil {
		return fmt.Errorf("loading identities: %w", err)
	}
	tokens := make(map[[32]byte]Principal, len(list))
	ids := make(map[string]Principal, len(list))
	for _, id := range list {
		if id.Revoked || len(id.TokenSHA256) != sha256.Size {
			continue
		}
		var h [32]byte
		copy(h[:], id.TokenSHA256)
		p := id.Principal()
		tokens[h] = p
		ids[id.ID] = p
	}
	a.mu.Lock()
	a.tokens, a.ids, a.loaded = tokens, ids, true
	a.mu.Unlock()
	return nil
}

// Run reloads the identity cache every Config.Refresh until ctx ends; a
// failed reload keeps the previous cache and is logged. It returns nil.
func (a *Authenticator) Run(ctx context.Context) error {
	if a.loader == nil {
		<-ctx.Done()
		return nil
	}
	return ops.Every(ctx, a.cfg.Refresh, a.Refresh, func(err error) {
		a.log.Warn("reloading identities failed; keeping the previous ones", "err", err)
	})
}

// Authenticate returns the principal of r: its bearer token when it has an
// Authorization header (a wrong one is not rescued by a cookie), else its
// session cookie. ErrNoCredentials when it has neither.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return Principal{}, fmt.Errorf("authorization header: want Bearer <token>: %w", ErrInvalidCredentials)
		}
		return a.Token(r.Context(), strings.TrimSpace(tok))
	}
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		return a.session(c.Value)
	}
	return Principal{}, ErrNoCredentials
}

// Token returns the principal of a bearer token: a static token, an
// identity's key, or an OIDC ID token when an issuer is configured.
func (a *Authenticator) Token(ctx context.Context, token string) (Principal, error) {
	if looksLikeJWT(token) {
		if a.oidc == nil {
			return Principal{}, fmt.Errorf("%w: %w", errNoOIDC, ErrInvalidCredentials)
		}
		return a.oidc.principal(ctx, token)
	}
	h := sha256.Sum256([]byte(token))
	// Static tokens are compared in constant time: there are few of them.
	for sh, p := range a.static {
		if subtle.ConstantTimeCompare(h[:], sh[:]) == 1 {
			return p, nil
		}
	}
	a.mu.RLock()
	p, ok := a.tokens[h] // a map keyed by a hash: timing reveals nothing of the token
	loaded := a.loaded
	a.mu.RUnlock()
	switch {
	case ok:
		return p, nil
	case !loaded && strings.HasPrefix(token, TokenPrefix):
		return Principal{}, ErrNotLoaded
	}
	return Principal{}, fmt.Errorf("unknown or revoked token: %w", ErrInvalidCredentials)
}

// principalByID is the live principal with id, static or stored.
func (a *Authenticator) principalByID(id string) (Principal, bool) {
	if p, ok := a.byID[id]; ok {
		return p, true
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	p, ok := a.ids[id]
	return p, ok
}

// Live reports whether p still authenticates: false once its credential
// expired (an OIDC token, a session cookie), or once its identity is revoked
// and the cache reloaded (an identity of the hub: a key, or a session's).
func (a *Authenticator) Live(p Principal) bool {
	if !p.Expires.IsZero() && !a.cfg.Now().Before(p.Expires) {
		return false
	}
	if strings.HasPrefix(p.ID, OIDCPrefix) {
		return true // an OIDC subject is no identity of the hub: its token's expiry is all
	}
	_, ok := a.principalByID(p.ID)
	return ok
}

// sessionMAC signs "v1.<id>.<expires unix>", payload of a session of
// principal id. A static principal keeps its id ("dev") whatever its token,
// so its sessions are signed over its token's hash too (not in the cookie):
// a new --dev-token or --operator-token ends the sessions opened with the old one.
func (a *Authenticator) sessionMAC(payload, id string) string {
	m := hmac.New(sha256.New, a.cfg.SessionKey)
	m.Write([]byte(payload))
	if sum, ok := a.sums[id]; ok {
		m.Write([]byte{0}) // a payload ends in digits: no NUL of its own
		m.Write(sum[:])
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// SessionValue is the signed cookie value naming principal id until expires.
func (a *Authenticator) SessionValue(id string, expires time.Time) string {
	payload := "v1." + id + "." + strconv.FormatInt(expires.Unix(), 10)
	return payload + "." + a.sessionMAC(payload, id)
}

// session checks a cookie value and returns the principal it names, if that
// identity is still live.
func (a *Authenticator) session(v string) (Principal, error) {
	if len(v) > 512 {
		return Principal{}, fmt.Errorf("session cookie too long: %w", ErrInvalidCredentials)
	}
	i := strings.LastIndexByte(v, '.')
	if i < 0 {
		return Principal{}, fmt.Errorf("session cookie malformed: %w", ErrInvalidCredentials)
	}
	payload, mac := v[:i], v[i+1:]
	// The id is read before the signature is checked (what was signed
	// depends on it) and trusted only after.
	parts := strings.Split(payload, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return Principal{}, fmt.Errorf("session cookie malformed: %w", ErrInvalidCredentials)
	}
	if !hmac.Equal([]byte(mac), []byte(a.sessionMAC(payload, parts[1]))) {
		return Principal{}, fmt.Errorf("session cookie signature: %w", ErrInvalidCredentials)
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || !a.cfg.Now().Before(time.Unix(exp, 0)) {
		return Principal{}, fmt.Errorf("session expired; sign in again: %w", ErrInvalidCredentials)
	}
	p, ok := a.principalByID(parts[1])
	if !ok {
		return Principal{}, fmt.Errorf("the session's identity is revoked or unknown: %w", ErrInvalidCredentials)
	}
	// A live view or stream opened with the cookie ends with it (Live).
	if at := time.Unix(exp, 0); p.Expires.IsZero() || at.Before(p.Expires) {
		p.Expires = at
	}
	return p, nil
}

// StartSession sets a session cookie for p on w: HttpOnly, SameSite=Strict,
// Secure over TLS or when configured, valid for Config.SessionTTL.
func (a *Authenticator) StartSession(w http.ResponseWriter, r *http.Request, p Principal) {
	exp := a.cfg.Now().Add(a.cfg.SessionTTL)
	//nolint:gosec // G124: Secure is set over TLS or by SecureCookie; a plain-HTTP hub (dev, a LAN wall screen) needs the cookie without it
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: a.SessionValue(p.ID, exp), Path: "/", Expires: exp,
		MaxAge: int(a.cfg.SessionTTL / time.Second), HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: a.cfg.SecureCookie || r.TLS != nil})
}

// EndSession clears the session cookie on w. The cookie is stateless: a copy
// kept elsewhere stays valid until it expires or its identity is revoked.
func (a *Authenticator) EndSession(w http.ResponseWriter, r *http.Request) {
	//nolint:gosec // G124: as in StartSession
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: a.cfg.SecureCookie || r.TLS != nil})
}

// maxCodes bounds the one-time codes waiting to be used.
const maxCodes = 1024

// MintCode returns a one-time sign-in code for principal id (a static one,
// such as "dev", or a stored identity), valid for Config.CodeTTL and one use.
// Codes live in this process's memory: they are minted by iochub dev, which
// runs the gateway in the same process, so no other store is needed (several
// gateways would need a shared one, e.g. a NATS KV bucket with a TTL).
func (a *Authenticator) MintCode(principalID string) (string, error) {
	var b [24]byte
	_, _ = rand.Read(b[:])
	code := base64.RawURLEncoding.EncodeToString(b[:])
	now := a.cfg.Now()
	a.codesMu.Lock()
	defer a.codesMu.Unlock()
	for c, oc := range a.codes {
		if !now.Before(oc.expires) {
			delete(a.codes, c)
		}
	}
	if len(a.codes) >= maxCodes {
		return "", fmt.Errorf("minting a sign-in code: %d codes are waiting to be used", maxCodes)
	}
	a.codes[code] = oneTimeCode{principalID: principalID, expires: now.Add(a.cfg.CodeTTL)}
	return code, nil
}

// RedeemCode consumes code and returns its principal; a code works once.
func (a *Authenticator) RedeemCode(code string) (Principal, error) {
	a.codesMu.Lock()
	oc, ok := a.codes[code]
	delete(a.codes, code)
	a.codesMu.Unlock()
	if !ok || !a.cfg.Now().Before(oc.expires) {
		return Principal{}, ErrBadCode
	}
	p, ok := a.principalByID(oc.principalID)
	if !ok {
		return Principal{}, fmt.Errorf("the code's identity is revoked: %w", ErrBadCode)
	}
	return p, nil
}
