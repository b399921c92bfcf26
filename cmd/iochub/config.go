package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"strings"
	"time"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/services/aggregator"
	"github.com/iochub/iochub/services/gateway"
	"github.com/iochub/iochub/services/ingest"
)

// config is the settings of a command: the command's own (listeners, NATS,
// database, logging, tokens) and each role's Config, which registers its own
// flags (RegisterFlags). Precedence: flag, then IOCHUB_<NAME> environment
// variable, then the default.
type config struct {
	// HTTP is the address the HTTP server listens on (ingest, gateway, ops endpoints).
	HTTP string
	// NATSURL is the NATS server to use; empty in dev means the embedded server.
	NATSURL string
	// NATSPort is the embedded server's port in dev; 0 picks a free port.
	NATSPort int
	// DatabaseURL is the PostGIS database; empty in dev means a private cluster under DataDir.
	DatabaseURL string
	// DatabaseReadURL is the database the gateway reads (a replica, say);
	// empty means DatabaseURL. The gateway's reads always go through a pool
	// of their own: read-only, ReadMaxConns, ReadStatementTimeout.
	DatabaseReadURL string
	// ReadMaxConns caps the gateway's read pool; 0 means pgxpool's default.
	ReadMaxConns int
	// ReadStatementTimeout cancels a gateway read that runs longer; 0 means none.
	ReadStatementTimeout time.Duration
	// DataDir holds the embedded NATS store and the private PostgreSQL cluster in dev.
	DataDir string
	// DevToken is accepted for every unit in dev; empty means a random one, printed at start.
	DevToken string
	// Target is the role serve runs: a name of the roles table (serve.go) or all.
	Target string
	// NoSim turns the simulator off in dev.
	NoSim bool
	// SimInterval is the simulator's time between rounds.
	SimInterval time.Duration
	// Province is the province whose wall screen dev prints.
	Province string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// LogFormat is json or text.
	LogFormat string
	// CheckConfig validates the configuration, prints it and exits.
	CheckConfig bool
	// SealKey is the hub key (64 hex digits or base64 of 32 bytes) that seals
	// citizen reporters' contacts; empty means reports with a contact are
	// rejected (dev keeps one in DataDir/seal.key).
	SealKey string
	// OperatorToken is the bearer token of the operator endpoints; empty means
	// DevToken in dev and operator endpoints off (503) otherwise.
	OperatorToken string
	// Settings are the access-control settings (internal/auth registers their
	// flags; auth.go builds the gateway's Authenticator from them).
	Auth auth.Settings
	// OpsHTTP is the address of the ops listener (/metrics, /healthz,
	// /readyz); empty means those are served on HTTP, /metrics included.
	OpsHTTP string
	// BodyTimeout bounds the time to receive a request body (every HTTP
	// server, and the ingest's admitted requests); 0 means no bound.
	BodyTimeout time.Duration
	// HeaderTimeout bounds the time to receive a request's headers, and
	// IdleTimeout how long a keep-alive connection may wait for its next
	// request. Not flags: tests set them.
	HeaderTimeout, IdleTimeout time.Duration
	// ResetHubID lets dev start although its JetStream store and its database
	// belong to different hubs, giving both a new hub id (nothing is deleted).
	ResetHubID bool

	// Each role's own configuration; the zero value of each is its defaults.
	// Ingest.DevToken and Ingest.SealKey are filled from DevToken and SealKey
	// when the ingest is built.
	Ingest     ingest.Config
	Aggregator aggregator.RoleConfig
	Gateway    gateway.Config
	Operator   gateway.OperatorConfig
	// Streams sizes the JetStream streams that serve and dev create.
	Streams natsx.StreamOptions
}

// maxHeaderBytes bounds a request's headers (the default of net/http is 1 MiB).
const maxHeaderBytes = 64 << 10

func defaults() config {
	return config{
		HTTP:        "127.0.0.1:8080",
		DataDir:     ".data",
		Target:      "all",
		SimInterval: 5 * time.Second,
		Province:    "01",
		LogLevel:    "info",
		LogFormat:   "text",

		BodyTimeout:          30 * time.Second,
		ReadStatementTimeout: 10 * time.Second,
		HeaderTimeout:        10 * time.Second,
		IdleTimeout:          2 * time.Minute,
	}
}

// registerDatabaseURL registers --database-url, for the commands that use
// only the database.
func (c *config) registerDatabaseURL(fs *flag.FlagSet, help string) {
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, help+" (IOCHUB_DATABASE_URL)")
}

// registerReadPool registers the gateway's read pool: --database-read-url,
// --read-max-conns and --read-statement-timeout.
func (c *config) registerReadPool(fs *flag.FlagSet) {
	fs.StringVar(&c.DatabaseReadURL, "database-read-url", c.DatabaseReadURL, "database the gateway reads, e.g. a replica; empty means --database-url (IOCHUB_DATABASE_READ_URL)")
	fs.IntVar(&c.ReadMaxConns, "read-max-conns", c.ReadMaxConns, "connections of the gateway's read pool; 0 means max(4, CPUs) (IOCHUB_READ_MAX_CONNS)")
	fs.DurationVar(&c.ReadStatementTimeout, "read-statement-timeout", c.ReadStatementTimeout, "statement_timeout of the gateway's reads; a longer query is cancelled (503); 0 means none (IOCHUB_READ_STATEMENT_TIMEOUT)")
}

// readURL is the database the gateway reads: --database-read-url, else dbURL.
func (c *config) readURL(dbURL string) string {
	if c.DatabaseReadURL != "" {
		return c.DatabaseReadURL
	}
	return dbURL
}

// registerNATSURL registers --nats-url.
func (c *config) registerNATSURL(fs *flag.FlagSet) {
	fs.StringVar(&c.NATSURL, "nats-url", c.NATSURL, "NATS server URL (IOCHUB_NATS_URL)")
}

// registerLog registers --log-level and --log-format.
func (c *config) registerLog(fs *flag.FlagSet) {
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (IOCHUB_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "json or text (IOCHUB_LOG_FORMAT)")
}

// registerHub registers what serve and dev share: the listeners, tokens and
// keys, logging, --check-config, and every role's own flags. c's current
// values of its own fields are the defaults (a command sets its defaults on c
// before); each role's Config registers its defaults itself.
func (c *config) registerHub(fs *flag.FlagSet) {
	fs.StringVar(&c.HTTP, "http", c.HTTP, "HTTP listen address (IOCHUB_HTTP)")
	fs.StringVar(&c.OpsHTTP, "ops-http", c.OpsHTTP, "listen address of /metrics, /healthz and /readyz; empty serves them on --http (IOCHUB_OPS_HTTP)")
	fs.DurationVar(&c.BodyTimeout, "body-timeout", c.BodyTimeout, "longest time to receive a request body; a slower one gets 408; 0 means no bound (IOCHUB_BODY_TIMEOUT)")
	fs.StringVar(&c.DevToken, "dev-token", c.DevToken, "bearer token accepted for every unit in dev; empty means a random one (IOCHUB_DEV_TOKEN)")
	fs.StringVar(&c.SealKey, "seal-key", c.SealKey, "hub key sealing reporters' contacts: 64 hex digits or base64 of 32 bytes (IOCHUB_SEAL_KEY)")
	fs.StringVar(&c.OperatorToken, "operator-token", c.OperatorToken, "bearer token of the operator endpoints (IOCHUB_OPERATOR_TOKEN)")
	c.registerLog(fs)
	fs.BoolVar(&c.CheckConfig, "check-config", false, "validate the configuration, print it and exit")
	c.Auth.RegisterFlags(fs)
	c.Ingest.RegisterFlags(fs)
	c.Aggregator.RegisterFlags(fs)
	c.Gateway.RegisterFlags(fs)
	c.Operator.RegisterFlags(fs)
	c.Streams.RegisterFlags(fs)
}

// envName is the environment variable of a flag: --nats-url is IOCHUB_NATS_URL.
func envName(flagName string) string {
	return "IOCHUB_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// applyEnv sets every flag of fs that the command line did not set from its
// IOCHUB_* variable, parsed as the flag parses it: flags win over the
// environment, the environment over defaults, and a malformed variable is an
// error that names it.
func applyEnv(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || f.Name == "check-config" {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName(f.Name), v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// validate checks the settings of the command and of every role.
func (c *config) validate() error {
	var errs []error
	if c.HTTP != "" {
		if _, _, err := net.SplitHostPort(c.HTTP); err != nil {
			errs = append(errs, fmt.Errorf("--http %q: want host:port: %w", c.HTTP, err))
		}
	}
	if c.Target != "all" && findRole(c.Target) == nil {
		errs = append(errs, fmt.Errorf("--target %q: want one of %s, all", c.Target, strings.Join(roleNames(), ", ")))
	}
	if c.NATSPort < -1 || c.NATSPort > 65535 {
		errs = append(errs, fmt.Errorf("--nats-port %d: out of range", c.NATSPort))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("--log-format %q: want json or text", c.LogFormat))
	}
	if c.OpsHTTP != "" {
		if _, _, err := net.SplitHostPort(c.OpsHTTP); err != nil {
			errs = append(errs, fmt.Errorf("--ops-http %q: want host:port: %w", c.OpsHTTP, err))
		}
	}
	if c.BodyTimeout < 0 {
		errs = append(errs, fmt.Errorf("--body-timeout %s: want 0 (no limit) or a positive value", c.BodyTimeout))
	}
	if c.ReadMaxConns < 0 || c.ReadMaxConns > math.MaxInt32 {
		errs = append(errs, fmt.Errorf("--read-max-conns %d: want 0 (the default) or a positive number", c.ReadMaxConns))
	}
	if c.ReadStatementTimeout < 0 {
		errs = append(errs, fmt.Errorf("--read-statement-timeout %s: want 0 (no limit) or a positive value", c.ReadStatementTimeout))
	}
	if c.SimInterval <= 0 {
		errs = append(errs, fmt.Errorf("--sim-interval %s: must be positive", c.SimInterval))
	}
	// The roles' own checks, with the flag named where a user can get it wrong.
	if s := c.Ingest.AlertScope; s != "" && s != ingest.AlertScopeProvince && s != ingest.AlertScopeUnit {
		errs = append(errs, fmt.Errorf("--alert-scope %q: want %s or %s", s, ingest.AlertScopeProvince, ingest.AlertScopeUnit))
	} else if l := c.Ingest.Limits; l.SourceRate > 0 && l.SourceBurst < 1 {
		errs = append(errs, fmt.Errorf("--source-burst %d: want at least 1 with --source-rate %g", l.SourceBurst, l.SourceRate))
	} else if err := c.Ingest.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("ingest: %w", err))
	}
	if err := c.Aggregator.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("aggregator: %w", err))
	}
	if err := c.Gateway.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("gateway: %w", err))
	}
	if err := c.Streams.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("streams: %w", err))
	}
	return errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return l, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

func (c *config) logger(w io.Writer) *slog.Logger {
	lvl, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// redacted is the configuration as printed by --check-config, without secrets.
func (c config) redacted() config {
	if c.DevToken != "" {
		c.DevToken = "(set)"
	}
	if c.SealKey != "" {
		c.SealKey = "(set)"
	}
	if c.OperatorToken != "" {
		c.OperatorToken = "(set)"
	}
	if c.Auth.SessionKey != "" {
		c.Auth.SessionKey = "(set)"
	}
	c.NATSURL = natsx.RedactURLs(c.NATSURL)
	if c.DatabaseURL != "" {
		c.DatabaseURL = natsx.RedactURLs(c.DatabaseURL)
	}
	if c.DatabaseReadURL != "" {
		c.DatabaseReadURL = natsx.RedactURLs(c.DatabaseReadURL)
	}
	return c
}
