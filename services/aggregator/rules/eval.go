package rules

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/alertrule"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// Verdict is what a rule says of one entity state.
type Verdict int

// Verdicts.
const (
	// NotApplicable: the rule does not watch this entity (another province,
	// layer or segment, or the rule is disabled).
	NotApplicable Verdict = iota
	// Unknown: the state lacks the value the rule needs (no speed, no AQI
	// band yet); nothing changes.
	Unknown
	// Holds: the condition holds at the state's observation time.
	Holds
	// Clear: the condition does not hold.
	Clear
)

// Check evaluates r against one entity state. It is pure.
func Check(r *alertrule.Rule, st *iocv1.EntityState) Verdict { return check(r, nil, st) }

// check is Check with segs, the set of the segments r lists (nil: they are
// looked up in the list): a congestion rule may list 1,000 segments, and a
// province 200 rules, each looked at for every state of a segment.
func check(r *alertrule.Rule, segs map[string]struct{}, st *iocv1.EntityState) Verdict {
	if !r.Enabled || st.GetProvince() != r.Province || st.GetLayer() != alertrule.Layer(r.Kind) {
		return NotApplicable
	}
	switch r.Kind {
	case alertrule.KindAQIBand:
		if st.GetAir() == nil {
			return NotApplicable
		}
		band := st.GetAqi().GetBand()
		if band <= 0 {
			return Unknown
		}
		return verdict(int(band) >= r.Params.MinBand)
	case alertrule.KindCongestion:
		t := st.GetTraffic()
		if t == nil {
			return NotApplicable
		}
		if len(r.Params.Segments) > 0 && !watches(r, segs, st.GetEntityId()) {
			return NotApplicable
		}
		if t.AverageVehicleSpeed == nil {
			return Unknown
		}
		return verdict(*t.AverageVehicleSpeed < r.Params.MaxSpeed)
	case alertrule.KindWaterLevel:
		if st.GetWater() == nil {
			return NotApplicable
		}
		// water_alarm 0 is a reading below alarm level I: a known value.
		return verdict(int(st.GetWaterAlarm()) >= r.Params.MinAlarm)
	}
	return NotApplicable
}

// watches reports whether r, a congestion rule listing segments, watches
// segment id: in segs when given, else in its list.
func watches(r *alertrule.Rule, segs map[string]struct{}, id string) bool {
	if segs != nil {
		_, ok := segs[id]
		return ok
	}
	return slices.Contains(r.Params.Segments, id)
}

func verdict(holds bool) Verdict {
	if holds {
		return Holds
	}
	return Clear
}

// ObservedAt is the observation time of the latest value of a state: the
// clock rules measure durations on.
func ObservedAt(st *iocv1.EntityState) time.Time {
	var ts *timestamppb.Timestamp
	switch l := st.GetLatest().(type) {
	case *iocv1.EntityState_Traffic:
		ts = l.Traffic.GetObservedAt()
	case *iocv1.EntityState_Air:
		ts = l.Air.GetObservedAt()
	case *iocv1.EntityState_Water:
		ts = l.Water.GetObservedAt()
	case *iocv1.EntityState_Weather:
		ts = l.Weather.GetObservedAt()
	}
	if ts == nil || ts.CheckValid() != nil {
		return time.Time{}
	}
	return ts.AsTime()
}

// Action is what a transition does.
type Action int

// Actions.
const (
	Raise Action = iota + 1
	Cancel
)

func (a Action) String() string {
	switch a {
	case Raise:
		return "raise"
	case Cancel:
		return "cancel"
	}
	return "none"
}

// Transition is an alert to raise or to cancel.
type Transition struct {
	Action Action
	Rule   alertrule.Rule
	Entity string // the entity id (station, segment)
	// Since is the observation time from which the condition has held.
	Since time.Time
	// At is the time of the transition: the observation time of the state
	// that caused it (the wall clock when a rule was deleted or disabled).
	// It is the alert's sent time.
	At time.Time
	// Identifier is the raised alert's CAP identifier (for a Cancel too).
	Identifier string
	// RaisedAt is the raised alert's sent time (for a Cancel's references).
	RaisedAt time.Time
	Province string
	Unit     string
	// State is the entity state that caused it; nil when the rule changed.
	// For a Cancel of a silent entity, the last state it sent.
	State *iocv1.EntityState
	// NoDataSince is set on a Cancel because the entity sent no new state
	// for the rule's stale duration: the observation time of its last state.
	NoDataSince time.Time
	// LastReceived is, with NoDataSince, when that last state reached STATE.
	LastReceived time.Time
}

// Identifier is the CAP identifier of the alert rule raises for entity, with
// the condition holding since since: rule:<rule id>:<entity>:<unix since>.
// The entity is escaped (subjects.Token) so that it holds no comma or space.
func Identifier(rule, entity string, since time.Time) string {
	return "rule:" + rule + ":" + subjects.Token(entity) + ":" + strconv.FormatInt(since.Unix(), 10)
}

// ParseIdentifier splits an identifier made by Identifier.
func ParseIdentifier(id string) (rule, entity string, since time.Time, err error) {
	rest, ok := strings.CutPrefix(id, "rule:")
	if !ok {
		return "", "", time.Time{}, fmt.Errorf("identifier %q: %w", id, ErrNotRuleAlert)
	}
	rule, rest, ok = strings.Cut(rest, ":")
	i := strings.LastIndexByte(rest, ':')
	if !ok || rule == "" || i <= 0 {
		return "", "", time.Time{}, fmt.Errorf("identifier %q: %w", id, ErrNotRuleAlert)
	}
	unix, err := strconv.ParseInt(rest[i+1:], 10, 64)
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("identifier %q has no unix time at its end: %w", id, ErrNotRuleAlert)
	}
	return rule, subjects.Untoken(rest[:i]), time.Unix(unix, 0).UTC(), nil
}

// RuleOfAlert returns the id of the rule that raised the alert whose id on
// STATE (and in the alert table) is alertID, <source id>/<identifier>; empty
// when it is not an alert of the rules source.
func RuleOfAlert(alertID string) string {
	ident, ok := strings.CutPrefix(alertID, alertrule.SourceID+"/")
	if !ok {
		return ""
	}
	rule, _, ok := strings.Cut(strings.TrimPrefix(ident, "rule:"), ":")
	if !ok || !strings.HasPrefix(ident, "rule:") {
		return ""
	}
	return rule
}

// Raised is an alert a rule raised and has not cancelled, as the engine
// finds it in the alert table when it starts.
type Raised struct {
	Identifier string
	Sent       time.Time
	Province   string
	Unit       string
}

type heldKey struct{ rule, entity string }

// holding is the condition of one rule on one entity, held since since.
// last is the observation time of the last state that held, seen the wall
// clock time it reached STATE (zero after a restart until a state comes).
type holding struct {
	since, last time.Time
	seen        time.Time
	raised      bool
	// unsure: the raise was published without JetStream's ack (Unraise):
	// it may be stored, so the condition clearing still cancels it.
	unsure     bool
	identifier string
	sent       time.Time
	province   string
	unit       string
}

// Evaluator keeps, for each rule and entity, since when the rule's condition
// holds, and says when to raise and cancel alerts. Durations are measured on
// observation times; silence (a rule's stale duration) on its clock, against
// the times states reached STATE. It does no I/O and is not safe for
// concurrent use.
type Evaluator struct {
	rules map[string]*alertrule.Rule
	// scoped are the rules in force by province/layer, sorted by id.
	scoped map[string][]*alertrule.Rule
	// segments are the sets of the segments of the rules listing some, by rule id.
	segments map[string]map[string]struct{}
	held     map[heldKey]*holding
	// last is the latest state of each watched entity, by
	// province/layer/entity (lastKey), to evaluate a changed rule at once.
	// The province is part of the key: an entity id is the source's, and a
	// source of another province may send the same one.
	last map[string]lastState
	now  func() time.Time
}

// lastState is an entity state and the wall-clock time it reached STATE.
type lastState struct {
	st       *iocv1.EntityState
	received time.Time
}

// NewEvaluator returns an evaluator with no rules whose wall clock is now
// (nil means time.Now).
func NewEvaluator(now func() time.Time) *Evaluator {
	if now == nil {
		now = time.Now
	}
	return &Evaluator{rules: map[string]*alertrule.Rule{}, held: map[heldKey]*holding{}, last: map[string]lastState{}, now: now}
}

// Restore records alerts raised before a restart, so that they are not raised
// again and are cancelled when their condition stops holding. Identifiers not
// made by Identifier are skipped and returned.
//
// One rule and entity has one alert in force; when the table holds several
// (one raised again after a restart whose wait for FEEDS timed out, say),
// the one held since the latest is kept and the others are returned as
// Cancels, sent at the wall clock, with only their rule's id set: nothing
// else would ever cancel them.
func (e *Evaluator) Restore(raised []Raised) (cancels []Transition, skipped []string) {
	var extra []*holding
	var extraKeys []heldKey
	for _, r := range raised {
		rule, entity, since, err := ParseIdentifier(r.Identifier)
		if err != nil {
			skipped = append(skipped, r.Identifier)
			continue
		}
		k := heldKey{rule, entity}
		h := &holding{since: since, last: r.Sent, raised: true, identifier: r.Identifier, sent: r.Sent,
			province: r.Province, unit: r.Unit}
		if old := e.held[k]; old != nil && old.raised {
			if old.identifier == h.identifier {
				continue
			}
			if !old.since.Before(since) {
				extra, extraKeys = append(extra, h), append(extraKeys, k)
				continue
			}
			extra, extraKeys = append(extra, old), append(extraKeys, k)
		}
		e.held[k] = h
	}
	now := e.now()
	for i, h := range extra {
		at := now
		if at.Before(h.sent) {
			at = h.sent
		}
		cancels = append(cancels, cancel(alertrule.Rule{ID: extraKeys[i].rule}, extraKeys[i].entity, h, at, nil))
	}
	sort.Slice(cancels, func(i, j int) bool { return cancels[i].Identifier < cancels[j].Identifier })
	return cancels, skipped
}

// Rules returns the rules in force, sorted by id.
func (e *Evaluator) Rules() []alertrule.Rule {
	out := make([]alertrule.Rule, 0, len(e.rules))
	for _, r := range e.rules {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// SetRules replaces the rules. The alerts of a rule that is gone, disabled or
// moved to another province are cancelled at now; a rule that is new or
// changed is evaluated at once against the latest state of every entity it
// watches.
func (e *Evaluator) SetRules(rules []alertrule.Rule, now time.Time) []Transition {
	next := make(map[string]*alertrule.Rule, len(rules))
	for i := range rules {
		r := rules[i]
		next[r.ID] = &r
	}
	var out []Transition
	changed := make([]*alertrule.Rule, 0)
	for id, r := range next {
		old, ok := e.rules[id]
		if !ok || !old.Same(*r) {
			changed = append(changed, r)
		}
	}
	// One pass over the holdings (there may be one per rule and entity,
	// millions): those of rules gone or not in force any more, and those
	// of each changed rule, each sorted alone (sorting them all for each
	// rule took minutes for a province's rules over 20,000 segments).
	var gone []heldKey
	ofChanged := make(map[string][]heldKey, len(changed))
	for _, r := range changed {
		ofChanged[r.ID] = nil
	}
	for k := range e.held {
		if r, ok := next[k.rule]; !ok || !r.Enabled {
			gone = append(gone, k)
		} else if held, ok := ofChanged[k.rule]; ok {
			ofChanged[k.rule] = append(held, k)
		}
	}
	// Alerts and holdings of rules gone or not in force any more.
	sortKeys(gone)
	for _, k := range gone {
		h := e.held[k]
		delete(e.held, k)
		if h.announced() {
			old := e.rules[k.rule]
			if old == nil {
				old = &alertrule.Rule{ID: k.rule}
			}
			out = append(out, cancel(*old, k.entity, h, now, nil))
		}
	}
	prev := e.rules
	e.rules = next
	e.scoped = map[string][]*alertrule.Rule{}
	e.segments = map[string]map[string]struct{}{}
	for _, id := range e.sortedRuleIDs() {
		r := e.rules[id]
		if len(r.Params.Segments) > 0 {
			set := make(map[string]struct{}, len(r.Params.Segments))
			for _, s := range r.Params.Segments {
				set[s] = struct{}{}
			}
			e.segments[id] = set
		}
		if r.Enabled {
			scope := r.Province + "/" + alertrule.Layer(r.Kind)
			e.scoped[scope] = append(e.scoped[scope], r)
		}
	}
	sort.Slice(changed, func(i, j int) bool { return changed[i].ID < changed[j].ID })
	keys := make([]string, 0, len(e.last))
	for k := range e.last {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, r := range changed {
		// Holdings of entities the changed rule no longer watches: all of
		// them when it watches another kind or province now (its entities'
		// states are not of its kind: they would never be looked at again).
		old := prev[r.ID]
		moved := old != nil && (old.Kind != r.Kind || old.Province != r.Province)
		held := ofChanged[r.ID]
		sortKeys(held)
		for _, k := range held {
			if moved {
				h := e.held[k]
				delete(e.held, k)
				if h.announced() {
					out = append(out, cancel(*old, k.entity, h, now, nil))
				}
				continue
			}
			// Without a state yet (after a restart), the first one decides.
			st := e.last[lastKey(r.Province, alertrule.Layer(r.Kind), k.entity)].st
			if st != nil && check(r, e.segments[r.ID], st) == NotApplicable {
				h := e.held[k]
				delete(e.held, k)
				if h.announced() {
					out = append(out, cancel(*r, k.entity, h, now, nil))
				}
			}
		}
		// The latest states of the rule's province and layer: one run of
		// the sorted keys (evaluate would pass over any other).
		prefix := lastKey(r.Province, alertrule.Layer(r.Kind), "")
		for _, k := range keys[sort.SearchStrings(keys, prefix):] {
			if !strings.HasPrefix(k, prefix) {
				break
			}
			out = append(out, e.evaluate(r, e.last[k])...)
		}
	}
	return out
}

// Observe evaluates every rule against one entity state, which reached STATE
// at received (wall clock), and returns the alerts to raise or cancel. A
// state received longer ago than a rule's stale duration raises nothing.
func (e *Evaluator) Observe(st *iocv1.EntityState, received time.Time) []Transition {
	switch st.GetLayer() {
	case "air", "traffic", "water":
	default:
		return nil
	}
	if ObservedAt(st).IsZero() || st.GetEntityId() == "" {
		return nil
	}
	key := lastKey(st.GetProvince(), st.GetLayer(), st.GetEntityId())
	if prev := e.last[key].st; prev != nil && ObservedAt(st).Before(ObservedAt(prev)) {
		return nil // an older state delivered late
	}
	ls := lastState{st: st, received: received}
	e.last[key] = ls
	var out []Transition
	for _, r := range e.scoped[st.GetProvince()+"/"+st.GetLayer()] {
		out = append(out, e.evaluate(r, ls)...)
	}
	return out
}

// lastKey is the key of an entity's latest state in Evaluator.last.
func lastKey(province, layer, entity string) string { return province + "/" + layer + "/" + entity }

// evaluate applies one rule to one state.
func (e *Evaluator) evaluate(r *alertrule.Rule, ls lastState) []Transition {
	st := ls.st
	// Another province's entity is not r's, whatever its id: it must not
	// clear r's holding of an entity of r's province with the same id.
	if st == nil || st.GetLayer() != alertrule.Layer(r.Kind) || st.GetProvince() != r.Province {
		return nil
	}
	k := heldKey{r.ID, st.GetEntityId()}
	h := e.held[k]
	t := ObservedAt(st)
	if h != nil && t.Before(h.last) {
		return nil
	}
	switch check(r, e.segments[r.ID], st) {
	case Unknown:
		return nil
	case Holds:
		// A state that reached STATE longer ago than the stale duration
		// (redelivered after a restart) is no news: it starts nothing.
		fresh := e.now().Sub(ls.received) < r.StaleAfter()
		if h == nil {
			if !fresh {
				return nil
			}
			h = &holding{since: t}
			e.held[k] = h
		}
		h.last, h.province, h.unit = t, st.GetProvince(), st.GetUnit()
		if ls.received.After(h.seen) {
			h.seen = ls.received
		}
		if h.raised || !fresh || t.Sub(h.since) < r.For {
			return nil
		}
		h.raised, h.unsure, h.identifier, h.sent = true, false, Identifier(r.ID, k.entity, h.since), t
		return []Transition{{Action: Raise, Rule: *r, Entity: k.entity, Since: h.since, At: t,
			Identifier: h.identifier, RaisedAt: t, Province: h.province, Unit: h.unit, State: st}}
	default: // Clear, NotApplicable
		if h == nil {
			return nil
		}
		delete(e.held, k)
		if !h.announced() {
			return nil
		}
		if t.Before(h.sent) {
			t = h.sent
		}
		if st.GetUnit() != "" {
			h.unit = st.GetUnit()
		}
		return []Transition{cancel(*r, k.entity, h, t, st)}
	}
}

// Sweep cancels, at the wall clock, the alerts whose entity has sent no
// state that the rule could evaluate for the rule's stale duration, and
// forgets the conditions not raised yet of such entities (when data comes
// again, their clock starts again). An alert restored after a restart whose
// entity has no state yet starts its silence at the first sweep.
func (e *Evaluator) Sweep() []Transition {
	now := e.now()
	var stale []heldKey
	for k, h := range e.held {
		r := e.rules[k.rule]
		if r == nil {
			continue
		}
		if h.seen.IsZero() {
			h.seen = now
			continue
		}
		if now.Sub(h.seen) >= r.StaleAfter() {
			stale = append(stale, k)
		}
	}
	sortKeys(stale)
	var out []Transition
	for _, k := range stale {
		h := e.held[k]
		delete(e.held, k)
		if !h.announced() {
			continue
		}
		r := e.rules[k.rule]
		at := now
		if at.Before(h.sent) {
			at = h.sent
		}
		c := cancel(*r, k.entity, h, at, e.last[lastKey(r.Province, alertrule.Layer(r.Kind), k.entity)].st)
		c.NoDataSince, c.LastReceived = h.last, h.seen
		out = append(out, c)
	}
	return out
}

// Unraise forgets that t raised its alert, after JetStream did not
// acknowledge it: the next state that holds raises it again (the same
// identifier). The alert may have been stored all the same (an ack lost or
// late), so until then the condition clearing (or the entity going silent,
// or the rule going) still cancels it: a Cancel of an alert never stored is
// harmless, an alert never cancelled stays active.
func (e *Evaluator) Unraise(t Transition) {
	if h := e.held[heldKey{t.Rule.ID, t.Entity}]; h != nil && h.identifier == t.Identifier {
		h.raised, h.unsure = false, true
	}
}

// announced reports whether h's alert was raised, or may have been.
func (h *holding) announced() bool { return h.raised || h.unsure }

// Raised returns the alerts raised and not cancelled, sorted by identifier.
func (e *Evaluator) Raised() []Raised {
	var out []Raised
	for _, h := range e.held {
		if h.raised {
			out = append(out, Raised{Identifier: h.identifier, Sent: h.sent, Province: h.province, Unit: h.unit})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Identifier < out[j].Identifier })
	return out
}

func cancel(r alertrule.Rule, entity string, h *holding, at time.Time, st *iocv1.EntityState) Transition {
	return Transition{Action: Cancel, Rule: r, Entity: entity, Since: h.since, At: at, Identifier: h.identifier,
		RaisedAt: h.sent, Province: h.province, Unit: h.unit, State: st}
}

func sortKeys(keys []heldKey) {
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].rule != keys[j].rule {
			return keys[i].rule < keys[j].rule
		}
		return keys[i].entity < keys[j].entity
	})
}

func (e *Evaluator) sortedRuleIDs() []string {
	ids := make([]string, 0, len(e.rules))
	for id := range e.rules {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
