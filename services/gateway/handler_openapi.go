package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/iochub/iochub/docs"
)

// GET /api serves the OpenAPI 3.1 description of the hub's HTTP API
// (docs/openapi.yaml): JSON by default, the YAML as written with
// Accept: application/vnd.oai.openapi (or application/yaml). It needs no
// identity: it says what the API is, not what the hub holds.

// MediaOpenAPIYAML and MediaOpenAPIJSON are the media types of the document.
const (
	MediaOpenAPIYAML = "application/vnd.oai.openapi;version=3.1"
	MediaOpenAPIJSON = "application/vnd.oai.openapi+json;version=3.1"
)

// openAPIJSON is docs.OpenAPI converted once to JSON.
var openAPIJSON = sync.OnceValues(func() ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(docs.OpenAPI, &v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
})

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Vary", "Accept")
	w.Header().Set("Cache-Control", "public, max-age=300")
	if wantsYAML(r.Header.Get("Accept")) {
		w.Header().Set("Content-Type", MediaOpenAPIYAML)
		_, _ = w.Write(docs.OpenAPI)
		return
	}
	b, err := openAPIJSON()
	if err != nil {
		writeProblem(w, r, http.StatusInternalServerError, "the embedded OpenAPI document is not valid YAML: "+err.Error())
		return
	}
	ct := "application/json"
	if strings.Contains(r.Header.Get("Accept"), "application/vnd.oai.openapi+json") {
		ct = MediaOpenAPIJSON
	}
	w.Header().Set("Content-Type", ct)
	_, _ = w.Write(b)
}

// wantsYAML reports whether accept names a YAML type before any JSON one.
func wantsYAML(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		switch strings.ToLower(strings.TrimSpace(mt)) {
		case "application/vnd.oai.openapi", "application/yaml", "application/x-yaml", "text/yaml":
			return true
		case "application/json", "application/vnd.oai.openapi+json", "*/*", "application/*":
			return false
		}
	}
	return false
}
