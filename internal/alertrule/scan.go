package alertrule

import (
	"fmt"
	"time"
)

// SQLColumns are the alert_rule columns that Scan reads, in its order: the
// writer (services/aggregator/postgis) and the gateway's read queries select the
// same list, so a rule reads back the same wherever it is read. The duration goes
// as microseconds: an interval has no exact time.Duration once it holds days.
const SQLColumns = `id, province, kind, params, (extract(epoch FROM for_duration) * 1000000)::bigint,
    severity, enabled, version, updated_at, updated_by`

// Row is one database row (pgx.Row and pgx.CollectableRow are).
type Row interface {
	Scan(dest ...any) error
}

// Scan reads one row of SQLColumns. The params were validated when the rule
// was written; a row that no longer parses is an error naming the rule.
func Scan(row Row) (Rule, error) {
	var (
		r      Rule
		params []byte
		micros int64
	)
	if err := row.Scan(&r.ID, &r.Province, &r.Kind, &params, &micros, &r.Severity, &r.Enabled, &r.Version,
		&r.UpdatedAt, &r.UpdatedBy); err != nil {
		return r, err
	}
	p, err := ParseParams(r.Kind, params)
	if err != nil {
		return r, fmt.Errorf("alert rule %s in the database: %w", r.ID, err)
	}
	r.Params = p
	r.For = time.Duration(micros) * time.Microsecond
	return r, nil
}
