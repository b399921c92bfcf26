package web

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

func TestFSHoldsTheApp(t *testing.T) {
	for _, name := range []string{"index.html", "app.js", "style.css", "i18n.js"} {
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
	for _, want := range []string{`src="vendor/maplibre-gl.js"`, `type="module" src="app.js"`, "<title>iochub — Trung tâm giám sát, điều hành thông minh</title>"} {
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
