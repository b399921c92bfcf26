package schema

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/twpayne/go-geom"

	"github.com/iochub/iochub/internal/units"
)

// Querier is the part of *pgxpool.Pool that LoadUnits uses.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// LoadUnits reads the current units (valid_to IS NULL) from PostGIS. The pool
// must have the geometry codec registered (Open does).
func LoadUnits(ctx context.Context, q Querier) ([]units.Unit, error) {
	rows, err := q.Query(ctx, sqlCurrentUnits)
	if err != nil {
		return nil, fmt.Errorf("querying current units: %w", err)
	}
	defer rows.Close()
	var out []units.Unit
	for rows.Next() {
		var u units.Unit
		b := new(geom.MultiPolygon)
		if err := rows.Scan(&u.Code, &u.Level, &u.ParentCode, &u.NameVI, &u.NameEN, b); err != nil {
			return nil, fmt.Errorf("scanning unit: %w", err)
		}
		u.Boundary = b
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading current units: %w", err)
	}
	return out, nil
}

// UnknownUnits returns the codes, of those given, that name no current unit,
// sorted.
func UnknownUnits(ctx context.Context, q Querier, codes []string) ([]string, error) {
	rows, err := q.Query(ctx, sqlUnknownUnits, codes)
	if err != nil {
		return nil, fmt.Errorf("querying unknown unit codes: %w", err)
	}
	unknown, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("reading unknown unit codes: %w", err)
	}
	return unknown, nil
}

// SourceRow is an enabled feed source as the ingest authenticates it: the
// unit it is bound to and the SHA-256 of its token (the token itself is never
// stored).
type SourceRow struct {
	ID, Unit    string
	TokenSHA256 []byte
}

// LoadSources reads the enabled sources (disabled_at IS NULL).
func LoadSources(ctx context.Context, q Querier) ([]SourceRow, error) {
	rows, err := q.Query(ctx, sqlEnabledSources)
	if err != nil {
		return nil, fmt.Errorf("querying sources: %w", err)
	}
	defer rows.Close()
	var out []SourceRow
	for rows.Next() {
		var s SourceRow
		if err := rows.Scan(&s.ID, &s.Unit, &s.TokenSHA256); err != nil {
			return nil, fmt.Errorf("scanning source: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading sources: %w", err)
	}
	return out, nil
}
