package ingest

import (
	"encoding/json"
	"net/http"
)

// Problem is an RFC 9457 problem document (application/problem+json).
type Problem struct {
	// Type identifies the problem: urn:iochub:problem:<slug>.
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Errors name every item that was not accepted, and why.
	Errors []ProblemError `json:"errors,omitempty"`
}

// ProblemError is one item of a problem.
type ProblemError struct {
	Index   int    `json:"index"`
	Pointer string `json:"pointer,omitempty"`
	Reason  string `json:"reason"`
}

func writeProblem(w http.ResponseWriter, r *http.Request, status int, slug, title, detail string, errs []ProblemError) int {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(Problem{Type: "urn:iochub:problem:" + slug, Title: title, Status: status,
		Detail: detail, Instance: r.URL.Path, Errors: errs})
	return status
}

func problemErrors(results []Result) []ProblemError {
	var out []ProblemError
	for _, r := range results {
		if r.Status == StatusRejected {
			out = append(out, ProblemError{Index: r.Index, Pointer: r.Pointer, Reason: r.Reason})
		}
	}
	return out
}
