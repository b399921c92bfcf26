package schema

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/iochub/iochub/internal/feedcheck"
	"github.com/iochub/iochub/internal/units"
)

// ErrGroup is returned (wrapped, naming the code) when a custom group cannot
// be defined as asked: a code taken by another level, a member that is no
// unit at the time, no members.
var ErrGroup = errors.New("invalid custom group")

// sqlGroupMembersMissing lists the members of $1 with no unit version valid at $2.
const sqlGroupMembersMissing = `SELECT c FROM unnest($1::text[]) AS c
WHERE NOT EXISTS (SELECT FROM admin_unit a WHERE a.code = c AND a.level <> 'custom'
    AND a.valid_from <= $2 AND (a.valid_to IS NULL OR $2 < a.valid_to)) ORDER BY c`

// sqlGroupCurrent reads the current version of a code: its level and start.
const sqlGroupCurrent = `SELECT level, valid_from FROM admin_unit WHERE code = $1 AND valid_to IS NULL`

// sqlGroupPastUnit finds a version of code $1 that was no group (a unit
// retired since): its level and end.
const sqlGroupPastUnit = `SELECT level, valid_to FROM admin_unit WHERE code = $1 AND level <> 'custom' AND valid_to IS NOT NULL
ORDER BY valid_to DESC LIMIT 1`

// sqlGroupOpenMembers locks and reads the members of a group's versions not
// ended (the current one and any starting later).
const sqlGroupOpenMembers = `SELECT member_code FROM unit_group_member
WHERE group_code = $1 AND (valid_to IS NULL OR valid_to > now())
ORDER BY member_code
FOR UPDATE`

// LockUnits makes tx wait for a map import that has not committed, and
// any import started after it wait for tx: it takes the lock that applies
// the imports one at a time (lockUnits) until tx ends. A group's definition
// takes it, so that its members, its boundary and its actor's scope are
// all read from one map: without it, a group checked against the units an
// import was replacing was stored against units retired when the import
// committed (TestGroupWaitsForImport), and a group and an import of a unit
// of the same code each missed the other's uncommitted row and one failed
// on admin_unit's key (23505) instead of being refused with the reason.
//
// The lock order, which keeps the two from deadlocking: every writer of
// admin_unit and unit_group_member takes this lock before any of their
// rows. An import: the lock, then the admin_unit rows it closes, retires
// and inserts. A group (DefineGroup, the aggregator's unit.group.put): the
// lock, then the unit_group_member rows of its open versions
// (OpenGroupMembersTx), then its admin_unit rows. Rows the aggregator locks
// in the same transaction before (the action_done row it claims) are the
// action's own, which no import takes; at commit both bump rollup_context
// (migration 00032), after every statement. Taken after the group's rows,
// a group would hold them while it waits for the lock that a direct
// definition (iochub units group) holds while it waits for those rows.
func LockUnits(ctx context.Context, tx pgx.Tx) error {
	return lockUnits(ctx, tx, nil)
}

// OpenGroupMembersTx returns, sorted and once each, the members of the
// versions of group code that have not ended, locking their rows until tx
// ends (none for a code that is no group). The caller takes LockUnits first.
func OpenGroupMembersTx(ctx context.Context, tx pgx.Tx, code string) ([]string, error) {
	rows, err := tx.Query(ctx, sqlGroupOpenMembers, code)
	if err != nil {
		return nil, fmt.Errorf("reading the members of group %s: %w", code, err)
	}
	members, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("reading the members of group %s: %w", code, err)
	}
	return slices.Compact(members), nil
}

// sqlGroupClose closes the current version of a group and its members.
const sqlGroupClose = `
WITH u AS (UPDATE admin_unit SET valid_to = $2 WHERE code = $1 AND valid_to IS NULL)
UPDATE unit_group_member SET valid_to = $2 WHERE group_code = $1 AND valid_to IS NULL`

// sqlGroupInsert opens a group's version: the union of its members'
// boundaries valid at $4 (an empty MultiPolygon when they have none).
const sqlGroupInsert = `
INSERT INTO admin_unit (code, level, parent_code, name_vi, name_en, boundary, valid_from)
SELECT $1, 'custom',
       (SELECT code FROM admin_unit WHERE code = 'VN' AND valid_from <= $4 AND (valid_to IS NULL OR $4 < valid_to)),
       $2, $3,
       COALESCE(ST_ForcePolygonCCW(ST_Multi(ST_CollectionExtract(ST_Union(a.boundary), 3))), ST_GeomFromText('MULTIPOLYGON EMPTY', 4326)),
       $4
FROM admin_unit a
WHERE a.code = ANY($5) AND a.valid_from <= $4 AND (a.valid_to IS NULL OR $4 < a.valid_to)`

// sqlGroupMembersInsert opens the member rows of a group's version.
const sqlGroupMembersInsert = `
INSERT INTO unit_group_member (group_code, member_code, valid_from)
SELECT $1, c, $2 FROM unnest($3::text[]) AS c`

// sqlUnitGroups calls the function of migration 00016.
const sqlUnitGroups = `SELECT group_code FROM unit_groups($1, $2)`

// Group is a custom group as DefineGroup stores it.
type Group struct {
	Code, NameVI, NameEN string
	// Members are unit codes valid at ValidFrom; any level but custom.
	Members []string
	// ValidFrom starts this version of the group; zero means now.
	ValidFrom time.Time
}

// DefineGroup stores a custom group in one transaction: a unit of level
// custom with the members' united boundary and VN as parent, and its
// members, valid from g.ValidFrom. A group that exists is changed: its
// current version and member rows are closed at g.ValidFrom. Errors about
// the group wrap ErrGroup (bad code, no members, a member that is no unit
// then, a code taken by a unit of another level) or ErrUnitVersion (a change
// not later than the current version).
func DefineGroup(ctx context.Context, pool *pgxpool.Pool, g Group) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("defining group %s: beginning transaction: %w", g.Code, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := DefineGroupTx(ctx, tx, g); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("defining group %s: committing: %w", g.Code, err)
	}
	return nil
}

// CheckGroup checks what can be checked of a group without a database: its
// code and that it has members. Errors wrap ErrGroup.
func CheckGroup(g Group) error {
	if g.Code == "" || len(g.Code) > 64 || strings.ContainsAny(g.Code, ". *>\t\n/") {
		return fmt.Errorf("defining group %q: the code must be 1 to 64 characters without spaces, dots, slashes, * or >: %w", g.Code, ErrGroup)
	}
	for _, t := range [...]struct{ name, v string }{{"code", g.Code}, {"name", g.NameVI}, {"name_en", g.NameEN}} {
		if err := feedcheck.Text(t.name, t.v, maxGroupName); err != nil {
			return fmt.Errorf("defining group %.64q: %w: %w", g.Code, err, ErrGroup)
		}
	}
	if len(g.Members) == 0 {
		return fmt.Errorf("defining group %s: no members: %w", g.Code, ErrGroup)
	}
	if len(g.Members) > MaxGroupMembers {
		return fmt.Errorf("defining group %s: %d members; at most %d: %w", g.Code, len(g.Members), MaxGroupMembers, ErrGroup)
	}
	for i, m := range g.Members {
		if err := feedcheck.Text(fmt.Sprintf("member %d", i), m, 64); m == "" || err != nil {
			return fmt.Errorf("defining group %s: member %d (%.64q) is not a unit code (1 to 64 bytes of text): %w", g.Code, i, m, ErrGroup)
		}
	}
	if slices.Contains(g.Members, g.Code) {
		return fmt.Errorf("defining group %s: a group cannot hold itself: %w", g.Code, ErrGroup)
	}
	return nil
}

// maxGroupName bounds a group's names, as the units import bounds a unit's.
const maxGroupName = 512

// MaxGroupMembers bounds the members of a custom group.
const MaxGroupMembers = 5000

// DefineGroupTx is DefineGroup in the caller's transaction (the aggregator's
// action handler); nothing is written when it fails. It takes LockUnits
// first; a caller that locks rows of the group before (OpenGroupMembersTx)
// takes LockUnits before those.
func DefineGroupTx(ctx context.Context, tx pgx.Tx, g Group) error {
	if g.ValidFrom.IsZero() {
		g.ValidFrom = time.Now()
	}
	if err := CheckGroup(g); err != nil {
		return err
	}
	if err := LockUnits(ctx, tx); err != nil {
		return fmt.Errorf("defining group %s: %w", g.Code, err)
	}
	members := slices.Clone(g.Members)
	slices.Sort(members)
	members = slices.Compact(members)
	rows, err := tx.Query(ctx, sqlGroupMembersMissing, members, g.ValidFrom)
	if err != nil {
		return fmt.Errorf("defining group %s: checking members: %w", g.Code, err)
	}
	missing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("defining group %s: checking members: %w", g.Code, err)
	}
	if len(missing) > 0 {
		return fmt.Errorf("defining group %s: no unit (other than a group) %s is valid at %s: %w",
			g.Code, strings.Join(missing, ", "), g.ValidFrom.Format(time.RFC3339), ErrGroup)
	}
	var level string
	var from time.Time
	// A past unit's code is not a group's: the roll-ups and maps "as of" a
	// time would take the one for the other.
	switch err := tx.QueryRow(ctx, sqlGroupPastUnit, g.Code).Scan(&level, &from); {
	case err == nil:
		return fmt.Errorf("defining group %s: the code was a unit of level %s until %s: %w", g.Code, level, from.Format(time.RFC3339), ErrGroup)
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("defining group %s: reading its past versions: %w", g.Code, err)
	}
	switch err := tx.QueryRow(ctx, sqlGroupCurrent, g.Code).Scan(&level, &from); {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return fmt.Errorf("defining group %s: reading its current version: %w", g.Code, err)
	case level != units.LevelCustom:
		return fmt.Errorf("defining group %s: the code is a unit of level %s: %w", g.Code, level, ErrGroup)
	case !g.ValidFrom.After(from):
		return fmt.Errorf("defining group %s: the current version is valid from %s; a change must start later, not at %s: %w",
			g.Code, from.Format(time.RFC3339), g.ValidFrom.Format(time.RFC3339), ErrUnitVersion)
	default:
		if _, err := tx.Exec(ctx, sqlGroupClose, g.Code, g.ValidFrom); err != nil {
			return fmt.Errorf("defining group %s: closing its current version: %w", g.Code, err)
		}
	}
	if _, err := tx.Exec(ctx, sqlGroupInsert, g.Code, g.NameVI, g.NameEN, g.ValidFrom, members); err != nil {
		return fmt.Errorf("defining group %s: inserting it: %w", g.Code, err)
	}
	if _, err := tx.Exec(ctx, sqlGroupMembersInsert, g.Code, g.ValidFrom, members); err != nil {
		return fmt.Errorf("defining group %s: inserting its members: %w", g.Code, err)
	}
	return nil
}

// UnitGroups returns the codes of the custom groups that unit code counts
// toward at time at: those holding the unit or one of its ancestors then,
// sorted. It calls the SQL function unit_groups(code, at) of migration 00016.
func UnitGroups(ctx context.Context, q Querier, code string, at time.Time) ([]string, error) {
	rows, err := q.Query(ctx, sqlUnitGroups, code, at)
	if err != nil {
		return nil, fmt.Errorf("querying groups of unit %s at %s: %w", code, at.Format(time.RFC3339), err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("reading groups of unit %s: %w", code, err)
	}
	return out, nil
}

// GroupDocument is the JSON of a custom group in the units API
// (PUT /v1/units/groups/{code}) and in its operator action's payload.
type GroupDocument struct {
	Name      string     `json:"name"`
	NameEn    string     `json:"nameEn,omitempty"`
	Members   []string   `json:"members"`
	ValidFrom *time.Time `json:"validFrom,omitempty"`
}

// Group is the group code with this document; a missing validFrom is zero (now).
func (d GroupDocument) Group(code string) Group {
	g := Group{Code: code, NameVI: d.Name, NameEN: d.NameEn, Members: d.Members}
	if d.ValidFrom != nil {
		g.ValidFrom = *d.ValidFrom
	}
	return g
}
