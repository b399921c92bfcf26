package pgread

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iochub/iochub/internal/alertrule"
)

// SQLRules lists the alert rules of province $1 (every province when empty), by id.
const SQLRules = `SELECT ` + alertrule.SQLColumns + `
FROM alert_rule WHERE ($1 = '' OR province = $1) ORDER BY id`

// SQLRule reads alert rule $1.
const SQLRule = `SELECT ` + alertrule.SQLColumns + `
FROM alert_rule WHERE id = $1`

// SQLRuleHistory lists the versions of rule $1 recorded in the audit log
// (action rule.version, written by the aggregator with each change), oldest first.
const SQLRuleHistory = `SELECT at, actor, detail FROM audit_log
WHERE action = 'rule.version' AND target = 'rule:' || $1 ORDER BY id`

// ErrRuleNotFound is returned when the alert rule asked for does not exist.
var ErrRuleNotFound = errors.New("not found")

// Rules returns the alert rules of province (every province when empty).
func (s *Store) Rules(ctx context.Context, province string) ([]alertrule.Rule, error) {
	rows, err := s.pool.Query(ctx, SQLRules, province)
	if err != nil {
		return nil, fmt.Errorf("querying alert rules: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (alertrule.Rule, error) { return alertrule.Scan(row) })
	if err != nil {
		return nil, fmt.Errorf("reading alert rules: %w", err)
	}
	return out, nil
}

// Rule returns alert rule id, or ErrRuleNotFound.
func (s *Store) Rule(ctx context.Context, id string) (alertrule.Rule, error) {
	r, err := alertrule.Scan(s.pool.QueryRow(ctx, SQLRule, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("alert rule %s: %w", id, ErrRuleNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("reading alert rule %s: %w", id, err)
	}
	return r, nil
}

// RuleVersion is one change of a rule, from the audit log.
type RuleVersion struct {
	At       time.Time       `json:"at"`
	Actor    string          `json:"actor"`
	ActionID string          `json:"actionId,omitempty"`
	Version  int             `json:"version,omitempty"` // 0 for a deletion
	Before   json.RawMessage `json:"before"`            // null when the rule was created
	After    json.RawMessage `json:"after"`             // null when the rule was deleted
}

// RuleHistory returns the changes of rule id, oldest first (none when the
// rule never existed).
func (s *Store) RuleHistory(ctx context.Context, id string) ([]RuleVersion, error) {
	rows, err := s.pool.Query(ctx, SQLRuleHistory, id)
	if err != nil {
		return nil, fmt.Errorf("querying the history of alert rule %s: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (RuleVersion, error) {
		var (
			v      RuleVersion
			detail []byte
		)
		if err := row.Scan(&v.At, &v.Actor, &detail); err != nil {
			return v, err
		}
		var d struct {
			ActionID string          `json:"actionId"`
			Version  int             `json:"version"`
			Before   json.RawMessage `json:"before"`
			After    json.RawMessage `json:"after"`
		}
		if err := json.Unmarshal(detail, &d); err != nil {
			return v, fmt.Errorf("audit detail: %w", err)
		}
		v.ActionID, v.Version, v.Before, v.After = d.ActionID, d.Version, nullIfEmpty(d.Before), nullIfEmpty(d.After)
		return v, nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the history of alert rule %s: %w", id, err)
	}
	return out, nil
}

func nullIfEmpty(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}
