// Package alertrule is the model of an iochub alert rule, shared by its
// writer and its readers: a rule's definition as data (a JSON document per
// rule, validated here, stored by services/aggregator/postgis in the
// alert_rule table and read back by the gateway with SQLColumns and Scan),
// its kinds, severities and limits. The engine that evaluates rules and
// raises alerts is services/aggregator/rules; this package imports no
// iochub package but the CAP model (internal/cap, for its severities), so a
// reader can validate a rule without importing the writer.
package alertrule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/iochub/iochub/internal/cap"
)

// Kinds of rule.
const (
	// KindAQIBand holds when a station's VN_AQI band (1 Tốt … 6 Nguy hại) is at
	// or above params.minBand.
	KindAQIBand = "aqi_band"
	// KindCongestion holds when a road segment's averageVehicleSpeed is below
	// params.maxSpeed (km/h); params.segments limits it to some segments.
	KindCongestion = "congestion"
	// KindWaterLevel holds when a station's water alarm level (1, 2, 3 for
	// báo động I, II, III) is at or above params.minAlarm.
	KindWaterLevel = "water_level"
)

// Kinds lists every kind of rule.
var Kinds = []string{KindAQIBand, KindCongestion, KindWaterLevel}

// Severities are CAP 1.2's severity values a rule may raise an alert with.
var Severities = cap.Severities

// Limits of a rule's values.
const (
	// MaxFor is the longest duration a condition may be required to hold.
	MaxFor = 7 * 24 * time.Hour
	// MaxSegments is the most segments a congestion rule may list.
	MaxSegments = 1000
	// MaxSpeed is the largest speed threshold, km/h.
	MaxSpeed = 300
	// MaxIDLength is the longest rule id.
	MaxIDLength = 64
	// MaxPerProvince is the most rules a province may have: every state of
	// the province is checked against each rule of its kind, in the one
	// engine of the hub, so their number bounds its work per event.
	MaxPerProvince = 200
	// DefaultStale is how long an entity may send no new state before the
	// alerts rules raised on it are cancelled, when a rule does not say.
	DefaultStale = 2 * time.Hour
	// MinStale and MaxStale bound a rule's stale duration.
	MinStale = time.Minute
	MaxStale = 7 * 24 * time.Hour
)

// SourceID is the feed source of the alerts rules raise: their alert id on
// STATE is rules/<identifier>, and their CAP sender is the same word.
const SourceID = "rules"

// ruleID is what a rule id may be: it goes into alert identifiers (no
// spaces, commas or colons) and NATS subjects as it is.
var ruleID = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Rule is one alert rule of a province.
type Rule struct {
	ID       string
	Province string
	Kind     string
	Params   Params
	// For is how long the condition must hold, measured on observation
	// times, before the alert is raised; 0 raises at once.
	For      time.Duration
	Severity string // CAP severity of the alert raised
	Enabled  bool
	// Version counts the changes of the rule, 1 for a new one; the store sets it.
	Version   int
	UpdatedAt time.Time // set by the store
	UpdatedBy string    // the operator who made the last change; set by the store
}

// Params are the thresholds of a rule; which are used depends on its kind.
type Params struct {
	MinBand  int      // aqi_band: 1..6
	MaxSpeed float64  // congestion: km/h, > 0
	Segments []string // congestion: the segments it watches; empty means every segment
	MinAlarm int      // water_level: 1..3
	// Stale is how long the entity may send no new state (measured on the
	// wall clock, from when its last state reached STATE) before the alert
	// raised on it is cancelled; 0 means DefaultStale. It is a member of the
	// rule document ("stale", next to "for"), kept here because it is stored
	// with the params (alert_rule.params.stale): the table needs no column.
	Stale time.Duration
}

// Layer is the state layer a kind of rule watches.
func Layer(kind string) string {
	switch kind {
	case KindAQIBand:
		return "air"
	case KindCongestion:
		return "traffic"
	case KindWaterLevel:
		return "water"
	}
	return ""
}

// FieldError is one problem of a rule document.
type FieldError struct {
	Field  string `json:"field"` // JSON path, e.g. "params.maxSpeed"
	Reason string `json:"reason"`
}

func (e FieldError) Error() string { return e.Field + ": " + e.Reason }

// ValidationError lists every problem found in a rule document. It wraps
// ErrInvalidRule.
type ValidationError struct {
	Problems []FieldError
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString(ErrInvalidRule.Error())
	for i, p := range e.Problems {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalidRule) true.
func (e *ValidationError) Unwrap() error { return ErrInvalidRule }

func (e *ValidationError) add(field, format string, args ...any) {
	e.Problems = append(e.Problems, FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

func (e *ValidationError) err() error {
	if len(e.Problems) == 0 {
		return nil
	}
	return e
}

// Document is a rule's JSON form: the body of PUT /v1/rules/{id} (id,
// version, updatedAt and updatedBy are then ignored or checked), the answer
// of GET /v1/rules/{id}, and the before and after of the audit log.
type Document struct {
	ID        string          `json:"id,omitempty"`
	Province  string          `json:"province"`
	Kind      string          `json:"kind"`
	Params    json.RawMessage `json:"params"`
	For       string          `json:"for"`
	Stale     string          `json:"stale,omitempty"`
	Severity  string          `json:"severity"`
	Enabled   *bool           `json:"enabled,omitempty"`
	Version   int             `json:"version,omitempty"`
	UpdatedAt *time.Time      `json:"updatedAt,omitempty"`
	UpdatedBy string          `json:"updatedBy,omitempty"`
}

// paramsJSON is every parameter of every kind; pointers tell missing from zero.
type paramsJSON struct {
	MinBand  *int     `json:"minBand,omitempty"`
	MaxSpeed *float64 `json:"maxSpeed,omitempty"`
	Segments []string `json:"segments,omitempty"`
	MinAlarm *int     `json:"minAlarm,omitempty"`
	// Stale is Params.Stale in the stored form only; a document has it as a
	// member of the rule.
	Stale *string `json:"stale,omitempty"`
}

// CheckID reports whether id can name a rule.
func CheckID(id string) error {
	switch {
	case id == "":
		return &ValidationError{Problems: []FieldError{{"id", "is empty"}}}
	case len(id) > MaxIDLength:
		return &ValidationError{Problems: []FieldError{{"id", fmt.Sprintf("is %d bytes long; the most is %d", len(id), MaxIDLength)}}}
	case !ruleID.MatchString(id):
		return &ValidationError{Problems: []FieldError{{"id", fmt.Sprintf("%q has characters other than letters, digits, '-' and '_'", id)}}}
	}
	return nil
}

// Parse decodes and validates the JSON document of rule id. Unknown fields are
// rejected; enabled defaults to true. An id in the document must equal id.
// Version, UpdatedAt and UpdatedBy are taken as they are (the store sets them).
func Parse(id string, body []byte) (Rule, error) {
	var r Rule
	if err := CheckID(id); err != nil {
		return r, err
	}
	var doc Document
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return r, &ValidationError{Problems: []FieldError{{"(body)", "is not a rule document: " + jsonReason(err)}}}
	}
	if dec.More() {
		return r, &ValidationError{Problems: []FieldError{{"(body)", "has data after the rule document"}}}
	}
	ve := &ValidationError{}
	if doc.ID != "" && doc.ID != id {
		ve.add("id", "%q differs from the rule id %q in the path", doc.ID, id)
	}
	r = Rule{ID: id, Province: doc.Province, Kind: doc.Kind, Severity: doc.Severity, Enabled: true,
		Version: doc.Version, UpdatedBy: doc.UpdatedBy}
	if doc.Enabled != nil {
		r.Enabled = *doc.Enabled
	}
	if doc.UpdatedAt != nil {
		r.UpdatedAt = *doc.UpdatedAt
	}
	if doc.Province == "" {
		ve.add("province", "is missing; want a province code such as \"01\"")
	} else if !ProvinceCode(doc.Province) {
		ve.add("province", "%q is not a province code (two digits, such as \"01\")", doc.Province)
	}
	kindOK := true
	switch doc.Kind {
	case KindAQIBand, KindCongestion, KindWaterLevel:
	case "":
		kindOK = false
		ve.add("kind", "is missing; want one of %s", strings.Join(Kinds, ", "))
	default:
		kindOK = false
		ve.add("kind", "%q is not a kind of rule; want one of %s", doc.Kind, strings.Join(Kinds, ", "))
	}
	if kindOK {
		p, err := parseParams(doc.Kind, doc.Params, false)
		var pe *ValidationError
		if errors.As(err, &pe) {
			ve.Problems = append(ve.Problems, pe.Problems...)
		}
		r.Params = p
	}
	switch {
	case doc.For == "" && doc.Kind == KindWaterLevel:
	case doc.For == "":
		ve.add("for", "is missing; want how long the condition must hold, such as \"10m\" (\"0s\" raises at once)")
	default:
		d, err := time.ParseDuration(doc.For)
		switch {
		case err != nil:
			ve.add("for", "%q is not a duration; want one such as \"10m\" or \"1h30m\"", doc.For)
		case d < 0:
			ve.add("for", "%q is negative; want 0 or more", doc.For)
		case d > MaxFor:
			ve.add("for", "%q is longer than the most, %s", doc.For, MaxFor)
		default:
			r.For = d
		}
	}
	stale, problem := parseStale(doc.Stale)
	if problem != "" {
		ve.add("stale", "%s", problem)
	}
	r.Params.Stale = stale
	if doc.Severity == "" {
		ve.add("severity", "is missing; want one of %s", strings.Join(Severities, ", "))
	} else if !contains(Severities, doc.Severity) {
		ve.add("severity", "%q is not a CAP severity; want one of %s", doc.Severity, strings.Join(Severities, ", "))
	}
	if err := ve.err(); err != nil {
		return Rule{}, err
	}
	return r, nil
}

// parseStale reads the stale member of a rule: empty is 0 (DefaultStale).
// It returns the reason it is wrong, if it is.
func parseStale(s string) (time.Duration, string) {
	if s == "" {
		return 0, ""
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, fmt.Sprintf("%q is not a duration; want one such as \"2h\" or \"90m\" (omit it for %s)", s, DefaultStale)
	case d < MinStale:
		return 0, fmt.Sprintf("%q is shorter than the least, %s (omit it for %s)", s, MinStale, DefaultStale)
	case d > MaxStale:
		return 0, fmt.Sprintf("%q is longer than the most, %s", s, MaxStale)
	}
	return d, ""
}

// StaleAfter is how long the entity of an alert r raised may send no new
// state before the alert is cancelled.
func (r *Rule) StaleAfter() time.Duration {
	if r.Params.Stale > 0 {
		return r.Params.Stale
	}
	return DefaultStale
}

// ParseParams decodes and validates the params object of a rule of kind, in
// the form the store keeps (ParamsJSON): with the rule's stale duration.
func ParseParams(kind string, raw []byte) (Params, error) {
	return parseParams(kind, raw, true)
}

// parseParams decodes a params object; stored tells the stored form (which
// may hold "stale") from a document's (where it is a member of the rule).
func parseParams(kind string, raw []byte, stored bool) (Params, error) {
	var p Params
	ve := &ValidationError{}
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		raw = []byte("{}")
	}
	var pj paramsJSON
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pj); err != nil {
		ve.add("params", "is not a params object: %s", jsonReason(err))
		return p, ve
	}
	if dec.More() {
		ve.add("params", "has data after the params object")
		return p, ve
	}
	unexpected := func(field, kinds string) {
		ve.add("params."+field, "is a parameter of %s rules, not of %s", kinds, kind)
	}
	if pj.Stale != nil {
		switch d, problem := parseStale(*pj.Stale); {
		case !stored:
			ve.add("params.stale", "is a member of the rule, not of its params; write it next to \"for\"")
		case *pj.Stale == "":
			ve.add("params.stale", "is empty; want a duration such as \"2h\"")
		case problem != "":
			ve.add("params.stale", "%s", problem)
		default:
			p.Stale = d
		}
	}
	switch kind {
	case KindAQIBand:
		switch {
		case pj.MinBand == nil:
			ve.add("params.minBand", "is missing; want the lowest VN_AQI band that raises the alert, 1 (Tốt) to 6 (Nguy hại)")
		case *pj.MinBand < 1 || *pj.MinBand > 6:
			ve.add("params.minBand", "is %d; want a VN_AQI band from 1 to 6", *pj.MinBand)
		default:
			p.MinBand = *pj.MinBand
		}
		if pj.MaxSpeed != nil {
			unexpected("maxSpeed", KindCongestion)
		}
		if pj.Segments != nil {
			unexpected("segments", KindCongestion)
		}
		if pj.MinAlarm != nil {
			unexpected("minAlarm", KindWaterLevel)
		}
	case KindCongestion:
		switch {
		case pj.MaxSpeed == nil:
			ve.add("params.maxSpeed", "is missing; want the speed in km/h below which a segment is congested")
		case math.IsNaN(*pj.MaxSpeed) || *pj.MaxSpeed <= 0 || *pj.MaxSpeed > MaxSpeed:
			ve.add("params.maxSpeed", "is %v; want a speed in km/h above 0 and at most %d", *pj.MaxSpeed, MaxSpeed)
		default:
			p.MaxSpeed = *pj.MaxSpeed
		}
		if len(pj.Segments) > MaxSegments {
			ve.add("params.segments", "lists %d segments; the most is %d", len(pj.Segments), MaxSegments)
		}
		seen := make(map[string]bool, len(pj.Segments))
		for i, s := range pj.Segments {
			switch {
			case strings.TrimSpace(s) == "":
				ve.add(fmt.Sprintf("params.segments[%d]", i), "is empty; want a segment id")
			case strings.ContainsRune(s, 0):
				ve.add(fmt.Sprintf("params.segments[%d]", i), "has a NUL byte")
			case seen[s]:
				ve.add(fmt.Sprintf("params.segments[%d]", i), "%q is listed twice", s)
			}
			seen[s] = true
		}
		if len(pj.Segments) > 0 {
			p.Segments = pj.Segments
		}
		if pj.MinBand != nil {
			unexpected("minBand", KindAQIBand)
		}
		if pj.MinAlarm != nil {
			unexpected("minAlarm", KindWaterLevel)
		}
	case KindWaterLevel:
		switch {
		case pj.MinAlarm == nil:
			ve.add("params.minAlarm", "is missing; want the lowest alarm level that raises the alert, 1 (báo động I) to 3 (báo động III)")
		case *pj.MinAlarm < 1 || *pj.MinAlarm > 3:
			ve.add("params.minAlarm", "is %d; want an alarm level from 1 to 3", *pj.MinAlarm)
		default:
			p.MinAlarm = *pj.MinAlarm
		}
		if pj.MinBand != nil {
			unexpected("minBand", KindAQIBand)
		}
		if pj.MaxSpeed != nil {
			unexpected("maxSpeed", KindCongestion)
		}
		if pj.Segments != nil {
			unexpected("segments", KindCongestion)
		}
	default:
		ve.add("kind", "%q is not a kind of rule; want one of %s", kind, strings.Join(Kinds, ", "))
	}
	if err := ve.err(); err != nil {
		return Params{}, err
	}
	return p, nil
}

// ParamsJSON is the params object of r, as stored in alert_rule.params: with
// its stale duration when it is not the default.
func (r Rule) ParamsJSON() []byte {
	pj := r.documentParams()
	if r.Params.Stale > 0 {
		s := r.Params.Stale.String()
		pj.Stale = &s
	}
	return marshalParams(pj)
}

// documentParams is the params object of r in its document.
func (r Rule) documentParams() paramsJSON {
	var pj paramsJSON
	switch r.Kind {
	case KindAQIBand:
		pj.MinBand = &r.Params.MinBand
	case KindCongestion:
		pj.MaxSpeed = &r.Params.MaxSpeed
		pj.Segments = r.Params.Segments
	case KindWaterLevel:
		pj.MinAlarm = &r.Params.MinAlarm
	}
	return pj
}

func marshalParams(pj paramsJSON) []byte {
	b, err := json.Marshal(pj)
	if err != nil { // cannot happen: finite numbers and strings
		return []byte("{}")
	}
	return b
}

// Document is the JSON form of r.
func (r Rule) Document() Document {
	enabled := r.Enabled
	d := Document{ID: r.ID, Province: r.Province, Kind: r.Kind, Params: marshalParams(r.documentParams()),
		For: r.For.String(), Severity: r.Severity, Enabled: &enabled, Version: r.Version, UpdatedBy: r.UpdatedBy}
	if r.Params.Stale > 0 {
		d.Stale = r.Params.Stale.String()
	}
	if !r.UpdatedAt.IsZero() {
		t := r.UpdatedAt.UTC()
		d.UpdatedAt = &t
	}
	return d
}

// MarshalJSON encodes r as its Document.
func (r Rule) MarshalJSON() ([]byte, error) { return json.Marshal(r.Document()) }

// Same reports whether r and o define the same rule (ignoring version and who
// changed it when).
func (r Rule) Same(o Rule) bool {
	return r.ID == o.ID && r.Province == o.Province && r.Kind == o.Kind && r.For == o.For &&
		r.Severity == o.Severity && r.Enabled == o.Enabled && bytes.Equal(r.ParamsJSON(), o.ParamsJSON())
}

// ProvinceCode reports whether s is a province code: two digits, such as "01".
func ProvinceCode(s string) bool {
	return len(s) == 2 && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9'
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// jsonReason says what encoding/json found wrong, with the field when it knows it.
func jsonReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		t := te.Type
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		return fmt.Sprintf("%s is a JSON %s; want a %s", te.Field, te.Value, jsonType(t.Kind()))
	}
	return err.Error()
}

func jsonType(k reflect.Kind) string {
	switch k {
	case reflect.Int, reflect.Int64, reflect.Float64:
		return "number"
	case reflect.Slice:
		return "list"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "string"
	}
	return "value of another type"
}
