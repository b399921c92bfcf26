package gateway

import (
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// contentTypes covers the app's files that Go's built-in table does not.
var contentTypes = map[string]string{
	".geojson":     "application/geo+json",
	".webmanifest": "application/manifest+json",
	".map":         "application/json",
	".pbf":         "application/x-protobuf",
	".woff2":       "font/woff2",
	".woff":        "font/woff",
	".ttf":         "font/ttf",
}

// framePolicy is the part of the wall's Content-Security-Policy that its
// HTML cannot carry in a meta element (index.html has the rest): no page of
// another site may frame the wall, so none can overlay it and trick an
// operator into an action (acknowledging an alert).
const framePolicy = "frame-ancestors 'none'"

// staticHandler serves the wall-screen app: HTML revalidated on every load
// (so a deploy shows at once) and never framed, other files cached for an
// hour. Directories without index.html are not listed. (X-Content-Type-Options
// is the hub's HTTP servers', set on every answer: cmd/iochub's noSniff.)
func staticHandler(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if name == "" {
			name = "."
		}
		st, err := fs.Stat(fsys, name)
		if err != nil {
			writeProblem(w, r, http.StatusNotFound, "no such file: /"+strings.TrimPrefix(name, "."))
			return
		}
		if st.IsDir() {
			if _, err := fs.Stat(fsys, path.Join(name, "index.html")); err != nil {
				writeProblem(w, r, http.StatusNotFound, "no such file: /"+strings.TrimPrefix(name, "."))
				return
			}
			name = path.Join(name, "index.html")
		}
		ext := path.Ext(name)
		if ext == ".html" {
			w.Header().Set("Cache-Control", "no-cache")
			w.Header().Set("Content-Security-Policy", framePolicy)
		} else {
			w.Header().Set("Cache-Control", "public, max-age=3600")
		}
		if ct, ok := contentTypes[ext]; ok {
			w.Header().Set("Content-Type", ct)
		}
		files.ServeHTTP(w, r)
	})
}
