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
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/ops"
	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/services/aggregator"
	"github.com/iochub/iochub/services/aggregator/postgis"
	"github.com/iochub/iochub/services/aggregator/rules"
	"github.com/iochub/iochub/services/gateway"
	"github.com/iochub/iochub/services/ingest"
	"github.com/iochub/iochub/web"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := defaults()
	cfg.HTTP = ":8080"
	cfg.NATSURL = nats.DefaultURL
	fs := flag.NewFlagSet("iochub serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.bind(fs, "http", "ops-http", "limits", "nats-url", "database-url", "target", "dev-token", "log", "check-config", "seal-key", "operator-token")
	cfg.bindAuth(fs)
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
	return serveRoles(ctx, roleDeps{cfg: cfg, log: log, nc: nc, js: js, pool: pool})
}

// roleDeps is what the roles are wired from.
type roleDeps struct {
	cfg  config
	log  *slog.Logger
	nc   *nats.Conn
	js   jetstream.JetStream
	pool *pgxpool.Pool
	// ready receives the base URL once the HTTP server listens; optional.
	ready chan<- string
	// opsReady receives the ops listener's base URL (with --ops-http); optional.
	opsReady chan<- string
	// extra runs beside the roles (the simulator in dev).
	extra []func(ctx context.Context, baseURL string) error
	// authn is the access control; nil builds one from cfg (newAuthenticator).
	authn *auth.Authenticator
}

// serveRoles creates the streams, wires the roles of cfg.Target onto one HTTP
// server and runs them until ctx ends or one fails.
func serveRoles(ctx context.Context, d roleDeps) error {
	if err := natsx.EnsureStreams(ctx, d.js, natsx.StreamOptions{}); err != nil {
		return err
	}
	o := ops.New()
	o.AddCheck("nats", func(context.Context) error {
		if s := d.nc.Status(); s != nats.CONNECTED {
			return fmt.Errorf("NATS connection is %s", s)
		}
		return nil
	})
	if d.pool != nil {
		o.AddCheck("postgis", func(ctx context.Context) error { return d.pool.Ping(ctx) })
	}
	mux := http.NewServeMux()
	opsMux := http.NewServeMux()
	o.Register(opsMux)
	if d.cfg.OpsHTTP == "" {
		// Metrics on the public listener answer admins only (RequireAdmin below); --ops-http serves them apart.
		o.Register(mux)
	} else {
		// Probes may still reach the public listener; /metrics is served only on the ops one.
		mux.Handle("GET /healthz", opsMux)
		mux.Handle("GET /readyz", opsMux)
	}
	// Access control (auth.go): identities loaded before the first request, reloaded by a runner.
	authn := d.authn
	if authn == nil {
		var err error
		if authn, err = newAuthenticator(d.cfg, d.pool, d.log); err != nil {
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

	runners := []func(context.Context) error{authn.Run}
	var gw *gateway.Gateway
	want := func(role string) bool { return d.cfg.Target == "all" || d.cfg.Target == role }
	if want("ingest") {
		if d.pool == nil {
			return errors.New("the ingest needs --database-url to read units and sources")
		}
		sealKey, err := d.cfg.sealKey()
		if err != nil {
			return err
		}
		in, err := ingest.New(ingest.Config{DevToken: d.cfg.DevToken, SealKey: sealKey, Limits: d.cfg.ingestLimits(), AlertScope: d.cfg.AlertScope}, ingest.Deps{JS: d.js, Pool: d.pool, Logger: d.log.With("role", "ingest"), Metrics: o.Registry})
		if err != nil {
			return err
		}
		// Load units and sources before the first request, so a started ingest never answers 503 for them.
		if err := in.Refresh(ctx); err != nil {
			return err
		}
		in.Register(mux)
		runners = append(runners, in.Run)
	}
	if want("aggregator") {
		agg, err := aggregator.New(aggregator.Config{ReportSweepInterval: d.cfg.ReportSweep}, aggregator.Deps{JS: d.js, Store: postgis.NewStore(d.pool), Pool: d.pool, Logger: d.log.With("role", "aggregator"), Metrics: o.Registry})
		if err != nil {
			return err
		}
		runners = append(runners, agg.Run)
		// Alert rules: the engine reads STATE and raises alerts on FEEDS; rule
		// changes arrive as actions, which nudge the engine to reload.
		eng, err := rules.New(rules.Config{}, rules.Deps{JS: d.js, Store: postgis.NewStore(d.pool), Logger: d.log.With("role", "rules"), Metrics: o.Registry})
		if err != nil {
			return err
		}
		put, del := aggregator.RuleActions(eng.Notify)
		if err := agg.RegisterAction(aggregator.ActionRulePut, put); err != nil {
			return err
		}
		if err := agg.RegisterAction(aggregator.ActionRuleDelete, del); err != nil {
			return err
		}
		create, revoke := aggregator.IdentityActions()
		if err := errors.Join(agg.RegisterAction(aggregator.ActionIdentityCreate, create), agg.RegisterAction(aggregator.ActionIdentityRevoke, revoke)); err != nil {
			return err
		}
		runners = append(runners, eng.Run)
	}
	if want("gateway") {
		var err error
		gw, err = gateway.New(d.cfg.gatewayConfig(), gateway.Deps{JS: d.js, Pool: d.pool, Static: web.FS(), Logger: d.log.With("role", "gateway"), Metrics: o.Registry, Auth: authn})
		if err != nil {
			return err
		}
		gw.Register(mux)
		gw.RegisterOperator(mux, gateway.OperatorConfig{})
		runners = append(runners, gw.Run)
	}

	ln, err := net.Listen("tcp", d.cfg.HTTP)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", d.cfg.HTTP, err)
	}
	public := http.Handler(mux)
	if d.cfg.OpsHTTP == "" {
		public = gateway.RequireAdmin(authn, "/metrics", mux) // /metrics is served here: admins only
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
	for _, r := range runners {
		g.Go(func() error { return r(gctx) })
	}
	for _, r := range d.extra {
		g.Go(func() error { return r(gctx, baseURL) })
	}
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
		if gw != nil {
			gw.Close() // hijacked WebSockets are not closed by Shutdown
		}
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var errs []error
		for _, srv := range servers {
			errs = append(errs, srv.Shutdown(sctx))
		}
		return errors.Join(errs...)
	})
	if d.opsReady != nil && opsURL != "" {
		d.opsReady <- opsURL
	}
	if d.ready != nil {
		d.ready <- baseURL
	}
	err = g.Wait()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// newHTTPServer is every HTTP server of the binary: bounded headers, a bounded
// wait for the next request, and a per-request deadline on the body (not the
// server's ReadTimeout, which would also cut hijacked WebSockets; those keep
// their own ping/pong deadlines).
func newHTTPServer(h http.Handler, c config) *http.Server {
	return &http.Server{
		Handler:           bodyDeadline(h, c.BodyTimeout),
		ReadHeaderTimeout: c.HeaderTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
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

// ingestLimits maps the flags (0 means no limit) onto ingest.Limits (0 means
// the default, negative no limit).
func (c config) ingestLimits() ingest.Limits {
	off := func(n int) int {
		if n <= 0 {
			return -1
		}
		return n
	}
	l := ingest.Limits{
		SourceConcurrency: off(c.SourceConcurrency),
		SourceRate:        c.SourceRate,
		SourceBurst:       c.SourceBurst,
		MaxConcurrent:     off(c.MaxConcurrent),
		MaxSources:        max(10000, 2*c.MaxConcurrent),
		BodyTimeout:       c.BodyTimeout,
	}
	if l.SourceRate <= 0 {
		l.SourceRate = -1
	}
	if l.BodyTimeout <= 0 {
		l.BodyTimeout = -1
	}
	return l
}
