package gateway

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/services/gateway/pgread"
)

// unitsCacheMax bounds the cached answers (provinces × simplify tolerances).
const unitsCacheMax = 256

// unitsCache keeps /v1/units answers per province and tolerance for a TTL;
// concurrent misses of one key share one query.
type unitsCache struct {
	store *pgread.Store
	ttl   time.Duration
	now   func() time.Time
	sf    singleflight.Group

	mu      sync.Mutex
	entries map[string]unitsEntry
}

type unitsEntry struct {
	body    []byte
	found   bool
	expires time.Time
}

func newUnitsCache(s *pgread.Store, ttl time.Duration, now func() time.Time) *unitsCache {
	return &unitsCache{store: s, ttl: ttl, now: now, entries: make(map[string]unitsEntry)}
}

// get returns the answer for p; with units, only the province and those of
// its units are in it.
func (c *unitsCache) get(ctx context.Context, p unitsParams, units unitSet) (unitsEntry, error) {
	key := p.Province + "|" + strconv.FormatFloat(p.Simplify, 'g', -1, 64)
	if !p.At.IsZero() {
		key += "|at=" + p.At.UTC().Format(time.RFC3339Nano)
	}
	var keep func(string) bool
	if units != nil {
		key += "|" + units.key()
		keep = units.has
	}
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && c.now().Before(e.expires) {
		return e, nil
	}
	v, err, _ := c.sf.Do(key, func() (any, error) {
		var (
			body  []byte
			found bool
			err   error
		)
		if p.At.IsZero() {
			body, found, err = c.store.UnitsGeoJSON(ctx, p.Province, p.Simplify, keep)
		} else {
			body, found, err = c.store.UnitsGeoJSONAt(ctx, p.Province, p.Simplify, p.At)
		}
		if err != nil {
			return unitsEntry{}, err
		}
		e := unitsEntry{body: body, found: found, expires: c.now().Add(c.ttl)}
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.entries) >= unitsCacheMax {
			now := c.now()
			for k, old := range c.entries {
				if !now.Before(old.expires) {
					delete(c.entries, k)
				}
			}
			if len(c.entries) >= unitsCacheMax {
				clear(c.entries)
			}
		}
		c.entries[key] = e
		return e, nil
	})
	if err != nil {
		return unitsEntry{}, err
	}
	return v.(unitsEntry), nil
}

// serveUnits is GET /v1/units?province=NN[&simplify=DEG][&at=TIME]: a GeoJSON
// FeatureCollection of the province and its current child units; a
// principal scoped to units inside the province gets the province's outline
// and its own units only. With at, the province and its child units valid
// at that time (the map of then; serveUnitsAt).
func (g *Gateway) serveUnits(w http.ResponseWriter, r *http.Request) {
	who, ok := g.authenticate(w, r)
	if !ok {
		return
	}
	p, err := parseUnitsQuery(r.URL.Query())
	if err != nil {
		writeProblem(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if !p.At.IsZero() {
		g.serveUnitsAt(w, r, who, p)
		return
	}
	tree, ok := g.readableProvince(w, r, who, p.Province, "read province "+p.Province)
	if !ok {
		return
	}
	if g.units == nil {
		writeProblem(w, r, http.StatusServiceUnavailable, "this gateway has no database; units are not available here")
		return
	}
	e, err := g.units.get(r.Context(), p, scopeUnits(tree, who, p.Province))
	if err != nil {
		g.readFailed(w, r, err, "querying units", "province", p.Province)
		return
	}
	if !e.found {
		writeProblem(w, r, http.StatusNotFound, "no current province has the code "+p.Province)
		return
	}
	w.Header().Set("Content-Type", "application/geo+json")
	// private: the answer depends on who asked, so shared caches keep none.
	w.Header().Set("Cache-Control", "private, max-age="+strconv.Itoa(int(g.cfg.UnitsTTL/time.Second)))
	_, _ = w.Write(e.body)
}

// serveUnitsAt answers /v1/units with at. Scope rule: a principal reads the
// map of a past time for province P when it reads the whole of a current
// province succeeding P (pgread.SuccessorProvinces: the current province
// containing a point inside P as it was then). So an identity of 08 Tuyên
// Quang reads 02 Hà Giang of 2025-06-01, merged into it; an identity scoped
// to some units of a province reads no past map (it gets 403).
func (g *Gateway) serveUnitsAt(w http.ResponseWriter, r *http.Request, who auth.Principal, p unitsParams) {
	if g.units == nil {
		writeProblem(w, r, http.StatusServiceUnavailable, "this gateway has no database; units are not available here")
		return
	}
	succ, err := g.units.store.SuccessorProvinces(r.Context(), p.Province, p.At)
	if err != nil {
		g.readFailed(w, r, err, "querying units", "province", p.Province)
		return
	}
	allowed := who.AllProvinces() && who.CanRead(p.Province)
	for _, s := range succ {
		allowed = allowed || who.CanRead(s)
	}
	if !allowed {
		if len(succ) == 0 {
			// Out of every scope looks like absent, so codes are not probed.
			writeProblem(w, r, http.StatusNotFound, "no province had the code "+p.Province+" at "+p.At.Format(time.RFC3339))
			return
		}
		forbid(w, r, who, "read province "+p.Province+" as of "+p.At.Format(time.RFC3339)+
			" (reading the whole of its successor "+strings.Join(succ, ", ")+" needed)")
		return
	}
	e, err := g.units.get(r.Context(), p, nil)
	if err != nil {
		g.readFailed(w, r, err, "querying units", "province", p.Province)
		return
	}
	if !e.found {
		writeProblem(w, r, http.StatusNotFound, "no province had the code "+p.Province+" at "+p.At.Format(time.RFC3339))
		return
	}
	w.Header().Set("Content-Type", "application/geo+json")
	w.Header().Set("Cache-Control", "private, max-age="+strconv.Itoa(int(g.cfg.UnitsTTL/time.Second)))
	_, _ = w.Write(e.body)
}
