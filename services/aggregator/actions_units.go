package aggregator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/iochub/iochub/internal/schema"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// ActionUnitGroupPut defines or changes a custom group of units (target kind
// "unit", target the group's code); the payload is a schema.GroupDocument.
// A group without validFrom takes effect at the action's time.
const ActionUnitGroupPut = "unit.group.put"

// targetKindUnit is the target kind of the actions on units.
const targetKindUnit = "unit"

// UnitGroupAction returns the handler of unit.group.put.
func UnitGroupAction() ActionHandler {
	return func(ctx context.Context, tx pgx.Tx, a *iocv1.Action) ([]*iocv1.EntityState, error) {
		if a.GetTargetKind() != targetKindUnit {
			return nil, Refuse(fmt.Sprintf("target kind is %q; want unit", a.GetTargetKind()))
		}
		var doc schema.GroupDocument
		if err := json.Unmarshal(a.GetPayload(), &doc); err != nil {
			return nil, Refuse(fmt.Sprintf("payload is not a group document: %v", err))
		}
		g := doc.Group(a.GetTarget())
		if err := waitForImports(ctx, tx, g.Code); err != nil {
			return nil, err
		}
		// The gateway checked the actor's right for the members of the
		// versions it replaces as it read them: others by now (a group
		// defined meanwhile, a lagging replica) are not taken over.
		open, err := schema.OpenGroupMembersTx(ctx, tx, g.Code)
		if err != nil {
			return nil, err
		}
		checked := slices.Compact(slices.Sorted(slices.Values(a.GetCheckedMembers())))
		if !slices.Equal(open, checked) {
			return nil, Refuse(fmt.Sprintf("group %s has the members %v now; the change was checked for %v: send it again",
				g.Code, open, checked))
		}
		if err := groupDefinable(ctx, tx, g.Code, g.Members, open); err != nil {
			return nil, err
		}
		if g.ValidFrom.IsZero() && a.GetAt() != nil {
			g.ValidFrom = a.GetAt().AsTime()
		}
		switch err := schema.DefineGroupTx(ctx, tx, g); {
		case errors.Is(err, schema.ErrGroup), errors.Is(err, schema.ErrUnitVersion):
			return nil, Refuse(err.Error())
		case err != nil:
			return nil, err
		}
		return nil, nil
	}
}

// waitForImports takes schema.LockUnits in tx before any row of group code
// (LockUnits has the lock order): a map import not committed is waited
// for, and the members, the actor's scope and the boundary are read from
// the map it leaves. An import that holds the lock past the action's
// statement limit refuses the group, saying so; the wait is in a
// savepoint, so that the refusal is recorded in tx.
func waitForImports(ctx context.Context, tx pgx.Tx, code string) error {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("defining group %s: savepoint: %w", code, err)
	}
	if err := schema.LockUnits(ctx, sp); err != nil {
		_ = sp.Rollback(ctx)
		if ctx.Err() == nil && postgis.ServerTimedOut(err) {
			return Refuse(fmt.Sprintf("a map import was applied for longer than the action's statement limit, and group %s waits for it: send the change again once the import is done", code))
		}
		return fmt.Errorf("defining group %s: %w", code, err)
	}
	if err := sp.Commit(ctx); err != nil {
		return fmt.Errorf("defining group %s: releasing savepoint: %w", code, err)
	}
	return nil
}

// groupDefinable refuses the definition of group code with members, over
// the versions whose members are open, by an acting stored identity that
// may not define it as it is now (auth.Principal.GroupRefusal, the
// gateway's rule at queue time: an admin of the province of every member,
// old and new), the members placed in the current units.
func groupDefinable(ctx context.Context, tx pgx.Tx, code string, members, open []string) error {
	who, ok := actingAs(ctx)
	if !ok {
		return nil
	}
	tree, err := postgis.UnitTreeOf(ctx, tx, slices.Concat(members, open))
	if err != nil {
		return err
	}
	if why := who.GroupRefusal(tree, code, members, open); why != "" {
		return actorMayNot(who, why)
	}
	return nil
}
