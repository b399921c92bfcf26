package aggregator

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// stateMsg builds the STATE message of one changed entity.
func stateMsg(dm decodedMsg, c postgis.Changed) (*nats.Msg, error) {
	d := dm.d
	st := &iocv1.EntityState{
		Layer:     d.kind,
		Province:  d.province,
		Unit:      d.unit,
		UpdatedAt: timestamppb.New(c.UpdatedAt),
	}
	ev := ce.Event{Source: ce.SourceURN(d.province, d.unit), Type: ce.StateType(d.kind)}
	switch d.kind {
	case subjects.KindAir:
		st.EntityId = d.airRow.StationID
		st.Latest = &iocv1.EntityState_Air{Air: d.air}
		ev.ID, ev.Time = d.airRow.EventID, d.airRow.ObservedAt
	case subjects.KindTraffic:
		st.EntityId = d.trafficRow.SegmentID
		st.Latest = &iocv1.EntityState_Traffic{Traffic: d.traffic}
		ev.ID, ev.Time = d.trafficRow.EventID, d.trafficRow.ObservedAt
	case subjects.KindAlert:
		// Alerts are keyed by source and identifier, as in the alert table.
		st.EntityId = d.alertRow.ID()
		st.Latest = &iocv1.EntityState_Alert{Alert: d.alert}
		st.AlertState = c.State
		st.Units = c.Units
		ev.ID, ev.Time = d.alertRow.EventID, d.alertRow.Sent
	default:
		return nil, fmt.Errorf("building state of kind %q: %w", d.kind, ErrUnsupportedKind)
	}
	ev.Subject = st.EntityId
	body, err := proto.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("marshalling state of %s %s: %w", d.kind, st.EntityId, err)
	}
	return &nats.Msg{
		Subject: subjects.State(d.province, d.kind, st.EntityId),
		Header:  ev.Header(),
		Data:    body,
	}, nil
}

// publishStates publishes the state of every changed entity asynchronously
// and waits for every ack; it returns how many were published.
func (s *Service) publishStates(ctx context.Context, p *pending, res postgis.Result) (int, error) {
	groups := []struct {
		items   []decodedMsg
		changed []postgis.Changed
	}{
		{p.air, res.Air.Changed},
		{p.traffic, res.Traffic.Changed},
		{p.alerts, res.Alerts.Changed},
	}
	var futures []jetstream.PubAckFuture
	for _, g := range groups {
		for _, c := range g.changed {
			if c.Index < 0 || c.Index >= len(g.items) {
				return 0, fmt.Errorf("store reported changed row %d of %d: %w", c.Index, len(g.items), ErrBadResult)
			}
			msg, err := stateMsg(g.items[c.Index], c)
			if err != nil {
				return 0, err
			}
			f, err := s.js.PublishMsgAsync(msg)
			if err != nil {
				return 0, fmt.Errorf("publishing %s: %w", msg.Subject, err)
			}
			futures = append(futures, f)
		}
	}
	timeout := time.NewTimer(s.cfg.AckWait)
	defer timeout.Stop()
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return 0, fmt.Errorf("publishing %s: %w", f.Msg().Subject, err)
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-timeout.C:
			return 0, fmt.Errorf("publishing %s: no ack within %s: %w", f.Msg().Subject, s.cfg.AckWait, nats.ErrTimeout)
		}
	}
	return len(futures), nil
}
