package aggregator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/testenv"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// TestUnitGroupAction: unit.group.put stores a group valid from the action's
// time and refuses, with the reason, what schema.DefineGroupTx refuses.
func TestUnitGroupAction(t *testing.T) {
	pool := testenv.PostGISWithUnits(t).Pool
	ctx := context.Background()
	h := UnitGroupAction()
	at := time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
	apply := func(kind, target, body string, checked ...string) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := h(ctx, tx, &iocv1.Action{Id: "x", Type: ActionUnitGroupPut, Actor: "admin", TargetKind: kind, Target: target,
				At: timestamppb.New(at), Payload: []byte(body), CheckedMembers: checked})
			return err
		})
	}
	if err := apply("unit", "inner-city", `{"name":"Nội đô","members":["00070","00166"]}`); err != nil {
		t.Fatal(err)
	}
	got, err := schema.UnitGroups(ctx, pool, "00166", at)
	if err != nil || len(got) != 1 || got[0] != "inner-city" {
		t.Errorf("groups of 00166 at the action's time: %v, %v; want inner-city", got, err)
	}
	if got, _ := schema.UnitGroups(ctx, pool, "00166", at.Add(-time.Second)); len(got) != 0 {
		t.Errorf("groups of 00166 before the action's time: %v; want none", got)
	}
	for _, c := range []struct {
		name, kind, target, body, want string
		checked                        []string
	}{
		{"not a unit", "rule", "g", `{"members":["00070"]}`, `target kind is "rule"`, nil},
		{"not JSON", "unit", "g", `{`, "payload", nil},
		{"unknown member", "unit", "g", `{"members":["99999"]}`, "99999", nil},
		{"no members", "unit", "g", `{"members":[]}`, "no members", nil},
		{"not later", "unit", "inner-city", `{"members":["00070"]}`, "must start later", []string{"00166", "00070"}},
		// The gateway checked other members than the group has (it read
		// them before the group was defined, or from a lagging replica).
		{"checked for others", "unit", "inner-city", `{"members":["00070"],"validFrom":"2025-10-01T00:00:00Z"}`,
			"has the members [00070 00166] now; the change was checked for [00070]", []string{"00070"}},
		{"checked for none", "unit", "inner-city", `{"members":["00070"],"validFrom":"2025-10-01T00:00:00Z"}`, "checked for []", nil},
	} {
		if err := apply(c.kind, c.target, c.body, c.checked...); !errors.Is(err, ErrActionRefused) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want a refusal naming %q", c.name, err, c.want)
		}
	}
	if err := apply("unit", "inner-city", `{"members":["00070"],"validFrom":"2025-10-01T00:00:00Z"}`, "00070", "00166", "00070"); err != nil {
		t.Errorf("checked for the group's members: %v", err)
	}
}

// TestUnitGroupWithinActorScope: a unit.group.put is applied only when its
// actor, as it is when the action is applied, may define the group (the
// gateway's rule at queue time: an admin of the province of every member
// and of every member of the versions it replaces). Out of scope it is
// refused with its reason and no group version is stored.
func TestUnitGroupWithinActorScope(t *testing.T) {
	ctx := context.Background()
	pool := testenv.PostGISWithUnits(t).Pool
	acts, err := NewActions(ActionsConfig{}, testNATS(t).JS, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	acts.RegisterAction(ActionUnitGroupPut, UnitGroupAction())
	adminBoth := storeIdentity(t, pool, auth.RoleAdmin, []string{"01", "79"})
	admin01 := storeIdentity(t, pool, auth.RoleAdmin, []string{"01"})
	operator01 := storeIdentity(t, pool, auth.RoleOperator, []string{"01"})
	narrowed := storeIdentity(t, pool, auth.RoleAdmin, []string{"01", "79"})
	narrowIdentity(t, pool, narrowed, "01")
	at := time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)

	group := func(id, actor, code, body string, checked ...string) *iocv1.Action {
		return &iocv1.Action{Id: id, Type: ActionUnitGroupPut, Actor: actor, Province: "VN", TargetKind: "unit", Target: code,
			At: timestamppb.New(at), Payload: []byte(body), CheckedMembers: checked}
	}
	const span = `{"name":"Hà Nội và TP.HCM","members":["00070","79"]}` // a ward of Hà Nội (01) and TP.HCM (79)
	for _, tc := range []struct {
		name string
		a    *iocv1.Action
		want string // in the refusal's reason; "" = applied
	}{
		{"every province of its members", group("g-span", adminBoth, "span", span), ""},
		{"a member of another province", group("g-other", admin01, "other", span), "group unit 79 of province 79"},
		{"narrowed since it was queued", group("g-narrowed", narrowed+" as Lan", "narrowed", span), "group unit 79 of province 79"},
		{"replacing members of another province", group("g-replace", admin01, "span",
			`{"name":"Nội đô","members":["00070"],"validFrom":"2025-10-01T00:00:00Z"}`, "00070", "79"),
			"redefine group span, whose member 79 is of province 79"},
		{"not an admin", group("g-op", operator01, "op", `{"name":"Nội đô","members":["00070"]}`), "admin role needed"},
		{"within its province", group("g-01", admin01+" as Lan", "inner", `{"name":"Nội đô","members":["00070","00004"]}`), ""},
		{"within its narrowed scope", group("g-narrowed-in", narrowed, "inner2", `{"name":"Nội đô","members":["00004"]}`), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before int
			count := `SELECT count(*) FROM admin_unit WHERE code = $1`
			if err := pool.QueryRow(ctx, count, tc.a.GetTarget()).Scan(&before); err != nil {
				t.Fatal(err)
			}
			_, applied, err := acts.Apply(ctx, tc.a)
			if err != nil || applied != (tc.want == "") {
				t.Fatalf("applied %v, %v; want applied %v", applied, err, tc.want == "")
			}
			result, reason := actionOutcome(t, pool, tc.a.GetId())
			var after int
			if err := pool.QueryRow(ctx, count, tc.a.GetTarget()).Scan(&after); err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if result != "applied" || after != before+1 {
					t.Errorf("recorded %s %q, %d versions of the group (%d before); want applied, one more", result, reason, after, before)
				}
				return
			}
			if result != "refused" || !strings.Contains(reason, tc.want) || !strings.Contains(reason, "may not") || after != before {
				t.Errorf("recorded %s %q, %d versions of the group (%d before); want refused naming %q, none more", result, reason, after, before, tc.want)
			}
		})
	}
}

// TestGroupWaitsForImport: a group's definition (unit.group.put, iochub
// units group) and a map import are applied one at a time: a group put
// while an import has not committed waits for it, then is checked against
// the map the import leaves and applied to it (or refused naming what is
// no longer there); an import while a group put has not committed waits
// for it. Both end (the lock order of schema.LockUnits), and a group put
// that waits past its statement limit is refused with that reason. Without
// the lock, the group was checked against the map the import was replacing
// and stored against a unit it retired, a group of the code of a unit the
// import added failed on admin_unit's key (23505) and was retried, and a
// group of the import's new units was refused as naming no units.
func TestGroupWaitsForImport(t *testing.T) {
	ctx := context.Background()
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := from.AddDate(0, 1, 0)
	put := func(id, code, members string) *iocv1.Action {
		return &iocv1.Action{Id: id, Type: ActionUnitGroupPut, Actor: "admin", Province: "VN", TargetKind: "unit", Target: code,
			At: timestamppb.New(at), Payload: []byte(`{"name":"Nhóm","members":` + members + `}`)}
	}
	// importing holds an import of twoCommunes (from) open in a transaction
	// of pool; commit ends it.
	importing := func(t *testing.T, pool *pgxpool.Pool, replace bool) (commit func()) {
		return testenv.HoldUnitsImport(t, pool, twoCommunes, schema.ImportOptions{ValidFrom: from, Replace: replace})
	}
	// waiting runs f (who) beside a transaction and returns its outcome
	// once it has waited for the transaction's lock and commit has ended it.
	waiting := func(t *testing.T, pool *pgxpool.Pool, commit func(), who string, f func() string) string {
		t.Helper()
		return testenv.WhileHeld(t, pool, who, commit, f, func(s string) string { return s })
	}
	for _, tc := range []struct {
		name, code, members string
		replace             bool
		want                string // in the refusal; "" = applied
	}{
		{"a member the import retires", "g-retired", `["00070","00004"]`, true,
			"no unit (other than a group) 00004, 00070 is valid at 2026-02-01"},
		{"the code of a unit the import adds", "99901", `["00070"]`, false, "the code is a unit of level commune"},
		{"the units the import adds", "g-new", `["99901","99902"]`, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := testenv.PostGISWithUnits(t).Pool
			acts, err := NewActions(ActionsConfig{}, testNATS(t).JS, pool, nil)
			if err != nil {
				t.Fatal(err)
			}
			acts.RegisterAction(ActionUnitGroupPut, UnitGroupAction())
			a := put("put-1", tc.code, tc.members)
			got := waiting(t, pool, importing(t, pool, tc.replace), "the group put", func() string {
				if _, _, err := acts.Apply(ctx, a); err != nil {
					return "failed: " + err.Error()
				}
				result, reason := actionOutcome(t, pool, a.GetId())
				return result + ": " + reason
			})
			want := "applied: "
			if tc.want != "" {
				want = "refused: "
			}
			if !strings.HasPrefix(got, want) || !strings.Contains(got, tc.want) {
				t.Fatalf("the group put after the import: %s; want %s…%s", got, want, tc.want)
			}
			var stored int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM unit_group_member WHERE group_code = $1`, tc.code).Scan(&stored); err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{true: 0, false: 2}[tc.want != ""]; stored != want {
				t.Errorf("%d member rows of %s; want %d", stored, tc.code, want)
			}
		})
	}

	t.Run("iochub units group", func(t *testing.T) {
		pool := testenv.PostGISWithUnits(t).Pool
		got := waiting(t, pool, importing(t, pool, true), "the group definition", func() string {
			return fmt.Sprint(schema.DefineGroup(ctx, pool, schema.Group{Code: "g-cli", NameVI: "Nhóm", Members: []string{"00070"}, ValidFrom: at}))
		})
		if !strings.Contains(got, "no unit (other than a group) 00070 is valid") {
			t.Errorf("the group after the import: %s; want a refusal naming 00070", got)
		}
	})

	t.Run("an import while a group put", func(t *testing.T) {
		pool := testenv.PostGISWithUnits(t).Pool
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tx.Rollback(ctx) })
		if _, err := UnitGroupAction()(ctx, tx, put("put-1", "g-first", `["00070"]`)); err != nil {
			t.Fatal(err)
		}
		got := waiting(t, pool, func() {
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}, "the import", func() string {
			res, err := schema.ImportUnits(ctx, pool, strings.NewReader(twoCommunes), schema.ImportOptions{ValidFrom: from, Replace: true})
			return fmt.Sprintf("%+v %v", res, err)
		})
		if !strings.HasSuffix(got, " <nil>") {
			t.Fatalf("the import after the group put: %s; want it done", got)
		}
	})

	t.Run("past the statement limit", func(t *testing.T) {
		pool := testenv.PostGISWithUnits(t).Pool
		acts, err := NewActions(ActionsConfig{StatementTimeout: time.Second}, testNATS(t).JS, pool, nil)
		if err != nil {
			t.Fatal(err)
		}
		acts.RegisterAction(ActionUnitGroupPut, UnitGroupAction())
		commit := importing(t, pool, false)
		a := put("put-1", "g-late", `["00070"]`)
		if _, applied, err := acts.Apply(ctx, a); err != nil || applied {
			t.Fatalf("the group put during a long import: applied %v, %v; want refused", applied, err)
		}
		if result, reason := actionOutcome(t, pool, a.GetId()); result != "refused" || !strings.Contains(reason, "a map import was applied for longer than the action's statement limit") {
			t.Errorf("outcome %s %q; want refused, waiting for the import", result, reason)
		}
		commit()
	})
}
