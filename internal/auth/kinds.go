package auth

import (
	"fmt"
	"slices"
	"strings"

	"github.com/iochub/iochub/internal/subjects"
)

// maxKinds bounds the kinds of an identity.
const maxKinds = 32

// ParseKinds reads "air,water" into sorted, unique kinds; "" is every kind (nil).
func ParseKinds(s string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return NormalizeKinds(out)
}

// NormalizeKinds checks the form of kinds (a kind name: 1 to 32 lower-case
// letters, digits, '-' or '_', starting with a letter) and returns them
// sorted without duplicates; none is every kind (nil). Whether each kind is
// known to the hub is the caller's to check (kind.Default.Known).
func NormalizeKinds(kinds []string) ([]string, error) {
	if len(kinds) == 0 {
		return nil, nil
	}
	if len(kinds) > maxKinds {
		return nil, fmt.Errorf("kinds: %d given; at most %d: %w", len(kinds), maxKinds, ErrBadIdentity)
	}
	out := make([]string, 0, len(kinds))
	for _, k := range kinds {
		if !validKind(k) {
			return nil, fmt.Errorf("kind %q: want a kind name such as air or water: %w", truncate(k, 32), ErrBadIdentity)
		}
		out = append(out, k)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func validKind(k string) bool {
	if k == "" || len(k) > 32 || k[0] < 'a' || k[0] > 'z' {
		return false
	}
	for _, c := range []byte(k) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// MayReadKind reports whether p may read data of kind (a feed kind, which is
// also a state and roll-up layer): p has no kinds (every kind) or names it.
func (p Principal) MayReadKind(kind string) bool {
	return len(p.Kinds) == 0 || slices.Contains(p.Kinds, kind)
}

// MayReadAllKinds reports whether p reads every kind of kinds; an empty
// kinds (every kind) only when p reads every kind too. An admin grants only
// kinds it reads itself.
func (p Principal) MayReadAllKinds(kinds []string) bool {
	if len(p.Kinds) == 0 {
		return true
	}
	if len(kinds) == 0 {
		return false
	}
	for _, k := range kinds {
		if !p.MayReadKind(k) {
			return false
		}
	}
	return true
}

// MayReadSubject reports whether p may receive the message published on
// subject, a concrete feed, state or roll-up subject (alerts are the kind
// and layer "alert"): p reads at least the viewer role, the subject's kind
// and its unit (feeds, roll-ups). A state subject names no unit: for it p
// must read at least part of its province, and a principal scoped to units
// inside the province (UnitsIn not nil) must also have the entity's unit,
// from the message, checked with CanReadUnit. Every other subject (actions,
// dead letters, anything malformed) is refused.
func (p Principal) MayReadSubject(h Hierarchy, subject string) bool {
	if p.Role.rank() < RoleViewer.rank() {
		return false
	}
	switch {
	case strings.HasPrefix(subject, subjects.FeedPrefix):
		province, unit, kind, err := subjects.ParseFeed(subject)
		return err == nil && p.MayReadKind(kind) && (p.CanRead(province) || p.CanReadUnit(h, unit))
	case strings.HasPrefix(subject, subjects.RollupPrefix):
		province, unit, layer, _, err := subjects.ParseRollup(subject)
		return err == nil && p.MayReadKind(layer) && (p.CanRead(province) || p.CanReadUnit(h, unit))
	case strings.HasPrefix(subject, subjects.StatePrefix):
		province, layer, _, err := subjects.ParseState(subject)
		return err == nil && p.MayReadKind(layer) && p.ReadsIn(h, province)
	}
	return false
}

// MayReadFilter checks a subject filter a client asks to follow (such as
// ioc.feed.01.> or ioc.state.79.air.>) before any message is sent: it must
// be of the feeds, state or roll-ups, name a province p reads at least part
// of (a wildcard province only for a principal of every province), and, when
// it names a kind (layer), one p may read. Messages matching the filter are
// still each checked with MayReadSubject: a filter of every kind is allowed
// to a principal of some kinds, who receives only those. The error says what
// is refused, for a 403.
func (p Principal) MayReadFilter(h Hierarchy, filter string) error {
	if p.Role.rank() < RoleViewer.rank() {
		return fmt.Errorf("reading %s: no role", filter)
	}
	tok := strings.Split(filter, ".")
	if len(tok) < 3 || tok[0] != "ioc" {
		return fmt.Errorf("subject %q: want ioc.feed.…, ioc.state.… or ioc.rollup.…", truncate(filter, 80))
	}
	// kindAt is the index of the kind (layer) token in a full subject.
	var kindAt int
	switch tok[1] {
	case "feed":
		kindAt = 4
	case "state":
		kindAt = 3
	case "rollup":
		kindAt = 4
	default:
		return fmt.Errorf("subject %q: want ioc.feed.…, ioc.state.… or ioc.rollup.… (%s is not readable here)", truncate(filter, 80), tok[1])
	}
	province := tok[2]
	if province == "*" || province == ">" {
		if !p.AllProvinces() {
			return fmt.Errorf("subject %q: a wildcard province needs a key of every province; name one of %s", truncate(filter, 80), strings.Join(p.Scopes, ","))
		}
	} else if !p.ReadsIn(h, subjects.Untoken(province)) {
		return fmt.Errorf("subject %q: province %s is outside this key's scopes %s", truncate(filter, 80), subjects.Untoken(province), strings.Join(p.Scopes, ","))
	}
	if kindAt < len(tok) {
		k := tok[kindAt]
		if k != "*" && k != ">" && !p.MayReadKind(k) {
			return fmt.Errorf("subject %q: kind %s is outside this key's kinds %s", truncate(filter, 80), k, strings.Join(p.Kinds, ","))
		}
	}
	// A '>' before the kind token leaves every kind; messages are filtered one by one.
	return nil
}
