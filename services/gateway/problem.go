package gateway

import (
	"encoding/json"
	"net/http"
)

// problem is an RFC 9457 problem details document.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
}

// writeProblem answers status with a problem document whose detail says what was wrong.
func writeProblem(w http.ResponseWriter, r *http.Request, status int, detail string) {
	writeProblemType(w, r, status, "about:blank", http.StatusText(status), detail)
}

// ProblemQueryTimeout is the type of the problem answered when a read ran
// longer than the read pool's statement timeout.
const ProblemQueryTimeout = "urn:iochub:problem:query-timeout"

// writeProblemType is writeProblem with a problem type (urn:iochub:problem:<slug>) and a
// title of its own, for a problem that the status's text does not name.
func writeProblemType(w http.ResponseWriter, r *http.Request, status int, typ, title, detail string) {
	b, _ := json.Marshal(problem{
		Type:     typ,
		Title:    title,
		Status:   status,
		Detail:   detail,
		Instance: r.URL.Path,
	})
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
