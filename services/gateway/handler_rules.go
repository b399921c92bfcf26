package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/alertrule"
	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/routes"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/gateway/pgread"
)

// Alert rules: PUT and DELETE /v1/rules/{id} are operator actions (rule.put,
// rule.delete on ACTIONS, applied by the aggregator, which records the rule
// before and after in the audit log); GET /v1/rules, /v1/rules/{id} and
// /v1/rules/{id}/history read the table and the audit log.

const (
	actionTypeRulePut    = "rule.put"
	actionTypeRuleDelete = "rule.delete"
	targetKindRule       = "rule"
)

// registerRules adds the rule endpoints to mux.
func (o *operator) registerRules(mux routes.Mux) {
	mux.HandleFunc("PUT /v1/rules/{id}", o.servePutRule)
	mux.HandleFunc("DELETE /v1/rules/{id}", o.serveDeleteRule)
	mux.HandleFunc("GET /v1/rules", o.serveRules)
	mux.HandleFunc("GET /v1/rules/{id}", o.serveRule)
	mux.HandleFunc("GET /v1/rules/{id}/history", o.serveRuleHistory)
}

// ruleProblem is a problem document that lists every problem of a rule.
type ruleProblem struct {
	problem
	Errors []alertrule.FieldError `json:"errors"`
}

func writeRuleProblem(w http.ResponseWriter, r *http.Request, err error) {
	var ve *alertrule.ValidationError
	if !errors.As(err, &ve) {
		writeProblem(w, r, http.StatusBadRequest, err.Error())
		return
	}
	b, _ := json.Marshal(ruleProblem{
		problem: problem{Type: "about:blank", Title: "Invalid alert rule", Status: http.StatusBadRequest,
			Detail: err.Error(), Instance: r.URL.Path},
		Errors: ve.Problems,
	})
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write(b)
}

// actorOf is the audit log's actor of a request by p: its identity id, and
// "<id> as <name>" when the Iochub-Actor header names the person at the
// screen; msg says what is wrong with the header.
func actorOf(p auth.Principal, r *http.Request) (string, string) {
	name := strings.TrimSpace(r.Header.Get(HeaderActor))
	if name == "" {
		return p.ID, ""
	}
	if utf8.RuneCountInString(name) > maxAssignee {
		return "", fmt.Sprintf("header %s is longer than %d characters", HeaderActor, maxAssignee)
	}
	if bad := badText(name); bad != "" {
		return "", fmt.Sprintf("header %s %s", HeaderActor, bad)
	}
	return p.ID + " as " + name, ""
}

func (o *operator) servePutRule(w http.ResponseWriter, r *http.Request) {
	who, ok := o.g.authenticate(w, r)
	if !ok {
		return
	}
	if !who.IsAdmin() {
		forbid(w, r, who, "change alert rules (admin role needed)")
		return
	}
	id := r.PathValue("id")
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		writeProblem(w, r, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: send application/json", ct))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxActionBody))
	if err != nil {
		writeProblem(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than %d bytes or unreadable: %v", maxActionBody, err))
		return
	}
	rule, err := alertrule.Parse(id, body)
	if err != nil {
		writeRuleProblem(w, r, err)
		return
	}
	if why := who.RuleRefusal(rule.Province, rule.Kind, alertrule.Layer(rule.Kind)); why != "" {
		forbid(w, r, who, why)
		return
	}
	// A rule moved between provinces needs the right in both. The province
	// checked goes with the action: the aggregator refuses the put if the
	// stored rule is of another one by then, and asks RuleRefusal again of
	// both, of the actor then.
	store, ok := o.rulesStore(w, r)
	if !ok {
		return
	}
	var from string
	switch old, err := store.Rule(r.Context(), id); {
	case errors.Is(err, pgread.ErrRuleNotFound):
	case err != nil:
		o.ruleReadFailed(w, r, id, err)
		return
	case who.RuleRefusal(old.Province, old.Kind, alertrule.Layer(old.Kind)) != "":
		tree, ok := o.g.hierarchy(w, r)
		if !ok {
			return
		}
		if !readsRule(who, tree, old) {
			// Rule ids are global: the id is taken, and which province
			// took it is not the principal's to learn.
			writeProblem(w, r, http.StatusConflict, "alert rule id "+id+" is taken by a rule of a province this identity does not read; choose another id")
			return
		}
		forbid(w, r, who, "change alert rule "+id+" of province "+old.Province)
		return
	default:
		from = old.Province
	}
	if from != rule.Province {
		// A rule new to its province: refused at once when the province
		// has its most already (the aggregator checks it again, applying).
		rules, err := store.Rules(r.Context(), rule.Province)
		if err != nil {
			o.ruleReadFailed(w, r, id, err)
			return
		}
		if len(rules) >= alertrule.MaxPerProvince {
			writeProblem(w, r, http.StatusConflict, fmt.Sprintf("province %s has %d alert rules, the most it may have (%d); delete one first", rule.Province, len(rules), alertrule.MaxPerProvince))
			return
		}
	}
	actionID, actor, ok := actionHead(w, r, who)
	if !ok {
		return
	}
	// The payload is the rule as understood, not as sent.
	payload, err := json.Marshal(rule.Document())
	if err != nil {
		writeProblem(w, r, http.StatusInternalServerError, "encoding the rule failed")
		return
	}
	o.act(w, r, &iocv1.Action{Id: actionID, Type: actionTypeRulePut, Actor: actor, Province: rule.Province,
		TargetKind: targetKindRule, Target: id, At: timestamppb.New(o.cfg.Now()), Payload: payload, FromProvince: from})
}

func (o *operator) serveDeleteRule(w http.ResponseWriter, r *http.Request) {
	who, ok := o.g.authenticate(w, r)
	if !ok {
		return
	}
	tree, ok := o.g.hierarchy(w, r)
	if !ok {
		return
	}
	if !who.IsAdmin() {
		forbid(w, r, who, "delete alert rules (admin role needed)")
		return
	}
	id := r.PathValue("id")
	if err := alertrule.CheckID(id); err != nil {
		writeRuleProblem(w, r, err)
		return
	}
	actionID, actor, ok := actionHead(w, r, who)
	if !ok {
		return
	}
	store, ok := o.rulesStore(w, r)
	if !ok {
		return
	}
	rule, err := store.Rule(r.Context(), id)
	if err != nil {
		o.ruleReadFailed(w, r, id, err)
		return
	}
	if !readsRule(who, tree, rule) {
		o.ruleReadFailed(w, r, id, pgread.ErrRuleNotFound)
		return
	}
	if why := who.RuleRefusal(rule.Province, rule.Kind, alertrule.Layer(rule.Kind)); why != "" { // asked again by the aggregator
		forbid(w, r, who, why)
		return
	}
	o.act(w, r, &iocv1.Action{Id: actionID, Type: actionTypeRuleDelete, Actor: actor, Province: rule.Province,
		TargetKind: targetKindRule, Target: id, At: timestamppb.New(o.cfg.Now())})
}

// act publishes an action and answers 202 with its id.
func (o *operator) act(w http.ResponseWriter, r *http.Request, act *iocv1.Action) {
	if err := o.publish(r.Context(), act); err != nil {
		o.g.log.Error("publishing operator action failed", "action", act.Id, "err", err)
		writeProblem(w, r, http.StatusServiceUnavailable, "the action could not be queued; retry with the same Idempotency-Key")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(actionAccepted{ActionID: act.Id, Type: act.Type, Target: act.Target})
}

func (o *operator) rulesStore(w http.ResponseWriter, r *http.Request) (*pgread.Store, bool) {
	if o.g.readPool == nil {
		writeProblem(w, r, http.StatusServiceUnavailable, "rules cannot be read: the gateway has no database")
		return nil, false
	}
	return pgread.New(o.g.readPool), true
}

func (o *operator) ruleReadFailed(w http.ResponseWriter, r *http.Request, id string, err error) {
	if errors.Is(err, pgread.ErrRuleNotFound) {
		writeProblem(w, r, http.StatusNotFound, fmt.Sprintf("alert rule %q does not exist", id))
		return
	}
	o.g.log.Error("reading alert rules failed", "rule", id, "err", err)
	writeProblem(w, r, http.StatusServiceUnavailable, "alert rules cannot be read right now; retry")
}

// rulesList is the answer of GET /v1/rules.
type rulesList struct {
	Province string           `json:"province,omitempty"`
	Rules    []alertrule.Rule `json:"rules"`
}

func (o *operator) serveRules(w http.ResponseWriter, r *http.Request) {
	who, ok := o.g.authenticate(w, r)
	if !ok {
		return
	}
	tree, ok := o.g.hierarchy(w, r)
	if !ok {
		return
	}
	province := r.URL.Query().Get("province")
	if province != "" && (len(province) != 2 || province[0] < '0' || province[0] > '9' || province[1] < '0' || province[1] > '9') {
		writeProblem(w, r, http.StatusBadRequest, fmt.Sprintf("province: %q is not a province code (two digits, such as 01)", province))
		return
	}
	if province != "" && !who.ReadsIn(tree, province) {
		forbid(w, r, who, "read the rules of province "+province)
		return
	}
	store, ok := o.rulesStore(w, r)
	if !ok {
		return
	}
	all, err := store.Rules(r.Context(), province)
	if err != nil {
		o.ruleReadFailed(w, r, "", err)
		return
	}
	list := []alertrule.Rule{}
	for _, rule := range all { // without province=: the rules of the principal's provinces (and kinds)
		if readsRule(who, tree, rule) {
			list = append(list, rule)
		}
	}
	writeRuleJSON(w, rulesList{Province: province, Rules: list})
}

func (o *operator) serveRule(w http.ResponseWriter, r *http.Request) {
	who, ok := o.g.authenticate(w, r)
	if !ok {
		return
	}
	tree, ok := o.g.hierarchy(w, r)
	if !ok {
		return
	}
	store, ok := o.rulesStore(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	rule, err := store.Rule(r.Context(), id)
	if err == nil && !readsRule(who, tree, rule) {
		err = pgread.ErrRuleNotFound
	}
	if err != nil {
		o.ruleReadFailed(w, r, id, err)
		return
	}
	writeRuleJSON(w, rule)
}

// ruleHistory is the answer of GET /v1/rules/{id}/history.
type ruleHistory struct {
	ID       string               `json:"id"`
	Versions []pgread.RuleVersion `json:"versions"`
}

func (o *operator) serveRuleHistory(w http.ResponseWriter, r *http.Request) {
	who, ok := o.g.authenticate(w, r)
	if !ok {
		return
	}
	tree, ok := o.g.hierarchy(w, r)
	if !ok {
		return
	}
	store, ok := o.rulesStore(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	versions, err := store.RuleHistory(r.Context(), id)
	if err != nil {
		o.ruleReadFailed(w, r, id, err)
		return
	}
	if (!who.AllProvinces() || len(who.Kinds) > 0) && !historyInScope(func(p, kind string) bool {
		return who.ReadsIn(tree, p) && who.MayReadKind(alertrule.Layer(kind))
	}, versions) {
		versions = nil // a principal sees the history of rules of its provinces and kinds only
	}
	if len(versions) == 0 {
		writeProblem(w, r, http.StatusNotFound, fmt.Sprintf("alert rule %q has no history: it never existed", id))
		return
	}
	writeRuleJSON(w, ruleHistory{ID: id, Versions: versions})
}

// readsRule reports whether who may read rule: its province, and the kind
// of data it watches (a key of some kinds, auth.Principal.Kinds, neither
// sees nor changes the rules of others).
func readsRule(who auth.Principal, tree auth.Hierarchy, rule alertrule.Rule) bool {
	return who.ReadsIn(tree, rule.Province) && who.MayReadKind(alertrule.Layer(rule.Kind))
}

// historyInScope reports whether every version of a rule's history (before
// and after) is of a province and kind reads accepts.
func historyInScope(reads func(province, kind string) bool, versions []pgread.RuleVersion) bool {
	for _, v := range versions {
		for _, doc := range []json.RawMessage{v.Before, v.After} {
			var d struct {
				Province string `json:"province"`
				Kind     string `json:"kind"`
			}
			if len(doc) == 0 || string(doc) == "null" {
				continue
			}
			if json.Unmarshal(doc, &d) != nil || !reads(d.Province, d.Kind) {
				return false
			}
		}
	}
	return true
}

func writeRuleJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}
