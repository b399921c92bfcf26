package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/pgcluster"
	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/seed"
	"github.com/iochub/iochub/internal/sim"
)

// devFlags returns the flags of "iochub dev", bound to cfg's fields.
func devFlags(cfg *config) *flag.FlagSet {
	fs := flag.NewFlagSet("iochub dev", flag.ContinueOnError)
	fs.IntVar(&cfg.NATSPort, "nats-port", cfg.NATSPort, "port of the embedded NATS server; 0 picks a free one (IOCHUB_NATS_PORT)")
	cfg.registerDatabaseURL(fs, "PostGIS database URL; empty starts a private PostgreSQL cluster under --data-dir")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory for the embedded NATS store and the private PostgreSQL cluster (IOCHUB_DATA_DIR)")
	fs.BoolVar(&cfg.ResetHubID, "reset-hub-id", cfg.ResetHubID, "start although the JetStream store and the database belong to different hubs, and give both a new hub id; nothing is deleted (IOCHUB_RESET_HUB_ID)")
	fs.BoolVar(&cfg.NoSim, "no-sim", cfg.NoSim, "do not run the simulator (IOCHUB_NO_SIM)")
	fs.DurationVar(&cfg.SimInterval, "sim-interval", cfg.SimInterval, "time between simulator rounds (IOCHUB_SIM_INTERVAL)")
	cfg.registerReadPool(fs)
	cfg.registerHub(fs)
	return fs
}

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := defaults()
	fs := devFlags(&cfg)
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
	if cfg.CheckConfig {
		fmt.Fprintf(stdout, "%+v\n", cfg.redacted())
		return nil
	}
	log := cfg.logger(stderr)
	tuneMemory(log, true)
	if cfg.DevToken == "" {
		cfg.DevToken = randomToken()
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("resolving --data-dir: %w", err)
	}
	// The private PostgreSQL cluster stays in the data dir, beside the
	// JetStream store it goes with; as root its server runs as the postgres
	// user, who must be able to enter the data dir.
	if err := pgcluster.MkdirReachable(dataDir); err != nil {
		return fmt.Errorf("creating the data dir: %w", err)
	}
	if err := cfg.devSealKey(dataDir); err != nil {
		return err
	}

	natsPort := cfg.NATSPort
	if natsPort == 0 {
		natsPort = -1
	}
	// The embedded server requires authentication: the hub's user, and a
	// read-only user for developers (docs/developers.md), with passwords
	// derived from the hub key so that they last across restarts.
	hubPW, readerPW := devNATSPassword(cfg.SealKey, natsx.HubUser), devNATSPassword(cfg.SealKey, natsx.ReaderUser)
	ns, err := natsx.StartEmbedded(natsx.EmbeddedConfig{StoreDir: filepath.Join(dataDir, "nats"), Port: natsPort, ServerName: "iochub-dev",
		HubPassword: hubPW, ReaderPassword: readerPW})
	if err != nil {
		return err
	}
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()

	dbURL, pgDir := cfg.DatabaseURL, ""
	if dbURL == "" {
		pgDir = filepath.Join(dataDir, "pg")
		cl, err := pgcluster.Start(ctx, pgcluster.Config{Dir: pgDir, Logger: log})
		if errors.Is(err, pgcluster.ErrNotTraversable) {
			// Never elsewhere (it once went to /tmp, which a reboot empties
			// while JetStream keeps its streams here).
			return fmt.Errorf("keeping the private PostgreSQL cluster in the data dir: %w; or choose a --data-dir the postgres user can reach (such as /var/lib/iochub), or pass --database-url", err)
		}
		if err != nil {
			return fmt.Errorf("starting the private PostgreSQL cluster (or pass --database-url): %w", err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := cl.Stop(sctx); err != nil {
				log.Error("stopping PostgreSQL", "err", err)
			}
		}()
		if err := cl.CreateDatabase(ctx, "iochub"); err != nil {
			return err
		}
		dbURL = cl.URL("iochub")
	}
	if err := schema.Migrate(ctx, dbURL); err != nil {
		return err
	}
	pool, err := schema.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	readPool, err := openReadPool(ctx, cfg, cfg.readURL(dbURL))
	if err != nil {
		return err
	}
	defer readPool.Close()
	nc, err := natsx.Connect(ns.ClientURL(), "iochub-dev", nats.UserInfo(natsx.HubUser, hubPW))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("opening JetStream: %w", err)
	}
	if _, err := checkHubID(ctx, js, pool, hubCheck{natsDir: filepath.Join(dataDir, "nats"), db: natsx.RedactURLs(dbURL), pgDir: pgDir,
		legacyPG: legacyPGDir(dataDir), reset: cfg.ResetHubID}, log); err != nil {
		return err
	}
	if err := seedUnits(ctx, pool, stderr); err != nil {
		return err
	}

	// The authenticator is made here so the printed wall-screen URL can carry a
	// one-time sign-in code for the dev token (auth.go).
	authn, err := newAuthenticator(cfg, pool, log)
	if err != nil {
		return err
	}
	ready := make(chan string, 1)
	opsReady := make(chan string, 1)
	d := roleDeps{cfg: cfg, log: log, nc: nc, js: js, pool: pool, readPool: readPool, ready: ready, opsReady: opsReady, authn: authn}
	if !cfg.NoSim {
		d.extra = append(d.extra, func(ctx context.Context, baseURL string) error {
			s, err := sim.New(sim.Config{BaseURL: baseURL, Token: cfg.DevToken, Interval: cfg.SimInterval, Logger: log.With("role", "sim")})
			if err != nil {
				return err
			}
			if err := s.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		})
	}
	go func() {
		select {
		case base := <-ready:
			ws := "ws" + strings.TrimPrefix(base, "http")
			signIn := ""
			if code, err := authn.MintCode(devPrincipalID); err == nil {
				signIn = "&code=" + code // one use, 10 minutes: then sign in with the dev token
			}
			ops := base
			select {
			case ops = <-opsReady: // sent before ready when --ops-http is set
			default:
			}
			fmt.Fprintf(stdout, `
iochub dev is running.
  wall screen      %s/?province=%s%s
  ingest           POST %s/v1/feeds/{traffic|air|alert}   (Authorization: Bearer %s)
  live WebSocket   %s/v1/live?province=%s   (Authorization: Bearer %s)
  health           %s/healthz  %s/readyz  %s/metrics (admin, unless on --ops-http)
  NATS             %s   (user %s: every right)
  NATS reader      %s   (read-only: FEEDS, STATE, ROLLUPS; see docs/developers.md)
  PostGIS          %s
  dev token        %s
  simulator        %s
  (the wall screen's code signs one browser in, once, within 10 minutes; after that sign in with the dev token)
Press Ctrl-C to stop.
`, base, cfg.Province, signIn, base, cfg.DevToken, ws, cfg.Province, cfg.DevToken, ops, ops, ops, natsUserURL(ns.ClientURL(), natsx.HubUser, hubPW), natsx.HubUser,
				natsUserURL(ns.ClientURL(), natsx.ReaderUser, readerPW), natsx.RedactURLs(dbURL), cfg.DevToken, onOff(!cfg.NoSim))
		case <-ctx.Done():
		}
	}()
	return serveRoles(ctx, d)
}

// legacyPGDir is where dev kept the PostgreSQL cluster of dataDir when run
// as root from a directory the postgres user could not enter; only named in
// messages now, so that its data can be moved back into the data dir.
func legacyPGDir(dataDir string) string {
	sum := sha256.Sum256([]byte(dataDir))
	return filepath.Join(os.TempDir(), "iochub-pg-"+hex.EncodeToString(sum[:6]))
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off (--no-sim)"
}

func randomToken() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return "dev_" + base64.RawURLEncoding.EncodeToString(b)
}

// seedUnits loads the national unit VN, the 63 provinces valid until
// 2025-06-30, the 2025 provinces and Hà Nội's wards when the database has no
// units yet.
func seedUnits(ctx context.Context, pool *pgxpool.Pool, stderr io.Writer) error {
	switch has, err := schema.HasUnits(ctx, pool); {
	case err != nil:
		return err
	case has:
		return nil
	}
	// VN first, then the map before 2025 (63 provinces, until 2025-06-30),
	// so that the 2025 provinces get VN as their parent.
	if err := schema.EnsureNational(ctx, pool); err != nil {
		return err
	}
	n, err := schema.ImportPre2025Provinces(ctx, pool, seed.ProvincesPre2025(), seed.ProvinceMerges2025())
	if err != nil {
		return fmt.Errorf("loading the 63 provinces (before 2025-07-01): %w", err)
	}
	fmt.Fprintf(stderr, "loaded the 63 provinces (before 2025-07-01): %d new\n", n)
	for _, f := range []struct {
		name string
		data []byte
	}{{"34 provinces (2025)", seed.Provinces2025()}, {"Hà Nội wards (2025)", seed.HanoiWards2025()}} {
		res, err := schema.ImportUnits(ctx, pool, bytes.NewReader(f.data), schema.ImportOptions{Progress: progress(stderr, f.name)})
		if err != nil {
			return fmt.Errorf("loading %s: %w", f.name, err)
		}
		fmt.Fprintf(stderr, "\rloaded %s: %d read, %d new, %d unchanged\n", f.name, res.Read, res.Inserted, res.Unchanged)
	}
	return nil
}

// progress prints "name: done/total" on one line, at most every 100 ms.
func progress(w io.Writer, name string) func(done, total int) {
	var last time.Time
	return func(done, total int) {
		if done != total && time.Since(last) < 100*time.Millisecond {
			return
		}
		last = time.Now()
		if total > 0 {
			fmt.Fprintf(w, "\rimporting %s: %d/%d", name, done, total)
		} else {
			fmt.Fprintf(w, "\rimporting %s: %d", name, done)
		}
	}
}

// devNATSPassword is the password of user on dev's embedded NATS server,
// derived from the hub key (hex or base64 text, as configured) so that it
// stays the same across restarts of the same data dir.
func devNATSPassword(sealKey, user string) string {
	m := hmac.New(sha256.New, []byte(sealKey))
	m.Write([]byte("iochub dev nats password v1 " + user))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// natsUserURL is clientURL (nats://host:port) with user and password in it.
func natsUserURL(clientURL, user, password string) string {
	u, err := url.Parse(clientURL)
	if err != nil {
		return clientURL
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}
