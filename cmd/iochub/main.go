// Command iochub is the iochub data hub: one binary, several roles.
//
//	iochub dev                      every role in one process with an embedded NATS server,
//	                                a private PostGIS (or --database-url), the simulator and the wall screen
//	iochub serve --target=ROLE      one role (ingest, aggregator, gateway) or all of them
//	iochub migrate                  run the embedded database migrations
//	iochub units import FILE...     load administrative units from GeoJSON
//	iochub units import-pre2025     load VN and the 63 provinces valid until 2025-06-30
//	iochub units group MEMBER...    define or change a custom group of units
//	iochub sources add              register a feed source bound to a unit and print its token
//	iochub identities create        create a viewer, operator or admin scoped to provinces and print its token
//	iochub deadletters list|show|redrive|discard   the feed items accepted but not stored
//	iochub edge --unit CODE         a lower-level IOC's edge node (docs/edge.md); edge-export, edge-add, edge-remove, edge-list on the hub
//	iochub national-add --province CODE   at a national hub (serve --level national), source a province hub's roll-ups and alerts
//
// Flags take precedence over IOCHUB_* environment variables, which take precedence over defaults.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "iochub:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

const usage = `usage: iochub <command> [flags]

commands:
  dev                    run every role with an embedded NATS server, a local PostGIS,
                         the simulator and the wall screen (the demo)
  serve --target=ROLE    run ingest, aggregator, gateway or all
  migrate                run the database migrations
  units import FILE...   import administrative units from GeoJSON FeatureCollections
  units import-pre2025   load VN and the 63 provinces valid until 2025-06-30 (embedded)
  units group MEMBER...  define or change a custom group of units
  sources add            register a feed source bound to a unit; prints its bearer token
  sources disable        revoke a feed source's token
  identities create      create a viewer, operator or admin scoped to provinces; prints its token
  identities list        list identities
  identities revoke      revoke an identity's token and sessions
  deadletters CMD        list, show, redrive or discard the feed items accepted but not stored
  nats-config            print the nats-server users of a hub: hub, and a read-only reader
  edge --unit CODE       run a lower-level IOC's edge node: the ingest on its own NATS leaf node
  edge-export --unit CODE  write the catalogue of units and sources an edge node needs
  edge-add|edge-remove --unit CODE   make the hub's FEEDS source an edge (through its units' filters, read from --database-url), or stop it
  edge-list              list the edges the hub sources, with their lag
  edge-nats-user --unit CODE   print the hub's nats-server user for an edge's leaf connection
  national-add|national-remove --province CODE   at a national hub, source a province hub's roll-ups and alerts, or stop
  national-list          list the province hubs the national hub sources, with their lag
  national-nats-user --province CODE   print the national hub's nats-server user for a province hub's leaf connection

Run 'iochub <command> -h' for the flags of a command.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "dev":
		return runDev(ctx, args[1:], stdout, stderr)
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "migrate":
		return runMigrate(ctx, args[1:], stdout, stderr)
	case "units":
		switch {
		case len(args) >= 2 && args[1] == "import":
			return runUnitsImport(ctx, args[2:], stdout, stderr)
		case len(args) >= 2 && args[1] == "import-pre2025":
			return runUnitsPre2025(ctx, args[2:], stdout, stderr)
		case len(args) >= 2 && args[1] == "group":
			return runUnitsGroup(ctx, args[2:], stdout, stderr)
		}
		fmt.Fprint(stderr, "usage: iochub units import|import-pre2025|group [flags] ...\n")
		return errUsage
	case "sources":
		switch {
		case len(args) >= 2 && args[1] == "add":
			return runSourcesAdd(ctx, args[2:], stdout, stderr)
		case len(args) >= 2 && args[1] == "disable":
			return runSourcesDisable(ctx, args[2:], stdout, stderr)
		}
		fmt.Fprint(stderr, "usage: iochub sources add --id ID --unit CODE [--name NAME]\n       iochub sources disable --id ID\n")
		return errUsage
	case "identities":
		return runIdentities(ctx, args[1:], stdout, stderr)
	case "nats-config":
		return runNATSConfig(args[1:], stdout, stderr)
	case "deadletters":
		return runDeadletters(ctx, args[1:], stdout, stderr)
	case "edge":
		return runEdge(ctx, args[1:], stdout, stderr)
	case "edge-export":
		return runEdgeExport(ctx, args[1:], stdout, stderr)
	case "edge-add", "edge-remove", "edge-list":
		return runEdgeAdmin(ctx, args[0], args[1:], stdout, stderr)
	case "edge-nats-user":
		return runEdgeNATSUser(args[1:], stdout, stderr)
	case "national-add", "national-remove", "national-list":
		return runNationalAdmin(ctx, args[0], args[1:], stdout, stderr)
	case "national-nats-user":
		return runNationalNATSUser(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "iochub: unknown command %q\n\n%s", args[0], usage)
	return errUsage
}
