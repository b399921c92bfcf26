package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

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
// out" saying so; a value of the request the database refused (a data
// exception) is 400 naming it, never worth a retry; anything else is 503
// "database unavailable".
func (g *Gateway) readFailed(w http.ResponseWriter, r *http.Request, err error, msg string, attrs ...any) {
	if refusedValue(w, r, err) {
		g.log.Warn("database refused a value of the request", append(attrs, "what", msg, "err", err)...)
		return
	}
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

// requestValueCodes are the data exceptions (SQLSTATE class 22) a value a
// request gave can raise: text not valid in the database's encoding, a
// text that is no number or time, a time or number out of range, a text
// too long, a LIKE pattern ending in its escape character (22025: the cql2
// parser refuses such a literal, but a filter may take its pattern from a
// property, `'x' LIKE name`). Others of the class (a division by zero) are
// the hub's own fault: 503, logged as errors.
var requestValueCodes = map[string]bool{"22021": true, "22P05": true, "22P02": true, "22007": true, "22008": true,
	"22003": true, "22001": true, "22025": true}

// refusedValue answers 400 when err is the database refusing a value of
// the request (requestValueCodes),
// naming what it refused, and reports whether it did. The values reach the
// database from parameters the handlers decode (a cursor, an id in
// base64) after ValidURL saw them.
func refusedValue(w http.ResponseWriter, r *http.Request, err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || !requestValueCodes[pgErr.Code] {
		return false
	}
	writeProblem(w, r, http.StatusBadRequest, fmt.Sprintf("a value of the request was refused: %s (SQLSTATE %s); check the parameters, ids and cursor", pgErr.Message, pgErr.Code))
	return true
}

// ValidURL answers 400 to a request whose path or query holds text no
// endpoint takes: bytes that are not UTF-8, or a NUL (which PostgreSQL's
// text refuses), naming the parameter; other requests go to h. It spares
// every handler the check and the database the refusal (which would
// otherwise read as the database failing).
func ValidURL(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if bad := badText(r.URL.Path); bad != "" {
			writeProblem(w, r, http.StatusBadRequest, "the path "+bad)
			return
		}
		if r.URL.RawQuery != "" {
			q, _ := url.ParseQuery(r.URL.RawQuery) // a malformed escape is the handler's to name
			for k, vs := range q {
				if bad := badText(k); bad != "" {
					writeProblem(w, r, http.StatusBadRequest, fmt.Sprintf("a query parameter's name %s", bad))
					return
				}
				for _, v := range vs {
					if bad := badText(v); bad != "" {
						writeProblem(w, r, http.StatusBadRequest, fmt.Sprintf("query parameter %s %s", k, bad))
						return
					}
				}
			}
		}
		h.ServeHTTP(w, r)
	})
}

// badText says what is wrong with s as text of a request: "" when nothing.
func badText(s string) string {
	if !utf8.ValidString(s) {
		for i, c := range s {
			if c == utf8.RuneError {
				if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
					return fmt.Sprintf("is not UTF-8 (byte %d)", i)
				}
			}
		}
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		return fmt.Sprintf("holds a NUL byte (byte %d)", i)
	}
	return ""
}
