package schema

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/wkb"

	"github.com/iochub/iochub/internal/units"
)

// Pre2025ValidFrom is when the map of 63 provinces took effect: Hà Tây joined
// Hà Nội on 1 August 2008, the last change before 2025.
var Pre2025ValidFrom = time.Date(2008, 8, 1, 0, 0, 0, 0, time.FixedZone("ICT", 7*3600))

// NationalValidFrom starts the national unit VN: 2 September 1945.
var NationalValidFrom = time.Date(1945, 9, 2, 0, 0, 0, 0, time.FixedZone("ICT", 7*3600))

// sqlEnsureNational inserts the national unit VN, the root of every map, if
// there is none. It has no boundary of its own (an empty MultiPolygon): it
// covers its descendants, and is never located by a point.
const sqlEnsureNational = `
INSERT INTO admin_unit (code, level, name_vi, name_en, full_name_vi, full_name_en, boundary, valid_from)
SELECT 'VN', 'national', 'Việt Nam', 'Viet Nam', 'Cộng hòa Xã hội chủ nghĩa Việt Nam', 'Socialist Republic of Viet Nam',
       ST_GeomFromText('MULTIPOLYGON EMPTY', 4326), $1
WHERE NOT EXISTS (SELECT FROM admin_unit WHERE code = 'VN')`

// sqlLinkProvinces makes VN the parent of the provinces stored without one
// (loaded before VN existed), in place: VN was their root all along.
const sqlLinkProvinces = `
UPDATE admin_unit SET parent_code = 'VN'
WHERE level = 'province' AND parent_code IS NULL
  AND EXISTS (SELECT FROM admin_unit WHERE code = 'VN' AND level = 'national')`

// sqlUnitStageProvinceParent makes the current national unit the parent of
// staged provinces without one.
const sqlUnitStageProvinceParent = `
UPDATE unit_stage SET parent_code = 'VN'
WHERE level = 'province' AND parent_code IS NULL
  AND EXISTS (SELECT FROM admin_unit WHERE code = 'VN' AND level = 'national' AND valid_to IS NULL)`

// sqlInsertClosedVersion inserts one closed version of a unit; an identical
// (code, valid_from) already there is left alone.
const sqlInsertClosedVersion = `
INSERT INTO admin_unit (code, level, parent_code, name_vi, full_name_vi, boundary, valid_from, valid_to)
VALUES ($1, $2, $3, $4, $5,
        ST_ForcePolygonCCW(ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_Force2D(ST_SetSRID(ST_GeomFromWKB($6), 4326))), 3))),
        $7, $8)
ON CONFLICT (code, valid_from) DO NOTHING`

// sqlOverlappingVersions finds two versions of one code valid at the same time.
const sqlOverlappingVersions = `
SELECT a.code, a.valid_from, b.valid_from FROM admin_unit a
JOIN admin_unit b ON a.code = b.code AND a.id < b.id
 AND tstzrange(a.valid_from, a.valid_to) && tstzrange(b.valid_from, b.valid_to)
LIMIT 1`

// sqlParentMissingAt finds a version whose parent has no version valid at
// the version's start.
const sqlParentMissingAt = `
SELECT a.code, a.parent_code, a.valid_from FROM admin_unit a
WHERE a.parent_code IS NOT NULL AND NOT EXISTS (
    SELECT FROM admin_unit p WHERE p.code = a.parent_code
      AND p.valid_from <= a.valid_from AND (p.valid_to IS NULL OR a.valid_from < p.valid_to))
LIMIT 1`

// sqlUnitVersions reads every version of every unit.
const sqlUnitVersions = `SELECT code, level, COALESCE(parent_code, ''), name_vi, name_en, boundary, valid_from, valid_to
FROM admin_unit ORDER BY code, valid_from`

// UnitsSignature changes whenever admin_unit does: a version added (count,
// highest id) or closed (versions with an end, and their ends), or given a
// parent (EnsureNational links provinces to VN in place, after inserting
// it). Imports only add and close versions.
type UnitsSignature struct {
	Versions, MaxID, Closed, WithParent int64
	Ends                                float64
}

// sqlUnitsSignature reads UnitsSignature without touching a boundary.
const sqlUnitsSignature = `SELECT count(*), coalesce(max(id), 0), count(valid_to), count(parent_code),
    coalesce(sum(extract(epoch FROM valid_to)), 0)::float8 FROM admin_unit`

// UnitVersionsSignature reads the signature of admin_unit: equal signatures
// mean LoadUnitVersions would read the same versions.
func UnitVersionsSignature(ctx context.Context, q Querier) (UnitsSignature, error) {
	var s UnitsSignature
	rows, err := q.Query(ctx, sqlUnitsSignature)
	if err == nil {
		s, err = pgx.CollectExactlyOneRow(rows, func(r pgx.CollectableRow) (UnitsSignature, error) {
			var s UnitsSignature
			return s, r.Scan(&s.Versions, &s.MaxID, &s.Closed, &s.WithParent, &s.Ends)
		})
	}
	if err != nil {
		return s, fmt.Errorf("reading the signature of the units: %w", err)
	}
	return s, nil
}

// sqlUnitTree is every version's code, level and parent, without a boundary.
const sqlUnitTree = `SELECT DISTINCT code, level, coalesce(parent_code, '') FROM admin_unit`

// LoadUnitTree reads the unit tree of every version (code, level and
// parent of each distinct version, no boundary: a country's boundaries take
// long to read, and these questions need none).
func LoadUnitTree(ctx context.Context, q Querier) ([]units.Unit, error) {
	rows, err := q.Query(ctx, sqlUnitTree)
	if err != nil {
		return nil, fmt.Errorf("reading the unit tree: %w", err)
	}
	var out []units.Unit
	var u units.Unit
	if _, err := pgx.ForEachRow(rows, []any{&u.Code, &u.Level, &u.ParentCode}, func() error {
		out = append(out, u)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("reading the unit tree: %w", err)
	}
	return out, nil
}

// sqlUnitAncestors calls the function of migration 00015.
const sqlUnitAncestors = `SELECT code FROM unit_ancestors($1, $2)`

// EnsureNational inserts the national unit VN if admin_unit has none and
// makes it the parent of the provinces stored without one. After it,
// ImportUnits makes VN the parent of provinces imported without one.
func EnsureNational(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, sqlEnsureNational, NationalValidFrom); err != nil {
		return fmt.Errorf("inserting the national unit: %w", err)
	}
	if _, err := pool.Exec(ctx, sqlLinkProvinces); err != nil {
		return fmt.Errorf("linking provinces to the national unit: %w", err)
	}
	return nil
}

// ImportClosedVersions stores units of a past map, each valid from validFrom
// until validTo, in one transaction: the national unit VN is inserted first
// if missing; a version already stored with the same code and validFrom is
// left alone (so a second run changes nothing). It fails, storing nothing,
// when a version would overlap another of the same code or name a parent not
// valid at validFrom. It returns how many versions it inserted.
func ImportClosedVersions(ctx context.Context, pool *pgxpool.Pool, recs []units.Record, validFrom, validTo time.Time) (int, error) {
	if !validTo.After(validFrom) {
		return 0, fmt.Errorf("importing past units: valid_to %s is not after valid_from %s: %w",
			validTo.Format(time.RFC3339), validFrom.Format(time.RFC3339), ErrUnitVersion)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("importing past units: beginning transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := lockUnits(ctx, tx, nil); err != nil {
		return 0, fmt.Errorf("importing past units: %w", err)
	}
	if _, err := tx.Exec(ctx, sqlEnsureNational, NationalValidFrom); err != nil {
		return 0, fmt.Errorf("importing past units: inserting the national unit: %w", err)
	}
	if _, err := tx.Exec(ctx, sqlLinkProvinces); err != nil {
		return 0, fmt.Errorf("importing past units: linking provinces to the national unit: %w", err)
	}
	inserted := 0
	for _, r := range recs {
		b, err := wkb.Marshal(r.Boundary, wkb.NDR)
		if err != nil {
			return 0, fmt.Errorf("importing past units: features[%d] (code %s): encoding the geometry: %w: %w", r.Index, r.Code, err, units.ErrInvalidUnits)
		}
		var parent any
		if r.Parent != "" {
			parent = r.Parent
		}
		tag, err := tx.Exec(ctx, sqlInsertClosedVersion, r.Code, r.Level, parent, r.Name, r.FullName, b, validFrom, validTo)
		if err != nil {
			return 0, fmt.Errorf("importing past units: features[%d] (code %s): %w", r.Index, r.Code, err)
		}
		inserted += int(tag.RowsAffected())
	}
	var code, parent string
	var a, b time.Time
	switch err := tx.QueryRow(ctx, sqlOverlappingVersions).Scan(&code, &a, &b); {
	case err == nil:
		return 0, fmt.Errorf("importing past units: code %s has versions from %s and from %s valid at the same time: %w",
			code, a.Format(time.RFC3339), b.Format(time.RFC3339), ErrUnitVersion)
	case !errors.Is(err, pgx.ErrNoRows):
		return 0, fmt.Errorf("importing past units: checking overlaps: %w", err)
	}
	switch err := tx.QueryRow(ctx, sqlParentMissingAt).Scan(&code, &parent, &a); {
	case err == nil:
		return 0, fmt.Errorf("importing past units: code %s from %s: parent %s has no version valid then: %w",
			code, a.Format(time.RFC3339), parent, units.ErrInvalidUnits)
	case !errors.Is(err, pgx.ErrNoRows):
		return 0, fmt.Errorf("importing past units: checking parents: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("importing past units: committing: %w", err)
	}
	return inserted, nil
}

// ImportPre2025Provinces stores the 63 provinces of the map before 1 July
// 2025 (geo: seed.ProvincesPre2025, merges: seed.ProvinceMerges2025), valid
// from Pre2025ValidFrom until DefaultUnitsValidFrom, parent VN, with the GSO
// codes found by name (units.Pre2025Provinces; a name matching nothing fails
// naming it).
func ImportPre2025Provinces(ctx context.Context, pool *pgxpool.Pool, geo, merges []byte) (int, error) {
	recs, _, err := units.Pre2025Provinces(geo, merges)
	if err != nil {
		return 0, err
	}
	return ImportClosedVersions(ctx, pool, recs, Pre2025ValidFrom, DefaultUnitsValidFrom)
}

// LoadUnitVersions reads every version of every unit, past and current, for
// units.NewTimeline. The pool must have the geometry codec registered.
func LoadUnitVersions(ctx context.Context, q Querier) ([]units.Unit, error) {
	rows, err := q.Query(ctx, sqlUnitVersions)
	if err != nil {
		return nil, fmt.Errorf("querying unit versions: %w", err)
	}
	defer rows.Close()
	var out []units.Unit
	for rows.Next() {
		var u units.Unit
		var to *time.Time
		b := new(geom.MultiPolygon)
		if err := rows.Scan(&u.Code, &u.Level, &u.ParentCode, &u.NameVI, &u.NameEN, b, &u.ValidFrom, &to); err != nil {
			return nil, fmt.Errorf("scanning unit version: %w", err)
		}
		if b.NumPolygons() > 0 {
			u.Boundary = b
		}
		if to != nil {
			u.ValidTo = *to
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading unit versions: %w", err)
	}
	return out, nil
}

// UnitAncestors returns the codes of unit code and of its ancestors as valid
// at time at, from the unit itself up to the root (VN on a complete map);
// none when no version of code is valid at. It calls the SQL function
// unit_ancestors(code, at) of migration 00015, which SQL can use directly.
func UnitAncestors(ctx context.Context, q Querier, code string, at time.Time) ([]string, error) {
	rows, err := q.Query(ctx, sqlUnitAncestors, code, at)
	if err != nil {
		return nil, fmt.Errorf("querying ancestors of unit %s at %s: %w", code, at.Format(time.RFC3339), err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("reading ancestors of unit %s: %w", code, err)
	}
	return out, nil
}
