package deploy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// repoRoot is where docker-compose.yml lives and builds take their context from.
const repoRoot = ".."

// composeFiles are every compose file of the repository, with the directory
// compose resolves their relative paths from (the file's own, as docker
// compose -f does) and the variables a user must set for them.
var composeFiles = []struct {
	file string
	env  []string
}{
	{file: "../docker-compose.yml"},
	{file: "compose/cluster.yml", env: []string{"NATS_HUB_PASSWORD=" + testHubPassword, "NATS_READER_PASSWORD=" + testReaderPassword,
		"NATS_EDGE_00070_PASSWORD=" + testEdgePassword, "NATS_LEAF_TLS_DIR=" + testLeafTLSDir}},
}

// testLeafTLSDir is NATS_LEAF_TLS_DIR in the tests: the host directory of
// the leaf-node listener's certificate and key (the loader does not look in it).
const testLeafTLSDir = "/srv/iochub/hub-tls"

// loadProject loads file with the compose-spec loader, as docker compose
// does: schema validation, interpolation of env (and nothing from the test's
// own environment), YAML merge keys, normalisation, paths resolved against
// workDir, and the loader's consistency checks (depends_on, volumes,
// networks). Every profile is enabled, so the demo's services are checked too.
func loadProject(file, workDir string, env []string) (*types.Project, error) {
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(workDir),
		cli.WithEnv(env),
		cli.WithProfiles([]string{"*"}),
		cli.WithInterpolation(true),
		cli.WithResolvedPaths(true),
		cli.WithConsistency(true),
	)
	if err != nil {
		return nil, fmt.Errorf("compose options for %s: %w", file, err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", file, err)
	}
	return p, nil
}

func mustLoadProject(t *testing.T, file, workDir string, env []string) *types.Project {
	t.Helper()
	p, err := loadProject(file, workDir, env)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	roleNames     = []string{"ingest", "aggregator", "gateway", "all"}
	iochubSubcmds = []string{"serve", "migrate", "units", "sources", "dev"}
)

// argv is what a service built from the Dockerfile runs: compose's
// entrypoint replaces the image's ENTRYPOINT and drops its CMD.
func argv(s types.ServiceConfig, df dockerfile) []string {
	if s.Entrypoint != nil {
		return append(slices.Clone([]string(s.Entrypoint)), s.Command...)
	}
	out := slices.Clone(df.entrypoint)
	if s.Command != nil {
		return append(out, s.Command...)
	}
	return append(out, df.cmd...)
}

// flagValue finds --name=v, --name v, -name=v or -name v in args.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		for _, p := range []string{"--" + name, "-" + name} {
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v, true
			}
			if a == p && i+1 < len(args) {
				return args[i+1], true
			}
		}
	}
	return "", false
}

// replicasOfService is how many containers compose starts for s (scale, or
// deploy.replicas; 1 when neither is set).
func replicasOfService(s types.ServiceConfig) int {
	if s.Scale != nil {
		return *s.Scale
	}
	if s.Deploy != nil && s.Deploy.Replicas != nil {
		return *s.Deploy.Replicas
	}
	return 1
}

// boolFlag reports whether args set the boolean flag name (-name, --name,
// or with =true).
func boolFlag(args []string, name string) bool {
	for _, a := range args {
		for _, p := range []string{"--" + name, "-" + name} {
			if a == p || a == p+"=true" {
				return true
			}
		}
	}
	return false
}

// hostsOf returns the hosts of a URL or of a comma-separated list of URLs
// (nats.Connect takes one: nats://a:4222,nats://b:4222).
func hostsOf(raw string) []string {
	var out []string
	for _, one := range strings.Split(raw, ",") {
		u, err := url.Parse(strings.TrimSpace(one))
		if err != nil || u.Hostname() == "" {
			out = append(out, "")
			continue
		}
		out = append(out, u.Hostname())
	}
	return out
}

// envOf is a service's environment with unset variables as "".
func envOf(s types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			out[k] = *v
		} else {
			out[k] = ""
		}
	}
	return out
}

type hostPort struct{ ip, port, proto string }

func anyIP(ip string) bool { return ip == "" || ip == "0.0.0.0" || ip == "::" }

// dockerfileOf is the Dockerfile a build uses, relative to root.
func dockerfileOf(root string, b *types.BuildConfig) (string, error) {
	df := b.Dockerfile
	if df == "" {
		df = "Dockerfile"
	}
	if !filepath.IsAbs(df) {
		df = filepath.Join(b.Context, df)
	}
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(absRoot, df)
	if err != nil {
		return "", err
	}
	return filepath.ToSlash(rel), nil
}

// checkCompose returns every inconsistency between a loaded compose project,
// the Dockerfile and the repository found under root: what the compose-spec
// loader cannot know (iochub's roles and flags, the Dockerfile's binaries,
// host port clashes, what a depends_on condition needs of its target). The
// loader has refused unknown keys, undefined services and volumes, bad
// conditions and depends_on cycles before.
func checkCompose(root string, p *types.Project, df dockerfile, dockerfilePath string) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(p.Services) == 0 {
		bad("no services")
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range p.Services {
			if !yield(n) {
				return
			}
		}
	})
	rolesSeen := map[string]string{}
	published := map[hostPort]string{}
	for _, name := range names {
		s := p.Services[name]
		// Images and builds.
		usesDockerfile := false
		switch {
		case s.Build != nil:
			rel, err := dockerfileOf(root, s.Build)
			if err != nil {
				bad("service %s: %v", name, err)
				break
			}
			if !fileExists(filepath.Join(root, filepath.FromSlash(rel))) {
				bad("service %s: build dockerfile %s does not exist", name, rel)
			}
			usesDockerfile = rel == dockerfilePath
		default:
			if !pinned(s.Image) {
				bad("service %s: image %s is not pinned to a tag", name, s.Image)
			}
		}
		// depends_on (the loader has checked the names, conditions and cycles).
		for dep, d := range s.DependsOn {
			target := p.Services[dep]
			if d.Condition == "service_healthy" && (target.HealthCheck == nil || target.HealthCheck.Disable || len(target.HealthCheck.Test) == 0) {
				bad("service %s: waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
			}
			if d.Condition == "service_completed_successfully" && target.Restart != "no" && target.Restart != "" {
				bad("service %s: waits for %s to complete, but %s restarts (%s)", name, dep, dep, target.Restart)
			}
		}
		// Host ports.
		for _, port := range s.Ports {
			if port.Published == "" {
				continue // a random host port
			}
			hp := hostPort{port.HostIP, port.Published, port.Protocol}
			if hp.proto == "" {
				hp.proto = "tcp"
			}
			for other, by := range published {
				if other.port == hp.port && other.proto == hp.proto && (other.ip == hp.ip || anyIP(other.ip) || anyIP(hp.ip)) {
					bad("service %s: host port %s:%s clashes with service %s", name, hp.ip, hp.port, by)
				}
			}
			published[hp] = name
		}
		if !usesDockerfile {
			continue
		}
		// What a service built from the Dockerfile runs.
		args := argv(s, df)
		if len(args) == 0 {
			bad("service %s: runs nothing (no entrypoint or command)", name)
			continue
		}
		from, ok := df.installed[args[0]]
		if !ok {
			bad("service %s: runs %s, which the Dockerfile does not install (it installs %v)", name, args[0], keys(df.installed))
			continue
		}
		if _, ok := df.built[from]; !ok {
			bad("service %s: %s is copied from %s, which no go build in the Dockerfile writes", name, args[0], from)
		}
		env := envOf(s)
		switch filepath.Base(args[0]) {
		case "iochub":
			if len(args) < 2 || !slices.Contains(iochubSubcmds, args[1]) {
				bad("service %s: iochub needs a command from %v, got %v", name, iochubSubcmds, args[1:])
				continue
			}
			// The roles' variables must be ones serve reads (the one-off
			// jobs share the roles' environment through the anchor, and
			// ignore what they do not read).
			if args[1] == "serve" {
				for k := range env {
					flag := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k, "IOCHUB_"), "_", "-"))
					if strings.HasPrefix(k, "IOCHUB_") && (!slices.Contains(iochubFlags["serve"], flag) || flag == "check-config") {
						bad("service %s: sets %s, which iochub serve does not read (no flag --%s)", name, k, flag)
					}
				}
			}
			switch args[1] {
			case "serve":
				target, ok := flagValue(args, "target")
				if !ok {
					target = env["IOCHUB_TARGET"]
				}
				if target == "" {
					target = "all"
				}
				if e := env["IOCHUB_TARGET"]; e != "" && e != target {
					bad("service %s: --target=%s but IOCHUB_TARGET=%s", name, target, e)
				}
				if !slices.Contains(roleNames, target) {
					bad("service %s: --target=%s; want one of %v", name, target, roleNames)
				}
				rolesSeen[target] = name
				// More than one aggregator (or all) writes the same provinces unless they share them under leases.
				if (target == "aggregator" || target == "all") && replicasOfService(s) > 1 &&
					!boolFlag(args, "partitioned") && env["IOCHUB_PARTITIONED"] != "true" {
					bad("service %s: %d replicas of --target=%s, not --partitioned: two aggregators would write the same provinces", name, replicasOfService(s), target)
				}
				for _, k := range []string{"IOCHUB_NATS_URL", "IOCHUB_DATABASE_URL", "IOCHUB_HTTP"} {
					if env[k] == "" {
						bad("service %s: iochub serve without %s", name, k)
					}
				}
				for _, k := range []string{"IOCHUB_HTTP", "IOCHUB_OPS_HTTP"} {
					if h := env[k]; h != "" {
						if _, _, err := net.SplitHostPort(h); err != nil {
							bad("service %s: %s %q is not host:port", name, k, h)
						}
					}
				}
			case "migrate", "units", "sources":
				if _, ok := flagValue(args, "database-url"); !ok && env["IOCHUB_DATABASE_URL"] == "" {
					bad("service %s: iochub %s without --database-url or IOCHUB_DATABASE_URL", name, args[1])
				}
			}
			for _, k := range []string{"IOCHUB_NATS_URL", "IOCHUB_DATABASE_URL"} {
				v := env[k]
				if v == "" {
					continue
				}
				for _, h := range hostsOf(v) {
					if _, ok := p.Services[h]; !ok {
						bad("service %s: %s host %q is not a service", name, k, h)
					}
				}
			}
		case "iocsim":
			if !slices.Contains(s.Profiles, "demo") {
				bad("service %s: the simulator must be in profile demo, has %v", name, s.Profiles)
			}
			u := env["IOCSIM_URL"]
			if v, ok := flagValue(args, "url"); ok {
				u = v
			}
			h := hostsOf(u)[0]
			target, ok := p.Services[h]
			if !ok {
				bad("service %s: simulator URL %q does not name a service", name, u)
				continue
			}
			if t := argv(target, df); len(t) < 2 || t[1] != "serve" {
				bad("service %s: simulator posts to %s, which does not run iochub serve", name, h)
			} else if tv, _ := flagValue(t, "target"); tv != "ingest" && tv != "all" {
				bad("service %s: simulator posts to %s, which runs --target=%s, not the ingest", name, h, tv)
			}
		}
	}
	for _, r := range []string{"ingest", "aggregator", "gateway"} {
		if rolesSeen[r] == "" && rolesSeen["all"] == "" {
			bad("no service runs iochub serve --target=%s (or all)", r)
		}
	}
	return errs
}

// pinned reports whether an image names a tag other than latest (or a digest).
func pinned(image string) bool {
	if strings.Contains(image, "@sha256:") {
		return true
	}
	last := image[strings.LastIndex(image, "/")+1:]
	_, tag, ok := strings.Cut(last, ":")
	return ok && tag != "" && tag != "latest"
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestComposeFiles(t *testing.T) {
	df := loadDockerfile(t)
	for _, cf := range composeFiles {
		t.Run(filepath.Base(cf.file), func(t *testing.T) {
			p := mustLoadProject(t, cf.file, filepath.Dir(cf.file), cf.env)
			for _, err := range checkCompose(repoRoot, p, df, "deploy/Dockerfile") {
				t.Error(err)
			}
			if len(p.DisabledServices) != 0 {
				t.Errorf("services %v are disabled with every profile enabled", keys(p.DisabledServices))
			}
			pg := p.Services["postgis"]
			if !strings.HasPrefix(pg.Image, "postgis/postgis:15-3") || pg.HealthCheck == nil ||
				!strings.Contains(strings.Join(pg.HealthCheck.Test, " "), "pg_isready") || len(pg.Volumes) == 0 {
				t.Errorf("postgis: image %s, healthcheck %v, volumes %v; want postgis/postgis:15-3.x, pg_isready, a volume", pg.Image, pg.HealthCheck, pg.Volumes)
			}
			if cond := p.Services["migrate"].DependsOn["postgis"].Condition; cond != "service_healthy" {
				t.Errorf("migrate waits for postgis with %q; want service_healthy", cond)
			}
		})
	}
}

// TestComposeSingleNode is what the demo's docker-compose.yml promises: one
// JetStream node with its store on a volume.
func TestComposeSingleNode(t *testing.T) {
	p := mustLoadProject(t, "../docker-compose.yml", repoRoot, nil)
	nats := p.Services["nats"]
	if !slices.Contains(nats.Command, "-js") || !slices.Contains(nats.Command, "-sd") {
		t.Errorf("nats command %v; want -js -sd /data", nats.Command)
	}
	if nats.HealthCheck == nil || len(nats.Volumes) == 0 {
		t.Error("nats lacks a healthcheck or a volume")
	}
}

// TestComposeCluster checks deploy/compose/cluster.yml against hub.conf: the
// three nodes are the routes of the config, each has its name, store,
// leaf-node certificate and healthcheck, and every role lists the three
// nodes and asks for R3 streams.
func TestComposeCluster(t *testing.T) {
	const file = "compose/cluster.yml"
	p := mustLoadProject(t, file, "compose", composeFiles[1].env)
	routes := hubRoutes(t)
	if len(routes) != 3 {
		t.Fatalf("hub.conf has routes %v; want 3", routes)
	}
	for _, node := range routes {
		s, ok := p.Services[node]
		if !ok {
			t.Errorf("hub.conf routes to %s, which is not a service of %s", node, file)
			continue
		}
		env := envOf(s)
		if env["NATS_SERVER_NAME"] != node {
			t.Errorf("%s: NATS_SERVER_NAME %q; want %q (a fixed name keeps its JetStream state)", node, env["NATS_SERVER_NAME"], node)
		}
		if s.Image != p.Services[routes[0]].Image {
			t.Errorf("%s runs %s but %s runs %s", node, s.Image, routes[0], p.Services[routes[0]].Image)
		}
		var conf, data bool
		tlsDir := ""
		for _, v := range s.Volumes {
			conf = conf || v.Type == types.VolumeTypeBind && strings.HasSuffix(v.Source, filepath.FromSlash("deploy/nats/hub.conf")) && v.ReadOnly
			data = data || v.Type == types.VolumeTypeVolume && v.Target == "/data" && v.Source == node+"-data"
			if v.Type == types.VolumeTypeBind && v.Source == testLeafTLSDir && v.ReadOnly {
				tlsDir = v.Target
			}
		}
		if !conf || !data {
			t.Errorf("%s: volumes %+v; want hub.conf read-only and its own volume on /data (hub.conf's store_dir)", node, s.Volumes)
		}
		// hub.conf's leafnodes tls reads its certificate and key from these files.
		for _, k := range []string{"NATS_LEAF_TLS_CERT", "NATS_LEAF_TLS_KEY"} {
			if tlsDir == "" || !strings.HasPrefix(env[k], tlsDir+"/") {
				t.Errorf("%s: %s %q; want a file of NATS_LEAF_TLS_DIR, mounted read-only (mounted on %q)", node, k, env[k], tlsDir)
			}
		}
		if c, _ := flagValue(s.Command, "c"); c != "/etc/nats/hub.conf" {
			t.Errorf("%s: command %v; want -c /etc/nats/hub.conf", node, s.Command)
		}
		if s.HealthCheck == nil || !strings.Contains(strings.Join(s.HealthCheck.Test, " "), "/healthz") {
			t.Errorf("%s: healthcheck %v; want the monitoring /healthz", node, s.HealthCheck)
		}
	}
	for _, role := range []string{"ingest", "aggregator", "gateway"} {
		s := p.Services[role]
		env := envOf(s)
		if env["IOCHUB_STREAM_REPLICAS"] != "3" {
			t.Errorf("%s: IOCHUB_STREAM_REPLICAS %q; want 3", role, env["IOCHUB_STREAM_REPLICAS"])
		}
		if hosts := hostsOf(env["IOCHUB_NATS_URL"]); !slices.Equal(hosts, routes) {
			t.Errorf("%s: IOCHUB_NATS_URL names %v; want every node %v", role, hosts, routes)
		}
		for u := range strings.SplitSeq(env["IOCHUB_NATS_URL"], ",") {
			if pu, err := url.Parse(u); err != nil || pu.User.Username() != "hub" {
				t.Errorf("%s: IOCHUB_NATS_URL %q logs in as %v; want hub.conf's user hub", role, u, pu.User)
			} else if pw, _ := pu.User.Password(); pw != testHubPassword {
				t.Errorf("%s: IOCHUB_NATS_URL %q: the password is not NATS_HUB_PASSWORD", role, u)
			}
		}
		for _, node := range routes {
			if s.DependsOn[node].Condition != "service_healthy" {
				t.Errorf("%s: waits for %s with %q; want service_healthy", role, node, s.DependsOn[node].Condition)
			}
		}
	}
	// The NATS passwords and the leaf-node certificate have no default:
	// without them compose refuses to start.
	if _, err := loadProject(file, "compose", nil); err == nil || !strings.Contains(err.Error(), "NATS_") {
		t.Errorf("loading without the NATS passwords: %v; want an error naming one", err)
	}
	noTLS := slices.DeleteFunc(slices.Clone(composeFiles[1].env), func(e string) bool { return strings.HasPrefix(e, "NATS_LEAF_TLS_DIR=") })
	if _, err := loadProject(file, "compose", noTLS); err == nil || !strings.Contains(err.Error(), "NATS_LEAF_TLS_DIR") {
		t.Errorf("loading without NATS_LEAF_TLS_DIR: %v; want an error naming it", err)
	}
}

// TestComposeChecksCatch feeds the loader and the checks broken compose
// files, so that TestComposeFiles passing means something. The fixtures are
// read as if they were at the repository root (build contexts are relative
// to it). Some mistakes the compose-spec loader refuses itself; the test
// says which.
func TestComposeChecksCatch(t *testing.T) {
	df := loadDockerfile(t)
	tests := []struct {
		file string
		// loader is whether the loader refuses the file (else checkCompose).
		loader bool
		want   string
	}{
		{"port-clash.bad.yml", false, "clashes"},
		{"unknown-dependency.bad.yml", true, "undefined service"},
		{"bad-target.bad.yml", false, "--target=querier"},
		{"missing-dockerfile.bad.yml", false, "does not exist"},
		{"wrong-binary.bad.yml", false, "does not install"},
		{"healthy-without-healthcheck.bad.yml", false, "no healthcheck"},
		{"sim-not-to-ingest.bad.yml", false, "not the ingest"},
		{"cycle.bad.yml", true, "dependency cycle detected"},
		{"missing-role.bad.yml", false, "--target=aggregator"},
		{"two-aggregators.bad.yml", false, "two aggregators would write the same provinces"},
		{"nats-url-not-a-service.bad.yml", false, `host "hub-4" is not a service`},
		{"unpinned-image.bad.yml", false, "not pinned"},
		{"unknown-env.bad.yml", false, "IOCHUB_NATS_REPLICAS, which iochub serve does not read"},
		{"unknown-key.bad.yml", true, "healthchek"},
		{"undeclared-volume.bad.yml", true, "undefined volume"},
		{"bad-condition.bad.yml", true, "condition value must be one of"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			p, err := loadProject(filepath.Join("testdata/compose", tt.file), repoRoot, nil)
			if tt.loader {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("loader: %v; want an error containing %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("the loader refuses a file meant for checkCompose: %v", err)
			}
			errs := checkCompose(repoRoot, p, df, "deploy/Dockerfile")
			if !strings.Contains(errors.Join(errs...).Error()+" ", tt.want) {
				t.Errorf("errors %v; want one containing %q", errs, tt.want)
			}
		})
	}
	t.Run("good fixture", func(t *testing.T) {
		p := mustLoadProject(t, "testdata/compose/minimal.good.yml", repoRoot, nil)
		if errs := checkCompose(repoRoot, p, df, "deploy/Dockerfile"); len(errs) > 0 {
			t.Errorf("errors %v; want none", errs)
		}
	})
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
