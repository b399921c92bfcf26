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

	"github.com/iochub/iochub/services/ingest"
)

// config is every setting of every command; each command binds the flags it uses.
// Precedence: flag, then IOCHUB_<NAME> environment variable, then the default here.
type config struct {
	// HTTP is the address the HTTP server listens on (ingest, gateway, ops endpoints).
	HTTP string
	// NATSURL is the NATS server to use; empty in dev means the embedded server.
	NATSURL string
	// NATSPort is the embedded server's port in dev; 0 picks a free port.
	NATSPort int
	// DatabaseURL is the PostGIS database; empty in dev means a private cluster under DataDir.
	DatabaseURL string
	// DataDir holds the embedded NATS store and the private PostgreSQL cluster in dev.
	DataDir string
	// DevToken is accepted for every unit in dev; empty means a random one, printed at start.
	DevToken string
	// Target is the role serve runs: ingest, aggregator, gateway or all.
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
	// authConfig holds the access-control settings (auth.go, flags bound by bindAuth).
	authConfig
	// ReportSweep is how often the aggregator looks for reports past their
	// SLA; 0 means the aggregator's default (30s). Not a flag: tests set it.
	ReportSweep time.Duration
	// OpsHTTP is the address of the ops listener (/metrics, /healthz,
	// /readyz); empty means those are served on HTTP, /metrics included.
	OpsHTTP string
	// BodyTimeout bounds the time to receive a request body; 0 means no bound.
	BodyTimeout time.Duration
	// HeaderTimeout bounds the time to receive a request's headers, and
	// IdleTimeout how long a keep-alive connection may wait for its next
	// request. Not flags: tests set them.
	HeaderTimeout, IdleTimeout time.Duration
	// SourceConcurrency is the most ingest requests of one source in flight;
	// 0 means no limit.
	SourceConcurrency int
	// SourceRate is the ingest requests per second one source may sustain and
	// SourceBurst the burst above it; 0 means no limit.
	SourceRate  float64
	SourceBurst int
	// MaxConcurrent is the most ingest requests in flight in all; 0 means no limit.
	MaxConcurrent int
	// AlertScope is where a source bound to a unit may send alert areas:
	// "province" (its unit's province, the default) or "unit" (its unit only).
	AlertScope string
	// ResetHubID lets dev start although its JetStream store and its database
	// belong to different hubs, giving both a new hub id (nothing is deleted).
	ResetHubID bool
}

// maxHeaderBytes bounds a request's headers (the default of net/http is 1 MiB).
const maxHeaderBytes = 64 << 10

var targets = map[string]bool{"ingest": true, "aggregator": true, "gateway": true, "all": true}

func defaults() config {
	return config{
		HTTP:        "127.0.0.1:8080",
		DataDir:     ".data",
		Target:      "all",
		SimInterval: 5 * time.Second,
		Province:    "01",
		LogLevel:    "info",
		LogFormat:   "text",

		BodyTimeout:       30 * time.Second,
		HeaderTimeout:     10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		SourceConcurrency: 4,
		SourceRate:        50,
		SourceBurst:       100,
		MaxConcurrent:     64,
		AlertScope:        "province",
	}
}

// bind registers the named settings on fs, with c's current values as their
// defaults (so a command sets its own defaults on c before binding). After
// fs.Parse, applyEnv fills what no flag set from IOCHUB_* variables.
func (c *config) bind(fs *flag.FlagSet, names ...string) {
	for _, n := range names {
		switch n {
		case "http":
			fs.StringVar(&c.HTTP, "http", c.HTTP, "HTTP listen address (IOCHUB_HTTP)")
		case "nats-url":
			fs.StringVar(&c.NATSURL, "nats-url", c.NATSURL, "NATS server URL (IOCHUB_NATS_URL)")
		case "nats-port":
			fs.IntVar(&c.NATSPort, "nats-port", c.NATSPort, "port of the embedded NATS server; 0 picks a free one (IOCHUB_NATS_PORT)")
		case "database-url":
			fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "PostGIS database URL (IOCHUB_DATABASE_URL)")
		case "data-dir":
			fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for the embedded NATS store and the private PostgreSQL cluster (IOCHUB_DATA_DIR)")
		case "dev-token":
			fs.StringVar(&c.DevToken, "dev-token", c.DevToken, "bearer token accepted for every unit in dev; empty means a random one (IOCHUB_DEV_TOKEN)")
		case "target":
			fs.StringVar(&c.Target, "target", c.Target, "role to run: ingest, aggregator, gateway or all (IOCHUB_TARGET)")
		case "no-sim":
			fs.BoolVar(&c.NoSim, "no-sim", c.NoSim, "do not run the simulator (IOCHUB_NO_SIM)")
		case "sim-interval":
			fs.DurationVar(&c.SimInterval, "sim-interval", c.SimInterval, "time between simulator rounds (IOCHUB_SIM_INTERVAL)")
		case "log":
			fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (IOCHUB_LOG_LEVEL)")
			fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "json or text (IOCHUB_LOG_FORMAT)")
		case "seal-key":
			fs.StringVar(&c.SealKey, "seal-key", c.SealKey, "hub key sealing reporters' contacts: 64 hex digits or base64 of 32 bytes (IOCHUB_SEAL_KEY)")
		case "operator-token":
			fs.StringVar(&c.OperatorToken, "operator-token", c.OperatorToken, "bearer token of the operator endpoints (IOCHUB_OPERATOR_TOKEN)")
		case "ops-http":
			fs.StringVar(&c.OpsHTTP, "ops-http", c.OpsHTTP, "listen address of /metrics, /healthz and /readyz; empty serves them on --http (IOCHUB_OPS_HTTP)")
		case "limits":
			fs.DurationVar(&c.BodyTimeout, "body-timeout", c.BodyTimeout, "longest time to receive a request body; a slower one gets 408; 0 means no bound (IOCHUB_BODY_TIMEOUT)")
			fs.IntVar(&c.SourceConcurrency, "source-concurrency", c.SourceConcurrency, "most ingest requests of one source in flight; 0 means no limit (IOCHUB_SOURCE_CONCURRENCY)")
			fs.Float64Var(&c.SourceRate, "source-rate", c.SourceRate, "ingest requests per second one source may sustain; 0 means no limit (IOCHUB_SOURCE_RATE)")
			fs.IntVar(&c.SourceBurst, "source-burst", c.SourceBurst, "requests one source may send at once above --source-rate (IOCHUB_SOURCE_BURST)")
			fs.IntVar(&c.MaxConcurrent, "max-concurrent", c.MaxConcurrent, "most ingest requests in flight in all; 0 means no limit (IOCHUB_MAX_CONCURRENT)")
			fs.StringVar(&c.AlertScope, "alert-scope", c.AlertScope, "where a source bound to a unit may send alert areas: province (of its unit) or unit (IOCHUB_ALERT_SCOPE)")
		case "reset-hub-id":
			fs.BoolVar(&c.ResetHubID, "reset-hub-id", c.ResetHubID, "start although the JetStream store and the database belong to different hubs, and give both a new hub id; nothing is deleted (IOCHUB_RESET_HUB_ID)")
		case "check-config":
			fs.BoolVar(&c.CheckConfig, "check-config", false, "validate the configuration, print it and exit")
		default:
			panic("unknown setting " + n)
		}
	}
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

// validate checks the settings that every command shares.
func (c *config) validate() error {
	var errs []error
	if c.HTTP != "" {
		if _, _, err := net.SplitHostPort(c.HTTP); err != nil {
			errs = append(errs, fmt.Errorf("--http %q: want host:port: %w", c.HTTP, err))
		}
	}
	if !targets[c.Target] {
		errs = append(errs, fmt.Errorf("--target %q: want one of ingest, aggregator, gateway, all", c.Target))
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
	if c.AlertScope != ingest.AlertScopeProvince && c.AlertScope != ingest.AlertScopeUnit {
		errs = append(errs, fmt.Errorf("--alert-scope %q: want %s or %s", c.AlertScope, ingest.AlertScopeProvince, ingest.AlertScopeUnit))
	}
	if c.OpsHTTP != "" {
		if _, _, err := net.SplitHostPort(c.OpsHTTP); err != nil {
			errs = append(errs, fmt.Errorf("--ops-http %q: want host:port: %w", c.OpsHTTP, err))
		}
	}
	for _, n := range []struct {
		flag string
		v    float64
	}{{"--body-timeout", c.BodyTimeout.Seconds()}, {"--source-concurrency", float64(c.SourceConcurrency)},
		{"--source-rate", c.SourceRate}, {"--source-burst", float64(c.SourceBurst)}, {"--max-concurrent", float64(c.MaxConcurrent)}} {
		if n.v < 0 || math.IsNaN(n.v) || math.IsInf(n.v, 0) {
			errs = append(errs, fmt.Errorf("%s %v: want 0 (no limit) or a positive value", n.flag, n.v))
		}
	}
	if c.SourceRate > 0 && c.SourceBurst < 1 {
		errs = append(errs, fmt.Errorf("--source-burst %d: want at least 1 with --source-rate %g", c.SourceBurst, c.SourceRate))
	}
	if c.SimInterval <= 0 {
		errs = append(errs, fmt.Errorf("--sim-interval %s: must be positive", c.SimInterval))
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
	if c.SessionKey != "" {
		c.SessionKey = "(set)"
	}
	if c.DatabaseURL != "" {
		c.DatabaseURL = redactURL(c.DatabaseURL)
	}
	return c
}

func redactURL(u string) string {
	at := strings.LastIndex(u, "@")
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return u
	}
	cred := u[scheme+3 : at]
	if i := strings.Index(cred, ":"); i >= 0 {
		return u[:scheme+3] + cred[:i] + ":xxxxx" + u[at:]
	}
	return u
}
