package main

import (
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The admin commands of cross-domain sourcing (edge-add|edge-remove|
// edge-list at a hub, national-add|national-remove|national-list at a
// national hub) share their flags, connection and listing here.

// sourcingAdmin parses args for the admin command cmd, whose flags (beside
// --nats-url, added here) define registers; key is the flag every command
// but listCmd needs, and usage the usage line. It connects to the hub's
// JetStream; the caller closes the connection.
func sourcingAdmin(cmd, listCmd string, args []string, stderr io.Writer, define func(fs *flag.FlagSet) (key *string), usage string) (*nats.Conn, jetstream.JetStream, error) {
	cfg := defaults()
	cfg.NATSURL = nats.DefaultURL
	fs := flag.NewFlagSet("iochub "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.registerNATSURL(fs)
	key := define(fs)
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	if err := applyEnv(fs); err != nil {
		return nil, nil, err
	}
	if (cmd != listCmd && *key == "") || fs.NArg() != 0 {
		fmt.Fprintf(stderr, "usage: iochub %s %s\n", cmd, usage)
		return nil, nil, errUsage
	}
	return cliJetStream(cfg.NATSURL, "iochub-"+cmd)
}

// sinceActive says how long ago a source was last active (negative: never).
func sinceActive(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return d.Round(time.Millisecond).String() + " ago"
}

var envVarRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// leafPasswordVar is the nats-server variable holding the password of a
// leaf user: given, or else NATS_<KIND>_<CODE>_PASSWORD.
func leafPasswordVar(given, kind, code string) (string, error) {
	name := given
	if name == "" {
		name = "NATS_" + kind + "_" + strings.ToUpper(strings.ReplaceAll(code, "-", "_")) + "_PASSWORD"
	}
	if !envVarRE.MatchString(name) {
		return "", fmt.Errorf("--password-var %q: want a variable name", name)
	}
	return name, nil
}
