package iocctl

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// natsFlags are the flags of the commands speaking to NATS directly.
type natsFlags struct {
	url     string
	context string
	creds   string
}

func (n *natsFlags) register(fs *flag.FlagSet, env Env) {
	secretVar(fs, &n.url, "nats-url", env.Getenv("NATS_URL"), redactNATS, "NATS server `URL`, e.g. nats://reader:PASSWORD@127.0.0.1:4222 as printed by iochub dev (NATS_URL); overrides the context's")
	fs.StringVar(&n.context, "context", env.Getenv("NATS_CONTEXT"), `NATS context (of the nats CLI, ~/.config/nats/context/NAME.json) for the URL and credentials; "." is the selected one (NATS_CONTEXT)`)
	fs.StringVar(&n.creds, "creds", "", "NATS credentials file (.creds); overrides the context's")
}

// set reports whether NATS was asked for.
func (n *natsFlags) set() bool { return n.url != "" || n.context != "" }

// natsContext is the part of a nats CLI context iocctl uses.
type natsContext struct {
	URL         string `json:"url"`
	User        string `json:"user"`
	Password    string `json:"password"`
	Token       string `json:"token"`
	Creds       string `json:"creds"`
	NKey        string `json:"nkey"`
	Cert        string `json:"cert"`
	Key         string `json:"key"`
	CA          string `json:"ca"`
	InboxPrefix string `json:"inbox_prefix"`
}

// configDir is where the nats CLI keeps its contexts.
func configDir(env Env) string {
	if d := env.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "nats")
	}
	return filepath.Join(env.Home, ".config", "nats")
}

// loadContext reads the nats CLI context name ("." is the selected one, as
// in context.txt). The format is that of github.com/nats-io/jsm.go/natscontext,
// read here with encoding/json: that module is not on the proxy this
// project builds from.
func loadContext(env Env, name string) (natsContext, error) {
	dir := configDir(env)
	if name == "." {
		b, err := os.ReadFile(filepath.Join(dir, "context.txt")) //nolint:gosec // G304: the nats CLI's own file in the user's config dir
		if err != nil {
			return natsContext{}, fmt.Errorf("--context .: no selected NATS context (%w); run nats context select NAME, or give a name", err)
		}
		name = strings.TrimSpace(string(b))
	}
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return natsContext{}, fmt.Errorf("--context %q: want the name of a NATS context", name)
	}
	b, err := os.ReadFile(filepath.Join(dir, "context", name+".json")) //nolint:gosec // G304: the context the user names, in its config dir; name has no path separator
	if err != nil {
		return natsContext{}, fmt.Errorf("reading NATS context %s: %w", name, err)
	}
	var c natsContext
	if err := json.Unmarshal(b, &c); err != nil {
		return natsContext{}, fmt.Errorf("reading NATS context %s: %w", name, err)
	}
	return c, nil
}

// connect dials NATS as the flags say.
func (n *natsFlags) connect(env Env, name string) (*nats.Conn, error) {
	var c natsContext
	if n.context != "" {
		var err error
		if c, err = loadContext(env, n.context); err != nil {
			return nil, err
		}
	}
	if n.url != "" {
		c.URL = n.url
	}
	if n.creds != "" {
		c.Creds = n.creds
	}
	if c.URL == "" {
		return nil, errors.New("no NATS server: give --nats-url or a --context with a url")
	}
	opts := []nats.Option{nats.Name(name), nats.Timeout(10 * time.Second)}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.Token != "" {
		opts = append(opts, nats.Token(c.Token))
	}
	if c.Creds != "" {
		opts = append(opts, nats.UserCredentials(expandHome(env, c.Creds)))
	}
	if c.NKey != "" {
		o, err := nats.NkeyOptionFromSeed(expandHome(env, c.NKey))
		if err != nil {
			return nil, fmt.Errorf("reading the NATS nkey: %w", err)
		}
		opts = append(opts, o)
	}
	if c.Cert != "" && c.Key != "" {
		opts = append(opts, nats.ClientCert(expandHome(env, c.Cert), expandHome(env, c.Key)))
	}
	if c.CA != "" {
		opts = append(opts, nats.RootCAs(expandHome(env, c.CA)))
	}
	if c.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(c.InboxPrefix))
	}
	nc, err := nats.Connect(c.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", redactNATS(c.URL), err)
	}
	return nc, nil
}

func expandHome(env Env, p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		return filepath.Join(env.Home, rest)
	}
	return p
}

// redactNATS hides the password of a NATS URL.
func redactNATS(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return u
	}
	user, _, _ := strings.Cut(rest[:at], ":")
	return scheme + "://" + user + ":***@" + rest[at+1:]
}
