package aggregator

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
	"github.com/iochub/iochub/services/aggregator/rules"
)

// ActionAlertAck is the type of the operator action that acknowledges an
// alert (POST /v1/alerts/{id}/ack); its target is the alert's entity id
// (<source>/<identifier>) and it has no payload.
const ActionAlertAck = "alert.ack"

// errAlreadyDone is returned by a handler (with the states to publish
// again) when what the action asks for was done by an earlier action: the
// action is recorded as handled, without an audit row of its own.
var errAlreadyDone = errors.New("already done by an earlier action")

// applyAlertAck is the handler of alert.ack actions: the first
// acknowledgement of an alert is stored (with the action's actor and time)
// and its state published with it; a later one changes nothing and writes
// no audit row.
func applyAlertAck(ctx context.Context, tx pgx.Tx, a *iocv1.Action) ([]*iocv1.EntityState, error) {
	if a.GetTargetKind() != subjects.KindAlert {
		return nil, Refuse(fmt.Sprintf("target kind is %q; want alert", a.GetTargetKind()))
	}
	at := a.GetAt().AsTime()
	if a.GetAt() == nil {
		return nil, Refuse("the action has no time")
	}
	if err := ackable(ctx, tx, a.GetTarget()); err != nil {
		return nil, err
	}
	st, set, err := postgis.AckAlert(ctx, tx, a.GetTarget(), a.GetActor(), at)
	if errors.Is(err, postgis.ErrNotFound) {
		return nil, Refuse(fmt.Sprintf("alert %s does not exist", a.GetTarget()))
	}
	if err != nil {
		return nil, err
	}
	es, err := storedAlertState(st)
	if err != nil {
		return nil, Refuse(err.Error())
	}
	if !set {
		return []*iocv1.EntityState{es}, errAlreadyDone
	}
	return []*iocv1.EntityState{es}, nil
}

// ackable refuses the acknowledgement of alert id by an acting stored
// identity that may not act on it as it is now (auth.Principal.CanActAlert,
// the gateway's rule at queue time), before anything is written.
func ackable(ctx context.Context, tx pgx.Tx, id string) error {
	who, ok := actingAs(ctx)
	if !ok {
		return nil
	}
	place, err := postgis.AlertPlaceOf(ctx, tx, id)
	if errors.Is(err, postgis.ErrNotFound) {
		return Refuse(fmt.Sprintf("alert %s does not exist", id))
	}
	if err != nil {
		return err
	}
	tree, err := postgis.UnitTreeOf(ctx, tx, append([]string{place.Province, place.Unit}, place.Units...))
	if err != nil {
		return err
	}
	if !who.CanActAlert(tree, place.Province, place.Unit, place.Units) {
		return actorMayNot(who, fmt.Sprintf("acknowledge alert %s of province %s unit %s (operator role in it, reading alerts, needed)", id, place.Province, place.Unit))
	}
	return nil
}

// storedAlertState is the STATE entity of an alert read back from the store.
func storedAlertState(a postgis.AlertState) (*iocv1.EntityState, error) {
	if len(a.Body) == 0 {
		return nil, fmt.Errorf("stored alert %s has no body: %w", a.ID, ErrBadResult)
	}
	alert := &iocv1.Alert{}
	if err := proto.Unmarshal(a.Body, alert); err != nil {
		return nil, fmt.Errorf("unmarshalling stored alert %s: %w", a.ID, err)
	}
	st := &iocv1.EntityState{
		Layer:      subjects.KindAlert,
		EntityId:   a.ID,
		Province:   a.Province,
		Unit:       a.UnitCode,
		UpdatedAt:  timestamppb.New(a.UpdatedAt),
		Latest:     &iocv1.EntityState_Alert{Alert: alert},
		AlertState: a.State,
		Units:      a.Units,
		RuleId:     rules.RuleOfAlert(a.ID),
	}
	if a.AckedBy != "" {
		st.AlertAck = &iocv1.AlertAck{By: a.AckedBy, At: timestamppb.New(a.AckedAt)}
	}
	return st, nil
}
