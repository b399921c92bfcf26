package gateway

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/services/gateway/pgread"
)

// Unit scopes: an identity scoped to a unit (a ward, say) reads and acts
// only on what lies in that unit and the units inside it. The gateway learns
// how units nest from the current admin_unit rows (unitTree, cached for
// Config.UnitsTTL) and checks each target's unit against it.

// unitTree is how the current units nest: each code's parent and level
// (auth.Tree, the aggregator's too, so both agree on what lies where). It
// implements auth.Hierarchy. The zero value and nil know no unit.
type unitTree struct {
	nodes auth.Tree
}

// Within reports whether unit code is ancestor itself or lies inside it.
func (t *unitTree) Within(code, ancestor string) bool {
	if t == nil {
		return code == ancestor
	}
	return t.nodes.Within(code, ancestor)
}

// province is the province unit code lies in (itself for a province).
func (t *unitTree) province(code string) (string, bool) {
	if t == nil {
		return "", false
	}
	return t.nodes.Province(code)
}

// exists reports whether code is a current unit.
func (t *unitTree) exists(code string) bool {
	return t != nil && t.nodes.Exists(code)
}

// unitSet is a set of unit codes: every unit within some scope units.
type unitSet map[string]struct{}

// has reports whether code is in s.
func (s unitSet) has(code string) bool {
	_, ok := s[code]
	return ok
}

// meets reports whether any of codes is in s.
func (s unitSet) meets(codes []string) bool {
	for _, c := range codes {
		if s.has(c) {
			return true
		}
	}
	return false
}

// closure returns roots and every current unit inside one of them.
func (t *unitTree) closure(roots []string) unitSet {
	out := make(unitSet, len(roots))
	for _, r := range roots {
		out[r] = struct{}{}
	}
	if t == nil {
		return out
	}
	for code := range t.nodes {
		for _, r := range roots {
			if t.Within(code, r) {
				out[code] = struct{}{}
				break
			}
		}
	}
	return out
}

// treeCache keeps the unit tree for a TTL; concurrent misses share one query.
type treeCache struct {
	store *pgread.Store
	ttl   time.Duration
	sf    singleflight.Group

	mu      sync.Mutex
	tree    *unitTree
	expires time.Time
}

func (c *treeCache) get(ctx context.Context) (*unitTree, error) {
	c.mu.Lock()
	t, exp := c.tree, c.expires
	c.mu.Unlock()
	if t != nil && time.Now().Before(exp) {
		return t, nil
	}
	v, err, _ := c.sf.Do("tree", func() (any, error) {
		nodes, err := c.store.UnitTree(ctx)
		if err != nil {
			return nil, err
		}
		t := &unitTree{nodes: nodes}
		c.mu.Lock()
		c.tree, c.expires = t, time.Now().Add(c.ttl)
		c.mu.Unlock()
		return t, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*unitTree), nil
}

// hierarchy returns the unit tree, or answers 503 itself when it cannot be
// read. Without a database it is the empty tree: a scope then covers only
// the code it names.
func (g *Gateway) hierarchy(w http.ResponseWriter, r *http.Request) (*unitTree, bool) {
	if g.tree == nil {
		return &unitTree{}, true
	}
	t, err := g.tree.get(r.Context())
	if err != nil {
		g.log.Error("reading the unit tree", "err", err)
		writeProblem(w, r, http.StatusServiceUnavailable, "the units database is unavailable; retry later")
		return nil, false
	}
	return t, true
}

// readableProvince loads the unit tree and checks that who may read
// province, answering 503 or 403 (naming what) otherwise.
func (g *Gateway) readableProvince(w http.ResponseWriter, r *http.Request, who auth.Principal, province, what string) (*unitTree, bool) {
	tree, ok := g.hierarchy(w, r)
	if !ok {
		return nil, false
	}
	if !who.ReadsIn(tree, province) {
		forbid(w, r, who, what)
		return nil, false
	}
	return tree, true
}

// scopeUnits returns the units p is limited to in province (every unit
// within p's unit scopes there), or nil when p reads the whole province.
func scopeUnits(t *unitTree, p auth.Principal, province string) unitSet {
	roots := p.UnitsIn(t, province)
	if roots == nil {
		return nil
	}
	return t.closure(roots)
}

// codes returns s's codes, sorted.
func (s unitSet) codes() []string {
	out := make([]string, 0, len(s))
	for c := range s {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// key identifies s, for caching per scope.
func (s unitSet) key() string { return strings.Join(s.codes(), ",") }
