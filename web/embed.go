// Package web owns the wall-screen app: the static files under app/ (our own
// HTML, CSS and ES modules, plus MapLibre GL JS and uPlot in app/vendor/,
// committed as scripts/vendor.sh copies them from the npm packages that
// package-lock.json pins), embedded so the gateway serves them from the
// binary: `go build ./cmd/iochub` alone gives the whole wall, with no
// internet and no build step for the browser code.
package web

import (
	"embed"
	"io/fs"
)

// App holds the app/ tree. The all: prefix keeps files whose names start
// with a dot or underscore, which some vendored packages ship.
//
//go:embed all:app
var App embed.FS

// FS returns the app/ subtree, so that its root holds index.html and it can be
// served as is, e.g. http.FileServerFS(web.FS()).
func FS() fs.FS {
	sub, err := fs.Sub(App, "app")
	if err != nil {
		// fs.Sub fails only on an invalid path; "app" is a constant.
		panic(err)
	}
	return sub
}
