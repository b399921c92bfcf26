// Package subjects owns every NATS subject and stream name iochub uses, and the
// escaping of free-form ids into subject tokens. No other package spells a subject.
package subjects

import (
	"errors"
	"fmt"
	"strings"
)

// Stream names.
const (
	// StreamFeeds holds every accepted feed item: ioc.feed.<province>.<unit>.<kind>.
	StreamFeeds = "FEEDS"
	// StreamState keeps the latest state of each entity: ioc.state.<province>.<layer>.<entity>.
	StreamState = "STATE"
	// StreamActions holds operator actions and configuration changes: ioc.action.<province>.<target kind>.<target>.
	StreamActions = "ACTIONS"
	// StreamDeadletter holds the feed items the aggregator accepted but could
	// not store, each with its reason: ioc.deadletter.<province>.<kind>.
	StreamDeadletter = "DEADLETTER"
	// StreamRollups keeps the last roll-up of each unit, layer and window:
	// ioc.rollup.<province>.<unit>.<layer>.<window>.
	StreamRollups = "ROLLUPS"
)

// Wildcards bound to the streams.
const (
	FeedsAll      = "ioc.feed.>"
	StateAll      = "ioc.state.>"
	ActionsAll    = "ioc.action.>"
	DeadletterAll = "ioc.deadletter.>"
	RollupsAll    = "ioc.rollup.>"
)

// Prefixes of the subjects of each stream, for telling a subject's stream.
const (
	FeedPrefix       = "ioc.feed."
	StatePrefix      = "ioc.state."
	RollupPrefix     = "ioc.rollup."
	ActionPrefix     = "ioc.action."
	DeadletterPrefix = "ioc.deadletter."
)

// StreamOf returns the stream whose subjects include subject (or a filter
// of them), or "" when none does.
func StreamOf(subject string) string {
	switch {
	case strings.HasPrefix(subject, FeedPrefix):
		return StreamFeeds
	case strings.HasPrefix(subject, StatePrefix):
		return StreamState
	case strings.HasPrefix(subject, RollupPrefix):
		return StreamRollups
	case strings.HasPrefix(subject, ActionPrefix):
		return StreamActions
	case strings.HasPrefix(subject, DeadletterPrefix):
		return StreamDeadletter
	}
	return ""
}

// Kinds of feed, which are also the layers of state.
const (
	KindTraffic = "traffic"
	KindAir     = "air"
	KindWater   = "water"
	KindWeather = "weather"
	KindAlert   = "alert"
	KindReport  = "report"
)

// Kinds lists every kind in a stable order.
var Kinds = []string{KindTraffic, KindAir, KindWater, KindWeather, KindAlert, KindReport}

// ValidKind reports whether k is one of Kinds.
func ValidKind(k string) bool {
	for _, v := range Kinds {
		if v == k {
			return true
		}
	}
	return false
}

// ErrBadSubject is returned when a subject does not have the expected shape.
var ErrBadSubject = errors.New("subject does not match the expected shape")

// Feed is the subject of one feed item: ioc.feed.<province>.<unit>.<kind>.
func Feed(province, unit, kind string) string {
	return "ioc.feed." + Token(province) + "." + Token(unit) + "." + kind
}

// FeedProvince is the wildcard of every feed item of a province: ioc.feed.<province>.>.
func FeedProvince(province string) string {
	return "ioc.feed." + Token(province) + ".>"
}

// FeedUnit is the wildcard of every feed item of one unit: ioc.feed.<province>.<unit>.>.
func FeedUnit(province, unit string) string {
	return "ioc.feed." + Token(province) + "." + Token(unit) + ".>"
}

// ParseFeedFilter reads a filter FeedProvince or FeedUnit made: the
// province, and the unit ("" for a whole province); ok is false for any
// other filter.
func ParseFeedFilter(filter string) (province, unit string, ok bool) {
	p := strings.Split(filter, ".")
	switch {
	case len(p) == 4 && p[0] == "ioc" && p[1] == "feed" && p[3] == ">" && wildFree(p[2]):
		return Untoken(p[2]), "", true
	case len(p) == 5 && p[0] == "ioc" && p[1] == "feed" && p[4] == ">" && wildFree(p[2]) && wildFree(p[3]):
		return Untoken(p[2]), Untoken(p[3]), true
	}
	return "", "", false
}

// wildFree reports whether t is a token and no wildcard.
func wildFree(t string) bool { return t != "" && t != "*" && t != ">" }

// ParseFeed splits a feed subject into its parts.
func ParseFeed(subject string) (province, unit, kind string, err error) {
	p := strings.Split(subject, ".")
	if len(p) != 5 || p[0] != "ioc" || p[1] != "feed" {
		return "", "", "", fmt.Errorf("parsing feed subject %q: %w", subject, ErrBadSubject)
	}
	return Untoken(p[2]), Untoken(p[3]), p[4], nil
}

// State is the subject of one entity's latest state: ioc.state.<province>.<layer>.<entity>.
func State(province, layer, entity string) string {
	return "ioc.state." + Token(province) + "." + layer + "." + Token(entity)
}

// StateProvince is the wildcard of every state of a province: ioc.state.<province>.>.
func StateProvince(province string) string {
	return "ioc.state." + Token(province) + ".>"
}

// StateLayerAll is the wildcard of every state of one layer of a province:
// ioc.state.<province>.<layer>.>.
func StateLayerAll(province, layer string) string {
	return "ioc.state." + Token(province) + "." + layer + ".>"
}

// ParseState splits a state subject into its parts.
func ParseState(subject string) (province, layer, entity string, err error) {
	p := strings.SplitN(subject, ".", 5)
	if len(p) != 5 || p[0] != "ioc" || p[1] != "state" {
		return "", "", "", fmt.Errorf("parsing state subject %q: %w", subject, ErrBadSubject)
	}
	return Untoken(p[2]), p[3], Untoken(p[4]), nil
}

// Rollup is the subject of the roll-up of one unit's layer in one window
// (1m, 15m, 1h, 1d): ioc.rollup.<province>.<unit>.<layer>.<window>.
func Rollup(province, unit, layer, window string) string {
	return "ioc.rollup." + Token(province) + "." + Token(unit) + "." + layer + "." + window
}

// RollupProvince is the wildcard of every roll-up of a province: ioc.rollup.<province>.>.
func RollupProvince(province string) string {
	return "ioc.rollup." + Token(province) + ".>"
}

// RollupUnitAll is the wildcard of every roll-up of one unit filed under
// province: ioc.rollup.<province>.<unit>.> (a province's own roll-ups are
// RollupUnitAll(p, p)).
func RollupUnitAll(province, unit string) string {
	return "ioc.rollup." + Token(province) + "." + Token(unit) + ".>"
}

// ParseRollupUnitAll is the province and unit of a RollupUnitAll wildcard.
func ParseRollupUnitAll(filter string) (province, unit string, err error) {
	p := strings.Split(filter, ".")
	if len(p) != 5 || p[0] != "ioc" || p[1] != "rollup" || p[4] != ">" {
		return "", "", fmt.Errorf("parsing roll-up filter %q: %w", filter, ErrBadSubject)
	}
	return Untoken(p[2]), Untoken(p[3]), nil
}

// ParseRollup splits a roll-up subject into its parts.
func ParseRollup(subject string) (province, unit, layer, window string, err error) {
	p := strings.Split(subject, ".")
	if len(p) != 6 || p[0] != "ioc" || p[1] != "rollup" {
		return "", "", "", "", fmt.Errorf("parsing roll-up subject %q: %w", subject, ErrBadSubject)
	}
	return Untoken(p[2]), Untoken(p[3]), p[4], p[5], nil
}

// Action is the subject of an operator action on one target: ioc.action.<province>.<target kind>.<target>.
func Action(province, targetKind, target string) string {
	return "ioc.action." + Token(province) + "." + targetKind + "." + Token(target)
}

// ParseAction splits an action subject into its parts.
func ParseAction(subject string) (province, targetKind, target string, err error) {
	p := strings.SplitN(subject, ".", 5)
	if len(p) != 5 || p[0] != "ioc" || p[1] != "action" {
		return "", "", "", fmt.Errorf("parsing action subject %q: %w", subject, ErrBadSubject)
	}
	return Untoken(p[2]), p[3], Untoken(p[4]), nil
}

// Deadletter is the subject of a dead feed item of a province and kind:
// ioc.deadletter.<province>.<kind>. kind is the kind token of the original
// subject (escaped, since an undecodable message may have any).
func Deadletter(province, kind string) string {
	return "ioc.deadletter." + Token(province) + "." + Token(kind)
}

// DeadletterFilter is the subject filter of the dead letters of a province
// and kind; an empty province or kind matches every one.
func DeadletterFilter(province, kind string) string {
	p, k := "*", "*"
	if province != "" {
		p = Token(province)
	}
	if kind != "" {
		k = Token(kind)
	}
	return "ioc.deadletter." + p + "." + k
}

// ParseDeadletter splits a dead-letter subject into its parts.
func ParseDeadletter(subject string) (province, kind string, err error) {
	p := strings.Split(subject, ".")
	if len(p) != 4 || p[0] != "ioc" || p[1] != "deadletter" {
		return "", "", fmt.Errorf("parsing dead-letter subject %q: %w", subject, ErrBadSubject)
	}
	return Untoken(p[2]), Untoken(p[3]), nil
}

// Token escapes s into one subject token: bytes outside [A-Za-z0-9_:~-] (dots,
// spaces, wildcards, non-ASCII) become %XX, so any id maps to one token and back.
func Token(s string) string {
	if s == "" {
		return "_"
	}
	clean := true
	for i := 0; i < len(s); i++ {
		if !tokenSafe(s[i]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if tokenSafe(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// Untoken reverses Token; a malformed escape is kept as it is.
func Untoken(t string) string {
	if t == "_" {
		return ""
	}
	if !strings.Contains(t, "%") {
		return t
	}
	var b strings.Builder
	for i := 0; i < len(t); i++ {
		if t[i] == '%' && i+2 < len(t) {
			hi, ok1 := unhex(t[i+1])
			lo, ok2 := unhex(t[i+2])
			if ok1 && ok2 {
				b.WriteByte(hi<<4 | lo)
				i += 2
				continue
			}
		}
		b.WriteByte(t[i])
	}
	return b.String()
}

func tokenSafe(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == ':' || c == '~' || c == '-'
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
