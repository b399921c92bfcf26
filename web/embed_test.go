package web

import (
	"io/fs"
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
