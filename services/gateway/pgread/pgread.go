// Package pgread holds the gateway's read-only SQL against iochub's PostGIS
// database. PostGIS produces the GeoJSON geometry; this package only frames it.
// Nothing here writes.
package pgread

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/iochub/iochub/internal/auth"
)

// SQLUnitsOfProvince selects the current province $1 and its current child
// units, the province first, with each boundary as RFC 7946 GeoJSON (outer
// rings counter-clockwise, 6 decimals), simplified by $2 degrees when $2 > 0
// (ST_Multi because simplifying may return a single Polygon; the type stays MultiPolygon).
const SQLUnitsOfProvince = `
SELECT code, level, coalesce(parent_code, ''), name_vi, name_en,
       ST_AsGeoJSON(ST_ForcePolygonCCW(
           CASE WHEN $2::float8 > 0 THEN ST_Multi(ST_SimplifyPreserveTopology(boundary, $2::float8)) ELSE boundary END
       ), 6) AS geometry
FROM admin_unit
WHERE valid_to IS NULL AND (code = $1 OR parent_code = $1)
ORDER BY code <> $1, code`

// Store runs the gateway's queries on a pool.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

type (
	featureJSON struct {
		Type       string          `json:"type"`
		ID         string          `json:"id"`
		Geometry   json.RawMessage `json:"geometry"`
		Properties unitProps       `json:"properties"`
	}
	unitProps struct {
		Code       string  `json:"code"`
		Level      string  `json:"level"`
		ParentCode *string `json:"parentCode"`
		Name       string  `json:"name"`
		NameEN     string  `json:"nameEn"`
	}
)

// UnitsGeoJSON returns a FeatureCollection of province and its current child
// units (Feature id = code; properties code, level, parentCode, name, nameEn).
// found is false when no current unit has the code province. When keep is
// not nil, only the province and the units keep accepts are written.
func (s *Store) UnitsGeoJSON(ctx context.Context, province string, simplify float64, keep func(code string) bool) (body []byte, found bool, err error) {
	return s.unitsGeoJSON(ctx, province, keep, SQLUnitsOfProvince, province, simplify)
}

// SQLUnitsOfProvinceAt is SQLUnitsOfProvince with the versions valid at $3
// instead of the current ones: the map of that time.
const SQLUnitsOfProvinceAt = `
SELECT code, level, coalesce(parent_code, ''), name_vi, name_en,
       ST_AsGeoJSON(ST_ForcePolygonCCW(
           CASE WHEN $2::float8 > 0 THEN ST_Multi(ST_SimplifyPreserveTopology(boundary, $2::float8)) ELSE boundary END
       ), 6) AS geometry
FROM admin_unit
WHERE valid_from <= $3 AND (valid_to IS NULL OR $3 < valid_to) AND (code = $1 OR parent_code = $1)
ORDER BY code <> $1, code`

// UnitsGeoJSONAt is UnitsGeoJSON on the map valid at at: province as it
// was then and its child units then. found is false when no unit had the
// code province at that time.
func (s *Store) UnitsGeoJSONAt(ctx context.Context, province string, simplify float64, at time.Time) (body []byte, found bool, err error) {
	return s.unitsGeoJSON(ctx, province, nil, SQLUnitsOfProvinceAt, province, simplify, at)
}

// SQLSuccessorProvinces lists the current provinces containing a point on
// the surface of province $1 as valid at $2 (ST_PointOnSurface: a point
// inside it): its successor on today's map. A province that kept its code
// is its own successor; a merged one (02 Hà Giang) has the province it
// joined (08 Tuyên Quang).
const SQLSuccessorProvinces = `
SELECT cur.code
FROM admin_unit old
JOIN admin_unit cur ON cur.valid_to IS NULL AND cur.level = 'province'
    AND ST_Intersects(cur.boundary, ST_PointOnSurface(old.boundary))
WHERE old.code = $1 AND old.level = 'province' AND old.valid_from <= $2 AND (old.valid_to IS NULL OR $2 < old.valid_to)
ORDER BY cur.code`

// SuccessorProvinces returns the current provinces that succeed province
// as valid at at (SQLSuccessorProvinces); none when it had no version then.
func (s *Store) SuccessorProvinces(ctx context.Context, province string, at time.Time) ([]string, error) {
	rows, err := s.pool.Query(ctx, SQLSuccessorProvinces, province, at)
	if err != nil {
		return nil, fmt.Errorf("finding the successors of province %s: %w", province, err)
	}
	codes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("finding the successors of province %s: %w", province, err)
	}
	return codes, nil
}

func (s *Store) unitsGeoJSON(ctx context.Context, province string, keep func(code string) bool, query string, args ...any) (body []byte, found bool, err error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, false, fmt.Errorf("querying units of province %s: %w", province, err)
	}
	defer rows.Close()
	var buf bytes.Buffer
	buf.WriteString(`{"type":"FeatureCollection","features":[`)
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	n := 0
	for rows.Next() {
		var f featureJSON
		var parent string
		var geometry []byte
		if err := rows.Scan(&f.ID, &f.Properties.Level, &parent, &f.Properties.Name, &f.Properties.NameEN, &geometry); err != nil {
			return nil, false, fmt.Errorf("reading units of province %s: %w", province, err)
		}
		if f.ID == province {
			found = true
		} else if keep != nil && !keep(f.ID) {
			continue
		}
		f.Type, f.Properties.Code = "Feature", f.ID
		if parent != "" {
			f.Properties.ParentCode = &parent
		}
		f.Geometry = geometry
		if len(geometry) == 0 {
			f.Geometry = json.RawMessage("null")
		}
		if n > 0 {
			buf.WriteByte(',')
		}
		if err := enc.Encode(f); err != nil {
			return nil, false, fmt.Errorf("encoding unit %s: %w", f.ID, err)
		}
		buf.Truncate(buf.Len() - 1) // Encode's newline
		n++
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("reading units of province %s: %w", province, err)
	}
	buf.WriteString("]}")
	return buf.Bytes(), found, nil
}

// SQLProvinceExists reports whether $1 is the code of a current province.
const SQLProvinceExists = `SELECT EXISTS (SELECT 1 FROM admin_unit WHERE valid_to IS NULL AND level = 'province' AND code = $1)`

// ProvinceExists reports whether code is a current province.
func (s *Store) ProvinceExists(ctx context.Context, code string) (bool, error) {
	var ok bool
	if err := s.pool.QueryRow(ctx, SQLProvinceExists, code).Scan(&ok); err != nil {
		return false, fmt.Errorf("looking up province %s: %w", code, err)
	}
	return ok, nil
}

// SQLUnitTree lists every current unit's code, parent code ("" for none) and level.
const SQLUnitTree = `SELECT code, coalesce(parent_code, ''), level FROM admin_unit WHERE valid_to IS NULL`

// UnitTree returns every current unit's parent and level, by code: how
// units nest, for unit scopes.
func (s *Store) UnitTree(ctx context.Context) (auth.Tree, error) {
	rows, err := s.pool.Query(ctx, SQLUnitTree)
	if err != nil {
		return nil, fmt.Errorf("querying the unit tree: %w", err)
	}
	defer rows.Close()
	out := make(auth.Tree)
	for rows.Next() {
		var code string
		var n auth.UnitNode
		if err := rows.Scan(&code, &n.Parent, &n.Level); err != nil {
			return nil, fmt.Errorf("reading the unit tree: %w", err)
		}
		out[code] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the unit tree: %w", err)
	}
	return out, nil
}

// SQLGroupMembers lists the current members of custom group $1 (the rows of
// unit_group_member valid now), sorted.
const SQLGroupMembers = `SELECT member_code FROM unit_group_member
WHERE group_code = $1 AND valid_from <= now() AND (valid_to IS NULL OR valid_to > now())
ORDER BY member_code`

// SQLGroupMembersOpen are the members of every version of a group that has
// not ended: the current one and any that starts later (the one a
// redefinition closes).
const SQLGroupMembersOpen = `SELECT DISTINCT member_code FROM unit_group_member
WHERE group_code = $1 AND (valid_to IS NULL OR valid_to > now())
ORDER BY member_code`

// GroupMembersOpen returns the members of the versions of custom group code
// that have not ended (SQLGroupMembersOpen).
func (s *Store) GroupMembersOpen(ctx context.Context, code string) ([]string, error) {
	return s.groupMembers(ctx, SQLGroupMembersOpen, code)
}

// GroupMembers returns the current members of custom group code, none
// for a code that is not a group.
func (s *Store) GroupMembers(ctx context.Context, code string) ([]string, error) {
	return s.groupMembers(ctx, SQLGroupMembers, code)
}

// groupMembers runs query (of group code's members) and returns its codes.
func (s *Store) groupMembers(ctx context.Context, query, code string) ([]string, error) {
	rows, err := s.pool.Query(ctx, query, code)
	if err != nil {
		return nil, fmt.Errorf("querying the members of group %s: %w", code, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("reading the members of group %s: %w", code, err)
	}
	return out, nil
}
