package aggregator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/iochub/iochub/internal/schema"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
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
