package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := defaults()
	fs := flag.NewFlagSet("iochub migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.registerDatabaseURL(fs, "PostGIS database URL")
	downTo := fs.Int64("down-to", -1, "instead, undo every migration newer than this version, newest first: before rolling back to a release that knows only the migrations up to it (docs/operations.md, Upgrades)")
	if err := parseWithDatabase(fs, &cfg, args); err != nil {
		return err
	}
	if *downTo >= 0 {
		if err := schema.MigrateDownTo(ctx, cfg.DatabaseURL, *downTo); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "migrated down to %d\n", *downTo)
		return nil
	}
	if err := schema.Migrate(ctx, cfg.DatabaseURL); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}

func runUnitsImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := defaults()
	fs := flag.NewFlagSet("iochub units import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.registerDatabaseURL(fs, "PostGIS database URL")
	level := fs.String("level", "", "level of every unit in the files (province, commune, ...); empty derives it from the code length")
	parent := fs.String("parent", "", "parent code of every unit in the files; empty finds the containing province for communes")
	validFrom := fs.String("valid-from", "", "date the boundaries take effect (RFC 3339 or YYYY-MM-DD); empty means 2025-07-01")
	viaHub := fs.String("via-hub", "", "URL of a running hub: upload the files to its POST /v1/admin/units/imports and follow the progress instead of writing the database")
	token := fs.String("token", "", "with --via-hub, the key of an admin of every province")
	replace := fs.Bool("replace", false, "the FILE (one only) is the whole administrative map from --valid-from on: retire the current provinces, districts and communes of the levels it holds that it does not hold (a merger, a reform)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: iochub units import [flags] FILE...\n\nImports GeoJSON FeatureCollections whose features carry properties code, name, nameEn.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := applyEnv(fs); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	if *replace && fs.NArg() != 1 {
		return errors.New("--replace takes one FILE, the whole map: each file would retire the units of the others")
	}
	if *viaHub != "" {
		if *level != "" || *parent != "" {
			return errors.New("--level and --parent are not available with --via-hub; the hub derives both")
		}
		if *validFrom != "" {
			if _, err := parseDate(*validFrom); err != nil {
				return fmt.Errorf("--valid-from: %w", err)
			}
		}
		return importViaHub(ctx, *viaHub, *token, *validFrom, *replace, fs.Args(), stdout, stderr)
	}
	if cfg.DatabaseURL == "" {
		return errors.New("--database-url (or IOCHUB_DATABASE_URL) is required")
	}
	opts := schema.ImportOptions{Level: *level, Parent: *parent, Replace: *replace}
	if *validFrom != "" {
		t, err := parseDate(*validFrom)
		if err != nil {
			return fmt.Errorf("--valid-from: %w", err)
		}
		opts.ValidFrom = t
	}
	if err := schema.Migrate(ctx, cfg.DatabaseURL); err != nil {
		return err
	}
	pool, err := schema.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	for _, name := range fs.Args() {
		f, err := os.Open(name) //nolint:gosec // G304: importing the file the operator names is the command's purpose
		if err != nil {
			return err
		}
		opts.Progress = progress(stderr, name)
		opts.Waiting = func() { fmt.Fprintf(stderr, "%s: waiting for another map import to finish\n", name) }
		res, err := schema.ImportUnits(ctx, pool, f, opts)
		_ = f.Close() // only read
		if err != nil {
			return fmt.Errorf("importing %s: %w", name, err)
		}
		fmt.Fprintf(stderr, "\n")
		fmt.Fprintf(stdout, "%s: %d read, %d new, %d unchanged, %d closed, %d retired\n", name, res.Read, res.Inserted, res.Unchanged, res.Closed, res.Retired)
		for _, r := range res.Repaired {
			fmt.Fprintf(stdout, "  repaired invalid geometry of %s\n", r)
		}
	}
	return nil
}

func parseDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	loc := time.FixedZone("ICT", 7*3600)
	t, err := time.ParseInLocation("2006-01-02", s, loc)
	if err != nil {
		return t, fmt.Errorf("%q is neither RFC 3339 nor YYYY-MM-DD", s)
	}
	return t, nil
}

func runSourcesAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := defaults()
	fs := flag.NewFlagSet("iochub sources add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.registerDatabaseURL(fs, "PostGIS database URL")
	id := fs.String("id", "", "source id, e.g. hn-hoankiem-ioc (required)")
	unit := fs.String("unit", "", "code of the unit the source publishes for, e.g. 00070 (required)")
	name := fs.String("name", "", "human name of the source")
	interval := fs.Duration("interval", 0, "how often the source is expected to send (e.g. 5m); silent for 3× this, it is stale. 0 learns it from the gaps between arrivals")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := applyEnv(fs); err != nil {
		return err
	}
	if *id == "" || *unit == "" {
		return errors.New("--id and --unit are required")
	}
	if cfg.DatabaseURL == "" {
		return errors.New("--database-url (or IOCHUB_DATABASE_URL) is required")
	}
	pool, err := schema.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	token, err := postgis.AddSource(ctx, pool, postgis.Source{ID: *id, Name: *name, UnitCode: *unit, Interval: *interval})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "source %s registered for unit %s\ntoken: %s\n(the token is shown once; only its hash is stored)\n", *id, *unit, token)
	return nil
}

func runSourcesDisable(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := defaults()
	fs := flag.NewFlagSet("iochub sources disable", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.registerDatabaseURL(fs, "PostGIS database URL")
	id := fs.String("id", "", "source id to disable (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := applyEnv(fs); err != nil {
		return err
	}
	if *id == "" {
		return errors.New("--id is required")
	}
	if cfg.DatabaseURL == "" {
		return errors.New("--database-url (or IOCHUB_DATABASE_URL) is required")
	}
	pool, err := schema.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := postgis.DisableSource(ctx, pool, *id); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "source %s disabled; the ingest refuses its token from its next refresh (within 30 s)\n", *id)
	return nil
}
