package schema_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/testenv"
)

// TestMigrateAlertAreaForm: migration 00008 converts the areas that earlier
// versions stored (nested collections from ST_MakeValid, repeated and
// overlapping polygons, bare points) to the one form the CHECK keeps, and
// undoes cleanly.
func TestMigrateAlertAreaForm(t *testing.T) {
	db := testenv.PostGIS(t)
	ctx := context.Background()
	sqlDB := stdlib.OpenDBFromPool(db.Pool)
	defer sqlDB.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, schema.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 7); err != nil {
		t.Fatalf("migrating down to 7: %v", err)
	}
	rows := map[string]struct{ before, want string }{
		"nested": {"GEOMETRYCOLLECTION(GEOMETRYCOLLECTION(MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((1 1,2 1,2 2,1 1)))),POLYGON((5 5,6 5,6 6,5 5)))",
			"MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((1 1,2 1,2 2,1 1)),((5 5,6 5,6 6,5 5)))"},
		"repeated":    {"GEOMETRYCOLLECTION(POLYGON((0 0,1 0,1 1,0 0)),POLYGON((0 0,1 0,1 1,0 0)),POLYGON((0 0,1 0,1 1,0 0)))", "MULTIPOLYGON(((0 0,1 0,1 1,0 0)))"},
		"overlapping": {"GEOMETRYCOLLECTION(POLYGON((0 0,2 0,2 2,0 2,0 0)),POLYGON((1 1,3 1,3 3,1 3,1 1)))", "MULTIPOLYGON(((0 0,0 2,1 2,1 3,3 3,3 1,2 1,2 0,0 0)))"},
		"point":       {"POINT(1 2)", "MULTIPOINT((1 2))"},
		"mixed":       {"GEOMETRYCOLLECTION(POINT(9 9),POLYGON((0 0,1 0,1 1,0 0)),POINT(0.9 0.1))", "GEOMETRYCOLLECTION(MULTIPOLYGON(((0 0,1 0,1 1,0 0))),MULTIPOINT((9 9)))"},
	}
	for id, r := range rows {
		if _, err := db.Pool.Exec(ctx, `INSERT INTO alert (id, source_id, event_id, identifier, sender, sent, status, msg_type,
			area, state, province, unit_code, received_at)
			VALUES ($1, 'src', $1, $1, 'kttv', now(), 'Actual', 'Alert', ST_GeomFromText($2, 4326), 'active', '01', '01', now())`,
			id, r.before); err != nil {
			t.Fatalf("inserting %s: %v", id, err)
		}
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("migrating up: %v", err)
	}
	for id, r := range rows {
		var equal bool
		var got string
		if err := db.Pool.QueryRow(ctx, `SELECT ST_AsText(area), ST_Equals(area, ST_GeomFromText($2, 4326)) AND GeometryType(area) = GeometryType(ST_GeomFromText($2))
			FROM alert WHERE id = $1`, id, r.want).Scan(&got, &equal); err != nil {
			t.Fatalf("reading %s: %v", id, err)
		}
		if !equal {
			t.Errorf("%s: area %s after the migration; want %s", id, got, r.want)
		}
	}
	_, err = db.Pool.Exec(ctx, `INSERT INTO alert (id, source_id, event_id, identifier, sender, sent, status, msg_type,
		area, state, province, unit_code, received_at)
		VALUES ('x', 'src', 'x', 'x', 'kttv', now(), 'Actual', 'Alert', ST_GeomFromText('GEOMETRYCOLLECTION(GEOMETRYCOLLECTION(POINT(1 1)))', 4326), 'active', '01', '01', now())`)
	if err == nil {
		t.Error("inserting a nested GeometryCollection after the migration: got nil error; want the CHECK to refuse it")
	}
}
