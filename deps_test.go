// Package iochub_test holds the tests that guard the shape of the whole
// module, in the style of tailscale's TestDeps: which package may import
// which.
package iochub_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/iochub/iochub"

// importRule forbids the packages under From to depend, directly or through
// others, on any package under one of Forbidden. Paths are relative to the
// module; a path covers itself and the packages below it.
type importRule struct {
	From      string
	Forbidden []string
	// Tests applies the rule to the package's tests too (what its test
	// binary links), not only to the package.
	Tests bool
	Why   string
}

// importRules are the import rules of iochub (docs/architecture.md).
var importRules = []importRule{
	{From: "services/gateway", Forbidden: []string{"services/aggregator", "services/ingest"}, Tests: true,
		Why: "readers never import the writer: shared models live in leaf packages under internal/"},
	{From: "services/ingest", Forbidden: []string{"services/aggregator", "services/gateway"}, Tests: true,
		Why: "the ingest refuses what the aggregator would refuse with shared leaf packages, not with the aggregator's code"},
	{From: "services/aggregator", Forbidden: []string{"services/gateway", "services/ingest"},
		Why: "a role imports no other role; what two share lives under internal/"},
	{From: "internal", Forbidden: []string{"services", "cmd"},
		Why: "internal/ holds what services share, so it depends on none of them (the test environment gets migrations from internal/schema)"},
	{From: "cmd/iocsim", Forbidden: []string{"services"},
		Why: "the simulator is a client of the hub: it speaks HTTP to the ingest, it does not link it"},
	{From: "internal/loadgen", Forbidden: []string{"services", "internal/natsx", "internal/units", "internal/kind", "internal/feedcheck", "internal/aqi", "proto"}, Tests: true,
		Why: "the load generator measures the hub from outside: a bug in the hub's encoders or decoders must not hide in it"},
	{From: "cmd/iocload", Forbidden: []string{"services", "proto"},
		Why: "the load generator is a client of the hub, like the simulator"},
	{From: "proto", Forbidden: []string{"services", "internal", "cmd"},
		Why: "the event schemas are the leaves of everything"},
}

// TestDeps checks importRules on the module's real import graph, as go list
// reports it for the packages and for their test binaries.
func TestDeps(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("the go command is needed to list imports: %v", err)
	}
	cmd := exec.Command("go", "list", "-deps", "-test", "-json=ImportPath,Imports", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	g, err := parseGoList(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(g) < 20 {
		t.Fatalf("go list found %d packages; want the whole module", len(g))
	}
	for _, v := range checkImports(g, importRules) {
		t.Error(v)
	}
}

// parseGoList reads the stream of JSON objects of go list -json into an
// import graph: package id (as go list names it, test variants with their
// " [p.test]" suffix) to the ids it imports.
func parseGoList(r io.Reader) (map[string][]string, error) {
	g := map[string][]string{}
	dec := json.NewDecoder(r)
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			return g, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decoding go list output: %w", err)
		}
		g[p.ImportPath] = p.Imports
	}
}

// checkImports returns one message for each package (or test binary) of the
// module that breaks a rule, with the chain of imports that breaks it.
func checkImports(g map[string][]string, rules []importRule) []string {
	var out []string
	roots := make([]string, 0, len(g))
	for id := range g {
		roots = append(roots, id)
	}
	slices.Sort(roots)
	for _, root := range roots {
		name, test, ok := rootName(root)
		if !ok {
			continue
		}
		for _, r := range rules {
			if !under(name, r.From) || (test && !r.Tests) {
				continue
			}
			for _, chain := range forbiddenChains(g, root, r.Forbidden) {
				what := name + " imports"
				if test {
					what = "the tests of " + name + " import"
				}
				out = append(out, fmt.Sprintf("%s %s: %s", what, strings.Join(chain, " → "), r.Why))
			}
		}
	}
	return out
}

// rootName tells whether id is a package of the module (a plain package, or
// the test binary p.test of package p) and gives its module-relative path.
func rootName(id string) (name string, test, ok bool) {
	if strings.Contains(id, " ") { // a test variant: reached from its .test root
		return "", false, false
	}
	rel, ok := relative(id)
	if !ok {
		return "", false, false
	}
	if p, isTest := strings.CutSuffix(rel, ".test"); isTest {
		return p, true, true
	}
	return rel, false, true
}

// relative is the module-relative path of a package id, without any test
// variant suffix; ok is false outside the module.
func relative(id string) (string, bool) {
	id, _, _ = strings.Cut(id, " ")
	if id == module {
		return ".", true
	}
	return strings.CutPrefix(id, module+"/")
}

func under(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// forbiddenChains walks the imports from root breadth first and returns, for
// each forbidden package reached, the shortest chain of imports to it.
func forbiddenChains(g map[string][]string, root string, forbidden []string) [][]string {
	prev := map[string]string{root: ""}
	queue := []string{root}
	var chains [][]string
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		if rel, ok := relative(id); ok && id != root && slices.ContainsFunc(forbidden, func(f string) bool { return under(rel, f) }) {
			var chain []string
			for n := id; n != ""; n = prev[n] {
				r, _ := relative(n)
				chain = append(chain, strings.TrimSuffix(r, ".test"))
			}
			slices.Reverse(chain)
			chain = slices.Compact(chain) // p.test and its variant of p read the same
			chains = append(chains, chain)
			continue // one message per forbidden package reached, not for all it imports
		}
		for _, next := range g[id] {
			if _, seen := prev[next]; !seen {
				prev[next] = id
				queue = append(queue, next)
			}
		}
	}
	return chains
}

// TestCheckImports runs the checker on made-up import graphs, so that
// TestDeps passing means the rules hold, not that the checker sees nothing.
func TestCheckImports(t *testing.T) {
	m := func(p string) string { return module + "/" + p }
	rules := []importRule{
		{From: "services/gateway", Forbidden: []string{"services/aggregator"}, Tests: true, Why: "readers"},
		{From: "internal", Forbidden: []string{"services"}, Why: "leaves"},
	}
	tests := []struct {
		name string
		g    map[string][]string
		want []string
	}{
		{"clean", map[string][]string{
			m("services/gateway"):          {m("internal/alertrule"), "fmt"},
			m("internal/alertrule"):        {"fmt"},
			m("services/aggregator/rules"): {m("internal/alertrule")},
			"fmt":                          nil,
		}, nil},
		{"direct", map[string][]string{
			m("services/gateway"):          {m("services/aggregator/rules")},
			m("services/aggregator/rules"): nil,
		}, []string{"services/gateway imports services/gateway → services/aggregator/rules: readers"}},
		{"through a subpackage and a leaf", map[string][]string{
			m("services/gateway"):            {m("services/gateway/pgread")},
			m("services/gateway/pgread"):     {m("internal/testenv")},
			m("internal/testenv"):            {m("services/aggregator/postgis")},
			m("services/aggregator/postgis"): {m("services/aggregator/rules")},
			m("services/aggregator/rules"):   nil,
		}, []string{
			"internal/testenv imports internal/testenv → services/aggregator/postgis: leaves",
			"services/gateway imports services/gateway → services/gateway/pgread → internal/testenv → services/aggregator/postgis: readers",
			"services/gateway/pgread imports services/gateway/pgread → internal/testenv → services/aggregator/postgis: readers",
		}},
		{"in a test binary, where the rule covers tests", map[string][]string{
			m("services/gateway.test"):                                 {m("services/gateway [" + m("services/gateway.test") + "]")},
			m("services/gateway [" + m("services/gateway.test") + "]"): {m("services/aggregator")},
			m("services/gateway"):                                      nil,
			m("services/aggregator"):                                   nil,
		}, []string{"the tests of services/gateway import services/gateway → services/aggregator: readers"}},
		{"in a test binary, where the rule does not cover tests", map[string][]string{
			m("internal/sim.test"):                                  {m("internal/sim_test [" + m("internal/sim.test") + "]")},
			m("internal/sim_test [" + m("internal/sim.test") + "]"): {m("services/ingest")},
			m("internal/sim"):                                       nil,
			m("services/ingest"):                                    nil,
		}, nil},
		{"a name that only starts like a forbidden one", map[string][]string{
			m("services/gateway"):     {m("services/aggregatorx")},
			m("services/aggregatorx"): nil,
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkImports(tt.g, rules)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
