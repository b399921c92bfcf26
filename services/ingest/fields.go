package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/iochub/iochub/internal/feedcheck"
)

// fields are an item's top-level members as sent, for every kind's parser
// to read. An item of a JSON array that the fast path split (nearly all)
// comes as its members in the body's order, each value a slice of the body,
// read where they lie: no map is filled for it. Any other item (a Feature's
// properties, what encoding/json read, an item of more than maxListMembers
// members) comes as a map. Either way the last of repeated keys wins, as
// encoding/json has it.
type fields struct {
	// list holds the members in order; nil when m holds them.
	list []member
	m    map[string]json.RawMessage
}

// maxListMembers bounds the members read from a list: a lookup scans it
// from the end, and all's scan for repeated keys is quadratic, so a larger
// item is read into a map instead.
const maxListMembers = 32

// fieldsOf is the fields of an item read as a map.
func fieldsOf(m map[string]json.RawMessage) fields { return fields{m: m} }

// raw returns the member's JSON as sent (the last of repeated keys).
func (f fields) raw(name string) (json.RawMessage, bool) {
	if f.list == nil {
		raw, ok := f.m[name]
		return raw, ok
	}
	for i := len(f.list) - 1; i >= 0; i-- {
		if f.list[i].key == name {
			return f.list[i].raw, true
		}
	}
	return nil, false
}

// asMap is the members as a map (f's own, or a new one).
func (f fields) asMap() map[string]json.RawMessage {
	if f.list == nil {
		return f.m
	}
	return membersMap(f.list)
}

// all yields every member once (the last of repeated keys), in no set order.
func (f fields) all() iter.Seq2[string, json.RawMessage] {
	return func(yield func(string, json.RawMessage) bool) {
		if f.list == nil {
			for k, raw := range f.m {
				if !yield(k, raw) {
					return
				}
			}
			return
		}
	members:
		for i, mb := range f.list {
			for _, later := range f.list[i+1:] {
				if later.key == mb.key {
					continue members
				}
			}
			if !yield(mb.key, mb.raw) {
				return
			}
		}
	}
}

// itemError is the rejection of one item: the JSON pointer of the field at
// fault (without the item's index) and a reason a person can act on.
type itemError struct {
	pointer string
	reason  string
	// outside marks a rejection for lying outside the source's unit (403 when every item has it).
	outside bool
	// member marks a pointer that is one member's name as it is, not a path
	// (a registered kind's value "noise.LAeq" is the member of that name).
	// Without it the handler tells a member by finding it in the item, which
	// a missing member is not.
	member bool
}

func (e *itemError) Error() string {
	if e.pointer == "" {
		return e.reason
	}
	return e.pointer + ": " + e.reason
}

func missing(name string) *itemError { return &itemError{pointer: name, reason: "missing field"} }

// value returns the member's JSON, unwrapping the NGSI-LD normalized forms
// {"type":"Property","value":v}, {"type":"Relationship","object":o} and
// {"@type":"DateTime","@value":v} so that those payloads read like keyValues.
func (f fields) value(name string) (json.RawMessage, bool) {
	raw, _ := f.raw(name)
	return unwrap(raw)
}

// unwrap is value for a member's raw JSON already looked up (nil when absent).
func unwrap(raw json.RawMessage) (json.RawMessage, bool) {
	return unwrapForm(raw, true)
}

// unwrapForm is unwrap; outer says raw is a member itself, whose Property's
// value may be in normalized form once more (a DateTime): a member is
// unwrapped at most twice, so a value nested deeper costs two parses, not
// one per level (and is then read as the object it is).
func unwrapForm(raw json.RawMessage, outer bool) (json.RawMessage, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, false
	}
	raw = bytes.TrimSpace(raw)
	if raw[0] != '{' || !bytes.Contains(raw, []byte(`value"`)) && !bytes.Contains(raw, []byte(`"object"`)) {
		return raw, true
	}
	var w struct {
		Type   string          `json:"type"`
		Value  json.RawMessage `json:"value"`
		Object json.RawMessage `json:"object"`
		AtV    json.RawMessage `json:"@value"`
	}
	if json.Unmarshal(raw, &w) != nil {
		return raw, true
	}
	switch {
	case (w.Type == "Property" || w.Type == "GeoProperty") && len(w.Value) > 0:
		if !outer {
			return w.Value, true
		}
		if v, ok := unwrapForm(w.Value, false); ok { // a value itself in normalized form
			return v, true
		}
		return w.Value, true
	case w.Type == "Relationship" && len(w.Object) > 0:
		return w.Object, true
	case len(w.AtV) > 0:
		return w.AtV, true
	}
	return raw, true
}

// jsonKind names the JSON type of raw for messages.
func jsonKind(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// str reads a string member; absent and null are ("", false, nil). A string
// that is not valid UTF-8, raw or through a lone \uD800-\uDFFF escape, is
// refused: decoding would replace it with U+FFFD, so that two distinct ids
// would become one.
func (f fields) str(name string) (string, bool, *itemError) {
	raw, ok := f.value(name)
	if !ok {
		return "", false, nil
	}
	if jsonKind(raw) != "string" {
		return "", false, &itemError{pointer: name, reason: "want a string, got a JSON " + jsonKind(raw)}
	}
	inner := raw[1 : len(raw)-1]
	if why := badJSONString(inner); why != "" {
		return "", false, &itemError{pointer: name, reason: why}
	}
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), true, nil // no escapes: the bytes are the string
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, &itemError{pointer: name, reason: "want a string: " + err.Error()}
	}
	return s, true, nil
}

// badJSONString says why the inside of a JSON string literal would not
// decode to the same text: invalid UTF-8 or an unpaired UTF-16 surrogate
// escape; "" when it is faithful.
func badJSONString(inner []byte) string {
	if !utf8.Valid(inner) {
		for i := 0; i < len(inner); {
			r, n := utf8.DecodeRune(inner[i:])
			if r == utf8.RuneError && n <= 1 {
				return fmt.Sprintf("not valid UTF-8 (byte %d of the string); send text in UTF-8", i)
			}
			i += n
		}
	}
	for i := 0; i+1 < len(inner); i++ {
		if inner[i] != '\\' {
			continue
		}
		if inner[i+1] != 'u' || i+6 > len(inner) {
			i++ // a two-character escape such as \\ or \"
			continue
		}
		v, err := strconv.ParseUint(string(inner[i+2:i+6]), 16, 16)
		if err != nil {
			return "" // json.Unmarshal reports the bad escape
		}
		switch {
		case v >= 0xD800 && v < 0xDC00: // high surrogate: a low one must follow
			if i+12 <= len(inner) && inner[i+6] == '\\' && inner[i+7] == 'u' {
				if w, err := strconv.ParseUint(string(inner[i+8:i+12]), 16, 16); err == nil && w >= 0xDC00 && w < 0xE000 {
					i += 11
					continue
				}
			}
			return fmt.Sprintf("unpaired UTF-16 surrogate \\u%04X at byte %d of the string", v, i)
		case v >= 0xDC00 && v < 0xE000:
			return fmt.Sprintf("unpaired UTF-16 surrogate \\u%04X at byte %d of the string", v, i)
		}
		i += 5
	}
	return ""
}

// ref reads a relationship: a string, or the first string of an array (FIWARE allows both).
func (f fields) ref(name string) (string, *itemError) {
	raw, ok := f.value(name)
	if !ok {
		return "", nil
	}
	if raw[0] == '[' {
		var rs []json.RawMessage
		if err := json.Unmarshal(raw, &rs); err != nil {
			return "", &itemError{pointer: name, reason: "want a string or an array of strings"}
		}
		if len(rs) == 0 {
			return "", nil
		}
		for _, r := range rs {
			if jsonKind(r) != "string" {
				return "", &itemError{pointer: name, reason: "want a string or an array of strings"}
			}
		}
		// Read the first as str does, refusing what decoding would alter.
		s, _, ierr := fields{list: []member{{key: name, raw: rs[0]}}}.str(name)
		if ierr != nil {
			ierr.pointer = name + "[0]"
		}
		return s, ierr
	}
	s, _, err := f.str(name)
	return s, err
}

// num reads a number member.
func (f fields) num(name string) (float64, bool, *itemError) {
	raw, ok := f.value(name)
	return numOf(name, raw, ok)
}

// numOf is num for the member's value (as value returns it) already read.
func numOf(name string, raw json.RawMessage, ok bool) (float64, bool, *itemError) {
	if !ok {
		return 0, false, nil
	}
	if jsonKind(raw) != "number" {
		return 0, false, &itemError{pointer: name, reason: "want a number, got a JSON " + jsonKind(raw)}
	}
	// raw is a JSON number (it came out of a JSON document), which ParseFloat reads exactly.
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, false, &itemError{pointer: name, reason: fmt.Sprintf("number %s is out of range", raw)}
	}
	return v, true, nil
}

// boolean reads a boolean member.
func (f fields) boolean(name string) (bool, bool, *itemError) {
	raw, ok := f.value(name)
	if !ok {
		return false, false, nil
	}
	switch string(raw) {
	case "true":
		return true, true, nil
	case "false":
		return false, true, nil
	}
	return false, false, &itemError{pointer: name, reason: "want true or false, got a JSON " + jsonKind(raw)}
}

// integer reads a whole number member.
func (f fields) integer(name string) (int32, bool, *itemError) {
	v, ok, err := f.num(name)
	if err != nil || !ok {
		return 0, ok, err
	}
	if v != math.Trunc(v) || v < math.MinInt32 || v > math.MaxInt32 {
		return 0, false, &itemError{pointer: name, reason: fmt.Sprintf("want a whole number, got %v", v)}
	}
	return int32(v), true, nil
}

// timeField reads an RFC 3339 instant (a time without zone is UTC).
func (f fields) timeField(name string) (time.Time, bool, *itemError) {
	s, ok, err := f.str(name)
	if err != nil || !ok {
		return time.Time{}, ok, err
	}
	t, perr := parseTime(s)
	if perr != nil {
		return time.Time{}, false, &itemError{pointer: name, reason: perr.Error()}
	}
	return t, true, nil
}

// parseTime reads RFC 3339 with or without a zone (no zone means UTC) and
// with any fraction of a second.
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04Z07:00", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			// The aggregator refuses the same range (a 1900 or 1970 date is a clock fault).
			if err := feedcheck.Time("", t); err != nil {
				return time.Time{}, err
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time such as 2025-07-01T08:00:00+07:00", feedcheck.Clip(s))
}

// observedPeriod reads dateObserved (an instant or the FIWARE interval
// "start/end") and dateObservedFrom / dateObservedTo: the end is when the
// observation was made; the start is zero when not given.
func (f fields) observedPeriod(now time.Time, maxFuture, maxAge time.Duration) (at, from time.Time, ierr *itemError) {
	ptr := "dateObserved"
	if s, ok, err := f.str("dateObserved"); err != nil {
		return at, from, err
	} else if ok {
		if a, b, isInterval := strings.Cut(s, "/"); isInterval {
			t0, e0 := parseTime(a)
			t1, e1 := parseTime(b)
			switch {
			case e0 != nil:
				return at, from, &itemError{pointer: ptr, reason: "interval start " + e0.Error()}
			case e1 != nil:
				return at, from, &itemError{pointer: ptr, reason: "interval end " + e1.Error()}
			case t1.Before(t0):
				return at, from, &itemError{pointer: ptr, reason: fmt.Sprintf("interval ends (%s) before it starts (%s)", b, a)}
			}
			from, at = t0, t1
		} else {
			t, err := parseTime(s)
			if err != nil {
				return at, from, &itemError{pointer: ptr, reason: err.Error()}
			}
			at = t
		}
	}
	if t, ok, err := f.timeField("dateObservedTo"); err != nil {
		return at, from, err
	} else if ok {
		at, ptr = t, "dateObservedTo"
	}
	if t, ok, err := f.timeField("dateObservedFrom"); err != nil {
		return at, from, err
	} else if ok {
		from = t
	}
	if at.IsZero() {
		return at, from, missing("dateObserved")
	}
	if !from.IsZero() && at.Before(from) {
		return at, from, &itemError{pointer: ptr, reason: fmt.Sprintf("observation ends (%s) before it starts (%s)", at.Format(time.RFC3339), from.Format(time.RFC3339))}
	}
	if maxAge > 0 && at.Before(now.Add(-maxAge)) {
		return at, from, &itemError{pointer: ptr, reason: fmt.Sprintf("%s is %s old; this hub takes observations up to %s old",
			at.Format(time.RFC3339), now.Sub(at).Round(time.Second), maxAge)}
	}
	if err := feedcheck.EventTime("", at); err != nil { // the bound of every event, with --max-future off too
		return at, from, &itemError{pointer: ptr, reason: err.Error()}
	}
	if maxFuture > 0 && at.After(now.Add(maxFuture)) {
		return at, from, &itemError{pointer: ptr, reason: fmt.Sprintf("%s is %s in the future (more than %s ahead of the hub's clock; check the source's clock and time zone)",
			at.Format(time.RFC3339), at.Sub(now).Round(time.Second), maxFuture)}
	}
	return at, from, nil
}

func asTypeError(err error, target **json.UnmarshalTypeError) bool {
	return errors.As(err, target)
}
