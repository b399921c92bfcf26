package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/seed"
)

// openUnitsDB parses the common flags of the units commands, migrates and
// opens the database.
func openUnitsDB(ctx context.Context, fs *flag.FlagSet, cfg *config, args []string) (*pgxpool.Pool, error) {
	if err := parseAndMigrate(ctx, fs, cfg, args); err != nil {
		return nil, err
	}
	return schema.Open(ctx, cfg.DatabaseURL)
}

// parseAndMigrate parses args and the environment into cfg, requires the
// database URL and applies the migrations.
func parseAndMigrate(ctx context.Context, fs *flag.FlagSet, cfg *config, args []string) error {
	if err := parseWithDatabase(fs, cfg, args); err != nil {
		return err
	}
	return schema.Migrate(ctx, cfg.DatabaseURL)
}

// parseWithDatabase parses args and the environment into cfg and requires
// the database URL.
func parseWithDatabase(fs *flag.FlagSet, cfg *config, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := applyEnv(fs); err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		return errors.New("--database-url (or IOCHUB_DATABASE_URL) is required")
	}
	return nil
}

// runUnitsGroup defines or changes a custom group of units.
func runUnitsGroup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := defaults()
	fs := flag.NewFlagSet("iochub units group", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.registerDatabaseURL(fs, "PostGIS database URL")
	code := fs.String("code", "", "code of the group (required), e.g. inner-city")
	name := fs.String("name", "", "Vietnamese name of the group")
	nameEn := fs.String("name-en", "", "English name of the group")
	validFrom := fs.String("valid-from", "", "date the group takes effect (RFC 3339 or YYYY-MM-DD); empty means now")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: iochub units group --code CODE [flags] MEMBER...\n\nDefines a custom group of units (or changes it from --valid-from on).\n\n")
		fs.PrintDefaults()
	}
	pool, err := openUnitsDB(ctx, fs, &cfg, args)
	if err != nil {
		return err
	}
	defer pool.Close()
	g := schema.Group{Code: *code, NameVI: *name, NameEN: *nameEn, Members: fs.Args()}
	if *validFrom != "" {
		if g.ValidFrom, err = parseDate(*validFrom); err != nil {
			return fmt.Errorf("--valid-from: %w", err)
		}
	}
	if err := schema.DefineGroup(ctx, pool, g); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "group %s: %d members\n", g.Code, len(g.Members))
	return nil
}

// runUnitsPre2025 loads VN and the embedded 63 provinces valid until
// 2025-06-30 into a database seeded before they were part of the seed.
func runUnitsPre2025(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := defaults()
	fs := flag.NewFlagSet("iochub units import-pre2025", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.registerDatabaseURL(fs, "PostGIS database URL")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: iochub units import-pre2025 [flags]\n\nLoads the national unit VN and the 63 provinces valid until 2025-06-30 (embedded).\n\n")
		fs.PrintDefaults()
	}
	pool, err := openUnitsDB(ctx, fs, &cfg, args)
	if err != nil {
		return err
	}
	defer pool.Close()
	n, err := schema.ImportPre2025Provinces(ctx, pool, seed.ProvincesPre2025(), seed.ProvinceMerges2025())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "63 provinces before 2025-07-01: %d new\n", n)
	return nil
}
