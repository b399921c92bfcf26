package schema_test

import (
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/iochub/iochub/internal/schema"
)

// TestMigrationsInOnePlace: the migrations live in internal/schema/migrations
// only. A migration left in the directory they came from (a branch written
// before the move) would never run, so this test names it.
func TestMigrationsInOnePlace(t *testing.T) {
	stray, err := filepath.Glob(filepath.Join("..", "..", "services", "aggregator", "postgis", "migrations", "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range stray {
		t.Errorf("%s: move it to internal/schema/migrations, where migrations are embedded from", f)
	}
	embedded, err := fs.Glob(schema.Migrations, "*.sql")
	if err != nil || len(embedded) == 0 {
		t.Fatalf("embedded migrations: %v, %v; want some", embedded, err)
	}
}
