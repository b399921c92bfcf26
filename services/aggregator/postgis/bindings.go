package postgis

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Bindings is what the aggregator checks an item an edge put in the hub's
// FEEDS against (services/aggregator/edgecheck.go): which unit each source
// is bound to, and the parents every unit has had.
type Bindings struct {
	// Sources maps a registered source, enabled or not, to its unit: an item
	// an edge accepted before the source was disabled is still its own.
	Sources map[string]string
	// Parents maps a unit code to the parent codes of its versions.
	Parents map[string][]string
}

// sqlBindingSources are the registered sources and their units.
const sqlBindingSources = `SELECT id, unit_code FROM source`

// sqlBindingParents are the distinct parents of every unit code, any version.
const sqlBindingParents = `SELECT DISTINCT code, parent_code FROM admin_unit WHERE parent_code IS NOT NULL`

// LoadBindings reads the sources and the unit tree in one transaction
// (one snapshot), bounded by the store's statement timeout.
func (s *Store) LoadBindings(ctx context.Context) (Bindings, error) {
	b := Bindings{Sources: map[string]string{}, Parents: map[string][]string{}}
	err := s.BeginFunc(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sqlBindingSources)
		if err != nil {
			return fmt.Errorf("reading sources: %w", err)
		}
		var id, unit string
		if _, err := pgx.ForEachRow(rows, []any{&id, &unit}, func() error { b.Sources[id] = unit; return nil }); err != nil {
			return fmt.Errorf("reading sources: %w", err)
		}
		rows, err = tx.Query(ctx, sqlBindingParents)
		if err != nil {
			return fmt.Errorf("reading the unit tree: %w", err)
		}
		var code, parent string
		if _, err := pgx.ForEachRow(rows, []any{&code, &parent}, func() error {
			b.Parents[code] = append(b.Parents[code], parent)
			return nil
		}); err != nil {
			return fmt.Errorf("reading the unit tree: %w", err)
		}
		return nil
	})
	return b, err
}

// Up is code and every code above it in some version of the unit tree.
func (b Bindings) Up(code string) map[string]bool {
	out := map[string]bool{code: true}
	todo := []string{code}
	for len(todo) > 0 && len(out) <= maxDepthWalk {
		c := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		for _, p := range b.Parents[c] {
			if !out[p] {
				out[p] = true
				todo = append(todo, p)
			}
		}
	}
	return out
}

// maxDepthWalk bounds Up's set: a unit has a handful of ancestors in every
// version; a cycle in bad data ends the walk at once anyway.
const maxDepthWalk = 256
