package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
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
// hub's FEEDS sources (natsx.AddEdgeSource), each through the subject
// filters of its units (edge.SubjectFilters), which edge-add reads from the
// hub's PostGIS.
func runEdgeAdmin(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	var unit, dbURL *string
	var edgeTimeout *time.Duration
	nc, js, err := sourcingAdmin(cmd, "edge-list", args, stderr, func(fs *flag.FlagSet) *string {
		unit = fs.String("unit", "", "code of the edge's unit")
		dbURL = fs.String("database-url", "", "PostGIS database URL of the hub, where edge-add reads the edge's units (IOCHUB_DATABASE_URL)")
		edgeTimeout = fs.Duration("edge-timeout", 3*time.Second, "how long edge-list waits for each edge's record of lost items; an edge that has not answered by then shows LOST ?")
		return unit
	}, "--unit CODE [--nats-url URL] [--database-url URL (edge-add)] [--edge-timeout D (edge-list)]")
	if err != nil {
		return err
	}
	defer nc.Close()
	// Long enough to wait out the lock of the sources left by a command
	// that died holding it (natsx.SourcesLockTTL).
	ctx, cancel := context.WithTimeout(ctx, cliTimeout+natsx.SourcesLockTTL)
	defer cancel()
	if cmd == "edge-list" {
		if *edgeTimeout <= 0 {
			return fmt.Errorf("--edge-timeout %s: must be positive", *edgeTimeout)
		}
		return printEdges(ctx, nc, js, *edgeTimeout, stdout)
	}
	domain, err := natsx.EdgeDomain(*unit)
	if err != nil {
		return err
	}
	switch cmd {
	case "edge-add":
		filters, err := edgeFilters(ctx, *dbURL, *unit)
		if err != nil {
			return err
		}
		added, err := natsx.AddEdgeSource(ctx, js, domain, filters)
		if err != nil {
			return err
		}
		switch added {
		case natsx.EdgeNew:
			fmt.Fprintf(stdout, "the hub's FEEDS sources edge %s (domain %s) from its first item\n", *unit, domain)
		case natsx.EdgeRefiltered:
			fmt.Fprintf(stdout, "the hub's FEEDS sources edge %s (domain %s) through new filters, from the item after the last one it copied\n", *unit, domain)
			fmt.Fprintf(stdout, "give the edge its new catalogue (edge-export) only now: an item of a new unit it stored before was left out by the old filters\n")
		default:
			fmt.Fprintf(stdout, "the hub's FEEDS sources edge %s (domain %s) already, through these filters\n", *unit, domain)
		}
		fmt.Fprintf(stdout, "items of its units only: %s\n", strings.Join(filters, " "))
		fmt.Fprintf(stdout, "the hub takes messages of up to %d bytes: start the edge with --max-payload %d or less\n", nc.MaxPayload(), nc.MaxPayload())
	case "edge-remove":
		if err := natsx.RemoveEdgeSource(ctx, js, domain); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "the hub's FEEDS no longer sources edge %s; what it copied stays\n", *unit)
	}
	return nil
}

// edgeFilters are the subject filters of the edge of unit (edge.Filters),
// read from the hub's PostGIS at dbURL.
func edgeFilters(ctx context.Context, dbURL, unit string) ([]string, error) {
	if dbURL == "" {
		return nil, errors.New("--database-url (or IOCHUB_DATABASE_URL) is required: edge-add reads the edge's units there")
	}
	pool, err := schema.Open(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	return edge.Filters(ctx, pool, unit)
}

// printEdges lists the edges the hub sources, each with its own record of
// the items it lost (edgeLost), read through nc's server within timeout.
func printEdges(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, timeout time.Duration, stdout io.Writer) error {
	srcs, err := natsx.EdgeSources(ctx, js)
	if err != nil {
		return err
	}
	lost := edge.ReadUnsentOf(ctx, nc.Opts, "iochub-edge-list", srcs, timeout, 0)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tCOPIED SEQ\tLAG\tLAST ACTIVE\tLOST\tFILTERS\tERROR")
	for i, s := range srcs {
		filters := strings.Join(s.Filters, " ")
		if filters == "" {
			filters = "none (run edge-add again)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\n", s.Domain, s.Seq, s.Lag, sinceActive(s.Active), edgeLost(ctx, lost[i]), filters, s.Error)
	}
	return tw.Flush()
}

// edgeLost is what edge-list shows of the record of lost items of an edge
// (edge.UnsentRecord), read while ctx lasted: the items it
// counted lost (across its restarts) and when it last counted some, or "?"
// and why when it did not answer.
func edgeLost(ctx context.Context, u edge.EdgeUnsent) string {
	rec := u.Record
	switch {
	case u.Err != nil && ctx.Err() != nil:
		return "? (edge-list ran out of time)"
	case u.Err != nil:
		return "? (" + u.Reason() + ")"
	case rec.Last == nil:
		return strconv.FormatUint(rec.Total, 10)
	}
	return fmt.Sprintf("%d (last %s, seq %d-%d)", rec.Total, rec.Last.DetectedAt.UTC().Format(time.RFC3339), rec.Last.FromSeq, rec.Last.ToSeq)
}

// runEdgeNATSUser is "iochub edge-nats-user": the entry of the hub's
// nats-server users for the leaf connection of one edge (natsx.EdgeLeafUser),
// its password named as a variable of nats-server's environment.
func runEdgeNATSUser(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("iochub edge-nats-user", flag.ContinueOnError)
	fs.SetOutput(stderr)
	unit := fs.String("unit", "", "code of the edge's unit (required)")
	pwVar := fs.String("password-var", "", "environment variable of nats-server holding the edge's password; empty means NATS_EDGE_<UNIT>_PASSWORD")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: iochub edge-nats-user --unit CODE [--password-var NAME]\n\n"+
			"Prints the user of the edge of unit CODE for the users list of the hub's nats-server authorization block\n"+
			"(beside those of iochub nats-config): it may connect only as a leaf node, and only the hub's sourcing of\n"+
			"the edge's FEEDS crosses its connection. The edge then runs with\n"+
			"--hub nats-leaf://edge-CODE:PASSWORD@HOST:7422 --hub-ca CA.pem (docs/edge.md, \"TLS on the link\").\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *unit == "" || fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	name, err := leafPasswordVar(*pwVar, "EDGE", *unit)
	if err != nil {
		return err
	}
	entry, err := natsx.EdgeUserConfig(*unit, "$"+name)
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(stdout, entry)
	return err
}
