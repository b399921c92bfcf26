// Package iocctl is the command iocctl: a developer's client of an iochub
// hub. It follows the event streams (tail, over the gateway's /v1/streams or
// on NATS directly), re-publishes a window of a stream (replay), sends files
// to the ingest (publish) and manages API keys (keys). cmd/iocctl is its
// thin main; tests run Run in-process.
package iocctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// ErrUsage is returned for a command line that cannot be run; the usage was printed.
var ErrUsage = errors.New("usage")

// Env is what a run of iocctl talks to; zero fields take the process's own.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads the environment (IOCCTL_KEY…); nil is os.Getenv.
	Getenv func(string) string
	// HTTP is the client for the hub's API; nil is a client without timeout
	// (streams last), each request bounded by its context.
	HTTP *http.Client
	// Home is the user's home, where NATS contexts live; empty is os.UserHomeDir.
	Home string
}

func (e Env) withDefaults() Env {
	if e.Stdin == nil {
		e.Stdin = os.Stdin
	}
	if e.Stdout == nil {
		e.Stdout = os.Stdout
	}
	if e.Stderr == nil {
		e.Stderr = os.Stderr
	}
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	if e.HTTP == nil {
		e.HTTP = &http.Client{}
	}
	if e.Home == "" {
		e.Home, _ = os.UserHomeDir()
	}
	return e
}

const usage = `iocctl is a developer's client of an iochub hub.

usage: iocctl COMMAND [flags] [arguments]

commands:
  tail SUBJECT      print the events of a subject as NDJSON or a table, live or from --since
                    (over the gateway's /v1/streams with --url and --key, or on NATS with --nats-url or --context)
  replay            re-publish a window of a stream on NATS, paced (--from, --to, --speed, --subject, --to-subject)
  publish KIND FILE send a JSON, NDJSON, GeoJSON or CAP XML file to POST /v1/feeds/KIND, in chunks
  keys              create, list or revoke API keys (identities) through the admin API

Run "iocctl COMMAND --help" for the flags of a command. Flags and arguments go in any order;
"--" ends the flags (iocctl publish air -- -readings.json).
Environment: IOCCTL_URL (--url), IOCCTL_KEY (--key), IOCCTL_TOKEN (--token), NATS_URL (--nats-url),
NATS_CONTEXT (--context).
`

// Run runs iocctl with args (without the program name).
func Run(ctx context.Context, args []string, env Env) error {
	env = env.withDefaults()
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return ErrUsage
	}
	switch args[0] {
	case "tail":
		return runTail(ctx, args[1:], env)
	case "replay":
		return runReplay(ctx, args[1:], env)
	case "publish":
		return runPublish(ctx, args[1:], env)
	case "keys":
		return runKeys(ctx, args[1:], env)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(env.Stdout, usage)
		return nil
	}
	fmt.Fprintf(env.Stderr, "iocctl: unknown command %q\n\n%s", args[0], usage)
	return ErrUsage
}

// newFlags makes the flag set of a command with its usage text.
func newFlags(env Env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("iocctl "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "usage: iocctl %s\n\nflags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args (flags and arguments in any order, as people type
// them) and returns the arguments. --help prints the usage and returns flag.ErrHelp.
// A "--" ends the flags: what follows is arguments even if it starts with "-"
// (a file named -x.json, a key id -k). Only the part before it is parsed
// again after each argument, since fs.Parse alone would drop the "--" and the
// next round would read what follows as flags.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var after []string
	if i := endOfFlags(fs, args); i >= 0 {
		args, after = args[:i], args[i+1:]
	}
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return append(rest, after...), nil
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// endOfFlags returns the index in args of the "--" ending the flags, or -1.
// It reads args as fs.Parse does, so that a "--" given as a flag's value
// (--key --) stays that value.
func endOfFlags(fs *flag.FlagSet, args []string) int {
	for i := 0; i < len(args); i++ {
		s := args[i]
		if s == "--" {
			return i
		}
		if len(s) < 2 || s[0] != '-' {
			continue // an argument
		}
		name := strings.TrimPrefix(s[1:], "-")
		if strings.Contains(name, "=") {
			continue // the value is in the same word
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // fs.Parse reports it
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		i++ // the next word is the flag's value
	}
	return -1
}

// hubFlags are the flags of the commands speaking to the hub's HTTP API.
type hubFlags struct {
	url string
	key string
}

func (h *hubFlags) register(fs *flag.FlagSet, env Env, keyHelp string) {
	def := env.Getenv("IOCCTL_URL")
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	fs.StringVar(&h.url, "url", def, "base URL of the hub's gateway (IOCCTL_URL)")
	if keyHelp != "" {
		secretVar(fs, &h.key, "key", env.Getenv("IOCCTL_KEY"), nil, keyHelp+" (IOCCTL_KEY)")
	}
}

// secretValue is a string flag that may hold a secret (a token, a key, a
// URL with a password): the usage prints every flag's default, and a
// default taken from the environment would put the secret in a terminal's
// scrollback or a CI log. Its String is show(value), "" without show.
type secretValue struct {
	p    *string
	show func(string) string
}

func (v secretValue) String() string {
	if v.p == nil || v.show == nil { // the flag package calls String on a zero secretValue too
		return ""
	}
	return v.show(*v.p)
}

func (v secretValue) Set(s string) error {
	*v.p = s
	return nil
}

// secretVar defines a string flag of a secret, whose default def (from the
// environment) the usage shows only as show makes it (not at all when nil).
func secretVar(fs *flag.FlagSet, p *string, name, def string, show func(string) string, usage string) {
	*p = def
	fs.Var(secretValue{p: p, show: show}, name, usage)
}

// endpoint is the hub's URL of path.
func (h *hubFlags) endpoint(path string) string {
	return strings.TrimRight(h.url, "/") + path
}

// httpError is a refusal of the hub: its status and the problem's detail.
type httpError struct {
	status int
	detail string
}

func (e *httpError) Error() string {
	return fmt.Sprintf("the hub answered %d %s: %s", e.status, http.StatusText(e.status), e.detail)
}

// readProblem turns a non-2xx answer into an httpError with the RFC 9457 detail (or the body).
func readProblem(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	detail := strings.TrimSpace(string(b))
	var p struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
	if json.Unmarshal(b, &p) == nil && (p.Detail != "" || p.Title != "") {
		detail = p.Detail
		if detail == "" {
			detail = p.Title
		}
	}
	return &httpError{status: resp.StatusCode, detail: detail}
}

// parseTime reads an RFC 3339 time, or a duration before now ("15m" is 15 minutes ago).
func parseTime(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time such as 2026-11-21T08:00:00+07:00, or a duration before now such as 15m", s)
	}
	return t, nil
}
