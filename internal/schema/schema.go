// Package schema owns iochub's PostGIS schema: the goose migrations (the
// SQL files in migrations/, the one place they live), Migrate to apply
// them, Open for a pool with the PostGIS geometry codec, and the import of
// administrative units into admin_unit (reference data an administrator
// loads, not a feed). The aggregator's writes of feeds are in
// services/aggregator/postgis; readers such as the gateway and the test
// environment import this package, never that one.
package schema

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	pgxgeom "github.com/twpayne/pgx-geom"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations is the directory of goose migrations, for goose.NewProvider.
var Migrations fs.FS = mustSub(migrations, "migrations")

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

// MigrateDownTo takes the database at url down to migration version
// (running each newer migration's Down, newest first), for rolling a
// release back to one that knows only migrations up to version (see
// docs/operations.md, "Upgrades").
func MigrateDownTo(ctx context.Context, url string, version int64) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("parsing database URL: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, Migrations)
	if err != nil {
		return fmt.Errorf("loading migrations: %w", err)
	}
	if _, err := p.DownTo(ctx, version); err != nil {
		return fmt.Errorf("migrating down to %d: %w", version, err)
	}
	return nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	// Out of order: a database migrated by a build that lacked a lower-numbered
	// migration (developed in parallel) still takes it later.
	p, err := goose.NewProvider(goose.DialectPostgres, db, Migrations, goose.WithAllowOutofOrder(true))
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
//
// Its connections run without JIT compilation (jit=off) unless url sets jit:
// the writers' statements are short and run once per batch, and a statement
// whose estimated cost passes jit_above_cost (100,000 by default; arrays of a
// batch and the unit tree's walks do) spent ~100 ms compiling before it ran,
// many times its own execution.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parsing database URL: %w", err)
	}
	if _, set := cfg.ConnConfig.RuntimeParams["jit"]; !set {
		cfg.ConnConfig.RuntimeParams["jit"] = "off"
	}
	return open(ctx, cfg, "database")
}

// open opens a pool on cfg with the PostGIS codec registered on every
// connection, and checks that it connects; what names the pool in errors.
func open(ctx context.Context, cfg *pgxpool.Config, what string) (*pgxpool.Pool, error) {
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		if err := pgxgeom.Register(ctx, conn); err != nil {
			return fmt.Errorf("registering PostGIS codec: %w", err)
		}
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", what, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to %s: %w", what, err)
	}
	return pool, nil
}

func mustSub(f fs.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the embedded directory is fixed at build time
	}
	return s
}

// ReadOptions tune OpenRead's pool.
type ReadOptions struct {
	// MaxConns caps the pool's connections; 0 means pgxpool's default (the
	// URL's pool_max_conns, else max(4, CPUs)).
	MaxConns int32
	// StatementTimeout is set as statement_timeout on every connection; 0 means none.
	StatementTimeout time.Duration
}

// OpenRead opens a read-only pool on url (the gateway's, apart from the
// aggregator's; url may name a replica): every connection has
// default_transaction_read_only=on, so a write fails, and o's
// statement_timeout, so a long query is cancelled; the PostGIS codec is
// registered on each as by Open.
func OpenRead(ctx context.Context, url string, o ReadOptions) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parsing database read URL: %w", err)
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	rp := cfg.ConnConfig.RuntimeParams
	rp["default_transaction_read_only"] = "on"
	if o.StatementTimeout > 0 {
		rp["statement_timeout"] = strconv.FormatInt(o.StatementTimeout.Milliseconds(), 10)
	}
	return open(ctx, cfg, "database read pool")
}
