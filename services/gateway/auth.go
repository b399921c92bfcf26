package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/services/gateway/pgread"
)

// Access control: every endpoint but the app's static files, /healthz and
// /readyz asks g.authenticate for the request's principal (bearer token or
// session cookie; 401 with WWW-Authenticate without one) and then checks its
// role and provinces (403 problem, or 404 for a thing by id in a province the
// principal cannot see, so ids are not probed).

// authenticate returns the request's principal, or answers 401 (503 while the
// identities are not loaded) itself. A request that changes something and
// carries a foreign Origin is refused (403): the session cookie is
// SameSite=Strict already; this covers browsers that ignore it.
func (g *Gateway) authenticate(w http.ResponseWriter, r *http.Request) (auth.Principal, bool) {
	p, err := g.deps.Auth.Authenticate(r)
	switch {
	case errors.Is(err, auth.ErrNotLoaded):
		w.Header().Set("Retry-After", "1")
		writeProblem(w, r, http.StatusServiceUnavailable, "identities are still loading; retry in a second")
		return p, false
	case errors.Is(err, auth.ErrNoCredentials):
		w.Header().Set("WWW-Authenticate", `Bearer realm="iochub"`)
		writeProblem(w, r, http.StatusUnauthorized, "sign in: send Authorization: Bearer <token> (an identity's key) or a session cookie from POST /v1/session")
		return p, false
	case err != nil:
		g.credentialsRefused(w, r, "the token or session is not valid (unknown, revoked or expired)", err)
		return p, false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !g.originAllowed(r) {
		writeProblem(w, r, http.StatusForbidden, fmt.Sprintf("Origin %q is not allowed to change anything on this hub", truncate(r.Header.Get("Origin"), 100)))
		return p, false
	}
	return p, true
}

// credentialsRefused answers 401 with detail and logs err. The detail is
// fixed: err may hold what the identity provider answered, its hosts, or the
// issuer and audience a token must have, none of which an unauthenticated
// client should learn. The log is at Debug: anyone may send a bad token, as
// often as it likes (a failing key-set fetch is logged by the key set).
func (g *Gateway) credentialsRefused(w http.ResponseWriter, r *http.Request, detail string, err error) {
	g.log.Debug("credentials refused", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
	w.Header().Set("WWW-Authenticate", `Bearer realm="iochub", error="invalid_token"`)
	writeProblem(w, r, http.StatusUnauthorized, detail)
}

// forbid answers 403 saying what p lacks.
// readsKind answers 403 and reports false when who may not read kind (a key
// of some kinds only, auth.Principal.Kinds).
func readsKind(w http.ResponseWriter, r *http.Request, who auth.Principal, kind string) bool {
	if who.MayReadKind(kind) {
		return true
	}
	forbid(w, r, who, "read "+kind+" (this key reads the kinds "+strings.Join(who.Kinds, ",")+")")
	return false
}

func forbid(w http.ResponseWriter, r *http.Request, p auth.Principal, what string) {
	writeProblem(w, r, http.StatusForbidden, fmt.Sprintf("identity %s (%s of %s) may not %s", p.ID, p.Role, strings.Join(p.Scopes, ","), what))
}

// originAllowed reports whether the request's Origin may use the hub: no
// Origin (not a browser), an Origin in Config.AllowedOrigins ("*" allows
// all), or, when that list is empty, the same origin (the Origin's host is
// the request's Host).
func (g *Gateway) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if len(g.cfg.AllowedOrigins) == 0 {
		u, err := url.Parse(origin)
		return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
	}
	for _, o := range g.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	return false
}

// RequireAdmin wraps h so that path answers only an admin of every province
// (scope *): for /metrics on the public listener, whose figures are the whole
// hub's, not one province's. Refused credentials are logged to log (nil: not logged).
func RequireAdmin(a *auth.Authenticator, log *slog.Logger, path string, h http.Handler) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{deps: Deps{Auth: a}, log: log}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == path {
			p, ok := g.authenticate(w, r)
			if !ok {
				return
			}
			if !p.IsAdmin() || !p.AllProvinces() {
				forbid(w, r, p, "read "+path+" (admin of every province only)")
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// provinceCache answers whether a province code is a current province, from
// the database, remembered for Config.UnitsTTL.
type provinceCache struct {
	store *pgread.Store
	ttl   time.Duration
	mu    sync.Mutex
	known map[string]provinceEntry
}

type provinceEntry struct {
	exists  bool
	expires time.Time
}

func (c *provinceCache) exists(ctx context.Context, code string) (bool, error) {
	now := time.Now()
	c.mu.Lock()
	e, ok := c.known[code]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.exists, nil
	}
	exists, err := c.store.ProvinceExists(ctx, code)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	if len(c.known) > 1000 {
		clear(c.known)
	}
	c.known[code] = provinceEntry{exists: exists, expires: now.Add(c.ttl)}
	c.mu.Unlock()
	return exists, nil
}

// acquireLive counts a live client of principal id; false when it has
// Config.MaxClientsPerIdentity open already.
func (g *Gateway) acquireLive(id string) bool { return g.acquire(id, g.cfg.MaxClientsPerIdentity) }

func (g *Gateway) releaseLive(id string) { g.release(id) }

// acquire counts one more connection under key (an identity's live views or
// event streams); false when max are open already.
func (g *Gateway) acquire(key string, max int) bool {
	g.perIDMu.Lock()
	defer g.perIDMu.Unlock()
	if g.perID[key] >= max {
		return false
	}
	g.perID[key]++
	return true
}

// release counts one connection under key less.
func (g *Gateway) release(key string) {
	g.perIDMu.Lock()
	defer g.perIDMu.Unlock()
	if g.perID[key] <= 1 {
		delete(g.perID, key)
		return
	}
	g.perID[key]--
}

// alertsInScope limits an alerts query to p's provinces and units: a
// province p reads nothing of is 403; without province=, a principal of one
// province (or units of one province) gets its province, and one of several
// must choose (400), since the list is limited. A principal scoped to units
// gets the alerts placed in or touching them only.
func alertsInScope(w http.ResponseWriter, r *http.Request, p auth.Principal, tree *unitTree, q *pgread.AlertsQuery) bool {
	switch {
	case q.Province != "":
		if !p.ReadsIn(tree, q.Province) {
			forbid(w, r, p, "read the alerts of province "+q.Province)
			return false
		}
	case p.AllProvinces():
		return true
	default:
		prov, ok := onlyProvince(tree, p)
		if !ok {
			writeProblem(w, r, http.StatusBadRequest, "parameter province: required for an identity of several provinces or units ("+strings.Join(p.Scopes, ",")+")")
			return false
		}
		q.Province = prov
	}
	if units := scopeUnits(tree, p, q.Province); units != nil {
		q.Units = units.codes()
	}
	return true
}

// onlyProvince is the one province all of p's scopes lie in; false when
// they lie in several (or p has all).
func onlyProvince(tree *unitTree, p auth.Principal) (string, bool) {
	prov := ""
	for _, s := range p.Scopes {
		if s == auth.AllScopes {
			return "", false
		}
		sp, ok := tree.province(s)
		if !ok {
			sp = s // a province the tree does not know (no database)
		}
		if prov != "" && sp != prov {
			return "", false
		}
		prov = sp
	}
	return prov, prov != ""
}
