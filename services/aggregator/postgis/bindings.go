package postgis

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/units"
)

// Bindings is what the aggregator checks an item an edge put in the hub's
// FEEDS against (services/aggregator/edgecheck.go): which unit each source
// is bound to, and the parents every unit has had.
type Bindings struct {
	// Sources maps a registered source, enabled or not, to its unit: an item
	// an edge accepted before the source was disabled is still its own.
	Sources map[string]string
	// Parents is the unit tree of every version.
	Parents units.Parents
}

// sqlBindingSources are the registered sources and their units.
const sqlBindingSources = `SELECT id, unit_code FROM source`

// LoadBindings reads the sources and the unit tree in one transaction
// (one snapshot), bounded by the store's statement timeout.
func (s *Store) LoadBindings(ctx context.Context) (Bindings, error) {
	b := Bindings{Sources: map[string]string{}}
	err := s.BeginFunc(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sqlBindingSources)
		if err != nil {
			return fmt.Errorf("reading sources: %w", err)
		}
		var id, unit string
		if _, err := pgx.ForEachRow(rows, []any{&id, &unit}, func() error { b.Sources[id] = unit; return nil }); err != nil {
			return fmt.Errorf("reading sources: %w", err)
		}
		tree, err := schema.LoadUnitTree(ctx, tx)
		if err != nil {
			return err
		}
		b.Parents = units.ParentsOf(tree)
		return nil
	})
	return b, err
}
