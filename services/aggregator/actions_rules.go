package aggregator

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/iochub/iochub/internal/alertrule"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// Types of the operator actions on alert rules (target kind "rule", target the rule id).
const (
	// ActionRulePut creates or replaces a rule; the payload is its JSON document (alertrule.Document).
	ActionRulePut = "rule.put"
	// ActionRuleDelete deletes a rule; the payload is empty.
	ActionRuleDelete = "rule.delete"
	// AuditRuleVersion is the audit_log action that records a rule's JSON
	// before and after each change: the audit log is the rules' history.
	AuditRuleVersion = "rule.version"
)

// targetKindRule is the target kind of the actions on rules.
const targetKindRule = "rule"

// RuleActions returns the handlers of rule.put and rule.delete. changed, when
// not nil, is called after each change (the engine's Notify: it reloads the
// rules without waiting for its next poll).
func RuleActions(changed func()) (put, del ActionHandler) {
	notify := func() {
		if changed != nil {
			changed()
		}
	}
	put = func(ctx context.Context, tx pgx.Tx, a *iocv1.Action) ([]*iocv1.EntityState, error) {
		if a.GetTargetKind() != targetKindRule {
			return nil, Refuse(fmt.Sprintf("target kind is %q; want rule", a.GetTargetKind()))
		}
		r, err := alertrule.Parse(a.GetTarget(), a.GetPayload())
		if err != nil {
			return nil, Refuse(err.Error())
		}
		if a.GetProvince() != "" && a.GetProvince() != r.Province {
			return nil, Refuse(fmt.Sprintf("the rule is of province %s but the action was sent for province %s", r.Province, a.GetProvince()))
		}
		// The actor's right was checked in the rule's province and in the
		// stored rule's as the gateway read it (from_province): a rule that
		// is of a third province by now is not taken over.
		stored, err := postgis.RuleForUpdate(ctx, tx, r.ID)
		if err != nil {
			return nil, err
		}
		if stored != nil && stored.Province != r.Province && stored.Province != a.GetFromProvince() {
			checked := r.Province
			if f := a.GetFromProvince(); f != "" && f != r.Province {
				checked += " and " + f
			}
			return nil, Refuse(fmt.Sprintf("rule %s is of province %s now; the change was checked for province %s only: send it again", r.ID, stored.Province, checked))
		}
		if err := ruleChangeable(ctx, r); err != nil {
			return nil, err
		}
		if stored != nil {
			if err := ruleChangeable(ctx, *stored); err != nil {
				return nil, err
			}
		}
		if stored == nil || stored.Province != r.Province {
			// A rule new to its province: the actions are applied one at a
			// time, so the count cannot move before the insert.
			n, err := postgis.RulesInProvince(ctx, tx, r.Province)
			if err != nil {
				return nil, err
			}
			if n >= alertrule.MaxPerProvince {
				return nil, Refuse(fmt.Sprintf("province %s has %d alert rules, the most it may have; delete one first", r.Province, n))
			}
		}
		before, after, err := postgis.PutRule(ctx, tx, r, a.GetActor())
		if err != nil {
			return nil, err
		}
		if err := auditRule(ctx, tx, a, before, &after); err != nil {
			return nil, err
		}
		notify()
		return nil, nil
	}
	del = func(ctx context.Context, tx pgx.Tx, a *iocv1.Action) ([]*iocv1.EntityState, error) {
		if a.GetTargetKind() != targetKindRule {
			return nil, Refuse(fmt.Sprintf("target kind is %q; want rule", a.GetTargetKind()))
		}
		if err := alertrule.CheckID(a.GetTarget()); err != nil {
			return nil, Refuse(err.Error())
		}
		before, err := postgis.RuleForUpdate(ctx, tx, a.GetTarget())
		if err != nil {
			return nil, err
		}
		if before == nil {
			return nil, Refuse(fmt.Sprintf("rule %s does not exist", a.GetTarget()))
		}
		if a.GetProvince() != "" && a.GetProvince() != before.Province {
			return nil, Refuse(fmt.Sprintf("rule %s is of province %s, not %s", before.ID, before.Province, a.GetProvince()))
		}
		if err := ruleChangeable(ctx, *before); err != nil {
			return nil, err
		}
		if _, err := postgis.DeleteRule(ctx, tx, a.GetTarget()); err != nil {
			return nil, err
		}
		if err := auditRule(ctx, tx, a, before, nil); err != nil {
			return nil, err
		}
		notify()
		return nil, nil
	}
	return put, del
}

// ruleChangeable refuses a change of rule r (the rule put, or the stored
// one it replaces or deletes) by an acting stored identity that may not
// change it as it is now (auth.Principal.RuleRefusal, the gateway's rule at
// queue time: an admin of its province reading the layer it watches).
func ruleChangeable(ctx context.Context, r alertrule.Rule) error {
	who, ok := actingAs(ctx)
	if !ok {
		return nil
	}
	if why := who.RuleRefusal(r.Province, r.Kind, alertrule.Layer(r.Kind)); why != "" {
		return actorMayNot(who, why+" (rule "+r.ID+")")
	}
	return nil
}

// auditRule writes the rule.version row: the whole rule before and after (null when absent).
func auditRule(ctx context.Context, tx pgx.Tx, a *iocv1.Action, before, after *alertrule.Rule) error {
	detail := map[string]any{"actionId": a.GetId(), "before": docOrNil(before), "after": docOrNil(after)}
	if after != nil {
		detail["version"] = after.Version
	}
	return postgis.Audit(ctx, tx, a.GetActor(), AuditRuleVersion, targetKindRule+":"+a.GetTarget(), detail)
}

func docOrNil(r *alertrule.Rule) any {
	if r == nil {
		return nil
	}
	return r.Document()
}
