package postgis

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/iochub/iochub/internal/auth"
)

// sqlUnitTreeOf lists the current units of codes $1 and their current
// ancestors, each with its parent code ("" for none) and level: the part of
// the unit tree (the gateway reads all of it) that says where those codes
// lie. The depth bounds a cycle in bad data.
const sqlUnitTreeOf = `WITH RECURSIVE up(code, parent, level, depth) AS (
    SELECT code, coalesce(parent_code, ''), level, 1 FROM admin_unit
    WHERE code = ANY($1) AND valid_to IS NULL
  UNION
    SELECT u.code, coalesce(u.parent_code, ''), u.level, up.depth + 1
    FROM up JOIN admin_unit u ON u.code = up.parent AND u.valid_to IS NULL
    WHERE up.depth < 16
)
SELECT DISTINCT code, parent, level FROM up`

// UnitTreeOf returns, from tx, where the current units of codes lie: each
// of them and their ancestors, with parent and level. Checked with it, a
// scope covers what it covers in the gateway's tree of every unit. Codes of
// no current unit are left out (a scope then covers only the code itself).
func UnitTreeOf(ctx context.Context, tx pgx.Tx, codes []string) (auth.Tree, error) {
	rows, err := tx.Query(ctx, sqlUnitTreeOf, codes)
	if err != nil {
		return nil, fmt.Errorf("querying the units above %v: %w", codes, err)
	}
	defer rows.Close()
	out := make(auth.Tree)
	for rows.Next() {
		var code string
		var n auth.UnitNode
		if err := rows.Scan(&code, &n.Parent, &n.Level); err != nil {
			return nil, fmt.Errorf("reading the units above %v: %w", codes, err)
		}
		out[code] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the units above %v: %w", codes, err)
	}
	return out, nil
}
