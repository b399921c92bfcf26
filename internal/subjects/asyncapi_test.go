package subjects

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// constructors calls each exported function of the package that takes and
// returns strings, by name. The list of names comes from the source
// (exportedStringFuncs): a new function fails TestAsyncAPICoversSubjects
// until it is called here, and, if it makes a subject, documented in
// docs/asyncapi.yaml.
var constructors = map[string]func(a []string) string{
	"Feed":             func(a []string) string { return Feed(a[0], a[1], a[2]) },
	"FeedProvince":     func(a []string) string { return FeedProvince(a[0]) },
	"FeedUnit":         func(a []string) string { return FeedUnit(a[0], a[1]) },
	"State":            func(a []string) string { return State(a[0], a[1], a[2]) },
	"StateProvince":    func(a []string) string { return StateProvince(a[0]) },
	"Rollup":           func(a []string) string { return Rollup(a[0], a[1], a[2], a[3]) },
	"RollupProvince":   func(a []string) string { return RollupProvince(a[0]) },
	"RollupUnitAll":    func(a []string) string { return RollupUnitAll(a[0], a[1]) },
	"StateLayerAll":    func(a []string) string { return StateLayerAll(a[0], a[1]) },
	"Action":           func(a []string) string { return Action(a[0], a[1], a[2]) },
	"Deadletter":       func(a []string) string { return Deadletter(a[0], a[1]) },
	"DeadletterFilter": func(a []string) string { return DeadletterFilter(a[0], a[1]) },
	"Token":            func(a []string) string { return Token(a[0]) },
	"Untoken":          func(a []string) string { return Untoken(a[0]) },
	"StreamOf":         func(a []string) string { return StreamOf(a[0]) },
}

// exportedStringFuncs lists the exported functions of the package's source
// whose parameters and only result are strings, with their arity; and the
// string constants whose value is a subject (starts with "ioc.").
func exportedStringFuncs(t *testing.T) (map[string]int, map[string]string) {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	funcs, consts := map[string]int{}, map[string]string{}
	isString := func(e ast.Expr) bool { id, ok := e.(*ast.Ident); return ok && id.Name == "string" }
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv != nil || !d.Name.IsExported() || d.Type.Results == nil || len(d.Type.Results.List) != 1 ||
					len(d.Type.Results.List[0].Names) > 1 || !isString(d.Type.Results.List[0].Type) {
					continue
				}
				n, ok := 0, true
				for _, p := range d.Type.Params.List {
					ok = ok && isString(p.Type)
					n += max(len(p.Names), 1)
				}
				if ok {
					funcs[d.Name.Name] = n
				}
			case *ast.GenDecl:
				if d.Tok != token.CONST {
					continue
				}
				for _, s := range d.Specs {
					vs := s.(*ast.ValueSpec)
					for i, v := range vs.Values {
						lit, ok := v.(*ast.BasicLit)
						if !ok || lit.Kind != token.STRING {
							continue
						}
						val, _ := strconv.Unquote(lit.Value)
						if strings.HasPrefix(val, "ioc.") {
							consts[vs.Names[i].Name] = val
						}
					}
				}
			}
		}
	}
	return funcs, consts
}

// channelAddresses reads the channel addresses of docs/asyncapi.yaml (the
// document itself is validated by @asyncapi/parser in make asyncapi-check).
func channelAddresses(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "asyncapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^    address: *['"]?([^'"\s]+)`).FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	if len(out) == 0 {
		t.Fatal("docs/asyncapi.yaml has no channel address")
	}
	return out
}

// matches reports whether subject (concrete, or a filter with * and a
// final >) fits the channel address, whose {parameters} stand for one token.
func matches(address, subject string) bool {
	at, st := strings.Split(address, "."), strings.Split(subject, ".")
	for i, s := range st {
		if s == ">" {
			return i == len(st)-1 && len(at) > i
		}
		if i >= len(at) {
			return false
		}
		a := at[i]
		param := strings.HasPrefix(a, "{") && strings.HasSuffix(a, "}")
		if s != "*" && !param && a != s {
			return false
		}
	}
	return len(at) == len(st)
}

// TestAsyncAPICoversSubjects fails when a subject made by this package (a
// constructor called with placeholder tokens, or a wildcard constant) has no
// channel in docs/asyncapi.yaml, or when a channel is made by no constructor.
func TestAsyncAPICoversSubjects(t *testing.T) {
	funcs, consts := exportedStringFuncs(t)
	addresses := channelAddresses(t)
	used := map[string]bool{}
	check := func(what, subject string) {
		found := false
		for _, a := range addresses {
			if matches(a, subject) {
				found = true
				if !strings.HasSuffix(subject, ">") && !strings.Contains(subject, "*") {
					used[a] = true
				}
			}
		}
		if !found {
			t.Errorf("%s makes %s, which no channel of docs/asyncapi.yaml has (channels: %s)", what, subject, strings.Join(addresses, ", "))
		}
	}
	if len(funcs) < 5 {
		t.Fatalf("found only %d constructors in the source: %v", len(funcs), funcs)
	}
	for name, arity := range funcs {
		call, ok := constructors[name]
		if !ok {
			t.Errorf("subjects.%s is new: call it in constructors (asyncapi_test.go) and give its subjects a channel in docs/asyncapi.yaml", name)
			continue
		}
		args := make([]string, arity)
		for i := range args {
			args[i] = fmt.Sprintf("P%d", i)
		}
		s := call(args)
		if !strings.HasPrefix(s, "ioc.") {
			continue // not a subject (Token, Untoken)
		}
		check(fmt.Sprintf("subjects.%s(%s)", name, strings.Join(args, ", ")), s)
	}
	for name := range constructors {
		if _, ok := funcs[name]; !ok {
			t.Errorf("constructors calls %s, which the source no longer has", name)
		}
	}
	for name, v := range consts {
		if strings.HasSuffix(v, ".") {
			v += ">" // a prefix: every subject it starts
		}
		check("subjects."+name, v)
	}
	for _, a := range addresses {
		if !used[a] {
			t.Errorf("channel %s of docs/asyncapi.yaml is made by no constructor of internal/subjects", a)
		}
	}
}

func TestMatches(t *testing.T) {
	for _, c := range []struct {
		address, subject string
		want             bool
	}{
		{"ioc.feed.{p}.{u}.{k}", "ioc.feed.01.00070.air", true},
		{"ioc.feed.{p}.{u}.{k}", "ioc.feed.01.00070", false},
		{"ioc.feed.{p}.{u}.{k}", "ioc.feed.01.00070.air.x", false},
		{"ioc.feed.{p}.{u}.{k}", "ioc.feed.>", true},
		{"ioc.feed.{p}.{u}.{k}", "ioc.feed.01.*.air", true},
		{"ioc.feed.{p}.{u}.{k}", "ioc.state.>", false},
		{"ioc.feed.{p}.{u}.air", "ioc.feed.01.u.water", false},
	} {
		if got := matches(c.address, c.subject); got != c.want {
			t.Errorf("matches(%s, %s) = %v; want %v", c.address, c.subject, got, c.want)
		}
	}
}
