package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/routes"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/gateway/pgread"
)

// Operator actions: the gateway never writes the database; it checks an
// operator's request, publishes it as an ioc.v1.Action on the ACTIONS stream
// (ioc.action.<province>.<target kind>.<target>) and answers 202 with the
// action's id. The aggregator applies it, records it in the audit log and
// publishes the changed state.

// Bounds of an operator request.
const (
	maxActionBody          = 16 << 10
	maxAssignee            = 200
	maxNote                = 2000
	maxIdempotency         = 128
	actionTypeReportStatus = "report.status"
	// HeaderIdempotencyKey names the header whose value becomes the action's
	// id: a retried request with the same key is applied once.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderActor optionally names the person acting through an identity (a
	// wall screen shared by a shift): the audit log records "<identity id> as <name>".
	HeaderActor = "Iochub-Actor"
)

var reportStatuses = map[string]bool{"received": true, "assigned": true, "in_progress": true, "resolved": true, "rejected": true}

// defaultActionPublishTimeout is OperatorConfig.PublishTimeout's default.
const defaultActionPublishTimeout = 5 * time.Second

// OperatorConfig configures the operator endpoints.
type OperatorConfig struct {
	// PublishTimeout bounds the wait for JetStream's ack of an action; 0 means 5s.
	PublishTimeout time.Duration
	// Now is the clock of actions; nil means time.Now.
	Now func() time.Time
}

type operator struct {
	g   *Gateway
	cfg OperatorConfig
}

// RegisterOperator adds the endpoints that publish actions to mux: report
// status (POST /v1/reports/{id}/status, GET /v1/reports/{id}), alert
// acknowledgement (POST /v1/alerts/{id}/ack, handler_alert_ack.go), alert rules
// and the identities admin API.
func (g *Gateway) RegisterOperator(mux routes.Mux, cfg OperatorConfig) {
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = defaultActionPublishTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	o := &operator{g: g, cfg: cfg}
	mux.HandleFunc("POST /v1/reports/{id}/status", o.serveReportStatus)
	mux.HandleFunc("GET /v1/reports/{id}", o.serveReport)
	mux.HandleFunc("POST /v1/alerts/{id}/ack", o.serveAlertAck)
	mux.HandleFunc("GET /v1/actions/{id}", o.serveAction)
	o.registerRules(mux)       // PUT, DELETE, GET /v1/rules… (handler_rules.go)
	o.registerIdentities(mux)  // /v1/admin/identities (handler_identities.go)
	o.registerGroups(mux)      // PUT /v1/units/groups/{code} (handler_groups.go)
	o.registerImports(mux)     // POST, GET /v1/admin/units/imports (handler_imports.go)
	o.registerDeadletters(mux) // GET, POST, DELETE /v1/deadletters… (handler_deadletters.go)
}

// reportStatusRequest is the body of POST /v1/reports/{id}/status.
type reportStatusRequest struct {
	Status   string `json:"status"`
	Assignee string `json:"assignee,omitempty"`
	Note     string `json:"note,omitempty"`
}

// actionAccepted is the 202 answer.
type actionAccepted struct {
	ActionID string `json:"actionId"`
	Type     string `json:"type"`
	Target   string `json:"target"`
}

func (o *operator) serveReportStatus(w http.ResponseWriter, r *http.Request) {
	who, ok := o.g.authenticate(w, r)
	if !ok || !readsKind(w, r, who, subjects.KindReport) {
		return
	}
	id := r.PathValue("id")
	req, msg := readReportStatus(w, r)
	if msg != "" {
		writeProblem(w, r, http.StatusBadRequest, msg)
		return
	}
	actionID, actor, ok := actionHead(w, r, who)
	if !ok {
		return
	}
	tree, ok := o.g.hierarchy(w, r)
	if !ok {
		return
	}
	province, unit, err := o.reportPlace(r.Context(), id)
	switch {
	case errors.Is(err, errNoPool):
		writeProblem(w, r, http.StatusServiceUnavailable, "reports cannot be looked up: the gateway has no database")
		return
	case errors.Is(err, pgx.ErrNoRows):
		writeProblem(w, r, http.StatusNotFound, fmt.Sprintf("report %q does not exist (ids are <source>/<report id>, URL-escaped: dev%%2Fr-1)", id))
		return
	case err != nil:
		o.g.readFailed(w, r, err, "looking up report", "report", id)
		return
	case !who.CanRead(province) && !who.CanReadUnit(tree, unit):
		// A report the principal cannot read looks absent, so ids are not
		// probed, nor its place learnt (as GET /v1/reports/{id}).
		writeProblem(w, r, http.StatusNotFound, fmt.Sprintf("report %q does not exist (ids are <source>/<report id>, URL-escaped: dev%%2Fr-1)", id))
		return
	case !who.CanActReport(tree, province, unit): // the aggregator asks it again, of the actor then
		forbid(w, r, who, "change reports of province "+province+" unit "+unit+" (operator role in it needed)")
		return
	}
	payload, _ := json.Marshal(map[string]string{"status": req.Status, "assignee": req.Assignee})
	act := &iocv1.Action{Id: actionID, Type: actionTypeReportStatus, Actor: actor, Province: province,
		TargetKind: subjects.KindReport, Target: id, At: timestamppb.New(o.cfg.Now()), Payload: payload, Note: req.Note}
	if err := o.publish(r.Context(), act); err != nil {
		o.g.log.Error("publishing operator action failed", "action", actionID, "err", err)
		writeProblem(w, r, http.StatusServiceUnavailable, "the action could not be queued; retry with the same Idempotency-Key")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(actionAccepted{ActionID: actionID, Type: act.Type, Target: id})
}

// readReportStatus reads and checks the body; the message says what is wrong.
func readReportStatus(w http.ResponseWriter, r *http.Request) (reportStatusRequest, string) {
	var req reportStatusRequest
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return req, fmt.Sprintf("Content-Type %q: send application/json", ct)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxActionBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, "body: want {\"status\":\"assigned\",\"assignee\":\"...\",\"note\":\"...\"}: " + err.Error()
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, "body: want one JSON object and nothing after it"
	}
	switch {
	case req.Status == "":
		return req, "status: missing; want one of received, assigned, in_progress, resolved, rejected"
	case !reportStatuses[req.Status]:
		return req, fmt.Sprintf("status: %q is not one of received, assigned, in_progress, resolved, rejected", req.Status)
	case utf8.RuneCountInString(req.Assignee) > maxAssignee:
		return req, fmt.Sprintf("assignee: longer than %d characters", maxAssignee)
	case utf8.RuneCountInString(req.Note) > maxNote:
		return req, fmt.Sprintf("note: longer than %d characters", maxNote)
	case badText(req.Assignee) != "":
		return req, "assignee: " + badText(req.Assignee)
	case badText(req.Note) != "":
		return req, "note: " + badText(req.Note)
	case req.Status == "assigned" && strings.TrimSpace(req.Assignee) == "":
		return req, "assignee: missing; assigning a report needs an assignee"
	}
	return req, ""
}

// actionHead reads what every operator action carries besides its body: its
// id (from the Idempotency-Key, or a new one) and the actor (who, with the
// name the client gives); a malformed one is answered 400 and ok is false.
func actionHead(w http.ResponseWriter, r *http.Request, who auth.Principal) (actionID, actor string, ok bool) {
	actionID, msg := actionIDFrom(who.ID+"\x00"+r.Method+" "+r.URL.EscapedPath(), r.Header.Get(HeaderIdempotencyKey))
	if msg == "" {
		actor, msg = actorOf(who, r)
	}
	if msg != "" {
		writeProblem(w, r, http.StatusBadRequest, msg)
		return "", "", false
	}
	return actionID, actor, true
}

// actionIDFrom is the action id of a request with Idempotency-Key key (a
// fresh random id without one) or the message saying what is wrong with
// the key. The id of a key is its hash with scope, the identity and the
// request's method and path: a retry of the request is the same action
// (JetStream's duplicate window, then the aggregator's action_done), while
// the same key from another identity, or for another target or kind of
// action, is another action, never taken for a retry and dropped.
func actionIDFrom(scope, key string) (string, string) {
	key = strings.TrimSpace(key)
	if key == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b), ""
	}
	if len(key) > maxIdempotency {
		return "", fmt.Sprintf("header %s is longer than %d bytes", HeaderIdempotencyKey, maxIdempotency)
	}
	for _, c := range []byte(key) {
		if c < 0x21 || c > 0x7e {
			return "", fmt.Sprintf("header %s: want visible ASCII characters only", HeaderIdempotencyKey)
		}
	}
	sum := sha256.Sum256([]byte(scope + "\x00" + key))
	return hex.EncodeToString(sum[:16]), ""
}

var errNoPool = errors.New("no database pool")

// reportPlace is the province and unit of report id; pgx.ErrNoRows when there is none.
func (o *operator) reportPlace(ctx context.Context, id string) (province, unit string, err error) {
	if o.g.readPool == nil {
		return "", "", errNoPool
	}
	p, u, found, err := pgread.New(o.g.readPool).ReportPlace(ctx, id)
	if err == nil && !found {
		err = pgx.ErrNoRows
	}
	return p, u, err
}

// publish sends the action on ACTIONS and waits for its ack. Nats-Msg-Id is
// the action id, so a retried request within the duplicate window is stored once.
func (o *operator) publish(ctx context.Context, act *iocv1.Action) error {
	_, err := o.publishAck(ctx, act)
	return err
}

// publishAck publishes act as publish does and returns the stream's ack
// (Duplicate: an action of that id was published within ACTIONS' window).
func (o *operator) publishAck(ctx context.Context, act *iocv1.Action) (*jetstream.PubAck, error) {
	body, err := proto.Marshal(act)
	if err != nil {
		return nil, fmt.Errorf("marshalling action %s: %w", act.Id, err)
	}
	subj := subjects.Action(act.Province, act.TargetKind, act.Target)
	h := ce.Event{ID: act.Id, Source: "urn:ioc:" + act.Province + ":operator", Type: "vn.ioc.action." + act.Type + ".v1",
		Subject: act.Target, Time: act.At.AsTime()}.Header()
	h[jetstream.MsgIDHeader] = []string{act.Id}
	ctx, cancel := context.WithTimeout(ctx, o.cfg.PublishTimeout)
	defer cancel()
	ack, err := o.g.deps.JS.PublishMsg(ctx, &nats.Msg{Subject: subj, Header: h, Data: body})
	if err != nil {
		return nil, fmt.Errorf("publishing %s: %w", subj, err)
	}
	return ack, nil
}

// maxActionID bounds the id GET /v1/actions/{id} looks up (action ids are
// 32 hex digits; an id the database could not hold is no action's).
const maxActionID = 128

// serveAction answers GET /v1/actions/{id}: how an action ended (applied,
// or refused with the reason), for its actor (the identity that queued it,
// whatever name it gave in Iochub-Actor) and for the admins of its
// province (of every province for one of none). 404 for an action not yet
// applied or refused, and for one the caller may not see (ids are not
// probed).
func (o *operator) serveAction(w http.ResponseWriter, r *http.Request) {
	who, ok := o.g.authenticate(w, r)
	if !ok {
		return
	}
	if o.g.readPool == nil {
		writeProblem(w, r, http.StatusServiceUnavailable, "actions cannot be looked up: the gateway has no database")
		return
	}
	id := r.PathValue("id")
	notFound := func() {
		writeProblem(w, r, http.StatusNotFound, fmt.Sprintf("no action %q of yours has been applied or refused (one just queued is within seconds)", truncate(id, 64)))
	}
	if len(id) > maxActionID || !utf8.ValidString(id) || strings.ContainsRune(id, 0) {
		notFound()
		return
	}
	v, found, err := pgread.New(o.g.readPool).Action(r.Context(), id)
	if err != nil {
		o.g.readFailed(w, r, err, "reading action", "action", id)
		return
	}
	actor, _, _ := strings.Cut(v.Actor, " as ")
	mine := actor == who.ID
	// An action of no one province (a map import, an identity of several)
	// is recorded with none: an admin of every province reads it.
	admin := who.CanAdmin(v.Province) || (v.Province == "" && who.IsAdmin() && who.AllProvinces())
	if !found || (!mine && !admin) {
		notFound()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

func (o *operator) serveReport(w http.ResponseWriter, r *http.Request) {
	who, ok := o.g.authenticate(w, r)
	if !ok || !readsKind(w, r, who, subjects.KindReport) {
		return
	}
	if o.g.readPool == nil {
		writeProblem(w, r, http.StatusServiceUnavailable, "reports cannot be looked up: the gateway has no database")
		return
	}
	tree, ok := o.g.hierarchy(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	v, found, err := pgread.New(o.g.readPool).Report(r.Context(), id)
	switch {
	case err != nil:
		o.g.readFailed(w, r, err, "reading report", "report", id)
		return
	case !found, !who.CanRead(v.Province) && !who.CanReadUnit(tree, v.Unit):
		writeProblem(w, r, http.StatusNotFound, fmt.Sprintf("report %q does not exist", id))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}
