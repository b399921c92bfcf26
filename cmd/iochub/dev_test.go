package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/pgcluster"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
	"github.com/iochub/iochub/services/aggregator/postgis"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestHubID: the JetStream store and the database get one hub id at first
// start, and a later start with a new or foreign half is refused.
func TestHubID(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	n1, n2 := testenv.NATS(t), testenv.NATS(t)
	db1, db2 := testenv.PostGIS(t), testenv.PostGIS(t)
	check := func(n *testenv.NATSEnv, db *testenv.DBEnv, hc hubCheck) (string, error) {
		hc.natsDir, hc.db = "NATSDIR", "DB"
		return checkHubID(ctx, n.JS, db.Pool, hc, log)
	}
	id, err := check(n1, db1, hubCheck{})
	if err != nil || id == "" {
		t.Fatalf("first start: %q %v", id, err)
	}
	if again, err := check(n1, db1, hubCheck{}); err != nil || again != id {
		t.Fatalf("second start: %q %v; want %q", again, err, id)
	}
	mismatch := func(name string, got error, want string) {
		t.Helper()
		if !errors.Is(got, errHubMismatch) || !strings.Contains(got.Error(), want) || !strings.Contains(got.Error(), "--reset-hub-id") {
			t.Errorf("%s: got %v; want errHubMismatch saying %q and how to go on", name, got, want)
		}
	}
	_, err = check(n1, db2, hubCheck{})
	mismatch("new database", err, "the JetStream store in NATSDIR belongs to hub "+id+" but the database DB has no hub id")
	_, err = check(n2, db1, hubCheck{})
	mismatch("new JetStream store", err, "the database DB belongs to hub "+id+" but the JetStream store in NATSDIR has no hub id")

	// --reset-hub-id gives both a new id, and they match from then on.
	id2, err := check(n2, db1, hubCheck{reset: true})
	if err != nil || id2 == id {
		t.Fatalf("reset: %q %v; want a new id", id2, err)
	}
	if again, err := check(n2, db1, hubCheck{}); err != nil || again != id2 {
		t.Fatalf("after reset: %q %v; want %q", again, err, id2)
	}
	_, err = check(n1, db1, hubCheck{})
	mismatch("two hubs", err, "the database DB belongs to hub "+id2+" but the JetStream store in NATSDIR to hub "+id)

	// Data from before hub ids: streams with events and a new database (the
	// database was in /tmp, emptied by a reboot).
	n3, db3 := testenv.NATS(t), testenv.PostGIS(t)
	if _, err := n3.JS.Publish(ctx, subjects.Feed("01", "00070", "air"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	legacy := t.TempDir()
	_, err = check(n3, db3, hubCheck{legacyPG: legacy, pgDir: "/data/pg"})
	mismatch("events and a new database", err, "the JetStream store in NATSDIR holds events but the database DB is new")
	if err != nil && !strings.Contains(err.Error(), "mv "+legacy+" /data/pg") {
		t.Errorf("got %v; want the way to move the old cluster back", err)
	}
	// The same streams with a database that has data: adopted.
	testenv.WithUnits(t, db3)
	if _, err := check(n3, db3, hubCheck{}); err != nil {
		t.Errorf("events and a database with data, no ids: %v; want adopted", err)
	}
	if got, _ := postgis.HubID(ctx, db3.Pool); got == "" {
		t.Error("no hub id recorded in the database")
	}
}

func requireClusterBinaries(t *testing.T) {
	t.Helper()
	if _, err := pgcluster.FindBinaries(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL is required under CI: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
}

// TestDevDataDir runs `iochub dev` as the tests run here, as root: its
// PostgreSQL cluster must stay in the data dir (it went to /tmp), a restart
// must find it, and a data dir that lost its database must be refused.
func TestDevDataDir(t *testing.T) {
	requireClusterBinaries(t)
	top := t.TempDir()
	// t.TempDir's parent is private to its user; what lies below is the test's.
	if err := os.Chmod(filepath.Dir(top), 0o711); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(top, "home", "data")
	// dev starts iochub dev and waits for its banner; running is false when it exited instead.
	dev := func(extra ...string) (stop func() (string, error), running bool, out string, err error) {
		ctx, cancel := context.WithCancel(context.Background())
		var stdout, stderr testkit.LockedBuffer
		done := make(chan error, 1)
		args := append([]string{"--data-dir", dataDir, "--http", "127.0.0.1:0", "--nats-port", "0", "--no-sim",
			"--log-level", "warn", "--ops-http", "127.0.0.1:0"}, extra...)
		go func() { done <- runDev(ctx, args, &stdout, &stderr) }()
		deadline := time.After(3 * time.Minute)
		for !strings.Contains(stdout.String(), "Press Ctrl-C") {
			select {
			case err := <-done:
				cancel()
				return nil, false, stdout.String() + stderr.String(), err
			case <-deadline:
				cancel()
				t.Fatalf("dev did not start in 3 minutes:\n%s", stderr.String())
			case <-time.After(50 * time.Millisecond):
			}
		}
		return func() (string, error) {
			cancel()
			return stderr.String(), <-done
		}, true, stdout.String(), nil
	}

	stop, running, out, err := dev()
	if !running {
		t.Fatalf("first start: %v\n%s", err, out)
	}
	if !strings.Contains(out, "/metrics") {
		t.Errorf("banner without /metrics: %s", out)
	}
	checkDevReader(t, out)
	errOut, err := stop()
	if err != nil {
		t.Fatalf("stopping dev: %v\n%s", err, errOut)
	}
	// The first start seeds both maps: the 63 provinces before 2025-07-01 too.
	if !strings.Contains(errOut, "loaded the 63 provinces (before 2025-07-01): 63 new") {
		t.Errorf("first start did not load the 63 pre-2025 provinces:\n%s", errOut)
	}
	fi, err := os.Stat(filepath.Join(dataDir, "pg", "PG_VERSION"))
	if err != nil {
		t.Fatalf("the PostgreSQL cluster is not in the data dir: %v", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 && st.Uid == 0 {
		t.Error("the cluster's files belong to root; want the postgres user")
	}
	if _, err := os.Stat(legacyPGDir(dataDir)); err == nil {
		t.Errorf("%s exists: the cluster went outside the data dir", legacyPGDir(dataDir))
	}

	stop, running, out, err = dev()
	if !running {
		t.Fatalf("restart: %v\n%s", err, out)
	}
	if errOut, err := stop(); err != nil {
		t.Fatalf("stopping dev: %v\n%s", err, errOut)
	}

	// A data dir whose database is gone (as /tmp after a reboot): refused,
	// saying how to go on.
	if err := os.RemoveAll(filepath.Join(dataDir, "pg")); err != nil {
		t.Fatal(err)
	}
	if _, running, out, err = dev(); running || !errors.Is(err, errHubMismatch) || !strings.Contains(err.Error(), "--reset-hub-id") {
		t.Fatalf("start with a new database: running=%v err=%v\n%s; want errHubMismatch", running, err, out)
	}
	stop, running, out, err = dev("--reset-hub-id")
	if !running {
		t.Fatalf("start with --reset-hub-id: %v\n%s", err, out)
	}
	if errOut, err := stop(); err != nil {
		t.Fatalf("stopping dev: %v\n%s", err, errOut)
	}
}

// TestDevDataDirUnreachable: as root, a data dir under a directory the
// postgres user cannot enter is an error saying how to fix it, not a
// cluster kept elsewhere.
func TestDevDataDirUnreachable(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI runs the tests as root: only root runs the cluster as another user, which this test checks")
		}
		t.Skip("only root runs the cluster as another user")
	}
	requireClusterBinaries(t)
	private := filepath.Join(t.TempDir(), "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(private, "data")
	// Bounded: a dev that starts anyway would otherwise run until the test times out.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out testkit.LockedBuffer
	err := run(ctx, []string{"dev", "--data-dir", dataDir, "--http", "127.0.0.1:0", "--nats-port", "0", "--no-sim"}, &out, &out)
	if !errors.Is(err, pgcluster.ErrNotTraversable) || !strings.Contains(err.Error(), "chmod o+x "+private) {
		t.Fatalf("got %v; want ErrNotTraversable naming `chmod o+x %s`", err, private)
	}
	if _, err := os.Stat(legacyPGDir(dataDir)); err == nil {
		t.Errorf("%s exists: the cluster went outside the data dir", legacyPGDir(dataDir))
	}
}

// checkDevReader connects as the NATS reader printed in dev's banner: it
// reads the stream FEEDS, and its publishing on ioc.feed is refused.
func checkDevReader(t *testing.T, banner string) {
	t.Helper()
	m := regexp.MustCompile(`NATS reader +(nats://reader:\S+)`).FindStringSubmatch(banner)
	if m == nil {
		t.Fatalf("banner without the NATS reader's URL:\n%s", banner)
	}
	nc, err := nats.Connect(m[1])
	if err != nil {
		t.Fatalf("connecting as the reader: %v", err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.Stream(ctx, subjects.StreamFeeds); err != nil {
		t.Errorf("the reader reading FEEDS' info: %v", err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	defer pcancel()
	if _, err := js.Publish(pctx, subjects.Feed("01", "00070", "air"), []byte("{}")); err == nil {
		t.Error("the reader published on FEEDS")
	}
}
