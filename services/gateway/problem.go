package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/jackc/pgx/v5/pgconn"
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

// readFailed answers a failed database read: a statement cancelled by the
// read pool's statement_timeout (or the request's end) is 503 "Query timed
// out" saying so; anything else is 503 "database unavailable".
func (g *Gateway) readFailed(w http.ResponseWriter, r *http.Request, err error, msg string, attrs ...any) {
	var pgErr *pgconn.PgError
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &pgErr) && pgErr.Code == "57014") { // query_canceled
		g.log.Warn("database read cancelled by the statement timeout", append(attrs, "what", msg, "err", err)...)
		writeProblemType(w, r, http.StatusServiceUnavailable, ProblemQueryTimeout, "Query timed out",
			"the query ran longer than the read statement timeout (--read-statement-timeout) and was cancelled; ask for a shorter range or fewer points")
		return
	}
	g.log.Error("database read failed", append(attrs, "what", msg, "err", err)...)
	writeProblem(w, r, http.StatusServiceUnavailable, "the database is unavailable; retry later")
}
