package aggregator

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

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
