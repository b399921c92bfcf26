package aggregator

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twpayne/go-geom"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/capconv"
	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
	"github.com/iochub/iochub/services/aggregator/rules"
)

func (d *decoded) decodeAlert(data []byte, source string, now time.Time) error {
	m := &iocv1.Alert{}
	if err := proto.Unmarshal(data, m); err != nil {
		return fmt.Errorf("unmarshalling Alert: %w", err)
	}
	src, received, err := origin(m.GetOrigin(), source, now)
	if err != nil {
		return err
	}
	sent, err := requiredEvent("sent", m.GetSent())
	if err != nil {
		return err
	}
	eventID := m.GetId()
	if eventID == "" {
		eventID = m.GetIdentifier()
	}
	texts := []string{m.GetSender(), m.GetStatus(), m.GetMsgType(), m.GetScope()}
	texts = append(texts, m.GetReferences()...)
	if err := checkText([][2]string{{"identifier", m.GetIdentifier()}}, texts...); err != nil {
		return err
	}
	if err := storableText("id", eventID); err != nil {
		return err
	}
	var (
		infos   []capconv.InfoJSON
		areas   []geom.T
		expires *time.Time
	)
	for i, in := range m.GetInfo() {
		ai := capconv.InfoJSON{
			Language: in.GetLanguage(), Category: in.GetCategory(), Event: in.GetEvent(), Urgency: in.GetUrgency(),
			Severity: in.GetSeverity(), Certainty: in.GetCertainty(), Headline: in.GetHeadline(),
			Description: in.GetDescription(), Instruction: in.GetInstruction(), SenderName: in.GetSenderName(),
		}
		for _, f := range [...]struct {
			name string
			ts   *timestamppb.Timestamp
		}{{"effective", in.GetEffective()}, {"onset", in.GetOnset()}, {"expires", in.GetExpires()}} { // in CAP's order
			name, ts := f.name, f.ts
			if ts == nil {
				continue
			}
			t, err := required(fmt.Sprintf("info[%d].%s", i, name), ts)
			if err != nil {
				return err
			}
			switch name {
			case "effective":
				ai.Effective = &t
			case "onset":
				ai.Onset = &t
			case "expires":
				ai.Expires = &t
				if expires == nil || t.After(*expires) {
					expires = &t
				}
			}
		}
		for j, a := range in.GetArea() {
			aj := capconv.AreaJSON{AreaDesc: a.GetAreaDesc()}
			for _, gc := range a.GetGeocode() {
				if aj.Geocodes == nil {
					aj.Geocodes = map[string]string{}
				}
				aj.Geocodes[gc.GetValueName()] = gc.GetValue()
			}
			ai.Areas = append(ai.Areas, aj)
			if g := a.GetGeometry(); g != nil && len(g.GetWkb()) > 0 {
				t, err := decodeWKB(g.GetWkb())
				if err != nil {
					return fmt.Errorf("info[%d].area[%d]: %w", i, j, err)
				}
				switch t.(type) {
				case *geom.Point, *geom.Polygon, *geom.MultiPolygon:
				default:
					return fmt.Errorf("info[%d].area[%d] is a %T; want a Point, Polygon or MultiPolygon", i, j, t)
				}
				areas = append(areas, t)
			}
		}
		infos = append(infos, ai)
	}
	info, err := json.Marshal(infos)
	if err != nil {
		return fmt.Errorf("encoding info: %w", err)
	}
	if jsonHasNUL(info) {
		return fmt.Errorf("info has a NUL character")
	}
	if infos == nil {
		info = []byte("[]")
	}
	var area geom.T
	switch len(areas) {
	case 0:
	case 1:
		area = areas[0]
	default:
		gc := geom.NewGeometryCollection()
		if err := gc.Push(areas...); err != nil {
			return fmt.Errorf("collecting areas: %w", err)
		}
		area = gc
	}
	d.msg = m
	d.row = postgis.AlertRow{
		SourceID: src, EventID: eventID, Identifier: m.GetIdentifier(), Sender: m.GetSender(), Sent: sent,
		Status: m.GetStatus(), MsgType: m.GetMsgType(), Scope: m.GetScope(), Refs: m.GetReferences(),
		Info: info, Area: area, Expires: expires, Province: d.province, UnitCode: d.unit, ReceivedAt: received,
		Body: data,
	}
	return nil
}

// alertKind is the aggregator's side of CAP alerts: the alert store keeps
// their lifecycle (active, superseded, cancelled, expired, closed) and the
// units their areas touch; expireAlerts publishes their expiry.
var alertKind = &kindOps{
	name:    subjects.KindAlert,
	decode:  (*decoded).decodeAlert,
	add:     func(b *postgis.Batch, row any) { b.Alerts = append(b.Alerts, row.(postgis.AlertRow)) },
	changed: func(res postgis.Result) []postgis.Changed { return res.Alerts.Changed },
	state: func(d *decoded, c postgis.Changed, st *iocv1.EntityState, ev *ce.Event) {
		r, _ := d.row.(postgis.AlertRow)
		m, _ := d.msg.(*iocv1.Alert)
		// Alerts are keyed by source and identifier, as in the alert table.
		st.EntityId = r.ID()
		st.Latest = &iocv1.EntityState_Alert{Alert: m}
		st.AlertState = c.State
		st.Units = c.Units
		st.RuleId = rules.RuleOfAlert(st.EntityId) // the rule that raised it, for alerts of the source "rules"
		if c.AckedBy != "" {
			st.AlertAck = &iocv1.AlertAck{By: c.AckedBy, At: timestamppb.New(c.AckedAt)}
		}
		ev.ID, ev.Time = r.EventID, r.Sent
	},
	prepare: func(_ context.Context, s *Service, p *pending, _ time.Time) { s.defaultExpiries(p) },
	more:    referencedAlerts,
	warm:    func(ctx context.Context, s *Service, _ time.Time) error { return s.applyAlertDefaultTTL(ctx) },
	tick:    func(ctx context.Context, s *Service) error { return s.expireAlerts(ctx) },
	result:  func(res postgis.Result) postgis.KindResult { return res.Alerts },
}

// defaultExpiry is the expiry the hub gives an alert of source whose
// message names none, and whether it gives one: sent + ttl, for an Alert or
// Update (a Cancel, Ack or Error is never in force) of a feed source (the
// alerts the hub raises itself, for rules, overdue reports and stale
// sources, are cancelled by the hub when their cause ends, however long
// that takes). ttl <= 0 gives none.
//
// The lifetime runs from sent, not from the infos' effective or onset. CAP
// 1.2 leaves the expiry of a message without one to each recipient's policy
// and takes effective to be sent when absent; sent is the one time every
// message has, once for the whole message (effective and onset are per
// info block, and onset is when the event is expected, not the message),
// and it is where the hub starts the alert's active period (alert.active_from,
// the roll-ups): the alert counts as active for ttl exactly. An alert sent
// well ahead of its effective time needs an expires of its own.
func defaultExpiry(r postgis.AlertRow, ttl time.Duration) (time.Time, bool) {
	if ttl <= 0 || r.Expires != nil || !feedSource(r.SourceID) || (r.MsgType != "Alert" && r.MsgType != "Update") {
		return time.Time{}, false
	}
	return r.Sent.Add(ttl), true
}

// defaultExpiries gives the alerts of p that name no expiry the hub's
// (defaultExpiry, Config.AlertDefaultTTL), in the batch's rows and in their
// items, from which a batch refused whole is written again one by one. The
// message (the row's Info and Body) is left as it came: the expiry is the
// row's alone, marked ExpiresDefault. A redelivery computes the same.
func (s *Service) defaultExpiries(p *pending) {
	items := p.of(subjects.KindAlert)
	for i := range p.batch.Alerts {
		r := &p.batch.Alerts[i]
		at, ok := defaultExpiry(*r, s.cfg.AlertDefaultTTL)
		if !ok {
			continue
		}
		r.Expires, r.ExpiresDefault = &at, true
		items[i].d.row = *r
	}
}

// applyAlertDefaultTTL applies Config.AlertDefaultTTL, at start, to the
// active alerts of the aggregator's province already stored: those stored
// before the hub had the policy (migration 00041) or under another
// lifetime. Those past their new expiry are then expired by the expiry
// sweep, as any other.
func (s *Service) applyAlertDefaultTTL(ctx context.Context) error {
	db, ok := s.db.(AlertPolicyStore)
	if !ok {
		return nil
	}
	n, err := db.ApplyAlertDefaultTTL(ctx, s.cfg.Province, s.cfg.AlertDefaultTTL, hubSources)
	if err != nil {
		return err
	}
	if n > 0 {
		s.log.Info("applied the default lifetime to stored alerts without expiry", "alerts", n, "ttl", s.cfg.AlertDefaultTTL)
	}
	return nil
}

// AlertPolicyStore applies the hub's default lifetime of alerts to those
// stored (postgis.Store.ApplyAlertDefaultTTL).
type AlertPolicyStore interface {
	ApplyAlertDefaultTTL(ctx context.Context, province string, ttl time.Duration, exempt []string) (int64, error)
}

var _ AlertPolicyStore = (*postgis.Store)(nil)

// referencedAlerts are the states of the stored alerts the batch's Updates
// and Cancels referred to.
func referencedAlerts(s *Service, res postgis.Result) ([]*nats.Msg, error) {
	out := make([]*nats.Msg, 0, len(res.Referenced))
	for _, a := range res.Referenced {
		msg, err := storedAlertMsg(a)
		if err != nil {
			// The row was written by an earlier version or by hand: its state
			// cannot be republished, which must not block the stream.
			s.m.errors.WithLabelValues("publish").Inc()
			s.log.Error("cannot republish a referenced alert", "alert", a.ID, "err", err)
			continue
		}
		out = append(out, msg)
	}
	return out, nil
}

// storedAlertMsg builds the STATE message of an alert read back from the
// store (referenced by an Update or Cancel, or expired).
func storedAlertMsg(a postgis.AlertState) (*nats.Msg, error) {
	st, err := storedAlertState(a)
	if err != nil {
		return nil, err
	}
	alert := st.GetAlert()
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
// then records them as expired: a crash in between publishes them again. The
// roll-ups the expiries changed (alerts ended, at their expires) are
// published after that record's commit, as the report sweep's.
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
	rs, err := s.db.MarkExpired(ctx, ids, due[0].UpdatedAt)
	if err != nil {
		return err
	}
	s.m.states.Add(float64(n))
	s.log.Info("alerts expired", "count", len(ids))
	s.publishRollups(ctx, rs)
	return nil
}

// jsonHasNUL reports whether the JSON text b (as json.Marshal writes it)
// holds a NUL character, which jsonb refuses: an escape \u0000. The six
// characters \u0000 of a text (a backslash written \\ then u0000) are not
// one: escapes are read from the left, each whole.
func jsonHasNUL(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			continue
		}
		if b[i+1] == 'u' && i+6 <= len(b) && string(b[i+2:i+6]) == "0000" {
			return true
		}
		i++ // the escaped character
	}
	return false
}
