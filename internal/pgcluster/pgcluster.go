// Package pgcluster starts and stops a private PostgreSQL cluster with the
// system's binaries: the database of `iochub dev` and of the tests when no
// server is given. It runs initdb, pg_ctl and postgres as the postgres system
// user when the process is root, because PostgreSQL refuses to run as root.
package pgcluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Binaries locates one installed PostgreSQL version.
type Binaries struct {
	// BinDir holds initdb, pg_ctl and postgres.
	BinDir string
	// ShareDir is PostgreSQL's share directory; extensions live in ShareDir/extension.
	ShareDir string
}

// FindBinaries looks for the highest version under /usr/lib/postgresql/<ver>/bin,
// then for `pg_config --bindir`, and checks that PostGIS is installed for it.
// It returns an error wrapping ErrNoPostgres or ErrNoPostGIS when something is missing.
func FindBinaries() (Binaries, error) {
	return findBinaries("/usr/lib/postgresql", "/usr/share/postgresql")
}

func findBinaries(libRoot, shareRoot string) (Binaries, error) {
	var b Binaries
	version := ""
	if entries, err := os.ReadDir(libRoot); err == nil {
		type cand struct {
			ver string
			num float64
		}
		var cands []cand
		for _, e := range entries {
			n, err := strconv.ParseFloat(e.Name(), 64)
			if err != nil {
				continue
			}
			cands = append(cands, cand{e.Name(), n})
		}
		sort.Slice(cands, func(i, j int) bool { return cands[i].num > cands[j].num })
		for _, c := range cands {
			dir := filepath.Join(libRoot, c.ver, "bin")
			if hasServerBinaries(dir) {
				b.BinDir, version = dir, c.ver
				break
			}
		}
	}
	if b.BinDir == "" {
		if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
			dir := strings.TrimSpace(string(out))
			if hasServerBinaries(dir) {
				b.BinDir = dir
			}
		}
	}
	if b.BinDir == "" {
		return Binaries{}, ErrNoPostgres
	}
	// The version's own pg_config knows its share directory; the one on PATH
	// may belong to another version.
	for _, pgConfig := range []string{filepath.Join(b.BinDir, "pg_config"), "pg_config"} {
		if out, err := exec.Command(pgConfig, "--sharedir").Output(); err == nil { //nolint:gosec // G204: PostgreSQL's own pg_config, found on disk
			b.ShareDir = strings.TrimSpace(string(out))
			break
		}
	}
	if b.ShareDir == "" && version != "" {
		b.ShareDir = filepath.Join(shareRoot, version)
	}
	if b.ShareDir == "" {
		return Binaries{}, fmt.Errorf("finding the share directory of %s: %w", b.BinDir, ErrNoPostGIS)
	}
	control := filepath.Join(b.ShareDir, "extension", "postgis.control")
	if _, err := os.Stat(control); err != nil {
		return Binaries{}, fmt.Errorf("looking for %s: %w", control, ErrNoPostGIS)
	}
	return b, nil
}

func hasServerBinaries(dir string) bool {
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// Config says where and how to run a cluster.
type Config struct {
	// Dir is the data directory; required. It is created and initialised when
	// it has no PG_VERSION. The server's Unix socket and log are kept in it too.
	Dir string
	// Port to listen on at 127.0.0.1; 0 picks a free port. Ignored when a
	// cluster already runs in Dir (its port is reused).
	Port int
	// Fast turns off fsync, synchronous_commit and full_page_writes: data may
	// be lost in a crash of the machine. For tests only.
	Fast bool
	// Ephemeral stops the cluster and removes Dir when this process exits, even
	// if it crashes or is killed, through a small watchdog process.
	Ephemeral bool
	// Logger receives start and stop events; nil discards them.
	Logger *slog.Logger
}

// Cluster is a running private PostgreSQL server.
type Cluster struct {
	bins     Binaries
	dir      string
	port     int
	cred     *syscall.Credential // nil when not root
	logger   *slog.Logger
	reused   bool
	watchdog *exec.Cmd
	remove   bool
}

// Start initialises the cluster in cfg.Dir if needed and starts it, or reuses
// the server already running there.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Dir == "" {
		return nil, errors.New("starting PostgreSQL: Config.Dir is required")
	}
	bins, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", cfg.Dir, err)
	}
	c := &Cluster{bins: bins, dir: dir, logger: cfg.Logger}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating PostgreSQL directory: %w", err)
	}
	if os.Geteuid() == 0 {
		if err := c.dropRoot(); err != nil {
			return nil, err
		}
	}

	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		if port, ok := c.runningPort(ctx); ok {
			c.port, c.reused = port, true
			c.logger.Info("reusing running PostgreSQL", "dir", dir, "port", port)
			if cfg.Ephemeral {
				c.remove = true
				if err := c.startWatchdog(); err != nil {
					return nil, err
				}
			}
			return c, nil
		}
	} else {
		if err := c.initdb(ctx); err != nil {
			return nil, err
		}
	}

	if err := c.startOnPort(ctx, cfg); err != nil {
		return nil, err
	}
	return c, nil
}

// startOnPort starts the server in c.dir on cfg.Port, or on a free port
// (again on another one when the picked port is taken by another process
// before the server binds it), and starts the watchdog of an ephemeral
// cluster.
func (c *Cluster) startOnPort(ctx context.Context, cfg Config) error {
	logFile := filepath.Join(c.dir, "postgres.log")
	var err error
	for attempt := 1; ; attempt++ {
		c.port = cfg.Port
		if c.port == 0 {
			if c.port, err = freePort(); err != nil {
				return err
			}
		}
		err = c.start(ctx, logFile, cfg.Fast)
		if err == nil || cfg.Port != 0 || attempt == 3 || ctx.Err() != nil {
			break
		}
		c.logger.Warn("retrying PostgreSQL start on another port", "port", c.port, "err", err)
	}
	if err != nil {
		return err
	}
	c.logger.Info("started PostgreSQL", "dir", c.dir, "port", c.port, "fast", cfg.Fast)
	if cfg.Ephemeral {
		c.remove = true
		if err := c.startWatchdog(); err != nil {
			_ = c.Stop(context.WithoutCancel(ctx))
			return err
		}
	}
	return nil
}

// StartReplica makes a streaming replica of c in cfg.Dir, which must be
// empty or absent: pg_basebackup copies c over a replication connection
// (WAL streamed alongside, standby.signal and primary_conninfo written by
// -R), and the copy starts as a hot standby on cfg.Port or a free port. It
// then follows c through streaming replication and answers reads only.
// The server's own defaults allow the postgres user's replication
// connections from 127.0.0.1 (initdb with trust authentication).
func (c *Cluster) StartReplica(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Dir == "" {
		return nil, errors.New("starting a PostgreSQL replica: Config.Dir is required")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", cfg.Dir, err)
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("starting a PostgreSQL replica: %s is not empty", dir)
	}
	r := &Cluster{bins: c.bins, dir: dir, logger: cfg.Logger}
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the replica's directory: %w", err)
	}
	if os.Geteuid() == 0 {
		if err := r.dropRoot(); err != nil {
			return nil, err
		}
	}
	if out, err := r.run(ctx, "pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(c.port), "-U", "postgres",
		"-D", dir, "-R", "-X", "stream", "-c", "fast", "--no-sync"); err != nil {
		return nil, fmt.Errorf("copying the primary on port %d: %w\n%s", c.port, err, out)
	}
	if err := r.startOnPort(ctx, cfg); err != nil {
		return nil, err
	}
	return r, nil
}

// start runs pg_ctl start on c.port.
func (c *Cluster) start(ctx context.Context, logFile string, fast bool) error {
	opts := []string{
		"-c", "listen_addresses=127.0.0.1",
		"-p", strconv.Itoa(c.port),
		"-k", c.dir,
	}
	if fast {
		opts = append(opts, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
			"-c", "max_connections=300")
	}
	quoted := make([]string, len(opts))
	for i, o := range opts {
		quoted[i] = shellQuote(o) // pg_ctl hands -o to /bin/sh
	}
	if _, err := c.run(ctx, "pg_ctl", "start", "-w", "-t", "120", "-D", c.dir, "-l", logFile,
		"-o", strings.Join(quoted, " ")); err != nil {
		return fmt.Errorf("starting PostgreSQL in %s on port %d: %w%s", c.dir, c.port, err, tail(logFile))
	}
	return nil
}

// dropRoot makes the cluster run as the postgres system user.
func (c *Cluster) dropRoot() error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root needs the postgres system user to run PostgreSQL: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("reading the postgres user's ids: %w", err)
	}
	c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	for p := filepath.Dir(c.dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("checking %s: %w", p, err)
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		owned := st != nil && st.Uid == uint32(uid)
		if fi.Mode().Perm()&0o001 == 0 && !owned {
			return fmt.Errorf("%s (mode %v) must be enterable by the postgres user to reach %s: run `chmod o+x %s`, or choose a directory outside it: %w",
				p, fi.Mode().Perm(), c.dir, p, ErrNotTraversable)
		}
		if p == filepath.Dir(p) {
			break
		}
	}
	if err := os.Chown(c.dir, int(uid), int(gid)); err != nil {
		return fmt.Errorf("handing %s to the postgres user: %w", c.dir, err)
	}
	return nil
}

func (c *Cluster) initdb(ctx context.Context) error {
	out, err := c.run(ctx, "initdb", "-D", c.dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C")
	if err != nil {
		return fmt.Errorf("initialising PostgreSQL in %s: %w\n%s", c.dir, err, out)
	}
	c.logger.Info("initialised PostgreSQL", "dir", c.dir)
	return nil
}

// runningPort reports the port of a server already running in the directory.
func (c *Cluster) runningPort(ctx context.Context) (int, bool) {
	if _, err := c.run(ctx, "pg_ctl", "status", "-D", c.dir); err != nil {
		return 0, false
	}
	f, err := os.Open(filepath.Join(c.dir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for i := 1; sc.Scan(); i++ {
		if i == 4 { // line 4 of postmaster.pid is the port
			port, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
			return port, err == nil
		}
	}
	return 0, false
}

// command builds a PostgreSQL tool's command, run as the postgres user when root.
func (c *Cluster) command(ctx context.Context, tool string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bins.BinDir, tool), args...) //nolint:gosec // G204: PostgreSQL's own tools with our arguments
	cmd.Dir = c.dir
	cmd.Env = cleanEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: c.cred}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

func (c *Cluster) run(ctx context.Context, tool string, args ...string) ([]byte, error) {
	var out bytes.Buffer
	cmd := c.command(ctx, tool, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %w: %s", tool, args[0], err, strings.TrimSpace(out.String()))
	}
	return out.Bytes(), nil
}

// startWatchdog starts a shell that waits for this process to end, then stops
// the server (SIGINT: fast shutdown) and removes its directory. It runs as this
// process's user (root may signal the postgres user's server and remove its
// files), in its own process group with no inherited output, so neither Ctrl-C
// nor `go test` waiting on pipes touch it.
func (c *Cluster) startWatchdog() error {
	const script = `while kill -0 "$0" 2>/dev/null; do sleep 1; done
pid=$(head -n 1 "$1/postmaster.pid" 2>/dev/null)
if [ -n "$pid" ] && kill -INT "$pid" 2>/dev/null; then
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 120 ]; do sleep 1; i=$((i+1)); done
fi
rm -rf "$1"`
	cmd := exec.Command("/bin/sh", "-c", script, strconv.Itoa(os.Getpid()), c.dir) //nolint:gosec // G204: a fixed script; pid and dir are positional arguments, never parsed as code
	cmd.Dir = "/"
	cmd.Env = cleanEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the PostgreSQL watchdog: %w", err)
	}
	c.watchdog = cmd
	return nil
}

// MkdirReachable creates dir and its missing parents. When the process runs
// as root, dir and the parents it created also get search permission for
// others (o+x: enter, not list), so that the postgres user, which runs a
// cluster kept inside dir, can reach it. Parents that existed are left as
// they are: Start reports one the postgres user cannot enter
// (ErrNotTraversable) rather than change a directory it does not own.
func MkdirReachable(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("resolving %s: %w", dir, err)
	}
	var created []string
	for p := dir; ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("checking %s: %w", p, err)
		}
		created = append(created, p)
		if p == filepath.Dir(p) {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	if os.Geteuid() != 0 {
		return nil
	}
	if len(created) == 0 || created[0] != dir {
		created = append(created, dir)
	}
	for _, p := range created {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("checking %s: %w", p, err)
		}
		if err := os.Chmod(p, fi.Mode().Perm()|0o001); err != nil {
			return fmt.Errorf("letting the postgres user enter %s: %w", p, err)
		}
	}
	return nil
}

// Dir is the cluster's data directory.
func (c *Cluster) Dir() string { return c.dir }

// Port is the TCP port the server listens on at 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// Reused reports whether Start found the server already running.
func (c *Cluster) Reused() bool { return c.reused }

// URL is the connection URL of database db as the superuser postgres.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, url.PathEscape(db))
}

// CreateDatabase creates database name unless it exists already.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("looking up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("creating database %s: %w", name, err)
	}
	return nil
}

// Stop shuts the server down (fast mode: sessions are ended, work in progress
// rolled back). An ephemeral cluster's directory is removed too.
func (c *Cluster) Stop(ctx context.Context) error {
	var err error
	if _, e := c.run(ctx, "pg_ctl", "stop", "-D", c.dir, "-m", "fast", "-w", "-t", "120"); e != nil {
		err = fmt.Errorf("stopping PostgreSQL in %s: %w", c.dir, e)
	} else {
		c.logger.Info("stopped PostgreSQL", "dir", c.dir, "port", c.port)
	}
	if c.watchdog != nil {
		_ = c.watchdog.Process.Kill()
		_ = c.watchdog.Wait()
		c.watchdog = nil
	}
	if c.remove && err == nil {
		if e := os.RemoveAll(c.dir); e != nil {
			err = fmt.Errorf("removing %s: %w", c.dir, e)
		}
	}
	return err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("picking a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// cleanEnv drops the libpq variables (PGDATA, PGPORT, ...) that would change
// what the tools do.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return append(env, "LC_ALL=C")
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// LogTail returns the end of the server log, for error messages; empty when
// the log cannot be read.
func (c *Cluster) LogTail() string { return tail(filepath.Join(c.dir, "postgres.log")) }

// tail returns the end of the server log, for errors.
func tail(path string) string {
	f, err := os.Open(path) //nolint:gosec // G304: the server log inside the cluster's own dir
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\nserver log " + path + ":\n" + string(b)
}
