package gateway

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/deadletter"
	"github.com/iochub/iochub/internal/routes"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// Dead letters: GET /v1/deadletters and /v1/deadletters/{seq} read the
// DEADLETTER stream (feed items accepted but not stored, with the reason);
// POST /v1/deadletters/{seq}/redrive and DELETE /v1/deadletters/{seq} are
// operator actions (deadletter.redrive, deadletter.discard on ACTIONS) that
// the aggregator applies and records in the audit log. All of them need the
// operator role in the dead letter's province, or in the unit its original
// subject names (ioc.feed.<province>.<unit>.<kind>) for an operator scoped to
// units; a letter out of scope is 404, and one without a province is seen by
// operators of every province only.

// Bounds of a dead-letter listing.
const (
	defaultDeadletterLimit = 100
	maxDeadletterLimit     = 1000
	maxDeadletterFilter    = 64
)

// registerDeadletters adds the dead-letter endpoints to mux.
func (o *operator) registerDeadletters(mux routes.Mux) {
	mux.HandleFunc("GET /v1/deadletters", o.serveDeadletters)
	mux.HandleFunc("GET /v1/deadletters/{seq}", o.serveDeadletter)
	mux.HandleFunc("POST /v1/deadletters/{seq}/redrive", o.serveDeadletterAction(deadletter.ActionRedrive))
	mux.HandleFunc("DELETE /v1/deadletters/{seq}", o.serveDeadletterAction(deadletter.ActionDiscard))
}

// deadletterList is the answer of GET /v1/deadletters.
type deadletterList struct {
	Items []deadletter.Letter `json:"items"`
	// Next is the after= of the next page; absent on the last.
	Next uint64 `json:"next,omitempty"`
}

// deadletterQuery reads province, kind, after and limit; msg says what is wrong.
func deadletterQuery(r *http.Request) (deadletter.Query, string) {
	v := r.URL.Query()
	q := deadletter.Query{Province: v.Get("province"), Kind: v.Get("kind"), Limit: defaultDeadletterLimit}
	if len(q.Province) > maxDeadletterFilter || len(q.Kind) > maxDeadletterFilter {
		return q, fmt.Sprintf("province and kind: at most %d bytes each", maxDeadletterFilter)
	}
	if s := v.Get("after"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return q, fmt.Sprintf("after %q: want the sequence of the last dead letter seen (the previous page's next)", s)
		}
		q.After = n
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxDeadletterLimit {
			return q, fmt.Sprintf("limit %q: want a whole number from 1 to %d", s, maxDeadletterLimit)
		}
		q.Limit = n
	}
	return q, ""
}

// canActOn reports whether p may see and act on dead letter l
// (auth.Principal.CanActDeadLetter, which the aggregator asks again when it
// applies an action on l).
func canActOn(p auth.Principal, tree *unitTree, l deadletter.Letter) bool {
	return p.CanActDeadLetter(tree, l.Province, l.Kind, l.Subject)
}

// deadletterOperator authenticates an operator; it answers itself when not.
func (o *operator) deadletterOperator(w http.ResponseWriter, r *http.Request) (auth.Principal, bool) {
	who, ok := o.g.authenticate(w, r)
	if ok && who.Role != auth.RoleOperator && !who.IsAdmin() {
		forbid(w, r, who, "handle dead letters (operator role needed)")
		ok = false
	}
	return who, ok
}

func (o *operator) serveDeadletters(w http.ResponseWriter, r *http.Request) {
	who, ok := o.deadletterOperator(w, r)
	if !ok {
		return
	}
	q, msg := deadletterQuery(r)
	if msg != "" {
		writeProblem(w, r, http.StatusBadRequest, msg)
		return
	}
	tree, ok := o.g.hierarchy(w, r)
	if !ok {
		return
	}
	switch {
	case q.Province != "":
		if !who.ReadsIn(tree, q.Province) { // the role is operator or admin already
			forbid(w, r, who, "handle the dead letters of province "+q.Province)
			return
		}
	case who.AllProvinces():
	default:
		prov, ok := onlyProvince(tree, who)
		if !ok {
			writeProblem(w, r, http.StatusBadRequest, "parameter province: required for an identity of several provinces or units")
			return
		}
		q.Province = prov
	}
	items, next, err := deadletter.List(r.Context(), o.g.deps.JS, q)
	if err != nil {
		o.g.log.Error("listing dead letters failed", "err", err)
		writeProblem(w, r, http.StatusServiceUnavailable, "the dead letters cannot be read right now; retry")
		return
	}
	kept := []deadletter.Letter{}
	for _, l := range items {
		if canActOn(who, tree, l) {
			kept = append(kept, l)
		}
	}
	items = kept
	writeJSON(w, http.StatusOK, deadletterList{Items: items, Next: next})
}

// deadletterDetail is the answer of GET /v1/deadletters/{seq}: the listing's
// fields, the message's headers, and its payload in base64 (and as JSON
// when it is JSON; feed items on NATS are usually protobuf).
type deadletterDetail struct {
	deadletter.Letter
	Headers       map[string][]string `json:"headers"`
	PayloadBase64 string              `json:"payloadBase64"`
	PayloadJSON   json.RawMessage     `json:"payloadJson,omitempty"`
}

// deadletterSeq is the {seq} of the path; it answers the problem itself when bad.
func deadletterSeq(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	s := r.PathValue("seq")
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil || seq == 0 {
		writeProblem(w, r, http.StatusBadRequest, fmt.Sprintf("dead letter %q: want its sequence, a whole number from 1", s))
		return 0, false
	}
	return seq, true
}

// letter reads dead letter seq as who sees it; it answers the problem itself when it cannot.
func (o *operator) letter(w http.ResponseWriter, r *http.Request, who auth.Principal, seq uint64) (deadletter.Letter, bool) {
	tree, ok := o.g.hierarchy(w, r)
	if !ok {
		return deadletter.Letter{}, false
	}
	l, err := deadletter.Get(r.Context(), o.g.deps.JS, seq)
	if err == nil && !canActOn(who, tree, l) {
		err = deadletter.ErrNotFound
	}
	switch {
	case errors.Is(err, deadletter.ErrNotFound):
		writeProblem(w, r, http.StatusNotFound, fmt.Sprintf("dead letter %d does not exist (redriven, discarded or aged out)", seq))
		return l, false
	case err != nil:
		o.g.log.Error("reading dead letter failed", "seq", seq, "err", err)
		writeProblem(w, r, http.StatusServiceUnavailable, "the dead letter cannot be read right now; retry")
		return l, false
	}
	return l, true
}

func (o *operator) serveDeadletter(w http.ResponseWriter, r *http.Request) {
	who, ok := o.deadletterOperator(w, r)
	if !ok {
		return
	}
	seq, ok := deadletterSeq(w, r)
	if !ok {
		return
	}
	l, ok := o.letter(w, r, who, seq)
	if !ok {
		return
	}
	d := deadletterDetail{Letter: l, Headers: l.Header, PayloadBase64: base64.StdEncoding.EncodeToString(l.Data)}
	if len(l.Data) > 0 && json.Valid(l.Data) {
		d.PayloadJSON = l.Data
	}
	writeJSON(w, http.StatusOK, d)
}

// serveDeadletterAction queues a redrive or discard of one dead letter as an
// operator action and answers 202 with its id.
func (o *operator) serveDeadletterAction(typ string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		who, ok := o.deadletterOperator(w, r)
		if !ok {
			return
		}
		seq, ok := deadletterSeq(w, r)
		if !ok {
			return
		}
		actionID, actor, ok := actionHead(w, r, who)
		if !ok {
			return
		}
		l, ok := o.letter(w, r, who, seq)
		if !ok {
			return
		}
		// The audit log keeps what was redriven or discarded, not only its number.
		payload, _ := json.Marshal(map[string]any{"subject": l.Subject, "source": l.Source, "eventId": l.EventID,
			"stage": l.Stage, "reason": l.Reason, "feedsSequence": l.FeedsSeq})
		target := strconv.FormatUint(seq, 10)
		act := &iocv1.Action{Id: actionID, Type: typ, Actor: actor, Province: l.Province,
			TargetKind: deadletter.TargetKind, Target: target, At: timestamppb.New(o.cfg.Now()), Payload: payload}
		if err := o.publish(r.Context(), act); err != nil {
			o.g.log.Error("publishing operator action failed", "action", actionID, "err", err)
			writeProblem(w, r, http.StatusServiceUnavailable, "the action could not be queued; retry with the same Idempotency-Key")
			return
		}
		o.g.log.Info("dead letter action queued", "action", actionID, "type", typ, "seq", seq, "subject", l.Subject,
			"actor", actor)
		writeJSON(w, http.StatusAccepted, actionAccepted{ActionID: actionID, Type: typ, Target: target})
	}
}

// writeJSON answers v as JSON, never cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
