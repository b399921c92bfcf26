// Package postgis is the only code that writes iochub's PostGIS database: the
// embedded migrations, the import of administrative units, feed sources, and the
// aggregator's batched writes of observations, state and alerts.
package postgis

import (
	"context"
	"database/sql"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	pgxgeom "github.com/twpayne/pgx-geom"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate brings the database at url up to the newest embedded migration.
// The first migration creates the postgis extension.
func Migrate(ctx context.Context, url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("parsing database URL: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	return migrate(ctx, db)
}

func migrate(ctx context.Context, db *sql.DB) error {
	// Out of order: a database migrated by a build that lacked a lower-numbered
	// migration (developed in parallel) still takes it later.
	p, err := goose.NewProvider(goose.DialectPostgres, db, mustSub(migrations, "migrations"), goose.WithAllowOutofOrder(true))
	if err != nil {
		return fmt.Errorf("loading migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("running migrations: %w", err)
	}
	return nil
}

// Open returns a pool whose every connection has the PostGIS geometry codec
// registered, so go-geom values go in and out directly. The database must have
// been migrated (the codec needs the postgis extension to exist).
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parsing database URL: %w", err)
	}
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		if err := pgxgeom.Register(ctx, conn); err != nil {
			return fmt.Errorf("registering PostGIS codec: %w", err)
		}
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to database: %w", err)
	}
	return pool, nil
}
