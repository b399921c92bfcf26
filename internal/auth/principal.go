// Package auth owns who may read and act on iochub's gateway: roles (viewer,
// operator, admin), identities scoped to provinces or units (a commune or ward
// and everything inside it), their bearer tokens (kept
// only as SHA-256), signed session cookies for the wall screen, one-time
// sign-in codes, and the Authenticator that turns a request into a Principal
// from an identity cache refreshed from the database. Of the project it imports
// only internal/ops (the refresh loop) and internal/subjects (to read a
// subject's province, unit and kind: MayReadSubject): the gateway reads the identities
// (pgread) and the aggregator writes them (postgis).
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/iochub/iochub/internal/subjects"
)

// Role is what an identity may do; each role includes those below it.
type Role string

// The roles, from least to most.
const (
	// RoleViewer reads: the live view, units, alerts, rules, reports.
	RoleViewer Role = "viewer"
	// RoleOperator reads and acts: report status changes and other operator actions.
	RoleOperator Role = "operator"
	// RoleAdmin also manages: alert rules, identities, metrics.
	RoleAdmin Role = "admin"
)

// rank orders the roles; 0 is not a role.
func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if r.rank() == 0 {
		return "", fmt.Errorf("role %q: want viewer, operator or admin: %w", s, ErrBadIdentity)
	}
	return r, nil
}

// AllScopes is the scope of every province.
const AllScopes = "*"

// Hierarchy tells how administrative units nest; the gateway's is read from
// the current admin_unit rows. A nil Hierarchy knows no nesting: a scope then
// covers only the code it names.
type Hierarchy interface {
	// Within reports whether unit code is ancestor itself or lies inside it.
	Within(code, ancestor string) bool
}

// within reports whether code is ancestor or, by h, inside it.
func within(h Hierarchy, code, ancestor string) bool {
	if code == ancestor {
		return true
	}
	return h != nil && h.Within(code, ancestor)
}

// Principal is who a request acts as.
type Principal struct {
	// ID is the identity's id ("dev" for the dev token); it is the actor in the audit log.
	ID string `json:"id"`
	// Name is for people.
	Name string `json:"name"`
	// Role is what the principal may do.
	Role Role `json:"role"`
	// Scopes are the codes of the provinces or units the principal may see and
	// act in (each with everything inside it); "*" is all.
	Scopes []string `json:"scopes"`
	// Kinds are the kinds of data (air, water, alert…) the principal may
	// read; empty is every kind. They narrow reads of feeds, state, roll-ups
	// and streams; they do not narrow the role's actions.
	Kinds []string `json:"kinds,omitempty"`
	// Expires is when the credential ends (an OIDC token's exp); zero for keys,
	// which end when revoked. A live view is closed once it has passed.
	Expires time.Time `json:"expires,omitzero"`
}

// inScope reports whether province is one of p's scopes (or p has all):
// p's scope covers the whole province.
func (p Principal) inScope(province string) bool {
	if province == "" {
		return false
	}
	for _, s := range p.Scopes {
		if s == AllScopes || s == province {
			return true
		}
	}
	return false
}

// inUnitScope reports whether unit code lies within one of p's scopes.
func (p Principal) inUnitScope(h Hierarchy, code string) bool {
	if code == "" {
		return false
	}
	for _, s := range p.Scopes {
		if s == AllScopes || within(h, code, s) {
			return true
		}
	}
	return false
}

// CanRead reports whether p may read the whole of province (a scope of the
// province itself, or all). A principal scoped to units inside it may not:
// see ReadsIn and CanReadUnit.
func (p Principal) CanRead(province string) bool {
	return p.Role.rank() >= RoleViewer.rank() && p.inScope(province)
}

// CanAct reports whether p may take operator actions anywhere in province.
func (p Principal) CanAct(province string) bool {
	return p.Role.rank() >= RoleOperator.rank() && p.inScope(province)
}

// CanAdmin reports whether p may manage rules and identities of province.
func (p Principal) CanAdmin(province string) bool {
	return p.Role.rank() >= RoleAdmin.rank() && p.inScope(province)
}

// ReadsIn reports whether p may read at least part of province (or of any
// unit): the whole of it, or a unit inside it (p then sees only what lies in
// its units).
func (p Principal) ReadsIn(h Hierarchy, province string) bool {
	if p.Role.rank() < RoleViewer.rank() || province == "" {
		return false
	}
	if p.inUnitScope(h, province) {
		return true
	}
	for _, s := range p.Scopes {
		if within(h, s, province) {
			return true
		}
	}
	return false
}

// CanReadUnit reports whether p may read what lies in unit code.
func (p Principal) CanReadUnit(h Hierarchy, code string) bool {
	return p.Role.rank() >= RoleViewer.rank() && p.inUnitScope(h, code)
}

// CanActUnit reports whether p may take operator actions on what lies in unit code.
func (p Principal) CanActUnit(h Hierarchy, code string) bool {
	return p.Role.rank() >= RoleOperator.rank() && p.inUnitScope(h, code)
}

// CanReadAlert reports whether p may read an alert placed in province and
// unit that touches units: p reads the whole province, or the alert's unit
// or one it touches lies in p's scope.
func (p Principal) CanReadAlert(h Hierarchy, province, unit string, units []string) bool {
	if p.CanRead(province) || p.CanReadUnit(h, unit) {
		return true
	}
	for _, u := range units {
		if p.CanReadUnit(h, u) {
			return true
		}
	}
	return false
}

// CanActAlert reports whether p may act on (acknowledge) an alert placed in
// province and unit whose area touches units: an operator who reads alerts
// (kind alert), of the province, of its unit or of one of the units within
// the province. Operators of another province its area reaches read it, and
// do not acknowledge it for its own province (the first acknowledgement
// stays). The gateway asks it when it queues the action, the aggregator
// again when it applies it: p's scope may have narrowed meanwhile.
func (p Principal) CanActAlert(h Hierarchy, province, unit string, units []string) bool {
	if !p.MayReadKind(subjects.KindAlert) {
		return false
	}
	if p.CanAct(province) || p.CanActUnit(h, unit) {
		return true
	}
	for _, u := range units {
		if within(h, u, province) && p.CanActUnit(h, u) {
			return true
		}
	}
	return false
}

// CanActReport reports whether p may change the status of a field report
// placed in province and unit: an operator who reads reports, of the
// province or of a unit the report lies in. The gateway asks it when it
// queues report.status, the aggregator again when it applies it.
func (p Principal) CanActReport(h Hierarchy, province, unit string) bool {
	return p.MayReadKind(subjects.KindReport) && (p.CanAct(province) || p.CanActUnit(h, unit))
}

// CanActDeadLetter reports whether p may see and act on (redrive, discard)
// a dead letter of province and kind whose original feed subject is
// subject: an operator of its province ("" when the subject named none:
// only an operator of every province), or of the unit the subject names;
// and, for a principal of some kinds, of the letter's kind (a letter holds
// the whole item). The gateway asks it when it lists the letters and
// queues an action, the aggregator again when it applies it.
func (p Principal) CanActDeadLetter(h Hierarchy, province, kind, subject string) bool {
	if len(p.Kinds) > 0 && (kind == "" || !p.MayReadKind(kind)) {
		return false
	}
	if p.Role.rank() < RoleOperator.rank() {
		return false
	}
	if province == "" {
		return p.AllProvinces()
	}
	if p.CanAct(province) {
		return true
	}
	prov, unit, _, err := subjects.ParseFeed(subject)
	return err == nil && prov == province && p.CanActUnit(h, unit)
}

// RuleRefusal says what p may not do in changing or deleting an alert rule
// of province and kind, which watches layer (to follow "may not"), "" when
// it may: p is an admin of the province that reads the layer. A rule moved
// between provinces is asked of both. The gateway asks it when it queues
// rule.put or rule.delete, the aggregator again when it applies it.
func (p Principal) RuleRefusal(province, kind, layer string) string {
	switch {
	case !p.IsAdmin():
		return "change alert rules (admin role needed)"
	case !p.CanAdmin(province):
		return "change alert rules of province " + province
	case !p.MayReadKind(layer):
		return "change alert rules of kind " + kind + " (they watch " + layer + ", a kind this key does not read)"
	}
	return ""
}

// GroupRefusal says what p may not do in defining custom group code with
// members, replacing the versions whose members are current (to follow
// "may not"), "" when it may: p is an admin of the province of every member
// and of every current member (of every province, *, for a current member
// that lies in no province of t). A new member in no province of t is not
// this rule's to judge: the caller refuses it as no unit. The gateway asks
// it when it queues unit.group.put, the aggregator again when it applies it.
func (p Principal) GroupRefusal(t Tree, code string, members, current []string) string {
	if !p.IsAdmin() {
		return "define unit groups (admin role needed)"
	}
	for _, m := range members {
		if prov, ok := t.Province(m); ok && !p.CanAdmin(prov) {
			return fmt.Sprintf("group unit %s of province %s", m, prov)
		}
	}
	for _, m := range current {
		prov, ok := t.Province(m)
		if !ok {
			prov = AllScopes
		}
		if !p.CanAdmin(prov) {
			return fmt.Sprintf("redefine group %s, whose member %s is of province %s", code, m, prov)
		}
	}
	return ""
}

// CanImportMaps reports whether p may import a map: an admin of every
// province, since a map changes the units of the whole country. The
// gateway asks it when it queues unit.import, the aggregator again when it
// applies it.
func (p Principal) CanImportMaps() bool {
	return p.IsAdmin() && p.AllProvinces()
}

// UnitsIn returns p's scopes that lie inside province, or nil when p's scope
// covers the whole province (or has nothing there): the units a unit-scoped
// principal is limited to in province.
func (p Principal) UnitsIn(h Hierarchy, province string) []string {
	if p.inScope(province) {
		return nil
	}
	var out []string
	for _, s := range p.Scopes {
		if within(h, s, province) {
			out = append(out, s)
		}
	}
	return out
}

// IsAdmin reports whether p has the admin role (in whatever scope).
func (p Principal) IsAdmin() bool { return p.Role == RoleAdmin }

// AllProvinces reports whether p's scope is every province.
func (p Principal) AllProvinces() bool { return slices.Contains(p.Scopes, AllScopes) }

// Covers reports whether every scope of scopes lies within p's scopes (a
// ward within a province p holds, say): an admin may only grant or revoke
// what it holds itself.
func (p Principal) Covers(h Hierarchy, scopes []string) bool {
	if p.AllProvinces() {
		return true
	}
	for _, s := range scopes {
		if s == AllScopes || !p.inUnitScope(h, s) {
			return false
		}
	}
	return len(scopes) > 0
}

// ManagesIdentity reports whether p may see and revoke an identity of
// scopes and kinds: p is an admin whose scopes cover all of them (Covers)
// and who reads every kind it reads (MayReadAllKinds). The gateway asks it
// when it lists identities and queues identity.revoke, the aggregator again
// when it applies the revocation: p's scope may have narrowed meanwhile.
func (p Principal) ManagesIdentity(h Hierarchy, scopes, kinds []string) bool {
	return p.IsAdmin() && p.Covers(h, scopes) && p.MayReadAllKinds(kinds)
}

// GrantRefusal says what p may not do in creating an identity of scopes and
// kinds (to follow "may not"), "" when it may: p is an admin and grants only
// what it holds itself, every scope within its own (Covers) and only kinds
// it reads (MayReadAllKinds). The gateway asks it when it queues
// identity.create, the aggregator again when it applies it: p's scope may
// have narrowed meanwhile.
func (p Principal) GrantRefusal(h Hierarchy, scopes, kinds []string) string {
	switch {
	case !p.IsAdmin():
		return "manage identities (admin role needed)"
	case !p.MayReadAllKinds(kinds):
		what := "every kind"
		if len(kinds) > 0 {
			what = "kinds " + strings.Join(kinds, ",")
		}
		return "grant " + what + " (an admin grants only kinds it reads itself)"
	case !p.Covers(h, scopes):
		return "grant scopes " + strings.Join(scopes, ",") + " (an admin grants only within its own provinces or units)"
	}
	return ""
}

// Bounds of an identity.
const (
	maxName   = 200
	maxScopes = 100
	// maxScopeLen bounds one scope: a unit code.
	maxScopeLen = 32
	// TokenPrefix starts every identity token, so a leaked one is recognisable
	// (source tokens start with "ioc_").
	TokenPrefix = "iocid_"
	// idPrefix starts every identity id.
	idPrefix = "id_"
)

// Identity is a person or program allowed to use the gateway, as stored.
type Identity struct {
	ID     string
	Name   string
	Role   Role
	Scopes []string
	// Kinds narrows what it reads to these kinds; empty is every kind.
	Kinds []string
	// TokenSHA256 is the SHA-256 of its bearer token.
	TokenSHA256 []byte
	// Revoked is true once the identity was revoked; it then authenticates nothing.
	Revoked bool
}

// Principal is the principal the identity acts as.
func (i Identity) Principal() Principal {
	return Principal{ID: i.ID, Name: i.Name, Role: i.Role, Scopes: slices.Clone(i.Scopes), Kinds: slices.Clone(i.Kinds)}
}

// ParseScopes reads "01,79" or "*" into sorted, unique scopes.
func ParseScopes(s string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		out = append(out, part)
	}
	return NormalizeScopes(out)
}

// NormalizeScopes checks the form of scopes (unit codes: a two-digit
// province code such as 01, a ward or commune code such as 00070, any code of
// 2 to 32 letters, digits, '-' or '_'; or "*" alone) and returns them sorted
// without duplicates. Whether each unit exists is the caller's to check.
func NormalizeScopes(scopes []string) ([]string, error) {
	if len(scopes) == 0 {
		return nil, fmt.Errorf("scopes: none given; want unit codes such as 01,79 (provinces) or 00070 (a ward), or * for all: %w", ErrBadIdentity)
	}
	if len(scopes) > maxScopes {
		return nil, fmt.Errorf("scopes: %d given; at most %d: %w", len(scopes), maxScopes, ErrBadIdentity)
	}
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		if s != AllScopes && !validUnitCode(s) {
			return nil, fmt.Errorf("scope %q: want a unit code such as 01 (a province) or 00070 (a ward), or *: %w", truncate(s, 32), ErrBadIdentity)
		}
		out = append(out, s)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if slices.Contains(out, AllScopes) && len(out) > 1 {
		return nil, fmt.Errorf("scopes %v: * already covers every province; give it alone: %w", out, ErrBadIdentity)
	}
	return out, nil
}

// validUnitCode reports whether s has the form of a unit code.
func validUnitCode(s string) bool {
	if len(s) < 2 || len(s) > maxScopeLen {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// CheckName checks an identity's name: 1 to 200 characters, no control characters.
func CheckName(name string) error {
	n := utf8.RuneCountInString(name)
	if strings.TrimSpace(name) == "" || n > maxName || !utf8.ValidString(name) {
		return fmt.Errorf("name: want 1 to %d characters: %w", maxName, ErrBadIdentity)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("name: control character %U: %w", r, ErrBadIdentity)
		}
	}
	return nil
}

// CheckID checks an identity id as made by NewID.
func CheckID(id string) error {
	rest, ok := strings.CutPrefix(id, idPrefix)
	if !ok || len(rest) != 16 {
		return fmt.Errorf("identity id %q: want id_ and 16 hex digits: %w", truncate(id, 40), ErrBadIdentity)
	}
	for _, c := range []byte(rest) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("identity id %q: want id_ and 16 lower-case hex digits: %w", truncate(id, 40), ErrBadIdentity)
		}
	}
	return nil
}

// Check checks everything but the token hash of i.
func (i Identity) Check() error {
	if err := CheckID(i.ID); err != nil {
		return err
	}
	if err := CheckName(i.Name); err != nil {
		return err
	}
	if _, err := ParseRole(string(i.Role)); err != nil {
		return err
	}
	if _, err := NormalizeScopes(i.Scopes); err != nil {
		return err
	}
	if _, err := NormalizeKinds(i.Kinds); err != nil {
		return err
	}
	if len(i.TokenSHA256) != sha256.Size {
		return fmt.Errorf("token hash: want %d bytes, have %d: %w", sha256.Size, len(i.TokenSHA256), ErrBadIdentity)
	}
	return nil
}

// NewID returns a fresh identity id: "id_" and 16 hex digits.
func NewID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return idPrefix + hex.EncodeToString(b[:])
}

// NewToken returns a fresh bearer token (TokenPrefix and 32 random bytes in
// base64url) and its SHA-256, the only form that is stored.
func NewToken() (token string, sum []byte) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashToken(token)
}

// HashToken is the SHA-256 of a bearer token.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
