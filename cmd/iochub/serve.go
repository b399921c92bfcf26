package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/ops"
	"github.com/iochub/iochub/internal/routes"
	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/services/aggregator"
	"github.com/iochub/iochub/services/gateway"
	"github.com/iochub/iochub/services/ingest"
	"github.com/iochub/iochub/web"
)

// serveFlags returns the flags of "iochub serve", bound to cfg's fields.
func serveFlags(cfg *config) *flag.FlagSet {
	fs := flag.NewFlagSet("iochub serve", flag.ContinueOnError)
	fs.StringVar(&cfg.Target, "target", cfg.Target, "role to run: "+strings.Join(roleNames(), ", ")+" or all (IOCHUB_TARGET)")
	cfg.registerNATSURL(fs)
	cfg.registerDatabaseURL(fs, "PostGIS database URL: the aggregator writes it and runs its migrations; "+
		"the ingest reads the registered units and sources from it; the gateway reads units, identities, alerts and reports from it")
	cfg.registerReadPool(fs)
	cfg.registerHub(fs)
	return fs
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := defaults()
	cfg.HTTP = ":8080"
	cfg.NATSURL = nats.DefaultURL
	fs := serveFlags(&cfg)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := applyEnv(fs); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.DatabaseURL == "" && cfg.Target != "ingest" && cfg.Target != "gateway" {
		return errors.New("--database-url (or IOCHUB_DATABASE_URL) is required for the aggregator")
	}
	if cfg.CheckConfig {
		fmt.Fprintf(stdout, "%+v\n", cfg.redacted())
		return nil
	}
	log := cfg.logger(stderr)
	tuneMemory(log, cfg.Target == "aggregator" || cfg.Target == "all")
	nc, err := natsx.Connect(cfg.NATSURL, "iochub-"+cfg.Target)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("opening JetStream: %w", err)
	}
	var pool *pgxpool.Pool
	if cfg.DatabaseURL != "" {
		if cfg.Target == "aggregator" || cfg.Target == "all" {
			if err := schema.Migrate(ctx, cfg.DatabaseURL); err != nil {
				return err
			}
		}
		pool, err = schema.Open(ctx, cfg.DatabaseURL)
		if err != nil {
			return err
		}
		defer pool.Close()
	}
	var readPool *pgxpool.Pool
	if u := cfg.readURL(cfg.DatabaseURL); u != "" && (cfg.Target == "gateway" || cfg.Target == "all") {
		if readPool, err = openReadPool(ctx, cfg, u); err != nil {
			return err
		}
		defer readPool.Close()
	}
	return serveRoles(ctx, roleDeps{cfg: cfg, log: log, nc: nc, js: js, pool: pool, readPool: readPool})
}

// roleDeps is what the roles are wired from.
type roleDeps struct {
	cfg  config
	log  *slog.Logger
	nc   *nats.Conn
	js   jetstream.JetStream
	pool *pgxpool.Pool
	// readPool is the gateway's read pool (openReadPool); nil means pool.
	readPool *pgxpool.Pool
	// ready receives the base URL once the HTTP server listens; optional.
	ready chan<- string
	// opsReady receives the ops listener's base URL (with --ops-http); optional.
	opsReady chan<- string
	// extra runs beside the roles (the simulator in dev).
	extra []func(ctx context.Context, baseURL string) error
	// authn is the access control; nil builds one from cfg (newAuthenticator).
	authn *auth.Authenticator
	// routes, when set, is given the patterns registered on the public and
	// the ops mux once every role is built (TestOpenAPIRoutes).
	routes func(public, ops []string)
}

// wiring is what a role is built on: its dependencies (authn set), the
// public mux it registers its endpoints on, and the metrics registry.
type wiring struct {
	roleDeps
	mux     *routes.Recorder
	metrics prometheus.Registerer
}

// role is a built role: Run until ctx ends; Close, if set, runs when the
// hub shuts down, before the HTTP servers (the gateway closes its WebSockets,
// which http.Server.Shutdown leaves open).
type role struct {
	Run   func(ctx context.Context) error
	Close func()
	// Ready, if set, is a check of /readyz named after the role.
	Ready func(ctx context.Context) error
}

// roles is every role serve can run, in the order --target=all builds them.
// A constructor builds its role from w.cfg's part for it.
var roles = []struct {
	name  string
	build func(ctx context.Context, w wiring) (role, error)
}{
	{"ingest", buildIngest},
	{"aggregator", buildAggregator},
	{"gateway", buildGateway},
}

func findRole(name string) func(context.Context, wiring) (role, error) {
	for _, r := range roles {
		if r.name == name {
			return r.build
		}
	}
	return nil
}

func roleNames() []string {
	var out []string
	for _, r := range roles {
		out = append(out, r.name)
	}
	return out
}

// buildIngest builds the ingest. It reads the registered units and sources
// from PostGIS (read-only), so it needs the database.
func buildIngest(ctx context.Context, w wiring) (role, error) {
	if w.pool == nil {
		return role{}, errors.New("the ingest needs --database-url: it reads the registered units and sources from PostGIS")
	}
	sealKey, err := w.cfg.sealKey()
	if err != nil {
		return role{}, err
	}
	ic := w.cfg.Ingest
	ic.DevToken, ic.SealKey = w.cfg.DevToken, sealKey
	ic.Limits.BodyTimeout = ingest.OffDuration(w.cfg.BodyTimeout)
	in, err := ingest.New(ctx, ic, ingest.Deps{JS: w.js, Pool: w.pool, Logger: w.log.With("role", "ingest"), Metrics: w.metrics})
	if err != nil {
		return role{}, err
	}
	// Load units and sources before the first request, so a started ingest never answers 503 for them.
	if err := in.Refresh(ctx); err != nil {
		return role{}, err
	}
	in.Register(w.mux)
	return role{Run: in.Run}, nil
}

// buildAggregator builds the aggregator role, which wires its own rules
// engine and action handlers.
func buildAggregator(_ context.Context, w wiring) (role, error) {
	r, err := aggregator.NewRole(w.cfg.Aggregator, aggregator.RoleDeps{JS: w.js, Pool: w.pool, Logger: w.log, Metrics: w.metrics})
	if err != nil {
		return role{}, err
	}
	ro := role{Run: r.Run}
	if w.cfg.Aggregator.Partition.Enabled { // only a partitioned aggregator has something to check
		ro.Ready = r.Ready
	}
	return ro, nil
}

// buildGateway builds the gateway with its operator endpoints.
func buildGateway(_ context.Context, w wiring) (role, error) {
	gw, err := gateway.New(w.cfg.Gateway, gateway.Deps{JS: w.js, Pool: w.pool, ReadPool: w.readPool, Static: web.FS(), Logger: w.log.With("role", "gateway"), Metrics: w.metrics, Auth: w.authn})
	if err != nil {
		return role{}, err
	}
	gw.Register(w.mux)
	gw.RegisterOperator(w.mux, w.cfg.Operator)
	return role{Run: gw.Run, Close: gw.Close}, nil
}

// openReadPool opens the gateway's read pool on url: read-only, with
// --read-max-conns and --read-statement-timeout.
func openReadPool(ctx context.Context, cfg config, url string) (*pgxpool.Pool, error) {
	return schema.OpenRead(ctx, url, schema.ReadOptions{MaxConns: int32(cfg.ReadMaxConns), StatementTimeout: cfg.ReadStatementTimeout}) //nolint:gosec // validate bounds ReadMaxConns
}

// shutdownTimeout bounds the shutdown: the HTTP servers' Shutdown, then the
// wait for the roles to return.
const shutdownTimeout = 10 * time.Second

// serveRoles creates the streams, builds the roles of cfg.Target onto one
// HTTP server and runs them until ctx ends or one fails.
func serveRoles(ctx context.Context, d roleDeps) error {
	if err := natsx.EnsureStreams(ctx, d.js, d.cfg.Streams); err != nil {
		return err
	}
	if err := natsx.EnsureImportBuckets(ctx, d.js, d.cfg.Streams); err != nil {
		return err
	}
	o := ops.New()
	o.Log = d.log
	o.AddCheck("nats", func(context.Context) error {
		if s := d.nc.Status(); s != nats.CONNECTED {
			return fmt.Errorf("NATS connection is %s", s)
		}
		return nil
	})
	if d.pool != nil {
		o.AddCheck("postgis", func(ctx context.Context) error { return d.pool.Ping(ctx) })
	}
	mux := routes.NewRecorder()
	opsMux := routes.NewRecorder()
	o.Register(opsMux)
	// The public listener's probes say which check fails, not why (the ops
	// listener's /readyz does).
	o.RegisterProbes(mux, false)
	if d.cfg.OpsHTTP == "" {
		// Metrics on the public listener answer admins only (RequireAdmin below); --ops-http serves them apart.
		o.RegisterMetrics(mux)
	}
	// Access control (auth.go): identities loaded before the first request, reloaded by a runner.
	authn := d.authn
	if authn == nil {
		var err error
		identities := d.pool
		if identities == nil {
			identities = d.readPool // --target=gateway with --database-read-url only
		}
		if authn, err = newAuthenticator(d.cfg, identities, d.log); err != nil {
			return err
		}
	}
	if err := authn.Refresh(ctx); err != nil {
		if d.cfg.Target == "all" || d.cfg.Target == "gateway" {
			return fmt.Errorf("%w (has the database been migrated? iochub migrate)", err)
		}
		// Other roles only guard /metrics with it: start, and let Run retry.
		d.log.Warn("loading identities failed; /metrics takes only the dev and operator tokens until they load", "err", err)
	}

	built := []role{{Run: authn.Run}}
	d.authn = authn
	w := wiring{roleDeps: d, mux: mux, metrics: o.Registry}
	for _, r := range roles {
		if d.cfg.Target != "all" && d.cfg.Target != r.name {
			continue
		}
		b, err := r.build(ctx, w)
		if err != nil {
			return fmt.Errorf("building the %s: %w", r.name, err)
		}
		built = append(built, b)
		if b.Ready != nil {
			o.AddCheck(r.name, b.Ready)
		}
	}

	if d.routes != nil {
		d.routes(mux.Patterns(), opsMux.Patterns())
	}

	ln, err := net.Listen("tcp", d.cfg.HTTP)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", d.cfg.HTTP, err)
	}
	public := http.Handler(mux)
	if d.cfg.OpsHTTP == "" {
		public = gateway.RequireAdmin(authn, d.log, "/metrics", mux) // /metrics is served here: admins only
	}
	servers := []*http.Server{newHTTPServer(public, d.cfg)}
	listeners := []net.Listener{ln}
	baseURL := "http://" + ln.Addr().String()
	d.log.Info("listening", "url", baseURL, "target", d.cfg.Target)
	opsURL := ""
	if d.cfg.OpsHTTP != "" {
		oln, err := net.Listen("tcp", d.cfg.OpsHTTP)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("listening on %s (--ops-http): %w", d.cfg.OpsHTTP, err)
		}
		servers = append(servers, newHTTPServer(opsMux, d.cfg))
		listeners = append(listeners, oln)
		opsURL = "http://" + oln.Addr().String()
		d.log.Info("ops listening", "url", opsURL)
	}

	g, gctx := errgroup.WithContext(ctx)
	for _, r := range built {
		g.Go(func() error { return r.Run(gctx) })
	}
	for _, r := range d.extra {
		g.Go(func() error { return r(gctx, baseURL) })
	}
	serveHTTP(g, gctx, servers, listeners, func() {
		for _, r := range built {
			if r.Close != nil {
				r.Close()
			}
		}
	})
	if d.opsReady != nil && opsURL != "" {
		d.opsReady <- opsURL
	}
	if d.ready != nil {
		d.ready <- baseURL
	}
	err = waitBounded(gctx, g, 2*shutdownTimeout)
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// waitBounded is g.Wait, but once ctx (the group's) is done it waits at most
// d more: a role that does not stop then is reported, not waited for.
func waitBounded(ctx context.Context, g *errgroup.Group, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("the hub did not stop within %s of shutting down: %w", d, context.Cause(ctx))
	}
}

// newHTTPServer is every HTTP server of the binary: bounded headers, a bounded
// wait for the next request, a per-request deadline on the body (not the
// server's ReadTimeout, which would also cut hijacked WebSockets; those keep
// their own ping/pong deadlines), and a 400 for a path or query that is not
// text (gateway.ValidURL).
func newHTTPServer(h http.Handler, c config) *http.Server {
	return &http.Server{
		Handler:           noSniff(gateway.ValidURL(bodyDeadline(h, c.BodyTimeout))),
		ReadHeaderTimeout: c.HeaderTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}

// noSniff tells browsers to take every answer as the type it says it is: a
// JSON answer that carries a feed's or a report's text is never sniffed and
// rendered as a page.
func noSniff(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// bodyDeadline gives every request that has a body d to send it; a slower
// body fails to read (the ingest answers 408) and its connection is closed.
// A request without a body gets no deadline: net/http is then already
// reading ahead on the connection, and a deadline would end that read and
// cancel the request's context (a long GET would be cut).
func bodyDeadline(h http.Handler, d time.Duration) http.Handler {
	if d <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && r.Header.Get("Upgrade") == "" {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
		}
		h.ServeHTTP(w, r)
	})
}

// serveHTTP serves each server on its listener in g and, once gctx ends,
// runs beforeShutdown (nil: nothing) and shuts the servers down within
// shutdownTimeout. A server that stops for any reason other than its
// shutdown fails g.
func serveHTTP(g *errgroup.Group, gctx context.Context, servers []*http.Server, listeners []net.Listener, beforeShutdown func()) {
	for i, srv := range servers {
		g.Go(func() error {
			if err := srv.Serve(listeners[i]); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serving HTTP on %s: %w", listeners[i].Addr(), err)
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		if beforeShutdown != nil {
			beforeShutdown()
		}
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		var errs []error
		for _, srv := range servers {
			errs = append(errs, srv.Shutdown(sctx))
		}
		return errors.Join(errs...)
	})
}
