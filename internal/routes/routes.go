// Package routes is what the roles register their HTTP endpoints on: Mux,
// which *http.ServeMux implements, and Recorder, a ServeMux that remembers
// the patterns registered on it, so that a test can compare the hub's routes
// with docs/openapi.yaml (cmd/iochub TestOpenAPIRoutes).
package routes

import (
	"net/http"
	"slices"
	"sync"
)

// Mux registers handlers by pattern, as http.ServeMux does.
type Mux interface {
	Handle(pattern string, handler http.Handler)
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Recorder is an http.ServeMux that records every pattern registered on it.
type Recorder struct {
	*http.ServeMux
	mu       sync.Mutex
	patterns []string
}

// NewRecorder returns a Recorder on a new ServeMux.
func NewRecorder() *Recorder { return &Recorder{ServeMux: http.NewServeMux()} }

// Handle registers handler for pattern and records pattern.
func (r *Recorder) Handle(pattern string, handler http.Handler) {
	r.ServeMux.Handle(pattern, handler)
	r.record(pattern)
}

// HandleFunc registers handler for pattern and records pattern.
func (r *Recorder) HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request)) {
	r.ServeMux.HandleFunc(pattern, handler)
	r.record(pattern)
}

func (r *Recorder) record(pattern string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.patterns = append(r.patterns, pattern)
}

// Patterns returns the patterns registered so far, sorted.
func (r *Recorder) Patterns() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.patterns)
	slices.Sort(out)
	return out
}
