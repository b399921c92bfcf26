package schema

// SQL of admin_unit: the units import (units.go) and the read of the
// current units (load.go).

// sqlUnitLock takes the transaction-scoped advisory lock that makes the
// imports of admin_unit's versions (maps and past units) one at a time
// (lockUnits); sqlUnitTryLock takes it only if no one holds it, and says
// whether it did.
const (
	sqlUnitLock    = `SELECT pg_advisory_xact_lock(hashtext('iochub.admin_unit'))`
	sqlUnitTryLock = `SELECT pg_try_advisory_xact_lock(hashtext('iochub.admin_unit'))`
)

// sqlUnitStageCreate is the staging table the import COPYs features into.
const sqlUnitStageCreate = `
CREATE TEMP TABLE unit_stage (
    idx          int  NOT NULL,
    code         text NOT NULL,
    level        text NOT NULL,
    parent_code  text,
    name_vi      text NOT NULL,
    name_en      text NOT NULL,
    full_name_vi text NOT NULL,
    full_name_en text NOT NULL,
    wkb          bytea NOT NULL,
    boundary     geometry(MultiPolygon, 4326),
    unchanged    bool NOT NULL DEFAULT false
) ON COMMIT DROP`

// unitStageColumns are the columns the COPY fills, in order.
var unitStageColumns = []string{"idx", "code", "level", "parent_code", "name_vi", "name_en", "full_name_vi", "full_name_en", "wkb"}

// sqlUnitStageSetBoundary fills boundary with the decoded geometry, outer
// rings counter-clockwise as RFC 7946 wants them, so that ST_AsGeoJSON of a
// stored boundary is right without further work.
const sqlUnitStageSetBoundary = `
UPDATE unit_stage SET boundary = ST_ForcePolygonCCW(ST_Force2D(ST_SetSRID(ST_GeomFromWKB(wkb), 4326)))`

// sqlUnitStageRepair repairs invalid boundaries and returns the codes repaired.
const sqlUnitStageRepair = `
UPDATE unit_stage
SET boundary = ST_ForcePolygonCCW(ST_Multi(ST_CollectionExtract(ST_MakeValid(boundary), 3)))
WHERE NOT ST_IsValid(boundary)
RETURNING idx, code`

// sqlUnitStageUnrepairable finds a boundary that ST_MakeValid could not turn
// into a non-empty valid polygonal geometry.
const sqlUnitStageUnrepairable = `
SELECT idx, code FROM unit_stage
WHERE boundary IS NULL OR ST_IsEmpty(boundary) OR NOT ST_IsValid(boundary)
ORDER BY idx LIMIT 1`

// sqlUnitStageSetParents finds the parent of communes without one: the
// current province, valid at the import's valid_from ($1), whose boundary
// contains a point on the commune's surface.
const sqlUnitStageSetParents = `
UPDATE unit_stage s
SET parent_code = p.code
FROM admin_unit p
WHERE s.level = 'commune' AND s.parent_code IS NULL
  AND p.level = 'province' AND p.valid_to IS NULL AND p.valid_from <= $1
  AND ST_Contains(p.boundary, ST_PointOnSurface(s.boundary))`

// sqlUnitStageUnknownParent finds a staged unit whose given parent is not a
// current unit, or has no version valid at the import's valid_from ($1):
// the unit's ancestors would end at it from then until the parent's start.
const sqlUnitStageUnknownParent = `
SELECT s.idx, s.code, s.parent_code FROM unit_stage s
WHERE s.parent_code IS NOT NULL
  AND (NOT EXISTS (SELECT FROM admin_unit a WHERE a.code = s.parent_code AND a.valid_to IS NULL)
       OR NOT EXISTS (SELECT FROM admin_unit a WHERE a.code = s.parent_code
                      AND a.valid_from <= $1 AND (a.valid_to IS NULL OR $1 < a.valid_to)))
ORDER BY s.idx LIMIT 1`

// sqlUnitStageGroup finds a staged unit whose code is that of a custom
// group while it is none, or the other way round: an import would close
// the group's version and leave its members to roll up into a unit.
const sqlUnitStageGroup = `
SELECT s.idx, s.code, a.level FROM unit_stage s
JOIN admin_unit a ON a.code = s.code AND a.valid_to IS NULL
WHERE (a.level = 'custom') <> (s.level = 'custom')
ORDER BY s.idx LIMIT 1`

// sqlUnitStageOrphan finds a commune left without a parent.
const sqlUnitStageOrphan = `
SELECT idx, code FROM unit_stage
WHERE level = 'commune' AND parent_code IS NULL
ORDER BY idx LIMIT 1`

// The versioning statements run twice: first for every unit that is not a
// commune ($2 = false), then, once provinces are current and communes have
// their parents, for the communes ($2 = true). $1 is the import's valid_from.

// sqlUnitTooOld finds a staged unit with a version the import cannot
// follow: a current one starting at or after the import's valid_from, or a
// closed one ending after it (a retired code imported again from a time it
// was still valid), either of which the new version would overlap.
const sqlUnitTooOld = `
SELECT s.idx, s.code, a.valid_from, a.valid_to
FROM unit_stage s
JOIN admin_unit a ON a.code = s.code
  AND (a.valid_to IS NULL AND a.valid_from >= $1 OR a.valid_to > $1)
WHERE (s.level = 'commune') = $2 AND NOT s.unchanged
ORDER BY s.idx, a.valid_from LIMIT 1`

// sqlUnitMarkUnchanged marks staged units identical to their current version.
// ST_OrderingEquals is the cheap exact test; ST_Equals the topological one
// for the same shape stored with other vertex order.
const sqlUnitMarkUnchanged = `
UPDATE unit_stage s
SET unchanged = true
FROM admin_unit a
WHERE a.code = s.code AND a.valid_to IS NULL AND (s.level = 'commune') = $1
  AND a.level = s.level
  AND a.parent_code IS NOT DISTINCT FROM s.parent_code
  AND a.name_vi = s.name_vi AND a.name_en = s.name_en
  AND a.full_name_vi = s.full_name_vi AND a.full_name_en = s.full_name_en
  AND a.boundary ~= s.boundary
  AND CASE WHEN ST_OrderingEquals(a.boundary, s.boundary) THEN true
           ELSE ST_Equals(a.boundary, s.boundary) END`

// sqlUnitClose closes the current versions of changed units.
const sqlUnitClose = `
UPDATE admin_unit a
SET valid_to = $1
FROM unit_stage s
WHERE a.code = s.code AND a.valid_to IS NULL
  AND (s.level = 'commune') = $2 AND NOT s.unchanged`

// sqlUnitInsert opens the new versions of changed and new units.
const sqlUnitInsert = `
INSERT INTO admin_unit (code, level, parent_code, name_vi, name_en, full_name_vi, full_name_en, boundary, valid_from)
SELECT code, level, parent_code, name_vi, name_en, full_name_vi, full_name_en, boundary, $1
FROM unit_stage s
WHERE (s.level = 'commune') = $2 AND NOT s.unchanged
ORDER BY idx`

// retirable are the levels a Replace import retires: the administrative
// map's. The national unit and custom groups are not the map's to retire.
const retirable = `('province', 'district', 'commune')`

// retired selects the current units a Replace import retires in phase $2
// (as in the versioning statements): of a level the file holds (a file of
// provinces alone leaves the communes be), administrative, and not in it.
const retired = `a.valid_to IS NULL AND a.level IN ` + retirable + ` AND (a.level = 'commune') = $2
  AND EXISTS (SELECT FROM unit_stage l WHERE l.level = a.level)
  AND NOT EXISTS (SELECT FROM unit_stage s WHERE s.code = a.code)`

// sqlUnitRetireTooOld finds a unit a Replace import would retire whose
// version starts at or after the import's valid_from ($1).
const sqlUnitRetireTooOld = `
SELECT a.code, a.valid_from FROM admin_unit a WHERE ` + retired + ` AND a.valid_from >= $1
ORDER BY a.code LIMIT 1`

// sqlUnitRetire closes, at $1, the units a Replace import retires.
const sqlUnitRetire = `UPDATE admin_unit a SET valid_to = $1 WHERE ` + retired

// sqlUnitOrphan finds a current unit whose parent has no current version.
const sqlUnitOrphan = `
SELECT a.code, a.level, a.parent_code FROM admin_unit a
WHERE a.valid_to IS NULL AND a.parent_code IS NOT NULL
  AND NOT EXISTS (SELECT FROM admin_unit p WHERE p.code = a.parent_code AND p.valid_to IS NULL)
ORDER BY a.code LIMIT 1`

// sqlUnitCountUnchanged counts staged units identical to their current version.
const sqlUnitCountUnchanged = `SELECT count(*) FROM unit_stage WHERE unchanged`

// sqlUnitAny tells whether admin_unit holds any unit, current or not.
const sqlUnitAny = `SELECT EXISTS (SELECT FROM admin_unit)`

// sqlCurrentUnits reads every current unit. The pool must have the pgx-geom
// codec registered so that boundary scans into *geom.MultiPolygon.
const sqlCurrentUnits = `SELECT code, level, COALESCE(parent_code, ''), name_vi, name_en, boundary
FROM admin_unit WHERE valid_to IS NULL ORDER BY code`

// sqlUnknownUnits lists the codes of $1 that name no current unit, sorted.
const sqlUnknownUnits = `SELECT c FROM unnest($1::text[]) AS c
WHERE NOT EXISTS (SELECT 1 FROM admin_unit WHERE valid_to IS NULL AND code = c) ORDER BY c`

// sqlEnabledSources reads the enabled sources; only the token's hash is stored.
const sqlEnabledSources = `SELECT id, unit_code, token_sha256 FROM source WHERE disabled_at IS NULL`
