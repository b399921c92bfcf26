package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/iochub/iochub/internal/edge"
	"github.com/iochub/iochub/internal/flagx"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/ops"
	"github.com/iochub/iochub/internal/routes"
	"github.com/iochub/iochub/services/ingest"
)

// edgeConfig is the settings of iochub edge (docs/edge.md).
type edgeConfig struct {
	// Unit is the edge's unit code; required.
	Unit string
	// Hub are the hub's leaf-node URLs (nats-leaf://hub:PASSWORD@host:7422),
	// comma-separated on the command line; empty means no hub yet (the edge
	// keeps what it accepts until one is set).
	Hub string
	// HubCA is a PEM file of the CA that signed the hub's leaf-node
	// certificate; set, the edge trusts that CA only and requires TLS of
	// every hub URL (edge.HubTLS). Empty means the system's roots, and TLS
	// only with a tls:// URL or when the hub asks for it.
	HubCA string
	// Catalog is the file iochub edge-export wrote for Unit; required.
	Catalog string
	// DataDir holds the edge's JetStream store (DataDir/nats); keep it.
	DataDir string
	// HTTP is the ingest's listen address.
	HTTP string
	// OpsHTTP is the listen address of /healthz, /readyz and /metrics.
	OpsHTTP string
	// NATSHost and NATSPort are the edge server's local client listener,
	// for local tools; -1 picks a free port.
	NATSHost string
	NATSPort int
	// NATSPassword is the password of user hub on the edge's NATS server
	// (local tools); empty means a random one per run (only the edge's own
	// ingest publishes then).
	NATSPassword string
	// Stream sizes the edge's own FEEDS; Stream.Retain is the link-loss budget.
	Stream natsx.EdgeStreamOptions
	// LeafReconnect is the wait between attempts to reach the hub.
	LeafReconnect time.Duration
	// BodyTimeout bounds the time to receive a request body; 0 means no bound.
	BodyTimeout time.Duration
	// UnsentCheck is how often the edge looks for items that left its FEEDS
	// before the hub copied them (edge.UnsentWatch), besides at each change
	// of the link (not a flag).
	UnsentCheck time.Duration
	// HeaderTimeout and IdleTimeout are the HTTP server's (not flags).
	HeaderTimeout, IdleTimeout time.Duration
	LogLevel, LogFormat        string
	// MaxPayload is the edge's max payload (edge.NodeConfig.MaxPayload).
	MaxPayload  int64
	CheckConfig bool
	// Ingest is the ingest's configuration; the edge forces no dev token and
	// no rejection summaries (there is no aggregator at the edge to read them).
	Ingest ingest.Config
}

func edgeDefaults() edgeConfig {
	return edgeConfig{
		DataDir:       ".edge",
		HTTP:          "127.0.0.1:8080",
		OpsHTTP:       "127.0.0.1:8081",
		NATSHost:      "127.0.0.1",
		NATSPort:      4222,
		LeafReconnect: time.Second,
		BodyTimeout:   30 * time.Second,
		HeaderTimeout: 10 * time.Second,
		IdleTimeout:   2 * time.Minute,
		UnsentCheck:   30 * time.Second,
		LogLevel:      "info",
		LogFormat:     "text",
	}
}

func (c *edgeConfig) registerFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Unit, "unit", c.Unit, "code of the edge's unit, e.g. 00070; the edge accepts sources of this unit and below only (IOCHUB_UNIT)")
	fs.StringVar(&c.Hub, "hub", c.Hub, "the hub's leaf-node URLs, comma-separated: nats-leaf://edge-CODE:PASSWORD@host:7422; tls:// requires TLS (IOCHUB_HUB)")
	fs.StringVar(&c.HubCA, "hub-ca", c.HubCA, "PEM file of the CA that signed the hub's leaf-node certificate; the edge then requires TLS of the hub and trusts this CA only (IOCHUB_HUB_CA)")
	fs.StringVar(&c.Catalog, "catalog", c.Catalog, "catalogue of units and sources written by iochub edge-export (IOCHUB_CATALOG)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory of the edge's JetStream store; keep it: what the hub has not copied yet is only there (IOCHUB_DATA_DIR)")
	fs.StringVar(&c.HTTP, "http", c.HTTP, "ingest listen address (IOCHUB_HTTP)")
	fs.StringVar(&c.OpsHTTP, "ops-http", c.OpsHTTP, "listen address of /healthz, /readyz and /metrics (IOCHUB_OPS_HTTP)")
	fs.StringVar(&c.NATSHost, "nats-host", c.NATSHost, "host of the edge NATS server's client listener (IOCHUB_NATS_HOST)")
	fs.IntVar(&c.NATSPort, "nats-port", c.NATSPort, "port of the edge NATS server's client listener; -1 picks a free one (IOCHUB_NATS_PORT)")
	fs.StringVar(&c.NATSPassword, "nats-password", c.NATSPassword, "password of user hub on the edge's NATS server, for local tools; empty means a random one per run (IOCHUB_NATS_PASSWORD)")
	fs.DurationVar(&c.Stream.Retain, "retain", 7*24*time.Hour, "link-loss budget: how long the edge keeps an accepted item for the hub to copy (IOCHUB_RETAIN)")
	fs.Int64Var(&c.Stream.MaxBytes, "max-bytes", 8<<30, "disk bound of the edge's FEEDS; when full the edge refuses new items instead of dropping accepted ones (IOCHUB_MAX_BYTES)")
	fs.DurationVar(&c.Stream.DuplicateWindow, "duplicate-window", time.Hour, "how long the edge recognises a repeated message id (IOCHUB_DUPLICATE_WINDOW)")
	fs.DurationVar(&c.LeafReconnect, "leaf-reconnect", c.LeafReconnect, "wait between attempts to reach the hub (IOCHUB_LEAF_RECONNECT)")
	flagx.Positive(fs, &c.MaxPayload, "max-payload", int64(edge.DefaultMaxPayload), "largest message of the edge's NATS server, in bytes; at most the hub's (iochub edge-add prints it): a larger item would hold the link (IOCHUB_MAX_PAYLOAD)")
	fs.DurationVar(&c.BodyTimeout, "body-timeout", c.BodyTimeout, "longest time to receive a request body; 0 means no bound (IOCHUB_BODY_TIMEOUT)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (IOCHUB_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "json or text (IOCHUB_LOG_FORMAT)")
	fs.BoolVar(&c.CheckConfig, "check-config", false, "validate the configuration, print it and exit")
	c.Ingest.RegisterFlags(fs)
}

// hubURLs parses Hub.
func (c *edgeConfig) hubURLs() ([]*url.URL, error) {
	var out []*url.URL
	for _, s := range strings.Split(c.Hub, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("--hub %q: want nats-leaf://[user:password@]host:port", natsx.RedactURLs(s))
		}
		switch u.Scheme {
		case "nats-leaf", "nats", "tls":
		default:
			return nil, fmt.Errorf("--hub %q: scheme %q; want nats-leaf, nats or tls", natsx.RedactURLs(s), u.Scheme)
		}
		out = append(out, u)
	}
	return out, nil
}

// hubTLS parses Hub and reads HubCA into the TLS of the leaf connection
// (edge.HubTLS).
func (c *edgeConfig) hubTLS() ([]*url.URL, *tls.Config, error) {
	hubs, err := c.hubURLs()
	if err != nil {
		return nil, nil, err
	}
	tc, err := edge.HubTLS(hubs, c.HubCA)
	if err != nil {
		return nil, nil, fmt.Errorf("--hub-ca: %w", err)
	}
	return hubs, tc, nil
}

func (c *edgeConfig) validate() error {
	var errs []error
	if _, err := natsx.EdgeDomain(c.Unit); err != nil {
		errs = append(errs, fmt.Errorf("--unit: %w", err))
	}
	if c.Catalog == "" {
		errs = append(errs, errors.New("--catalog is required: write it on the hub with iochub edge-export --unit CODE"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir is required"))
	}
	for _, f := range [...][2]string{{"--http", c.HTTP}, {"--ops-http", c.OpsHTTP}} { // in the flags' order
		name, addr := f[0], f[1]
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: want host:port: %w", name, addr, err))
		}
	}
	if c.NATSPort == 0 || c.NATSPort < -1 || c.NATSPort > 65535 {
		errs = append(errs, fmt.Errorf("--nats-port %d: want a port (1–65535), or -1 for a free one", c.NATSPort))
	}
	if _, _, err := c.hubTLS(); err != nil {
		errs = append(errs, err)
	}
	if c.Stream.Retain <= 0 || c.Stream.MaxBytes <= 0 || c.Stream.DuplicateWindow <= 0 {
		errs = append(errs, errors.New("--retain, --max-bytes and --duplicate-window must be positive"))
	} else if c.Stream.DuplicateWindow > c.Stream.Retain {
		// NATS refuses a stream whose duplicate window outlasts its items.
		errs = append(errs, fmt.Errorf("--duplicate-window %s is longer than --retain %s: at most --retain", c.Stream.DuplicateWindow, c.Stream.Retain))
	}
	if c.MaxPayload > 64<<20 {
		errs = append(errs, fmt.Errorf("--max-payload %d: at most %d (NATS's own limit)", c.MaxPayload, 64<<20))
	}
	if c.LeafReconnect <= 0 {
		errs = append(errs, fmt.Errorf("--leaf-reconnect %s: must be positive", c.LeafReconnect))
	}
	if c.BodyTimeout < 0 {
		errs = append(errs, fmt.Errorf("--body-timeout %s: want 0 (no limit) or a positive value", c.BodyTimeout))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("--log-format %q: want json or text", c.LogFormat))
	}
	if err := c.Ingest.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("ingest: %w", err))
	}
	return errors.Join(errs...)
}

func (c *edgeConfig) logger(w io.Writer) *slog.Logger {
	hc := config{LogLevel: c.LogLevel, LogFormat: c.LogFormat}
	return hc.logger(w)
}

// redacted is the configuration as --check-config prints it.
func (c edgeConfig) redacted() edgeConfig {
	var hubs []string
	for _, s := range strings.Split(c.Hub, ",") {
		if s = strings.TrimSpace(s); s != "" {
			hubs = append(hubs, natsx.RedactURLs(s))
		}
	}
	c.Hub = strings.Join(hubs, ",")
	if c.NATSPassword != "" {
		c.NATSPassword = "(set)"
	}
	return c
}

// runEdge is "iochub edge": the ingest HTTP API of a lower-level IOC on its
// own NATS server, a leaf node of the hub whose FEEDS sources it.
func runEdge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := edgeDefaults()
	fs := flag.NewFlagSet("iochub edge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.registerFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: iochub edge --unit CODE --catalog FILE --hub nats-leaf://edge-CODE:PASSWORD@host:7422 --hub-ca CA.pem [flags]\n\n"+
			"Runs the ingest HTTP API of a lower-level IOC on its own NATS server: a leaf node of the hub with\n"+
			"JetStream domain edge-CODE, keeping what it accepts while the link is down. On the hub, run\n"+
			"iochub edge-add --unit CODE once so that the hub's FEEDS sources it (docs/edge.md). --hub-ca names the\n"+
			"CA of the hub's leaf-node certificate: the link then takes TLS only, verified with it.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := applyEnv(fs); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.CheckConfig {
		fmt.Fprintf(stdout, "%+v\n", cfg.redacted())
		return nil
	}
	f, err := os.Open(cfg.Catalog)
	if err != nil {
		return fmt.Errorf("opening the catalogue: %w", err)
	}
	cat, err := edge.ReadCatalog(f)
	_ = f.Close()
	if err != nil {
		return fmt.Errorf("reading %s: %w", cfg.Catalog, err)
	}
	log := cfg.logger(stderr)
	tuneMemory(log, false)
	return serveEdge(ctx, edgeDeps{cfg: cfg, cat: cat, log: log})
}

// edgeDeps is what serveEdge runs on.
type edgeDeps struct {
	cfg edgeConfig
	cat edge.Catalog
	log *slog.Logger
	// ready receives the ingest's base URL and the node once they serve; optional.
	ready chan<- edgeReady
}

// edgeReady is what a started edge tells its caller (tests).
type edgeReady struct {
	URL string
	// OpsURL is the base URL of /healthz, /readyz and /metrics.
	OpsURL string
	Node   *edge.Node
}

// serveEdge starts the edge's NATS server and its ingest and serves them until ctx ends.
func serveEdge(ctx context.Context, d edgeDeps) error {
	cfg := d.cfg
	if d.cat.Unit != cfg.Unit {
		return fmt.Errorf("the catalogue is that of unit %s, not --unit %s: export it with iochub edge-export --unit %s", d.cat.Unit, cfg.Unit, cfg.Unit)
	}
	hubs, hubTLS, err := cfg.hubTLS()
	if err != nil {
		return err
	}
	node, err := edge.StartNode(ctx, edge.NodeConfig{Unit: cfg.Unit, Hub: hubs, HubTLS: hubTLS, StoreDir: filepath.Join(cfg.DataDir, "nats"),
		Host: cfg.NATSHost, Port: cfg.NATSPort, Password: cfg.NATSPassword, Stream: cfg.Stream, LeafReconnect: cfg.LeafReconnect,
		MaxPayload: int32(cfg.MaxPayload)}) //nolint:gosec // validate bounds it at 64 MiB
	if err != nil {
		return err
	}
	defer node.Close()

	o := ops.New()
	o.AddCheck("nats", func(context.Context) error {
		if !node.Conn.IsConnected() {
			return fmt.Errorf("edge NATS connection is %s", node.Conn.Status())
		}
		return nil
	})
	linkUp := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "iochub_edge_link_up",
		Help: "1 while the edge's leaf connection to the hub is up, 0 while it is down (the edge keeps accepting).",
	}, func() float64 {
		if node.LinkUp() {
			return 1
		}
		return 0
	})
	if err := o.Registry.Register(linkUp); err != nil {
		return fmt.Errorf("registering edge metrics: %w", err)
	}
	unsent, err := edge.NewUnsentWatch(ctx, node, d.log, o.Registry)
	if err != nil {
		return err
	}

	ic := cfg.Ingest
	ic.DevToken, ic.SealKey = "", nil
	ic.RejectionSummaryEvery = -1
	ic.Limits.BodyTimeout = ingest.OffDuration(cfg.BodyTimeout)
	srcs := make([]ingest.Source, 0, len(d.cat.Sources))
	for _, s := range d.cat.Sources {
		srcs = append(srcs, ingest.Source{ID: s.ID, Unit: s.Unit, TokenSHA256: s.TokenSHA256})
	}
	in, err := ingest.New(ctx, ic, ingest.Deps{JS: node.JS, Logger: d.log.With("role", "edge-ingest"), Metrics: o.Registry,
		Units: d.cat.Units, Sources: srcs})
	if err != nil {
		return err
	}
	mux, opsMux := routes.NewRecorder(), routes.NewRecorder()
	in.Register(mux)
	o.Register(opsMux)
	mux.Handle("GET /healthz", opsMux)
	mux.Handle("GET /readyz", opsMux)

	hc := config{BodyTimeout: cfg.BodyTimeout, HeaderTimeout: cfg.HeaderTimeout, IdleTimeout: cfg.IdleTimeout}
	servers := []*http.Server{newHTTPServer(mux, hc), newHTTPServer(opsMux, hc)}
	var listeners []net.Listener
	for _, addr := range []string{cfg.HTTP, cfg.OpsHTTP} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range listeners {
				_ = l.Close()
			}
			return fmt.Errorf("listening on %s: %w", addr, err)
		}
		listeners = append(listeners, ln)
	}
	baseURL := "http://" + listeners[0].Addr().String()
	d.log.Info("edge listening", "url", baseURL, "ops", "http://"+listeners[1].Addr().String(), "unit", cfg.Unit,
		"domain", node.Domain, "sources", len(srcs), "units", len(d.cat.Units), "catalog_exported_at", d.cat.ExportedAt)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return in.Run(gctx) })
	g.Go(func() error { watchLink(gctx, node, d.log, unsent.Poke); return nil })
	g.Go(func() error { unsent.Run(gctx, cfg.UnsentCheck); return nil })
	serveHTTP(g, gctx, servers, listeners, nil)
	if d.ready != nil {
		d.ready <- edgeReady{URL: baseURL, OpsURL: "http://" + listeners[1].Addr().String(), Node: node}
	}
	err = waitBounded(gctx, g, 2*shutdownTimeout)
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// watchLink logs each change of the leaf connection to the hub and calls
// changed: the hub's sourcing consumer on the edge's FEEDS outlives the
// link by 10 s, so a look then sees the last item the hub was sent.
func watchLink(ctx context.Context, n *edge.Node, log *slog.Logger, changed func()) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	up := n.LinkUp()
	log.Info("edge link to the hub", "up", up)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if now := n.LinkUp(); now != up {
			up = now
			changed()
			if up {
				log.Info("edge link to the hub is up; the hub copies what it missed")
			} else {
				log.Warn("edge link to the hub is down; accepting and keeping items for the hub")
			}
		}
	}
}
