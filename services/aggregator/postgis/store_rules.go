package postgis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iochub/iochub/internal/alertrule"
	"github.com/iochub/iochub/services/aggregator/rules"
)

// SQL of the alert rules. Durations go as microseconds: interval has no
// exact time.Duration form once it holds days or months.

const sqlRuleColumns = alertrule.SQLColumns

// sqlRules lists the rules of province $1 (every province when empty).
const sqlRules = `SELECT ` + sqlRuleColumns + ` FROM alert_rule WHERE ($1 = '' OR province = $1) ORDER BY id`

// sqlRuleForUpdate reads rule $1 and locks it for the transaction.
const sqlRuleForUpdate = `SELECT ` + sqlRuleColumns + ` FROM alert_rule WHERE id = $1 FOR UPDATE`

// sqlRulesVersion changes with every insert, update and delete of the rules of province $1.
const sqlRulesVersion = `SELECT count(*), coalesce(sum(version), 0), coalesce(max(updated_at), 'epoch'::timestamptz)
FROM alert_rule WHERE ($1 = '' OR province = $1)`

// sqlPutRule inserts or replaces a rule; the version counts the changes.
const sqlPutRule = `INSERT INTO alert_rule AS r (id, province, kind, params, for_duration, severity, enabled,
    version, updated_at, updated_by)
VALUES ($1, $2, $3, $4, $5 * interval '1 microsecond', $6, $7, 1, now(), $8)
ON CONFLICT (id) DO UPDATE SET
    province     = excluded.province,
    kind         = excluded.kind,
    params       = excluded.params,
    for_duration = excluded.for_duration,
    severity     = excluded.severity,
    enabled      = excluded.enabled,
    version      = r.version + 1,
    updated_at   = excluded.updated_at,
    updated_by   = excluded.updated_by
RETURNING ` + sqlRuleColumns

// sqlDeleteRule deletes rule $1 and returns it.
const sqlDeleteRule = `DELETE FROM alert_rule WHERE id = $1 RETURNING ` + sqlRuleColumns

// sqlRaisedRuleAlerts lists the alerts the rules engine raised in province $1
// (every province when empty) that are still active.
const sqlRaisedRuleAlerts = `SELECT identifier, sent, province, unit_code
FROM alert
WHERE source_id = 'rules' AND msg_type = 'Alert' AND state = 'active' AND ($1 = '' OR province = $1)
ORDER BY identifier`

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Rules returns every rule of province (every province when empty), enabled or not, by id.
func (s *Store) Rules(ctx context.Context, province string) ([]alertrule.Rule, error) {
	rows, err := s.pool.Query(ctx, sqlRules, province)
	if err != nil {
		return nil, fmt.Errorf("listing alert rules: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (alertrule.Rule, error) { return alertrule.Scan(row) })
	if err != nil {
		return nil, fmt.Errorf("listing alert rules: %w", err)
	}
	return out, nil
}

// RulesVersion returns a value that changes whenever a rule of province
// (every province when empty) is added, changed or deleted.
func (s *Store) RulesVersion(ctx context.Context, province string) (string, error) {
	var n, versions int64
	var last time.Time
	if err := s.pool.QueryRow(ctx, sqlRulesVersion, province).Scan(&n, &versions, &last); err != nil {
		return "", fmt.Errorf("reading the version of the alert rules: %w", err)
	}
	return strconv.FormatInt(n, 10) + "/" + strconv.FormatInt(versions, 10) + "/" + last.UTC().Format(time.RFC3339Nano), nil
}

// RaisedAlerts returns the alerts of the source "rules" still active in
// province (every province when empty).
func (s *Store) RaisedAlerts(ctx context.Context, province string) ([]rules.Raised, error) {
	rows, err := s.pool.Query(ctx, sqlRaisedRuleAlerts, province)
	if err != nil {
		return nil, fmt.Errorf("listing the alerts raised by rules: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (rules.Raised, error) {
		var r rules.Raised
		err := row.Scan(&r.Identifier, &r.Sent, &r.Province, &r.Unit)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing the alerts raised by rules: %w", err)
	}
	return out, nil
}

// PutRule writes r in tx as changed by actor and returns the rule as it was
// (nil when it is new) and as it is now. A rule put again unchanged is not
// written: its version stays.
func PutRule(ctx context.Context, tx pgx.Tx, r alertrule.Rule, actor string) (before *alertrule.Rule, after alertrule.Rule, err error) {
	before, err = RuleForUpdate(ctx, tx, r.ID)
	if err != nil {
		return nil, after, err
	}
	if before != nil && before.Same(r) {
		return before, *before, nil
	}
	row := tx.QueryRow(ctx, sqlPutRule, r.ID, r.Province, r.Kind, r.ParamsJSON(), r.For.Microseconds(), r.Severity,
		r.Enabled, actor)
	if after, err = alertrule.Scan(row); err != nil {
		return nil, after, fmt.Errorf("writing alert rule %s: %w", r.ID, err)
	}
	return before, after, nil
}

// DeleteRule deletes rule id in tx and returns it; nil when there was none.
func DeleteRule(ctx context.Context, tx pgx.Tx, id string) (*alertrule.Rule, error) {
	r, err := alertrule.Scan(tx.QueryRow(ctx, sqlDeleteRule, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("deleting alert rule %s: %w", id, err)
	}
	return &r, nil
}

// RuleForUpdate reads rule id in tx and locks it until tx ends; nil when there is none.
func RuleForUpdate(ctx context.Context, tx pgx.Tx, id string) (*alertrule.Rule, error) {
	return ruleForUpdate(ctx, tx, id)
}

func ruleForUpdate(ctx context.Context, q querier, id string) (*alertrule.Rule, error) {
	r, err := alertrule.Scan(q.QueryRow(ctx, sqlRuleForUpdate, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading alert rule %s: %w", id, err)
	}
	return &r, nil
}

// RulesInProvince counts the rules of province.
func RulesInProvince(ctx context.Context, tx pgx.Tx, province string) (int, error) {
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM alert_rule WHERE province = $1`, province).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting the rules of province %s: %w", province, err)
	}
	return n, nil
}
