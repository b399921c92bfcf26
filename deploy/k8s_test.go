package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/ops"
)

const k8sDir = "k8s"

// secretsFile holds the Secrets the manifests read; it is not applied by
// kustomization.yaml (docs say why) but is decoded and checked like the rest.
const secretsFile = "secret.example.yaml"

// kustomization is the part of kustomization.yaml these checks read,
// decoded strictly: a key it does not know fails the test, so a new one is
// added here consciously.
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Labels     []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels"`
	Resources []string `json:"resources"`
}

// strictDecoder decodes manifests into the typed objects of k8s.io/api the
// way the API server's strict field validation does: unknown and duplicate
// fields are errors, and so is a kind the scheme does not know.
var strictDecoder = func() runtime.Decoder {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, policyv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()
}()

// manifest is one decoded object and where it came from.
type manifest struct {
	file string
	obj  runtime.Object
}

// decodeManifests decodes every YAML document of r strictly.
func decodeManifests(name string, r io.Reader) ([]manifest, error) {
	var out []manifest
	yr := utilyaml.NewYAMLReader(bufio.NewReader(r))
	for i := 1; ; i++ {
		doc, err := yr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: reading document %d: %w", name, i, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, _, err := strictDecoder.Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, i, err)
		}
		out = append(out, manifest{file: name, obj: obj})
	}
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, l := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' {
			b.Write(l)
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// loadK8s reads kustomization.yaml and decodes every resource it lists and
// the Secrets example.
func loadK8s(t *testing.T) (kustomization, []manifest) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(b, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	var all []manifest
	for _, f := range append(slices.Clone(k.Resources), secretsFile) {
		r, err := os.Open(filepath.Join(k8sDir, f))
		if err != nil {
			t.Fatal(err)
		}
		ms, err := decodeManifests(f, r)
		_ = r.Close()
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ms...)
	}
	return k, all
}

// iochubFlags is, per command line prefix, the flags the iochub binary
// built from this repository registers (from its -h output), so that the
// manifests are checked against the binary itself.
var iochubFlags map[string][]string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "iochub-deploy-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	iochubFlags, err = readIOChubFlags(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "building iochub to read its flags:", err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func readIOChubFlags(dir string) (map[string][]string, error) {
	bin := filepath.Join(dir, "iochub")
	build := exec.Command("go", "build", "-o", bin, "./cmd/iochub")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/iochub: %w\n%s", err, out)
	}
	out := map[string][]string{}
	for _, cmd := range [][]string{{"serve"}, {"migrate"}, {"units", "import"}} {
		c := exec.Command(bin, append(cmd, "-h")...)
		var help bytes.Buffer
		c.Stdout, c.Stderr = &help, &help
		if err := c.Run(); err != nil {
			return nil, fmt.Errorf("iochub %s -h: %w\n%s", strings.Join(cmd, " "), err, help.Bytes())
		}
		var flags []string
		for _, l := range strings.Split(help.String(), "\n") {
			f := strings.Fields(l)
			if len(f) > 0 && strings.HasPrefix(l, "  -") && strings.HasPrefix(f[0], "-") {
				flags = append(flags, strings.TrimPrefix(f[0], "-"))
			}
		}
		if len(flags) == 0 {
			return nil, fmt.Errorf("iochub %s -h lists no flags:\n%s", strings.Join(cmd, " "), help.Bytes())
		}
		out[strings.Join(cmd, " ")] = flags
	}
	return out, nil
}

// envNames are the IOCHUB_* variables a command reads: the environment name
// of each flag (cmd/iochub's envName: --nats-url is IOCHUB_NATS_URL).
func envNames(command string) map[string]bool {
	out := map[string]bool{}
	for _, f := range iochubFlags[command] {
		if f != "check-config" {
			out["IOCHUB_"+strings.ToUpper(strings.ReplaceAll(f, "-", "_"))] = true
		}
	}
	return out
}

// objects indexes the decoded manifests by kind.
type objects struct {
	deployments  []*appsv1.Deployment
	statefulSets []*appsv1.StatefulSet
	jobs         []*batchv1.Job
	services     []*corev1.Service
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	pdbs         []*policyv1.PodDisruptionBudget
	namespaces   []*corev1.Namespace
}

func index(ms []manifest) (objects, []error) {
	o := objects{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	var errs []error
	seen := map[string]string{}
	for _, m := range ms {
		acc, err := metaOf(m.obj)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.file, err))
			continue
		}
		kind := fmt.Sprintf("%T", m.obj)
		key := kind + "/" + acc.GetName()
		if f, dup := seen[key]; dup {
			errs = append(errs, fmt.Errorf("%s: %s %s is also in %s", m.file, kind, acc.GetName(), f))
		}
		seen[key] = m.file
		for _, msg := range validation.IsDNS1123Subdomain(acc.GetName()) {
			errs = append(errs, fmt.Errorf("%s: name %q: %s", m.file, acc.GetName(), msg))
		}
		for k, v := range acc.GetLabels() {
			for _, msg := range append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...) {
				errs = append(errs, fmt.Errorf("%s: %s label %s=%s: %s", m.file, acc.GetName(), k, v, msg))
			}
		}
		switch x := m.obj.(type) {
		case *appsv1.Deployment:
			o.deployments = append(o.deployments, x)
		case *appsv1.StatefulSet:
			o.statefulSets = append(o.statefulSets, x)
		case *batchv1.Job:
			o.jobs = append(o.jobs, x)
		case *corev1.Service:
			o.services = append(o.services, x)
		case *corev1.ConfigMap:
			o.configMaps[x.Name] = x
		case *corev1.Secret:
			o.secrets[x.Name] = x
		case *policyv1.PodDisruptionBudget:
			o.pdbs = append(o.pdbs, x)
		case *corev1.Namespace:
			o.namespaces = append(o.namespaces, x)
		default:
			errs = append(errs, fmt.Errorf("%s: %s %s: a kind these checks do not know", m.file, kind, acc.GetName()))
		}
	}
	return o, errs
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	acc, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no object metadata", obj)
	}
	return acc, nil
}

// workload is a pod template with its owner, for the checks that apply to
// Deployments, StatefulSets and Jobs alike.
type workload struct {
	kind, name string
	selector   *metav1.LabelSelector // nil for a Job (the API sets it)
	template   corev1.PodTemplateSpec
}

func (o objects) workloads() []workload {
	var out []workload
	for _, d := range o.deployments {
		out = append(out, workload{"Deployment", d.Name, d.Spec.Selector, d.Spec.Template})
	}
	for _, s := range o.statefulSets {
		out = append(out, workload{"StatefulSet", s.Name, s.Spec.Selector, s.Spec.Template})
	}
	for _, j := range o.jobs {
		out = append(out, workload{"Job", j.Name, nil, j.Spec.Template})
	}
	return out
}

// opsMux is the real handler of iochub's /healthz, /readyz and /metrics
// (internal/ops), for checking that a probe's path is served.
func opsMux() http.Handler {
	mux := http.NewServeMux()
	ops.New().Register(mux)
	return mux
}

// served reports whether the ops mux answers path with something other than 404.
func served(mux http.Handler, path string) bool {
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code != http.StatusNotFound
}

func isIOChub(c corev1.Container, image string) bool { return c.Image == image }

// containerPort resolves a probe's or Service's port (a name or a number)
// against a container's ports.
func containerPort(ports []corev1.ContainerPort, p string) (int32, bool) {
	for _, cp := range ports {
		if cp.Name == p || strconv.Itoa(int(cp.ContainerPort)) == p {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// envOfContainer is what a container's environment holds: its env entries
// (values, or "<secret>/<configmap>" markers) and each key of the ConfigMaps
// and Secrets of its envFrom, with the errors of references that lead nowhere.
func (o objects) envOfContainer(c corev1.Container) (map[string]string, []error) {
	env := map[string]string{}
	var errs []error
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm, ok := o.configMaps[ef.ConfigMapRef.Name]
			if !ok {
				errs = append(errs, fmt.Errorf("envFrom names ConfigMap %s, which is not a manifest", ef.ConfigMapRef.Name))
				continue
			}
			for k, v := range cm.Data {
				env[ef.Prefix+k] = v
			}
		case ef.SecretRef != nil:
			s, ok := o.secrets[ef.SecretRef.Name]
			if !ok {
				errs = append(errs, fmt.Errorf("envFrom names Secret %s, which is not in %s", ef.SecretRef.Name, secretsFile))
				continue
			}
			for k, v := range s.StringData {
				env[ef.Prefix+k] = v
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s, ok := o.secrets[ref.Name]
			if !ok {
				errs = append(errs, fmt.Errorf("env %s reads Secret %s, which is not in %s", e.Name, ref.Name, secretsFile))
				continue
			}
			v, ok := s.StringData[ref.Key]
			if !ok {
				errs = append(errs, fmt.Errorf("env %s reads key %s of Secret %s, which %s does not have", e.Name, ref.Key, ref.Name, secretsFile))
			}
			env[e.Name] = v
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm, ok := o.configMaps[ref.Name]
			if !ok || cm.Data[ref.Key] == "" {
				errs = append(errs, fmt.Errorf("env %s reads key %s of ConfigMap %s, which has no such key", e.Name, ref.Key, ref.Name))
			}
			env[e.Name] = cm.Data[ref.Key]
		default:
			env[e.Name] = "(from the pod)"
		}
	}
	return env, errs
}

// selects reports whether sel selects the labels of tmpl.
func selects(sel *metav1.LabelSelector, tmpl map[string]string) (bool, error) {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false, err
	}
	return !s.Empty() && s.Matches(labels.Set(tmpl)), nil
}

// checkK8s returns every inconsistency of the decoded manifests with each
// other and with iochub: probes, PodDisruptionBudgets, Services, images,
// environment, resources, and the NATS StatefulSet against its own config.
func checkK8s(ms []manifest, composeNATSImage string) []error {
	o, errs := index(ms)
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	mux := opsMux()
	iochubImage := ""
	for _, d := range o.deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			if iochubImage == "" && slices.Equal(c.Args[:min(1, len(c.Args))], []string{"serve"}) {
				iochubImage = c.Image
			}
		}
	}
	if iochubImage == "" {
		bad("no Deployment runs iochub serve")
	}
	if !pinned(iochubImage) {
		bad("iochub image %q is not pinned to a tag", iochubImage)
	}
	workloads := o.workloads()
	for _, w := range workloads {
		spec := w.template.Spec
		if w.selector != nil {
			if ok, err := selects(w.selector, w.template.Labels); err != nil || !ok {
				bad("%s %s: selector %v does not select its own pod template's labels %v (%v)", w.kind, w.name, w.selector, w.template.Labels, err)
			}
		}
		if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			bad("%s %s: pods must set securityContext.runAsNonRoot", w.kind, w.name)
		}
		volumes := map[string]bool{}
		for _, v := range spec.Volumes {
			volumes[v.Name] = true
		}
		if w.kind == "StatefulSet" {
			for _, s := range o.statefulSets {
				if s.Name == w.name {
					for _, vct := range s.Spec.VolumeClaimTemplates {
						volumes[vct.Name] = true
					}
				}
			}
		}
		for _, c := range spec.Containers {
			where := fmt.Sprintf("%s %s container %s", w.kind, w.name, c.Name)
			if !pinned(c.Image) {
				bad("%s: image %s is not pinned to a tag", where, c.Image)
			}
			for _, vm := range c.VolumeMounts {
				if !volumes[vm.Name] {
					bad("%s: mounts volume %s, which the pod does not have", where, vm.Name)
				}
			}
			req, lim := c.Resources.Requests, c.Resources.Limits
			if req.Cpu().IsZero() || req.Memory().IsZero() || lim.Memory().IsZero() {
				bad("%s: wants cpu and memory requests and a memory limit, has requests %v limits %v", where, req, lim)
			} else if lim.Memory().Cmp(*req.Memory()) < 0 {
				bad("%s: memory limit %s below its request %s", where, lim.Memory(), req.Memory())
			}
			if c.SecurityContext == nil || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
				bad("%s: must set allowPrivilegeEscalation: false", where)
			}
			env, envErrs := o.envOfContainer(c)
			for _, err := range envErrs {
				bad("%s: %v", where, err)
			}
			switch {
			case strings.HasPrefix(c.Image, "nats:"):
				if composeNATSImage != "" && c.Image != composeNATSImage {
					bad("%s: image %s, but the compose files run %s", where, c.Image, composeNATSImage)
				}
			case isIOChub(c, iochubImage):
				errs = append(errs, checkIOChubContainer(o, w, c, env, mux)...)
			default:
				bad("%s: image %s is neither iochub's (%s) nor NATS's", where, c.Image, iochubImage)
			}
		}
	}
	// Every Deployment and StatefulSet has one PDB, and every PDB selects a workload.
	covered := map[string]int{}
	for _, p := range o.pdbs {
		if p.Spec.Selector == nil {
			bad("PodDisruptionBudget %s has no selector", p.Name)
			continue
		}
		if (p.Spec.MinAvailable == nil) == (p.Spec.MaxUnavailable == nil) {
			bad("PodDisruptionBudget %s: set exactly one of minAvailable and maxUnavailable", p.Name)
		}
		n := 0
		for _, w := range workloads {
			if ok, _ := selects(p.Spec.Selector, w.template.Labels); ok && w.kind != "Job" {
				covered[w.kind+"/"+w.name]++
				n++
				if replicas := replicasOf(o, w); p.Spec.MinAvailable != nil && p.Spec.MinAvailable.IntValue() >= int(replicas) {
					bad("PodDisruptionBudget %s: minAvailable %s of %d replicas of %s %s blocks every eviction (node drains hang)", p.Name, p.Spec.MinAvailable, replicas, w.kind, w.name)
				}
			}
		}
		if n == 0 {
			bad("PodDisruptionBudget %s selects %v, which matches no Deployment or StatefulSet", p.Name, p.Spec.Selector.MatchLabels)
		}
	}
	for _, w := range workloads {
		if w.kind != "Job" && covered[w.kind+"/"+w.name] != 1 {
			bad("%s %s is covered by %d PodDisruptionBudgets; want 1", w.kind, w.name, covered[w.kind+"/"+w.name])
		}
	}
	// Services select a workload and name ports its containers have.
	for _, s := range o.services {
		n := 0
		for _, w := range workloads {
			if ok, _ := selects(&metav1.LabelSelector{MatchLabels: s.Spec.Selector}, w.template.Labels); !ok || w.kind == "Job" {
				continue
			}
			n++
			for _, sp := range s.Spec.Ports {
				found := false
				for _, c := range w.template.Spec.Containers {
					if _, ok := containerPort(c.Ports, sp.TargetPort.String()); ok {
						found = true
					}
				}
				if !found {
					bad("Service %s: port %s targets %s, which no container of %s %s has", s.Name, sp.Name, sp.TargetPort.String(), w.kind, w.name)
				}
			}
		}
		if n == 0 {
			bad("Service %s selects %v, which matches no workload", s.Name, s.Spec.Selector)
		}
	}
	errs = append(errs, checkNATSStatefulSet(o)...)
	for _, d := range o.deployments {
		if t, _ := flagValue(d.Spec.Template.Spec.Containers[0].Args, "target"); t != "aggregator" {
			continue
		}
		// Never two writers of one province: either the aggregators share the
		// provinces under leases (--partitioned), or one replica replaced with Recreate.
		partitioned := boolFlag(d.Spec.Template.Spec.Containers[0].Args, "partitioned")
		single := d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType && d.Spec.Replicas != nil && *d.Spec.Replicas == 1
		if !partitioned && !single {
			bad("Deployment %s: strategy %s, replicas %v, not --partitioned: two aggregators would write the same provinces; want --partitioned, or one replica replaced with Recreate", d.Name, d.Spec.Strategy.Type, *d.Spec.Replicas)
		}
	}
	return errs
}

func replicasOf(o objects, w workload) int32 {
	var r *int32
	for _, d := range o.deployments {
		if w.kind == "Deployment" && d.Name == w.name {
			r = d.Spec.Replicas
		}
	}
	for _, s := range o.statefulSets {
		if w.kind == "StatefulSet" && s.Name == w.name {
			r = s.Spec.Replicas
		}
	}
	if r == nil {
		return 1
	}
	return *r
}

// checkIOChubContainer checks a container running the iochub image against
// the binary: its command, the variables it reads, the probes on the
// endpoints it serves, and the hosts of its URLs.
func checkIOChubContainer(o objects, w workload, c corev1.Container, env map[string]string, mux http.Handler) []error {
	var errs []error
	where := fmt.Sprintf("%s %s container %s", w.kind, w.name, c.Name)
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(where+": "+format, args...)) }
	if len(c.Command) != 0 {
		bad("overrides the image's entrypoint with %v; give the iochub command in args", c.Command)
	}
	command := ""
	switch {
	case len(c.Args) >= 1 && c.Args[0] == "serve":
		command = "serve"
	case len(c.Args) >= 1 && c.Args[0] == "migrate":
		command = "migrate"
	case len(c.Args) >= 2 && c.Args[0] == "units" && c.Args[1] == "import":
		command = "units import"
	default:
		bad("runs iochub %v; want serve, migrate or units import", c.Args)
		return errs
	}
	known := envNames(command)
	for k := range env {
		if strings.HasPrefix(k, "IOCHUB_") && !known[k] {
			bad("sets %s, which iochub %s does not read (no flag --%s)", k, command, strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k, "IOCHUB_"), "_", "-")))
		}
	}
	for _, a := range c.Args[len(strings.Fields(command)):] {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && !slices.Contains(iochubFlags[command], name) {
			bad("passes %s, which iochub %s does not have", a, command)
		}
	}
	if env["IOCHUB_DATABASE_URL"] == "" {
		bad("iochub %s without IOCHUB_DATABASE_URL", command)
	}
	if command != "serve" {
		return errs
	}
	target, _ := flagValue(c.Args, "target")
	if !slices.Contains(roleNames, target) || target == "all" {
		bad("--target=%q; want one role of %v per Deployment", target, roleNames[:3])
	}
	if w.name != "iochub-"+target {
		bad("runs --target=%s but is named %s", target, w.name)
	}
	if env["IOCHUB_NATS_URL"] == "" {
		bad("iochub serve without IOCHUB_NATS_URL")
	} else if u, err := url.Parse(env["IOCHUB_NATS_URL"]); err != nil {
		bad("IOCHUB_NATS_URL: %v", err)
	} else if !o.serviceExposes(u.Hostname(), u.Port()) {
		bad("IOCHUB_NATS_URL names %s:%s, which no Service exposes", u.Hostname(), u.Port())
	} else if u.User.Username() != natsx.HubUser {
		bad("IOCHUB_NATS_URL connects as %q; want %s, the hub user of nats.conf", u.User.Username(), natsx.HubUser)
	}
	if r := env["IOCHUB_STREAM_REPLICAS"]; r != "3" {
		bad("IOCHUB_STREAM_REPLICAS %q; want 3 (R3 streams on the 3-node cluster)", r)
	}
	// Probes: on the ops listener, on paths internal/ops serves.
	_, opsPort, err := net.SplitHostPort(env["IOCHUB_OPS_HTTP"])
	if err != nil {
		bad("IOCHUB_OPS_HTTP %q: %v", env["IOCHUB_OPS_HTTP"], err)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}, {"startup", c.StartupProbe, ""}} {
		if p.probe == nil {
			if p.path != "" {
				bad("no %s probe", p.name)
			}
			continue
		}
		g := p.probe.HTTPGet
		if g == nil {
			bad("%s probe is not an HTTP GET", p.name)
			continue
		}
		if p.path != "" && g.Path != p.path {
			bad("%s probe on %s; want %s", p.name, g.Path, p.path)
		}
		if !served(mux, g.Path) {
			bad("%s probe on %s, which iochub does not serve (404 from internal/ops)", p.name, g.Path)
		}
		port, ok := containerPort(c.Ports, g.Port.String())
		if !ok {
			bad("%s probe on port %s, which the container does not declare", p.name, g.Port.String())
		} else if strconv.Itoa(int(port)) != opsPort {
			bad("%s probe on port %d, but IOCHUB_OPS_HTTP listens on %s", p.name, port, opsPort)
		}
	}
	_, httpPort, err := net.SplitHostPort(env["IOCHUB_HTTP"])
	if err != nil {
		bad("IOCHUB_HTTP %q: %v", env["IOCHUB_HTTP"], err)
	} else if p, ok := containerPort(c.Ports, "http"); !ok || strconv.Itoa(int(p)) != httpPort {
		bad("port http is %d, but IOCHUB_HTTP listens on %s", p, httpPort)
	}
	return errs
}

// serviceExposes reports whether a Service named host has port.
func (o objects) serviceExposes(host, port string) bool {
	for _, s := range o.services {
		if s.Name != host {
			continue
		}
		for _, p := range s.Spec.Ports {
			if strconv.Itoa(int(p.Port)) == port {
				return true
			}
		}
	}
	return false
}

// checkNATSStatefulSet reads the NATS ConfigMap's nats.conf with
// nats-server's own parser, as pod 0 would, and checks it against the
// StatefulSet and Services: routes to every pod through the headless
// Service, the ports, the JetStream store on the pod's volume, the users of
// `iochub nats-config`, enough nodes for IOCHUB_STREAM_REPLICAS.
func checkNATSStatefulSet(o objects) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(o.statefulSets) != 1 {
		bad("want one StatefulSet (NATS), have %d", len(o.statefulSets))
		return errs
	}
	ss := o.statefulSets[0]
	cm, ok := o.configMaps[ss.Name]
	if !ok || cm.Data["nats.conf"] == "" {
		bad("StatefulSet %s: no ConfigMap %s with nats.conf", ss.Name, ss.Name)
		return errs
	}
	c := ss.Spec.Template.Spec.Containers[0]
	// The environment pod 0 has, with the Secret example's passwords.
	envVars := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			envVars[e.Name] = ss.Name + "-0"
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := o.secrets[ref.Name].StringData[ref.Key]
			if o.secrets[ref.Name] == nil || !ok {
				bad("StatefulSet %s: env %s reads %s/%s, which %s lacks", ss.Name, e.Name, ref.Name, ref.Key, secretsFile)
			}
			envVars[e.Name] = v
		default:
			envVars[e.Name] = e.Value
		}
	}
	opts, err := processNATSConfig(cm.Data["nats.conf"], envVars)
	if err != nil {
		bad("ConfigMap %s nats.conf: %v", cm.Name, err)
		return errs
	}
	if opts.ServerName != ss.Name+"-0" {
		bad("nats.conf server_name %q for pod %s-0; want the pod's name (a stable JetStream identity)", opts.ServerName, ss.Name)
	}
	if !opts.JetStream || opts.JetStreamDomain != "hub" {
		bad("nats.conf: jetstream %v domain %q; want JetStream in domain hub, as hub.conf", opts.JetStream, opts.JetStreamDomain)
	}
	replicas := int(replicasOf(o, workload{kind: "StatefulSet", name: ss.Name}))
	var want []string
	for i := range replicas {
		want = append(want, fmt.Sprintf("%s-%d.%s:%d", ss.Name, i, ss.Spec.ServiceName, opts.Cluster.Port))
	}
	var got []string
	for _, r := range opts.Routes {
		got = append(got, r.Host)
	}
	if !slices.Equal(got, want) {
		bad("nats.conf routes %v; want one per pod through the headless Service: %v", got, want)
	}
	headless := false
	for _, s := range o.services {
		if s.Name == ss.Spec.ServiceName {
			headless = s.Spec.ClusterIP == corev1.ClusterIPNone && s.Spec.PublishNotReadyAddresses
		}
	}
	if !headless {
		bad("StatefulSet %s: serviceName %s is not a headless Service publishing not-ready pods (the nodes must find each other before they are ready)", ss.Name, ss.Spec.ServiceName)
	}
	for name, port := range map[string]int{"client": opts.Port, "cluster": opts.Cluster.Port, "monitor": opts.HTTPPort} {
		if p, ok := containerPort(c.Ports, name); !ok || int(p) != port {
			bad("StatefulSet %s: container port %s is %d; nats.conf listens on %d", ss.Name, name, p, port)
		}
	}
	mounted := func(dir string) bool {
		for _, vm := range c.VolumeMounts {
			if dir == vm.MountPath || strings.HasPrefix(dir, strings.TrimSuffix(vm.MountPath, "/")+"/") {
				return !vm.ReadOnly
			}
		}
		return false
	}
	if !mounted(opts.StoreDir) {
		bad("nats.conf store_dir %s is not on a writable volume of the pod", opts.StoreDir)
	}
	if opts.PidFile != "" && !mounted(filepath.Dir(opts.PidFile)) {
		bad("nats.conf pid_file %s is not on a writable volume (the preStop lame-duck signal reads it)", opts.PidFile)
	}
	if !strings.Contains(cm.Data["nats.conf"], natsx.AuthorizationConfig("$NATS_HUB_PASSWORD", "$NATS_READER_PASSWORD")) {
		bad("nats.conf: its authorization block is not the output of `iochub nats-config` (natsx.AuthorizationConfig)")
	}
	if cfg, ok := o.configMaps["iochub"]; ok {
		if r, _ := strconv.Atoi(cfg.Data["IOCHUB_STREAM_REPLICAS"]); r > replicas {
			bad("IOCHUB_STREAM_REPLICAS %d exceeds the %d NATS nodes", r, replicas)
		}
	}
	return errs
}

// processNATSConfig parses text with nats-server's config loader, with env
// set as the pod's environment.
func processNATSConfig(text string, env map[string]string) (*server.Options, error) {
	for k, v := range env {
		if old, ok := os.LookupEnv(k); ok {
			defer os.Setenv(k, old)
		} else {
			defer os.Unsetenv(k)
		}
		if err := os.Setenv(k, v); err != nil {
			return nil, err
		}
	}
	f, err := os.CreateTemp("", "nats-*.conf")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(text); err != nil {
		_ = f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return server.ProcessConfigFile(f.Name())
}

// composeNATSImage is the NATS image of the compose files (one for all).
func composeNATSImage(t *testing.T) string {
	t.Helper()
	images := map[string]bool{}
	for _, cf := range composeFiles {
		p := mustLoadProject(t, cf.file, filepath.Dir(cf.file), cf.env)
		for _, s := range p.Services {
			if strings.HasPrefix(s.Image, "nats:") {
				images[s.Image] = true
			}
		}
	}
	if len(images) != 1 {
		t.Fatalf("the compose files run NATS images %v; want one", keys(images))
	}
	return keys(images)[0]
}

func TestK8sManifests(t *testing.T) {
	k, ms := loadK8s(t)
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml: %s %s; want kustomize.config.k8s.io/v1beta1 Kustomization", k.APIVersion, k.Kind)
	}
	// Every manifest of the directory is applied (but the Secrets example).
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b := filepath.Base(f)
		if b != "kustomization.yaml" && b != secretsFile && !slices.Contains(k.Resources, b) {
			t.Errorf("%s is not in kustomization.yaml's resources", b)
		}
	}
	o, _ := index(ms)
	if len(o.namespaces) != 1 || o.namespaces[0].Name != k.Namespace {
		t.Errorf("namespaces %v; want the kustomization's namespace %q", o.namespaces, k.Namespace)
	}
	for _, s := range o.secrets {
		if s.Namespace != k.Namespace {
			t.Errorf("Secret %s in namespace %q; want %q (it is created by hand, without kustomize)", s.Name, s.Namespace, k.Namespace)
		}
	}
	for _, err := range checkK8s(ms, composeNATSImage(t)) {
		t.Error(err)
	}
	// Every role once.
	for _, r := range roleNames[:3] {
		n := 0
		for _, d := range o.deployments {
			if t, _ := flagValue(d.Spec.Template.Spec.Containers[0].Args, "target"); t == r {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d Deployments run --target=%s; want 1", n, r)
		}
	}
}

// TestK8sChecksCatch breaks the real manifests one way at a time, so that
// TestK8sManifests passing means something.
func TestK8sChecksCatch(t *testing.T) {
	deployment := func(ms []manifest, name string) *appsv1.Deployment {
		for _, m := range ms {
			if d, ok := m.obj.(*appsv1.Deployment); ok && d.Name == name {
				return d
			}
		}
		t.Fatalf("no Deployment %s", name)
		return nil
	}
	tests := []struct {
		name   string
		mutate func(ms []manifest) []manifest
		want   string
	}{
		{"probe on a path iochub does not serve", func(ms []manifest) []manifest {
			deployment(ms, "iochub-gateway").Spec.Template.Spec.Containers[0].ReadinessProbe.HTTPGet.Path = "/ready"
			return ms
		}, "/ready, which iochub does not serve"},
		{"no liveness probe", func(ms []manifest) []manifest {
			deployment(ms, "iochub-ingest").Spec.Template.Spec.Containers[0].LivenessProbe = nil
			return ms
		}, "no liveness probe"},
		{"a variable iochub does not read", func(ms []manifest) []manifest {
			c := &deployment(ms, "iochub-ingest").Spec.Template.Spec.Containers[0]
			c.Env = append(c.Env, corev1.EnvVar{Name: "IOCHUB_NATS_REPLICAS", Value: "3"})
			return ms
		}, "IOCHUB_NATS_REPLICAS, which iochub serve does not read"},
		{"a flag iochub does not have", func(ms []manifest) []manifest {
			c := &deployment(ms, "iochub-gateway").Spec.Template.Spec.Containers[0]
			c.Args = append(c.Args, "--replicas=3")
			return ms
		}, "--replicas=3, which iochub serve does not have"},
		{"a secret key the Secret lacks", func(ms []manifest) []manifest {
			c := &deployment(ms, "iochub-gateway").Spec.Template.Spec.Containers[0]
			c.Env = append(c.Env, corev1.EnvVar{Name: "IOCHUB_DEV_TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "iochub"}, Key: "IOCHUB_DEV_TOKEN"}}})
			return ms
		}, "key IOCHUB_DEV_TOKEN of Secret iochub"},
		{"a PDB selecting nothing", func(ms []manifest) []manifest {
			for _, m := range ms {
				if p, ok := m.obj.(*policyv1.PodDisruptionBudget); ok && p.Name == "iochub-gateway" {
					p.Spec.Selector.MatchLabels = map[string]string{"app.kubernetes.io/name": "gateway"}
				}
			}
			return ms
		}, "matches no Deployment or StatefulSet"},
		{"images differ", func(ms []manifest) []manifest {
			deployment(ms, "iochub-aggregator").Spec.Template.Spec.Containers[0].Image = "iochub:old"
			return ms
		}, "neither iochub's"},
		{"probe on the public port", func(ms []manifest) []manifest {
			deployment(ms, "iochub-ingest").Spec.Template.Spec.Containers[0].ReadinessProbe.HTTPGet.Port.StrVal = "http"
			return ms
		}, "IOCHUB_OPS_HTTP listens on 9090"},
		{"a route to a pod that does not exist", func(ms []manifest) []manifest {
			for _, m := range ms {
				if s, ok := m.obj.(*appsv1.StatefulSet); ok {
					n := int32(5)
					s.Spec.Replicas = &n
				}
			}
			return ms
		}, "want one per pod"},
		{"two aggregators, not partitioned", func(ms []manifest) []manifest {
			c := &deployment(ms, "iochub-aggregator").Spec.Template.Spec.Containers[0]
			c.Args = slices.DeleteFunc(c.Args, func(a string) bool { return a == "--partitioned" })
			return ms
		}, "two aggregators would write the same provinces"},
		{"no memory limit", func(ms []manifest) []manifest {
			delete(deployment(ms, "iochub-gateway").Spec.Template.Spec.Containers[0].Resources.Limits, corev1.ResourceMemory)
			return ms
		}, "memory limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ms := loadK8s(t)
			errs := checkK8s(tt.mutate(ms), "")
			if !strings.Contains(errors.Join(errs...).Error()+" ", tt.want) {
				t.Errorf("errors %v; want one containing %q", errs, tt.want)
			}
		})
	}
	t.Run("strict decoding", func(t *testing.T) {
		for _, f := range []struct{ file, want string }{
			{"unknown-field.bad.yaml", `unknown field "spec.template.spec.containers[0].livenesProbe"`},
			{"duplicate-field.bad.yaml", `key "replicas" already set`},
			{"unknown-kind.bad.yaml", "no kind"},
		} {
			r, err := os.Open(filepath.Join("testdata/k8s", f.file))
			if err != nil {
				t.Fatal(err)
			}
			_, err = decodeManifests(f.file, r)
			_ = r.Close()
			if err == nil || !strings.Contains(err.Error(), f.want) {
				t.Errorf("%s: %v; want an error containing %q", f.file, err, f.want)
			}
		}
	})
}
