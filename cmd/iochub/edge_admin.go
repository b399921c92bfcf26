package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/edge"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/schema"
)

// runEdgeExport is "iochub edge-export": the catalogue of units and sources
// an edge node of a unit needs (its unit and below, the ancestors for the
// province; sources by token hash only), from the hub's PostGIS.
func runEdgeExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := defaults()
	fs := flag.NewFlagSet("iochub edge-export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.registerDatabaseURL(fs, "PostGIS database URL of the hub")
	unit := fs.String("unit", "", "code of the edge's unit (required)")
	out := fs.String("out", "", "file to write; empty means standard output")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := applyEnv(fs); err != nil {
		return err
	}
	if *unit == "" || fs.NArg() != 0 {
		fmt.Fprint(stderr, "usage: iochub edge-export --unit CODE [--out FILE] [--database-url URL]\n")
		return errUsage
	}
	if cfg.DatabaseURL == "" {
		return errors.New("--database-url (or IOCHUB_DATABASE_URL) is required")
	}
	pool, err := schema.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	cat, err := edge.Export(ctx, pool, *unit, time.Now())
	if err != nil {
		return err
	}
	w := stdout
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("creating %s: %w", *out, err)
		}
		defer f.Close()
		w = f
	}
	if err := cat.Write(w); err != nil {
		return err
	}
	if *out != "" {
		fmt.Fprintf(stderr, "catalogue of unit %s: %d unit versions, %d sources, written to %s\n", *unit, len(cat.Units), len(cat.Sources), *out)
	}
	return nil
}

// runEdgeAdmin is "iochub edge-add|edge-remove|edge-list": which edges the
// hub's FEEDS sources (natsx.AddEdgeSource).
func runEdgeAdmin(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	cfg := defaults()
	cfg.NATSURL = nats.DefaultURL
	fs := flag.NewFlagSet("iochub "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.registerNATSURL(fs)
	unit := fs.String("unit", "", "code of the edge's unit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := applyEnv(fs); err != nil {
		return err
	}
	if (cmd != "edge-list" && *unit == "") || fs.NArg() != 0 {
		fmt.Fprintf(stderr, "usage: iochub %s --unit CODE [--nats-url URL]\n", cmd)
		return errUsage
	}
	nc, err := nats.Connect(cfg.NATSURL, nats.Name("iochub-"+cmd))
	if err != nil {
		return fmt.Errorf("connecting to NATS at %s: %w", redactURL(cfg.NATSURL), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("opening JetStream: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if cmd == "edge-list" {
		return printEdges(ctx, js, stdout)
	}
	domain, err := natsx.EdgeDomain(*unit)
	if err != nil {
		return err
	}
	switch cmd {
	case "edge-add":
		if err := natsx.AddEdgeSource(ctx, js, domain); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "the hub's FEEDS sources edge %s (domain %s)\n", *unit, domain)
	case "edge-remove":
		if err := natsx.RemoveEdgeSource(ctx, js, domain); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "the hub's FEEDS no longer sources edge %s; what it copied stays\n", *unit)
	}
	return nil
}

func printEdges(ctx context.Context, js jetstream.JetStream, stdout io.Writer) error {
	srcs, err := natsx.EdgeSources(ctx, js)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tCOPIED SEQ\tLAG\tLAST ACTIVE\tERROR")
	for _, s := range srcs {
		active := "never"
		if s.Active >= 0 {
			active = s.Active.Round(time.Millisecond).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", s.Domain, s.Seq, s.Lag, active, s.Error)
	}
	return tw.Flush()
}
