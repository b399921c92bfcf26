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
	"github.com/iochub/iochub/services/aggregator/rules"
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
		st.Aqi = d.aqi
		ev.ID, ev.Time = d.airRow.EventID, d.airRow.ObservedAt
	case subjects.KindWater:
		st.EntityId = d.waterRow.StationID
		st.Latest = &iocv1.EntityState_Water{Water: d.water}
		st.WaterAlarm = int32(d.waterRow.WaterAlarm)
		ev.ID, ev.Time = d.waterRow.EventID, d.waterRow.ObservedAt
	case subjects.KindWeather:
		st.EntityId = d.weatherRow.StationID
		st.Latest = &iocv1.EntityState_Weather{Weather: d.weather}
		ev.ID, ev.Time = d.weatherRow.EventID, d.weatherRow.ObservedAt
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
		st.RuleId = rules.RuleOfAlert(st.EntityId) // the rule that raised it, for alerts of the source "rules"
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
		{p.water, res.Water.Changed},
		{p.weather, res.Weather.Changed},
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
			if err := publishAsync(s.js, &futures, msg); err != nil {
				return 0, err
			}
		}
	}
	for _, r := range res.Reports.States {
		msg, err := reportStateMsg(r)
		if err != nil {
			return 0, err
		}
		if err := publishAsync(s.js, &futures, msg); err != nil {
			return 0, err
		}
	}
	for _, a := range res.Referenced {
		msg, err := storedAlertMsg(a)
		if err != nil {
			// The row was written by an earlier version or by hand: its state
			// cannot be republished, which must not block the stream.
			s.m.errors.WithLabelValues("publish").Inc()
			s.log.Error("cannot republish a referenced alert", "alert", a.ID, "err", err)
			continue
		}
		if err := publishAsync(s.js, &futures, msg); err != nil {
			return 0, err
		}
	}
	return s.waitAcks(ctx, futures)
}

// publishAsync publishes msg without waiting for its ack and appends the
// ack's future to futures.
func publishAsync(js jetstream.JetStream, futures *[]jetstream.PubAckFuture, msg *nats.Msg) error {
	f, err := js.PublishMsgAsync(msg)
	if err != nil {
		return fmt.Errorf("publishing %s: %w", msg.Subject, err)
	}
	*futures = append(*futures, f)
	return nil
}

// waitAcks waits for every publish to be acked, for AckWait at most.
func (s *Service) waitAcks(ctx context.Context, futures []jetstream.PubAckFuture) (int, error) {
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

// storedAlertMsg builds the STATE message of an alert read back from the
// store (referenced by an Update or Cancel, or expired).
func storedAlertMsg(a postgis.AlertState) (*nats.Msg, error) {
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
	body, err := proto.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("marshalling state of alert %s: %w", a.ID, err)
	}
	eventID := alert.GetId()
	if eventID == "" {
		eventID = alert.GetIdentifier()
	}
	ev := ce.Event{ID: eventID, Source: ce.SourceURN(a.Province, a.UnitCode), Type: ce.StateType(subjects.KindAlert),
		Subject: a.ID, Time: alert.GetSent().AsTime()}
	return &nats.Msg{Subject: subjects.State(a.Province, subjects.KindAlert, a.ID), Header: ev.Header(), Data: body}, nil
}

// expireAlerts publishes the state of the alerts whose expiry has passed,
// then records them as expired: a crash in between publishes them again.
func (s *Service) expireAlerts(ctx context.Context) error {
	const limit = 1000
	due, err := s.db.DueAlerts(ctx, s.cfg.Province, limit)
	if err != nil {
		return err
	}
	if len(due) == 0 {
		return nil
	}
	futures := make([]jetstream.PubAckFuture, 0, len(due))
	ids := make([]string, 0, len(due))
	for _, a := range due {
		ids = append(ids, a.ID)
		msg, err := storedAlertMsg(a)
		if err != nil {
			s.m.errors.WithLabelValues("publish").Inc()
			s.log.Error("cannot publish the expiry of an alert; marking it expired anyway", "alert", a.ID, "err", err)
			continue
		}
		if err := publishAsync(s.js, &futures, msg); err != nil {
			return err
		}
	}
	n, err := s.waitAcks(ctx, futures)
	if err != nil {
		return err
	}
	if err := s.db.MarkExpired(ctx, ids, due[0].UpdatedAt); err != nil {
		return err
	}
	s.m.states.Add(float64(n))
	s.log.Info("alerts expired", "count", len(ids))
	return nil
}
