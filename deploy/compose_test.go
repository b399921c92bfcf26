package deploy

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"gopkg.in/yaml.v3"
)

// repoRoot is where docker-compose.yml lives and builds take their context from.
const repoRoot = ".."

// --- the compose file, as far as these checks read it ---

type composeFile struct {
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

type service struct {
	Image       string       `yaml:"image"`
	Build       *build       `yaml:"build"`
	Command     *stringList  `yaml:"command"`
	Entrypoint  *stringList  `yaml:"entrypoint"`
	DependsOn   dependsOn    `yaml:"depends_on"`
	Ports       []string     `yaml:"ports"`
	Environment envMap       `yaml:"environment"`
	Profiles    []string     `yaml:"profiles"`
	Volumes     []string     `yaml:"volumes"`
	Restart     string       `yaml:"restart"`
	Healthcheck *healthcheck `yaml:"healthcheck"`
}

type healthcheck struct {
	Test stringList `yaml:"test"`
}

type build struct{ Context, Dockerfile string }

func (b *build) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b.Context = n.Value
		return nil
	}
	var m struct{ Context, Dockerfile string }
	if err := n.Decode(&m); err != nil {
		return err
	}
	*b = build(m)
	return nil
}

// stringList is a command: a YAML list, or a string split on spaces.
type stringList []string

func (s *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = strings.Fields(n.Value)
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*s = l
	return nil
}

// dependsOn is depends_on: a list of names or a map of name → condition.
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = dependsOn{}
	if n.Kind == yaml.SequenceNode {
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, name := range l {
			(*d)[name] = "service_started"
		}
		return nil
	}
	var m map[string]struct {
		Condition string `yaml:"condition"`
	}
	if err := n.Decode(&m); err != nil {
		return err
	}
	for name, c := range m {
		cond := c.Condition
		if cond == "" {
			cond = "service_started"
		}
		(*d)[name] = cond
	}
	return nil
}

// envMap is environment: a map or a list of KEY=VALUE.
type envMap map[string]string

func (e *envMap) UnmarshalYAML(n *yaml.Node) error {
	*e = envMap{}
	if n.Kind == yaml.SequenceNode {
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, kv := range l {
			k, v, _ := strings.Cut(kv, "=")
			(*e)[k] = v
		}
		return nil
	}
	var m map[string]string
	if err := n.Decode(&m); err != nil {
		return err
	}
	for k, v := range m {
		(*e)[k] = v
	}
	return nil
}

// --- the Dockerfile ---

type dockerfile struct {
	stages     []string          // stage names (or "#<n>" when unnamed), in order
	built      map[string]string // go build output path → package, e.g. /out/iochub → ./cmd/iochub
	installed  map[string]string // binary path in the final image → the build output it was copied from
	copied     []string          // sources of COPY without --from (repository paths)
	entrypoint []string          // final stage's ENTRYPOINT (exec form)
	cmd        []string          // final stage's CMD (exec form)
	user       string            // final stage's USER
}

var goBuildRE = regexp.MustCompile(`go build\b[^&;]*?-o\s+(\S+)\s+(\./cmd/\S+)`)

func parseDockerfile(text string) (dockerfile, error) {
	df := dockerfile{built: map[string]string{}, installed: map[string]string{}}
	text = strings.ReplaceAll(text, "\\\n", " ")
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			f := strings.Fields(rest)
			name := fmt.Sprintf("#%d", len(df.stages))
			if len(f) >= 3 && strings.EqualFold(f[1], "AS") {
				name = f[2]
			}
			df.stages = append(df.stages, name)
			// A new stage starts: what the final image holds is what the last stage sets.
			df.installed = map[string]string{}
			df.entrypoint, df.cmd, df.user = nil, nil, ""
		case "RUN":
			for _, m := range goBuildRE.FindAllStringSubmatch(rest, -1) {
				df.built[m[1]] = m[2]
			}
		case "COPY":
			f := strings.Fields(rest)
			from := ""
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				if v, ok := strings.CutPrefix(f[0], "--from="); ok {
					from = v
				}
				f = f[1:]
			}
			if len(f) < 2 {
				return df, fmt.Errorf("line %d: COPY needs a source and a destination: %q", i+1, line)
			}
			srcs, dst := f[:len(f)-1], f[len(f)-1]
			for _, src := range srcs {
				if from == "" {
					df.copied = append(df.copied, src)
					continue
				}
				target := dst
				if strings.HasSuffix(dst, "/") {
					target = dst + path.Base(src)
				}
				df.installed[target] = src
			}
		case "ENTRYPOINT", "CMD":
			var l []string
			if err := yaml.Unmarshal([]byte(rest), &l); err != nil || !strings.HasPrefix(rest, "[") {
				return df, fmt.Errorf("line %d: %s must use the exec form [\"...\"]: %q", i+1, instr, line)
			}
			if strings.EqualFold(instr, "ENTRYPOINT") {
				df.entrypoint = l
			} else {
				df.cmd = l
			}
		case "USER":
			df.user = rest
		}
	}
	return df, nil
}

// --- the checks ---

var (
	roles         = []string{"ingest", "aggregator", "gateway", "all"}
	conditions    = []string{"service_started", "service_healthy", "service_completed_successfully"}
	iochubSubcmds = []string{"serve", "migrate", "units", "sources", "dev"}
)

// argv is what a service built from the Dockerfile runs: compose's
// entrypoint replaces the image's ENTRYPOINT and drops its CMD.
func argv(s service, df dockerfile) []string {
	if s.Entrypoint != nil {
		out := slices.Clone(*s.Entrypoint)
		if s.Command != nil {
			out = append(out, *s.Command...)
		}
		return out
	}
	out := slices.Clone(df.entrypoint)
	if s.Command != nil {
		return append(out, *s.Command...)
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

// hostOf returns the host of a URL, after compose's ${VAR:-default} interpolation is set aside.
func hostOf(raw string) string {
	u, err := url.Parse(regexp.MustCompile(`\$\{[^}]*\}`).ReplaceAllString(raw, "x"))
	if err != nil {
		return ""
	}
	return u.Hostname()
}

type hostPort struct{ ip, port, proto string }

func parsePort(p string) (hostPort, bool) {
	proto := "tcp"
	if a, b, ok := strings.Cut(p, "/"); ok {
		p, proto = a, b
	}
	parts := strings.Split(p, ":")
	switch len(parts) {
	case 2:
		return hostPort{"", parts[0], proto}, true
	case 3:
		return hostPort{parts[0], parts[1], proto}, true
	}
	return hostPort{}, false // a bare container port publishes on a random host port
}

func anyIP(ip string) bool { return ip == "" || ip == "0.0.0.0" || ip == "::" }

// checkCompose returns every inconsistency between the compose file, the
// Dockerfile and the repository found under root.
func checkCompose(root string, cf composeFile, df dockerfile, dockerfilePath string) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(cf.Services) == 0 {
		bad("no services")
	}
	names := make([]string, 0, len(cf.Services))
	for n := range cf.Services {
		names = append(names, n)
	}
	sort.Strings(names)

	exists := func(rel string) bool {
		_, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel)))
		return err == nil
	}
	rolesSeen := map[string]string{}
	published := map[hostPort]string{}
	for _, name := range names {
		s := cf.Services[name]
		// Images and builds.
		usesDockerfile := false
		switch {
		case s.Build != nil:
			df := s.Build.Dockerfile
			if df == "" {
				df = "Dockerfile"
			}
			p := path.Join(s.Build.Context, df)
			if !exists(p) {
				bad("service %s: build dockerfile %s does not exist", name, p)
			}
			usesDockerfile = path.Clean(p) == dockerfilePath
		case s.Image == "":
			bad("service %s: neither image nor build", name)
		default:
			if !strings.Contains(path.Base(s.Image), ":") || strings.HasSuffix(s.Image, ":latest") {
				bad("service %s: image %s is not pinned to a tag", name, s.Image)
			}
		}
		// depends_on.
		for dep, cond := range s.DependsOn {
			d, ok := cf.Services[dep]
			if !ok {
				bad("service %s: depends_on names %s, which is not a service", name, dep)
				continue
			}
			if !slices.Contains(conditions, cond) {
				bad("service %s: depends_on %s has condition %q", name, dep, cond)
			}
			if cond == "service_healthy" && d.Healthcheck == nil {
				bad("service %s: waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
			}
			if cond == "service_completed_successfully" && d.Restart != "no" && d.Restart != "" {
				bad("service %s: waits for %s to complete, but %s restarts (%s)", name, dep, dep, d.Restart)
			}
		}
		// Ports.
		for _, p := range s.Ports {
			hp, ok := parsePort(p)
			if !ok {
				continue
			}
			for other, by := range published {
				if other.port == hp.port && other.proto == hp.proto && (other.ip == hp.ip || anyIP(other.ip) || anyIP(hp.ip)) {
					bad("service %s: host port %s clashes with service %s", name, p, by)
				}
			}
			published[hp] = name
		}
		// Named volumes.
		for _, v := range s.Volumes {
			src, _, ok := strings.Cut(v, ":")
			if !ok || strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") || strings.HasPrefix(src, "$") {
				continue
			}
			if _, declared := cf.Volumes[src]; !declared {
				bad("service %s: volume %s is not declared under volumes", name, src)
			}
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
		env := s.Environment
		switch path.Base(args[0]) {
		case "iochub":
			if len(args) < 2 || !slices.Contains(iochubSubcmds, args[1]) {
				bad("service %s: iochub needs a command from %v, got %v", name, iochubSubcmds, args[1:])
				continue
			}
			needDB := func() {
				if _, ok := flagValue(args, "database-url"); !ok && env["IOCHUB_DATABASE_URL"] == "" {
					bad("service %s: iochub %s without --database-url or IOCHUB_DATABASE_URL", name, args[1])
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
				if !slices.Contains(roles, target) {
					bad("service %s: --target=%s; want one of %v", name, target, roles)
				}
				rolesSeen[target] = name
				for _, k := range []string{"IOCHUB_NATS_URL", "IOCHUB_DATABASE_URL", "IOCHUB_HTTP"} {
					if env[k] == "" {
						bad("service %s: iochub serve without %s", name, k)
					}
				}
				if h := env["IOCHUB_HTTP"]; h != "" {
					if _, _, err := net.SplitHostPort(h); err != nil {
						bad("service %s: IOCHUB_HTTP %q is not host:port", name, h)
					}
				}
			case "migrate", "units", "sources":
				needDB()
			}
			for _, k := range []string{"IOCHUB_NATS_URL", "IOCHUB_DATABASE_URL"} {
				if v := env[k]; v != "" {
					if _, ok := cf.Services[hostOf(v)]; !ok {
						bad("service %s: %s host %q is not a service", name, k, hostOf(v))
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
			target, ok := cf.Services[hostOf(u)]
			if !ok {
				bad("service %s: simulator URL %q does not name a service", name, u)
				continue
			}
			if t := argv(target, df); len(t) < 2 || t[1] != "serve" {
				bad("service %s: simulator posts to %s, which does not run iochub serve", name, hostOf(u))
			} else if tv, _ := flagValue(t, "target"); tv != "ingest" && tv != "all" {
				bad("service %s: simulator posts to %s, which runs --target=%s, not the ingest", name, hostOf(u), tv)
			}
		}
	}
	for _, r := range []string{"ingest", "aggregator", "gateway"} {
		if rolesSeen[r] == "" && rolesSeen["all"] == "" {
			bad("no service runs iochub serve --target=%s (or all)", r)
		}
	}
	// Cycles in depends_on.
	state := map[string]int{}
	var visit func(string) bool
	visit = func(n string) bool {
		switch state[n] {
		case 1:
			return true
		case 2:
			return false
		}
		state[n] = 1
		for d := range cf.Services[n].DependsOn {
			if _, ok := cf.Services[d]; ok && visit(d) {
				return true
			}
		}
		state[n] = 2
		return false
	}
	for _, n := range names {
		if visit(n) {
			bad("depends_on has a cycle through %s", n)
			break
		}
	}
	return errs
}

func checkDockerfile(root string, df dockerfile) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(df.stages) < 2 {
		bad("Dockerfile has %d FROM stages; want a multi-stage build (≥ 2)", len(df.stages))
	}
	if df.user == "" || df.user == "root" || df.user == "0" || strings.HasPrefix(df.user, "root:") || strings.HasPrefix(df.user, "0:") {
		bad("Dockerfile's final stage runs as %q; want a non-root USER", df.user)
	}
	for out, pkg := range df.built {
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(pkg))); err != nil {
			bad("Dockerfile builds %s from %s, which does not exist", out, pkg)
		}
	}
	for _, want := range []string{"iochub", "iocsim"} {
		found := false
		for dst, src := range df.installed {
			if path.Base(dst) == want && df.built[src] == "./cmd/"+want {
				found = true
			}
		}
		if !found {
			bad("Dockerfile's final image lacks %s built from ./cmd/%s", want, want)
		}
	}
	for _, src := range df.copied {
		if src == "." || strings.HasSuffix(src, "/") && src != "web/" {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(src))); err != nil {
			bad("Dockerfile copies %s, which does not exist in the repository", src)
		}
	}
	return errs
}

func loadCompose(t *testing.T, file string) composeFile {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal(b, &cf); err != nil {
		t.Fatalf("parsing %s: %v", file, err)
	}
	return cf
}

func loadDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df, err := parseDockerfile(string(b))
	if err != nil {
		t.Fatalf("parsing deploy/Dockerfile: %v", err)
	}
	return df
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestDockerfile(t *testing.T) {
	df := loadDockerfile(t)
	for _, err := range checkDockerfile(repoRoot, df) {
		t.Error(err)
	}
}

func TestComposeFile(t *testing.T) {
	cf := loadCompose(t, filepath.Join(repoRoot, "docker-compose.yml"))
	df := loadDockerfile(t)
	for _, err := range checkCompose(repoRoot, cf, df, "deploy/Dockerfile") {
		t.Error(err)
	}
	// What the brief asks of the stateful services.
	nats := cf.Services["nats"]
	if nats.Command == nil || !slices.Contains(*nats.Command, "-js") || !slices.Contains(*nats.Command, "-sd") {
		t.Errorf("nats command %v; want -js -sd /data", nats.Command)
	}
	if nats.Healthcheck == nil || len(nats.Volumes) == 0 {
		t.Error("nats lacks a healthcheck or a volume")
	}
	pg := cf.Services["postgis"]
	if !strings.HasPrefix(pg.Image, "postgis/postgis:15-3") || pg.Healthcheck == nil ||
		!strings.Contains(strings.Join(pg.Healthcheck.Test, " "), "pg_isready") || len(pg.Volumes) == 0 {
		t.Errorf("postgis: image %s, healthcheck %v, volumes %v; want postgis/postgis:15-3.x, pg_isready, a volume", pg.Image, pg.Healthcheck, pg.Volumes)
	}
	if cond := cf.Services["migrate"].DependsOn["postgis"]; cond != "service_healthy" {
		t.Errorf("migrate waits for postgis with %q; want service_healthy", cond)
	}
}

// TestComposeChecksCatch feeds the checker broken compose files, so that
// TestComposeFile passing means something. The fixtures are read as if they
// were at the repository root (build contexts are relative to it).
func TestComposeChecksCatch(t *testing.T) {
	df := loadDockerfile(t)
	tests := []struct {
		file string
		want string
	}{
		{"testdata/port-clash.bad.yml", "clashes"},
		{"testdata/unknown-dependency.bad.yml", "not a service"},
		{"testdata/bad-target.bad.yml", "--target=querier"},
		{"testdata/missing-dockerfile.bad.yml", "does not exist"},
		{"testdata/wrong-binary.bad.yml", "does not install"},
		{"testdata/healthy-without-healthcheck.bad.yml", "no healthcheck"},
		{"testdata/sim-not-to-ingest.bad.yml", "not the ingest"},
		{"testdata/cycle.bad.yml", "cycle"},
		{"testdata/missing-role.bad.yml", "--target=aggregator"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			cf := loadCompose(t, tt.file)
			errs := checkCompose(repoRoot, cf, df, "deploy/Dockerfile")
			if !strings.Contains(errors.Join(errs...).Error()+" ", tt.want) {
				t.Errorf("errors %v; want one containing %q", errs, tt.want)
			}
		})
	}
	t.Run("good fixture", func(t *testing.T) {
		cf := loadCompose(t, "testdata/minimal.good.yml")
		if errs := checkCompose(repoRoot, cf, df, "deploy/Dockerfile"); len(errs) > 0 {
			t.Errorf("errors %v; want none", errs)
		}
	})
}

func TestDockerfileChecksCatch(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"single stage", "FROM golang:1.26\nRUN go build -o /out/iochub ./cmd/iochub\nUSER nobody\n", "FROM stages"},
		{"root", "FROM golang:1.26 AS build\nRUN go build -o /out/iochub ./cmd/iochub && go build -o /out/iocsim ./cmd/iocsim\nFROM scratch\nCOPY --from=build /out/iochub /usr/local/bin/iochub\nCOPY --from=build /out/iocsim /usr/local/bin/iocsim\n", "non-root"},
		{"binary not built", "FROM golang:1.26 AS build\nRUN go build -o /out/iochub ./cmd/iochub\nFROM scratch\nCOPY --from=build /out/iochub /usr/local/bin/iochub\nCOPY --from=build /out/iocsim /usr/local/bin/iocsim\nUSER 65532\n", "lacks iocsim"},
		{"missing package", "FROM golang:1.26 AS build\nRUN go build -o /out/x ./cmd/nosuch\nFROM scratch\nUSER 65532\n", "does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			df, err := parseDockerfile(tt.text)
			if err != nil {
				t.Fatal(err)
			}
			if errs := checkDockerfile(repoRoot, df); !strings.Contains(errors.Join(errs...).Error()+" ", tt.want) {
				t.Errorf("errors %v; want one containing %q", errs, tt.want)
			}
		})
	}
}

// TestNATSConfigs loads the cluster and leaf-node sketches with nats-server's
// own config parser: they are not run anywhere yet, but they must at least be
// configs NATS accepts, with the shape DESIGN.md describes.
func TestNATSConfigs(t *testing.T) {
	t.Setenv("NATS_SERVER_NAME", "hub-1")
	t.Setenv("LEAF_PASSWORD_00070", "s3cret")
	for i := 1; i <= 3; i++ {
		t.Setenv(fmt.Sprintf("LEAF_HUB_URL_%d", i), fmt.Sprintf("nats-leaf://ioc-00070:s3cret@hub-%d:7422", i))
	}
	t.Run("hub", func(t *testing.T) {
		o, err := server.ProcessConfigFile("nats/hub.conf")
		if err != nil {
			t.Fatalf("hub.conf: %v", err)
		}
		if !o.JetStream || o.JetStreamDomain != "hub" || o.ServerName != "hub-1" {
			t.Errorf("jetstream %v domain %q server_name %q; want JetStream on, domain hub, name from the env", o.JetStream, o.JetStreamDomain, o.ServerName)
		}
		if o.Cluster.Name == "" || len(o.Routes) != 3 {
			t.Errorf("cluster %q with %d routes; want a named 3-node cluster", o.Cluster.Name, len(o.Routes))
		}
		if o.LeafNode.Port == 0 || len(o.LeafNode.Users) == 0 {
			t.Errorf("leafnodes port %d users %d; want a leaf listener with users", o.LeafNode.Port, len(o.LeafNode.Users))
		}
	})
	t.Run("leaf", func(t *testing.T) {
		o, err := server.ProcessConfigFile("nats/leaf.conf")
		if err != nil {
			t.Fatalf("leaf.conf: %v", err)
		}
		if !o.JetStream || o.JetStreamDomain == "" || o.JetStreamDomain == "hub" {
			t.Errorf("jetstream %v domain %q; want its own domain", o.JetStream, o.JetStreamDomain)
		}
		if o.ServerName == "" || strings.Contains(o.ServerName, "$") {
			t.Errorf("server_name %q; want a fixed name", o.ServerName)
		}
		if len(o.LeafNode.Remotes) != 1 || len(o.LeafNode.Remotes[0].URLs) != 3 {
			t.Fatalf("remotes %v; want one remote with the 3 hub nodes", o.LeafNode.Remotes)
		}
		if u := o.LeafNode.Remotes[0].URLs[0]; u.User.Username() != "ioc-00070" {
			t.Errorf("remote user %q; want ioc-00070, a user of hub.conf", u.User.Username())
		}
	})
}
