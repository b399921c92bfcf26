package web

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

func TestFSHoldsTheApp(t *testing.T) {
	for _, name := range []string{"index.html", "app.js", "style.css", "i18n.js", "maplibre-start.js",
		"vendor/maplibre-gl-csp.js", "vendor/maplibre-gl-csp-worker.js", "vendor/maplibre-gl.css", "vendor/LICENSE.txt",
		"vendor/uPlot.iife.min.js", "vendor/uPlot.min.css", "vendor/uPlot.LICENSE"} {
		t.Run(name, func(t *testing.T) {
			b, err := fs.ReadFile(FS(), name)
			if err != nil {
				t.Fatalf("reading %s: %v", name, err)
			}
			if len(b) == 0 {
				t.Fatalf("got an empty %s; want its content", name)
			}
		})
	}
}

func TestIndexLoadsTheModules(t *testing.T) {
	b, err := fs.ReadFile(FS(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`src="vendor/maplibre-gl-csp.js"`, `src="maplibre-start.js"`, `type="module" src="app.js"`, "<title>iochub — Trung tâm giám sát, điều hành thông minh</title>"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("index.html does not contain %q", want)
		}
	}
}

// TestModulesResolve: every relative import of every module under app/ names a
// file that is embedded, so the browser never meets a 404 for a module.
func TestModulesResolve(t *testing.T) {
	re := regexp.MustCompile(`(?m)^\s*(?:import|export)\s[^'"]*from\s+'\./([^']+)'`)
	mods, err := fs.Glob(FS(), "*.js")
	if err != nil || len(mods) < 10 {
		t.Fatalf("got modules %v, %v; want the app's modules", mods, err)
	}
	imports := 0
	for _, m := range mods {
		b, err := fs.ReadFile(FS(), m)
		if err != nil {
			t.Fatal(err)
		}
		for _, match := range re.FindAllStringSubmatch(string(b), -1) {
			imports++
			if _, err := fs.Stat(FS(), match[1]); err != nil {
				t.Errorf("%s imports ./%s, which is not embedded: %v", m, match[1], err)
			}
		}
	}
	if imports < 20 {
		t.Errorf("found %d imports; the pattern no longer reads the modules", imports)
	}
}

// TestIndexPolicy: index.html states its Content-Security-Policy before
// anything it loads, the policy lets no inline script, eval or blob: worker
// run, and the page itself has no inline script the policy would refuse.
func TestIndexPolicy(t *testing.T) {
	b, err := fs.ReadFile(FS(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	meta := regexp.MustCompile(`<meta http-equiv="Content-Security-Policy" content="([^"]+)">`).FindStringSubmatchIndex(page)
	if meta == nil {
		t.Fatal("index.html has no Content-Security-Policy meta element")
	}
	if first := regexp.MustCompile(`<(script|link|style)\b`).FindStringIndex(page); first == nil || first[0] < meta[0] {
		t.Errorf("the policy comes after the first script, link or style at %v; want it before all of them", first)
	}
	directives := map[string]string{}
	for _, d := range strings.Split(page[meta[2]:meta[3]], ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	for name, want := range map[string]string{
		"default-src": "'self'", "script-src": "'self'", "worker-src": "'self'", "connect-src": "'self'",
		"object-src": "'none'", "base-uri": "'none'",
	} {
		if got := directives[name]; got != want {
			t.Errorf("%s %q; want %q", name, got, want)
		}
	}
	for _, tag := range regexp.MustCompile(`<script\b[^>]*>`).FindAllString(page, -1) {
		if !strings.Contains(tag, ` src="`) {
			t.Errorf("%s: an inline script, which the policy refuses; put it in a file", tag)
		}
	}
	if regexp.MustCompile(`\son[a-z]+=`).MatchString(page) {
		t.Error("index.html has an inline event handler attribute, which the policy refuses")
	}
}
