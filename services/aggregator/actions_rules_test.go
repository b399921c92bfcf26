package aggregator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/iochub/iochub/internal/alertrule"
	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/testenv"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

func TestRuleActions(t *testing.T) {
	pool := testDB(t)
	ctx := context.Background()
	notified := 0
	put, del := RuleActions(func() { notified++ })
	apply := func(h ActionHandler, a *iocv1.Action) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := h(ctx, tx, a) // a refusal rolls back: the handlers refuse before writing
			return err
		})
	}
	rule := `{"province":"01","kind":"congestion","params":{"maxSpeed":15},"for":"10m","severity":"Severe"}`
	act := func(id, typ, province, kind, target, payload string) *iocv1.Action {
		return &iocv1.Action{Id: id, Type: typ, Actor: "op-1", Province: province, TargetKind: kind, Target: target, Payload: []byte(payload)}
	}

	refusals := []struct {
		name string
		h    ActionHandler
		a    *iocv1.Action
		want string
	}{
		{"not a rule", put, act("a1", ActionRulePut, "01", "report", "r1", rule), `action refused: target kind is "report"; want rule`},
		{"invalid rule", put, act("a2", ActionRulePut, "01", "rule", "r1", `{"province":"01","kind":"congestion","params":{},"for":"1m","severity":"Minor"}`),
			"action refused: invalid alert rule: params.maxSpeed: is missing; want the speed in km/h below which a segment is congested"},
		{"other province", put, act("a3", ActionRulePut, "79", "rule", "r1", rule),
			"action refused: the rule is of province 01 but the action was sent for province 79"},
		{"bad id", put, act("a4", ActionRulePut, "01", "rule", "r 1", rule),
			`action refused: invalid alert rule: id: "r 1" has characters other than letters, digits, '-' and '_'`},
		{"delete missing", del, act("a5", ActionRuleDelete, "01", "rule", "nope", ""), "action refused: rule nope does not exist"},
		{"delete not a rule", del, act("a6", ActionRuleDelete, "01", "alert", "x", ""), `action refused: target kind is "alert"; want rule`},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			err := apply(tt.h, tt.a)
			if !errors.Is(err, ErrActionRefused) || err.Error() != tt.want {
				t.Errorf("got %v; want the refusal %q", err, tt.want)
			}
		})
	}
	if notified != 0 {
		t.Errorf("refused actions notified the engine %d times", notified)
	}

	if err := apply(put, act("b1", ActionRulePut, "01", "rule", "r1", rule)); err != nil {
		t.Fatal(err)
	}
	if err := apply(put, act("b2", ActionRulePut, "01", "rule", "r1", `{"province":"01","kind":"congestion","params":{"maxSpeed":25},"for":"5m","severity":"Minor"}`)); err != nil {
		t.Fatal(err)
	}
	if err := apply(del, act("b3", ActionRuleDelete, "79", "rule", "r1", "")); err == nil || err.Error() != "action refused: rule r1 is of province 01, not 79" {
		t.Errorf("delete from another province: got %v", err)
	}
	if err := apply(del, act("b4", ActionRuleDelete, "01", "rule", "r1", "")); err != nil {
		t.Fatal(err)
	}
	if notified != 3 {
		t.Errorf("notified %d times; want 3 (two puts and a delete)", notified)
	}
	rows, err := pool.Query(ctx, `SELECT actor, target, detail FROM audit_log WHERE action = 'rule.version' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	type detail struct {
		ActionID string         `json:"actionId"`
		Version  int            `json:"version"`
		Before   map[string]any `json:"before"`
		After    map[string]any `json:"after"`
	}
	var got []detail
	for rows.Next() {
		var actor, target string
		var raw []byte
		if err := rows.Scan(&actor, &target, &raw); err != nil {
			t.Fatal(err)
		}
		var d detail
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		if actor != "op-1" || target != "rule:r1" {
			t.Errorf("audit row by %q on %q; want op-1 on rule:r1", actor, target)
		}
		got = append(got, d)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d rule.version rows; want 3", len(got))
	}
	params := func(m map[string]any) any { return m["params"].(map[string]any)["maxSpeed"] }
	if got[0].ActionID != "b1" || got[0].Before != nil || got[0].Version != 1 || params(got[0].After) != 15.0 || got[0].After["for"] != "10m0s" {
		t.Errorf("creation: %+v", got[0])
	}
	if got[1].ActionID != "b2" || params(got[1].Before) != 15.0 || params(got[1].After) != 25.0 || got[1].Version != 2 || got[1].After["updatedBy"] != "op-1" {
		t.Errorf("change: %+v", got[1])
	}
	if got[2].ActionID != "b4" || got[2].After != nil || got[2].Before["version"] != 2.0 {
		t.Errorf("deletion: %+v", got[2])
	}

	// A put that moves a rule to another province is taken when the gateway
	// checked the actor's right in the stored rule's province (from_province),
	// refused when it checked none or another (a rule created or moved
	// meanwhile, or read from a lagging replica).
	of79 := strings.ReplaceAll(rule, `"province":"01"`, `"province":"79"`)
	if err := apply(put, act("c1", ActionRulePut, "01", "rule", "r2", rule)); err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{"", "79", "02"} {
		a := act("c2-"+from, ActionRulePut, "79", "rule", "r2", of79)
		a.FromProvince = from
		if err := apply(put, a); !errors.Is(err, ErrActionRefused) || !strings.Contains(err.Error(), "rule r2 is of province 01 now") {
			t.Errorf("a move to 79 checked in %q: %v; want refused", from, err)
		}
	}
	a := act("c3", ActionRulePut, "79", "rule", "r2", of79)
	a.FromProvince = "01"
	if err := apply(put, a); err != nil {
		t.Errorf("a move to 79 checked in 01: %v", err)
	}
	var prov string
	if err := pool.QueryRow(ctx, `SELECT province FROM alert_rule WHERE id = 'r2'`).Scan(&prov); err != nil || prov != "79" {
		t.Errorf("r2 is of %q (%v); want 79", prov, err)
	}
}

// TestRulePutCapPerProvince: a province holds at most
// alertrule.MaxPerProvince rules; one more new to it is refused with the
// reason, while its rules still change and another province still adds.
func TestRulePutCapPerProvince(t *testing.T) {
	pool := testDB(t)
	ctx := context.Background()
	put, _ := RuleActions(nil)
	apply := func(a *iocv1.Action) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := put(ctx, tx, a)
			return err
		})
	}
	rule := func(p string, speed int) string {
		return fmt.Sprintf(`{"province":%q,"kind":"congestion","params":{"maxSpeed":%d},"for":"10m","severity":"Severe"}`, p, speed)
	}
	act := func(id, province, target, payload string) *iocv1.Action {
		return &iocv1.Action{Id: id, Type: ActionRulePut, Actor: "admin-1", Province: province, TargetKind: "rule", Target: target, Payload: []byte(payload)}
	}
	for i := range alertrule.MaxPerProvince {
		if err := apply(act(fmt.Sprint("a", i), "01", fmt.Sprint("r", i), rule("01", 15))); err != nil {
			t.Fatalf("rule %d of 01: %v", i, err)
		}
	}
	err := apply(act("over", "01", "one-more", rule("01", 15)))
	if !errors.Is(err, ErrActionRefused) || !strings.Contains(err.Error(), fmt.Sprintf("province 01 has %d alert rules, the most it may have", alertrule.MaxPerProvince)) {
		t.Errorf("a rule past the cap: %v; want refused naming the cap", err)
	}
	if err := apply(act("change", "01", "r0", rule("01", 20))); err != nil {
		t.Errorf("changing a rule of a full province: %v", err)
	}
	if err := apply(act("other", "79", "hcm-1", rule("79", 15))); err != nil {
		t.Errorf("a rule of another province: %v", err)
	}
}

// TestRuleActionWithinActorScope: a rule.put or rule.delete is applied only
// when its actor, as it is when the action is applied, may change the rule
// (the gateway's rule at queue time: an admin of the rule's province reading
// the layer it watches, and of the stored rule's for a rule moved between
// provinces). Out of scope it is refused with its reason and the rules are
// left as they were (no rule.version row).
func TestRuleActionWithinActorScope(t *testing.T) {
	ctx := context.Background()
	pool := testenv.PostGISWithUnits(t).Pool
	acts, err := NewActions(ActionsConfig{}, testNATS(t).JS, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	put, del := RuleActions(nil)
	acts.RegisterAction(ActionRulePut, put)
	acts.RegisterAction(ActionRuleDelete, del)
	admin01 := storeIdentity(t, pool, auth.RoleAdmin, []string{"01"})
	admin79 := storeIdentity(t, pool, auth.RoleAdmin, []string{"79"})
	adminAir := storeIdentity(t, pool, auth.RoleAdmin, []string{"01"}, "air")
	adminTraffic := storeIdentity(t, pool, auth.RoleAdmin, []string{"01"}, "traffic")
	operator01 := storeIdentity(t, pool, auth.RoleOperator, []string{"01"})
	narrowed := storeIdentity(t, pool, auth.RoleAdmin, []string{"01", "79"})
	narrowIdentity(t, pool, narrowed, "79")

	rule := func(province string) []byte {
		return []byte(`{"province":"` + province + `","kind":"congestion","params":{"maxSpeed":15},"for":"10m","severity":"Severe"}`)
	}
	putOf := func(id, actor, target, province, from string) *iocv1.Action {
		return &iocv1.Action{Id: id, Type: ActionRulePut, Actor: actor, Province: province, TargetKind: "rule", Target: target,
			Payload: rule(province), FromProvince: from}
	}
	delOf := func(id, actor, target string) *iocv1.Action {
		return &iocv1.Action{Id: id, Type: ActionRuleDelete, Actor: actor, Province: "01", TargetKind: "rule", Target: target}
	}
	for _, tc := range []struct {
		name string
		a    *iocv1.Action
		want string // in the refusal's reason; "" = applied
	}{
		{"its province", putOf("p-01", admin01, "r1", "01", ""), ""},
		{"another province", putOf("p-79", admin79, "r2", "01", ""), "change alert rules of province 01 (rule r2)"},
		{"a layer it does not read", putOf("p-air", adminAir, "r2", "01", ""), "change alert rules of kind congestion (they watch traffic"},
		{"not an admin", putOf("p-op", operator01, "r2", "01", ""), "admin role needed"},
		{"taking a rule of another province", putOf("p-move", admin79, "r1", "79", "01"), "change alert rules of province 01 (rule r1)"},
		{"a delete, narrowed since it was queued", delOf("d-narrowed", narrowed+" as Lan", "r1"), "change alert rules of province 01 (rule r1)"},
		{"its layer", putOf("p-traffic", adminTraffic, "r1", "01", ""), ""},
		{"a delete in its province", delOf("d-01", admin01+" as Lan", "r1"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, applied, err := acts.Apply(ctx, tc.a)
			if err != nil || applied != (tc.want == "") {
				t.Fatalf("applied %v, %v; want applied %v", applied, err, tc.want == "")
			}
			result, reason := actionOutcome(t, pool, tc.a.GetId())
			var versions int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = $1 AND detail->>'actionId' = $2`,
				AuditRuleVersion, tc.a.GetId()).Scan(&versions); err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if result != "applied" || versions != 1 {
					t.Errorf("recorded %s %q, %d rule versions; want applied, 1", result, reason, versions)
				}
				return
			}
			if result != "refused" || !strings.Contains(reason, tc.want) || !strings.Contains(reason, "may not") || versions != 0 {
				t.Errorf("recorded %s %q, %d rule versions; want refused naming %q, none", result, reason, versions, tc.want)
			}
		})
	}
}
