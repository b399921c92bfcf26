// Package testenv gives integration tests real servers: an in-process NATS
// server with JetStream and the iochub streams, and a fresh PostGIS database
// per test with every migration applied (optionally with the seed units).
//
// Databases come from the server named by IOCHUB_TEST_DATABASE_URL or, when
// it is unset, from one private PostgreSQL cluster per test process, started
// on first use with the system's binaries. Packages that use PostGIS should
// call Main from TestMain so the cluster is stopped when the tests end:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// Without it the cluster is still stopped and removed, by its watchdog, once
// the test process has exited.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/pgcluster"
	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/seed"
	"github.com/iochub/iochub/internal/testkit"
)

// EnvDatabaseURL names the environment variable holding the URL of a
// PostgreSQL server with PostGIS to use instead of a private cluster. The
// user must be allowed to create databases; the database in the URL is only
// used to create and drop the test databases.
const EnvDatabaseURL = "IOCHUB_TEST_DATABASE_URL"

// setupTimeout bounds the start of servers and the creation of databases.
const setupTimeout = 3 * time.Minute

// NATSEnv is an in-process NATS server with JetStream and the FEEDS and
// STATE streams, and a connection to it.
type NATSEnv struct {
	URL    string
	Server *server.Server
	Conn   *nats.Conn
	JS     jetstream.JetStream
}

// NATS starts a NATS server for t, storing JetStream files in t.TempDir();
// everything is closed at the end of the test.
func NATS(t testing.TB) *NATSEnv {
	t.Helper()
	return NATSMaxPayload(t, 0)
}

// NATSMaxPayload is NATS with a server whose max payload is maxPayload
// bytes (0: the hub's 8 MiB).
func NATSMaxPayload(t testing.TB, maxPayload int32) *NATSEnv {
	t.Helper()
	s, err := natsx.StartEmbedded(natsx.EmbeddedConfig{StoreDir: t.TempDir(), Port: -1, MaxPayload: maxPayload})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return HubOn(t, s)
}

// HubOn is the NATSEnv of a server s the test started and configured
// itself: a connection (as the hub's user when hubPassword is given) and
// the hub's streams and import buckets. The connection is closed at the
// end of the test, before the server's shutdown if the caller registered
// that first.
func HubOn(t testing.TB, s *server.Server, hubPassword ...string) *NATSEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	var opts []nats.Option
	if len(hubPassword) > 0 {
		opts = append(opts, nats.UserInfo(natsx.HubUser, hubPassword[0]))
	}
	env := &NATSEnv{URL: s.ClientURL(), Server: s}
	var err error
	if env.Conn, err = natsx.Connect(env.URL, "testenv "+t.Name(), opts...); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(env.Conn.Close)
	if env.JS, err = jetstream.New(env.Conn); err != nil {
		t.Fatalf("testenv: creating JetStream context: %v", err)
	}
	if err := natsx.EnsureStreams(ctx, env.JS, natsx.StreamOptions{}); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := natsx.EnsureImportBuckets(ctx, env.JS, natsx.StreamOptions{}); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return env
}

// DBEnv is a database of one test.
type DBEnv struct {
	// URL connects to the database.
	URL string
	// Name of the database.
	Name string
	// Pool is open on it with the PostGIS codec registered (schema.Open).
	Pool *pgxpool.Pool
}

// dbServer is the PostgreSQL server of this test process and its templates.
type dbServer struct {
	base     *url.URL      // URL of the maintenance database
	admin    *pgxpool.Pool // creates and drops databases
	cluster  *pgcluster.Cluster
	template string // migrated
}

var (
	srvOnce sync.Once
	srv     *dbServer
	srvErr  error

	unitsOnce     sync.Once
	unitsTemplate string
	unitsErr      error
)

// PostGIS gives t a new database with every migration applied, dropped at the
// end of the test. It fails the test when no PostgreSQL with PostGIS is
// available and the environment variable CI is set, and skips it otherwise.
func PostGIS(t testing.TB) *DBEnv {
	t.Helper()
	s := server0(t)
	return newDB(t, s, s.template)
}

// PostGISWithUnits is PostGIS with the 34 provinces and Hà Nội's 126 wards
// of the 2025 map already in admin_unit: they are imported once per test
// process into a template, so each test pays only for a copy.
func PostGISWithUnits(t testing.TB) *DBEnv {
	t.Helper()
	s := server0(t)
	unitsOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		name := "iochub_tplu_" + suffix()
		if err := s.createDB(ctx, name, s.template); err != nil {
			unitsErr = err
			return
		}
		pool, err := schema.Open(ctx, s.dbURL(name))
		if err != nil {
			unitsErr = err
			return
		}
		defer pool.Close()
		if err := importSeedUnits(ctx, pool); err != nil {
			unitsErr = err
			return
		}
		unitsTemplate = name
	})
	if unitsErr != nil {
		t.Fatalf("testenv: preparing the units template: %v", unitsErr)
	}
	return newDB(t, s, unitsTemplate)
}

// WithUnits imports the 34 provinces and Hà Nội's 126 wards of the 2025 map
// into db (with schema.ImportUnits). PostGISWithUnits is cheaper when a test
// needs them from the start.
func WithUnits(t testing.TB, db *DBEnv) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if err := importSeedUnits(ctx, db.Pool); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

func importSeedUnits(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := schema.ImportUnits(ctx, pool, bytes.NewReader(seed.Provinces2025()), schema.ImportOptions{}); err != nil {
		return fmt.Errorf("importing the seed provinces: %w", err)
	}
	if _, err := schema.ImportUnits(ctx, pool, bytes.NewReader(seed.HanoiWards2025()), schema.ImportOptions{}); err != nil {
		return fmt.Errorf("importing the seed wards of Hà Nội: %w", err)
	}
	return nil
}

// Main runs the tests of a package and then stops the private PostgreSQL
// cluster (or drops the templates on the server of IOCHUB_TEST_DATABASE_URL).
// Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if err := shutdown(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func shutdown() error {
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	var errs []error
	if srv.cluster == nil { // a shared server: leave it as found
		for _, name := range []string{unitsTemplate, srv.template} {
			if name != "" {
				errs = append(errs, srv.dropDB(ctx, name))
			}
		}
	}
	srv.admin.Close()
	if srv.cluster != nil {
		errs = append(errs, srv.cluster.Stop(ctx))
	}
	srv = nil
	return errors.Join(errs...)
}

// server0 starts or finds the server of this process, once.
func server0(t testing.TB) *dbServer {
	t.Helper()
	srvOnce.Do(func() { srv, srvErr = startServer() })
	if srvErr != nil {
		if errors.Is(srvErr, pgcluster.ErrNoPostgres) || errors.Is(srvErr, pgcluster.ErrNoPostGIS) {
			if os.Getenv("CI") != "" {
				t.Fatalf("testenv: PostgreSQL with PostGIS is required under CI: %v", srvErr)
			}
			t.Skipf("testenv: skipping, no PostgreSQL with PostGIS (%v); or set %s", srvErr, EnvDatabaseURL)
		}
		t.Fatalf("testenv: %v", srvErr)
	}
	if srv == nil {
		t.Fatal("testenv: the database server was stopped (testenv.Main has returned)")
	}
	return srv
}

func startServer() (*dbServer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	s := &dbServer{}
	raw := os.Getenv(EnvDatabaseURL)
	if raw == "" {
		dir, err := os.MkdirTemp("", "iochub-testpg-")
		if err != nil {
			return nil, fmt.Errorf("creating the PostgreSQL directory: %w", err)
		}
		c, err := pgcluster.Start(ctx, pgcluster.Config{Dir: dir, Fast: true, Ephemeral: true})
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		s.cluster = c
		raw = c.URL("postgres")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("%s must be a postgres:// URL, got %q", EnvDatabaseURL, raw)
	}
	s.base = u
	if s.admin, err = pgxpool.New(ctx, raw); err != nil {
		s.stop()
		return nil, fmt.Errorf("connecting to %s: %w", u.Redacted(), err)
	}
	if err := s.admin.Ping(ctx); err != nil {
		s.stop()
		return nil, fmt.Errorf("connecting to %s: %w", u.Redacted(), err)
	}
	name := "iochub_tpl_" + suffix()
	if err := s.createDB(ctx, name, ""); err != nil {
		s.stop()
		return nil, err
	}
	if err := schema.Migrate(ctx, s.dbURL(name)); err != nil {
		_ = s.dropDB(ctx, name)
		s.stop()
		return nil, fmt.Errorf("migrating the template database: %w", err)
	}
	s.template = name
	return s, nil
}

func (s *dbServer) stop() {
	if s.admin != nil {
		s.admin.Close()
	}
	if s.cluster != nil {
		_ = s.cluster.Stop(context.Background())
	}
}

func newDB(t testing.TB, s *dbServer, template string) *DBEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	name := "t_" + suffix()
	if err := s.createDB(ctx, name, template); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	env := &DBEnv{URL: s.dbURL(name), Name: name}
	t.Cleanup(func() {
		if env.Pool != nil {
			env.Pool.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		if err := s.dropDB(ctx, name); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	pool, err := schema.Open(ctx, env.URL)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	env.Pool = pool
	return env
}

func (s *dbServer) createDB(ctx context.Context, name, template string) error {
	q := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		q += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if err := s.adminExec(ctx, q); err != nil {
		return fmt.Errorf("creating database %s: %w", name, err)
	}
	return nil
}

func (s *dbServer) dropDB(ctx context.Context, name string) error {
	if err := s.adminExec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("dropping database %s: %w", name, err)
	}
	return nil
}

// adminExec runs q on the admin pool, again on a fresh connection when the
// pooled one turns out closed (the server ended it, or an earlier cancelled
// statement did); a statement the server refused is not retried. The last
// error carries the private cluster's log tail, to show why.
func (s *dbServer) adminExec(ctx context.Context, q string) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if _, err = s.admin.Exec(ctx, q); err == nil {
			return nil
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) || ctx.Err() != nil {
			break
		}
	}
	if s.cluster != nil {
		return fmt.Errorf("%w%s", err, s.cluster.LogTail())
	}
	return err
}

func (s *dbServer) dbURL(name string) string {
	u := *s.base
	u.Path = "/" + name
	u.RawPath = ""
	return u.String()
}

// suffix makes database names unique across tests and test processes.
func suffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Lines returns what q, a query of one text column, returns, one string a
// row; it fails the test on an error.
func Lines(t testing.TB, pool *pgxpool.Pool, q string, args ...any) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), q, args...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// WaitForLockWaiter waits until a session of pool's database waits for a
// lock (pg_stat_activity), as who (the work under test, started beside a
// transaction that holds what it needs) should. It fails t when ended
// reports that who ended first (with what it says of it), or after 30 s.
func WaitForLockWaiter(t testing.TB, pool *pgxpool.Pool, who string, ended func() (bool, string)) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var waiting int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			return
		}
		if done, what := ended(); done {
			t.Fatalf("%s ended before it waited for the lock: %s", who, what)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never waited for the lock", who)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// HoldUnitsImport imports geojson with opts in a transaction of pool and
// leaves it open, holding the imports' lock (schema.ImportUnitsTx); commit
// commits it. It is rolled back at the end of the test otherwise.
func HoldUnitsImport(t testing.TB, pool *pgxpool.Pool, geojson string, opts schema.ImportOptions) (commit func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(ctx) }) // a no-op after Commit
	if _, err := schema.ImportUnitsTx(ctx, tx, strings.NewReader(geojson), opts); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// WhileHeld runs f (who) beside a transaction of pool's database that holds
// what f needs, waits until f waits for its lock (WaitForLockWaiter; t fails
// with describe of f's result if f ends first), then calls commit and
// returns f's result.
func WhileHeld[T any](t testing.TB, pool *pgxpool.Pool, who string, commit func(), f func() T, describe func(T) string) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	WaitForLockWaiter(t, pool, who, func() (bool, string) {
		select {
		case got := <-done:
			done <- got // kept for the return, should t not stop
			return true, describe(got)
		default:
			return false, ""
		}
	})
	commit()
	return <-done
}

// LeafHub starts a hub's NATS server for t with a leaf-node listener on a
// free port, the hub user's hubPassword and leafUsers (edges, province
// hubs, each leaf connections only), connects to it as the hub user, makes
// the streams, and opens a testkit.LinkProxy to its leaf-node listener (the
// link a test cuts). Everything is closed at the end of the test.
func LeafHub(t testing.TB, hubPassword string, leafUsers ...*server.User) (*NATSEnv, *testkit.LinkProxy) {
	t.Helper()
	s, err := natsx.StartEmbedded(natsx.EmbeddedConfig{StoreDir: t.TempDir(), Port: -1, LeafPort: -1, HubPassword: hubPassword, LeafUsers: leafUsers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	env := HubOn(t, s, hubPassword)
	leaf, err := url.Parse(natsx.LeafURL(s))
	if err != nil {
		t.Fatal(err)
	}
	return env, testkit.NewLinkProxy(t, leaf.Host)
}
