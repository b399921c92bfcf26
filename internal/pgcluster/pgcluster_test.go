package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iochub/iochub/internal/testkit"
)

func TestFindBinaries(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no pg_config to fall back on
	tool := func(t *testing.T, dir, name string) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		setup   func(t *testing.T, lib, share string)
		wantErr error
		wantBin string
	}{
		{"nothing installed", func(t *testing.T, lib, share string) {}, ErrNoPostgres, ""},
		{"initdb missing", func(t *testing.T, lib, share string) {
			tool(t, filepath.Join(lib, "15", "bin"), "postgres")
			tool(t, filepath.Join(lib, "15", "bin"), "pg_ctl")
		}, ErrNoPostgres, ""},
		{"no postgis", func(t *testing.T, lib, share string) {
			for _, n := range []string{"initdb", "pg_ctl", "postgres"} {
				tool(t, filepath.Join(lib, "15", "bin"), n)
			}
			if err := os.MkdirAll(filepath.Join(share, "15", "extension"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, ErrNoPostGIS, ""},
		{"highest version wins", func(t *testing.T, lib, share string) {
			for _, v := range []string{"9.6", "15", "13"} {
				for _, n := range []string{"initdb", "pg_ctl", "postgres"} {
					tool(t, filepath.Join(lib, v, "bin"), n)
				}
				tool(t, filepath.Join(share, v, "extension"), "postgis.control")
			}
		}, nil, "15"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lib, share := t.TempDir(), t.TempDir()
			tt.setup(t, lib, share)
			b, err := findBinaries(lib, share)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v; want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if want := filepath.Join(lib, tt.wantBin, "bin"); b.BinDir != want {
				t.Errorf("got BinDir %s; want %s", b.BinDir, want)
			}
			if want := filepath.Join(share, tt.wantBin); b.ShareDir != want {
				t.Errorf("got ShareDir %s; want %s", b.ShareDir, want)
			}
		})
	}
}

func TestErrorsCarryInstallHint(t *testing.T) {
	for _, err := range []error{ErrNoPostgres, ErrNoPostGIS} {
		if got := err.Error(); !strings.Contains(got, "apt-get install postgresql-15 postgresql-15-postgis-3") || !strings.Contains(got, "make deps") {
			t.Errorf("got %q; want the install hint", got)
		}
	}
}

// clusterDir is a fresh directory the postgres user can reach even when the
// test runs as root (t.TempDir's parent is private to the test's user).
func clusterDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "pg")
}

func requirePostgres(t *testing.T) {
	t.Helper()
	if _, err := FindBinaries(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL is required under CI: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
}

func TestStartCreateDatabaseStop(t *testing.T) {
	requirePostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := clusterDir(t)

	c, err := Start(ctx, Config{Dir: dir, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = c.Stop(context.Background())
		}
	})
	if c.Port() == 0 {
		t.Fatal("got port 0; want the picked port")
	}
	if err := c.CreateDatabase(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateDatabase(ctx, "demo"); err != nil {
		t.Fatalf("creating an existing database again: got %v; want nil", err)
	}
	conn, err := pgx.Connect(ctx, c.URL("demo"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE EXTENSION postgis"); err != nil {
		t.Fatal(err)
	}
	var area float64
	if err := conn.QueryRow(ctx, "SELECT ST_Area('POLYGON((0 0,2 0,2 3,0 3,0 0))'::geometry)").Scan(&area); err != nil {
		t.Fatal(err)
	}
	if area != 6 {
		t.Errorf("got area %v; want 6", area)
	}
	conn.Close(ctx)

	// A second Start on the same directory finds the running server.
	again, err := Start(ctx, Config{Dir: dir, Port: c.Port() + 1})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Reused() || again.Port() != c.Port() {
		t.Errorf("got reused=%v port=%d; want reused=true port=%d", again.Reused(), again.Port(), c.Port())
	}

	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if conn, err := pgx.Connect(ctx, c.URL("demo")); err == nil {
		conn.Close(ctx)
		t.Fatal("connecting after Stop: got nil error; want refused")
	}

	// Restarting keeps the data: the database and its extension are still there.
	c2, err := Start(ctx, Config{Dir: dir, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c2.Stop(ctx); err != nil {
			t.Error(err)
		}
	}()
	if c2.Reused() {
		t.Error("got reused=true after Stop; want a fresh start")
	}
	conn, err = pgx.Connect(ctx, c2.URL("demo"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var ext string
	if err := conn.QueryRow(ctx, "SELECT extname FROM pg_extension WHERE extname = 'postgis'").Scan(&ext); err != nil {
		t.Fatalf("postgis after restart: %v", err)
	}
}

func TestEphemeralRemovesDir(t *testing.T) {
	requirePostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := clusterDir(t)
	c, err := Start(ctx, Config{Dir: dir, Fast: true, Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat after Stop: got %v; want not exist", err)
	}
}

func TestStartNeedsDir(t *testing.T) {
	if _, err := Start(context.Background(), Config{}); err == nil {
		t.Fatal("got nil error; want Dir is required")
	}
}

// TestEphemeralSurvivesCrash runs a child test process that starts an
// ephemeral cluster and exits without stopping it, as a crash would; the
// watchdog must then stop the server and remove its directory.
func TestEphemeralSurvivesCrash(t *testing.T) {
	if dir := os.Getenv("IOCHUB_PGCLUSTER_CRASH_DIR"); dir != "" {
		c, err := Start(context.Background(), Config{Dir: dir, Fast: true, Ephemeral: true})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Printf("port=%d\n", c.Port())
		os.Exit(0) // no Stop: the watchdog must clean up
	}
	requirePostgres(t)
	dir := clusterDir(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestEphemeralSurvivesCrash$")
	cmd.Env = append(os.Environ(), "IOCHUB_PGCLUSTER_CRASH_DIR="+dir)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var port int
	if _, err := fmt.Sscanf(string(out), "port=%d", &port); err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}
	testkit.Eventually(t, time.Minute, dir+" removed after its process ended", func() (bool, string) {
		_, err := os.Stat(dir)
		return errors.Is(err, os.ErrNotExist), fmt.Sprintf("stat: %v", err)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)); err == nil {
		conn.Close(ctx)
		t.Fatal("server still accepts connections after its process ended")
	}
}

// TestMkdirReachable: as root, the directories MkdirReachable creates (and
// the one asked for) can be entered by others; a parent that existed is left
// alone, and Start names it with the command that fixes it.
func TestMkdirReachable(t *testing.T) {
	base := t.TempDir()
	if err := os.Chmod(base, 0o700); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "a", "b")
	if err := MkdirReachable(dir); err != nil {
		t.Fatal(err)
	}
	mode := func(p string) os.FileMode {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	root := os.Geteuid() == 0
	for _, p := range []string{filepath.Join(base, "a"), dir} {
		if got := mode(p)&0o001 != 0; got != root {
			t.Errorf("%s: mode %v; want o+x %v (root %v)", p, mode(p), root, root)
		}
	}
	if got := mode(base); got != 0o700 {
		t.Errorf("existing parent %s: mode %v; want 0700 unchanged", base, got)
	}
	if err := MkdirReachable(dir); err != nil {
		t.Errorf("again: %v", err)
	}
	if !root {
		return
	}
	requirePostgres(t)
	_, err := Start(context.Background(), Config{Dir: filepath.Join(dir, "pg")})
	if !errors.Is(err, ErrNotTraversable) || !strings.Contains(err.Error(), "chmod o+x "+base) {
		t.Errorf("Start under a private parent: got %v; want ErrNotTraversable naming `chmod o+x %s`", err, base)
	}
}

// TestStartReplica makes a streaming replica of a running cluster and checks
// that it holds what the primary held at the copy, follows later writes,
// refuses writes of its own, and reports itself in recovery.
func TestStartReplica(t *testing.T) {
	requirePostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	primary, err := Start(ctx, Config{Dir: clusterDir(t), Fast: true, Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = primary.Stop(context.Background()) })
	pc, err := pgx.Connect(ctx, primary.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(ctx)
	if _, err := pc.Exec(ctx, "CREATE TABLE t (n int PRIMARY KEY); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if _, err := primary.StartReplica(ctx, Config{}); err == nil {
		t.Error("StartReplica without Dir: got nil error")
	}
	replica, err := primary.StartReplica(ctx, Config{Dir: clusterDir(t), Fast: true, Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = replica.Stop(context.Background()) })
	if replica.Port() == primary.Port() || replica.Port() == 0 {
		t.Fatalf("replica port %d, primary %d", replica.Port(), primary.Port())
	}
	rc, err := pgx.Connect(ctx, replica.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close(ctx)
	var inRecovery bool
	if err := rc.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || !inRecovery {
		t.Fatalf("pg_is_in_recovery() on the replica = %v, %v; want true", inRecovery, err)
	}
	if _, err := pc.Exec(ctx, "INSERT INTO t VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, time.Minute, "the replica follows the primary's write", func() (bool, string) {
		var n int
		if err := rc.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil {
			return false, err.Error()
		}
		return n == 2, fmt.Sprintf("%d rows", n)
	})
	if _, err := rc.Exec(ctx, "INSERT INTO t VALUES (3)"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("a write on the replica: %v; want a read-only transaction error", err)
	}
	if _, err := primary.StartReplica(ctx, Config{Dir: replica.Dir()}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("StartReplica into a used directory: %v; want not empty", err)
	}
}
