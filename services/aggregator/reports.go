package aggregator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/wkb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// Report statuses.
const (
	ReportReceived   = "received"
	ReportAssigned   = "assigned"
	ReportInProgress = "in_progress"
	ReportResolved   = "resolved"
	ReportRejected   = "rejected"
)

// ActionReportStatus is the type of the operator action that changes a
// report's status; its payload is ReportStatusPayload.
const ActionReportStatus = "report.status"

// ReportStatusPayload is the payload of a report.status action.
type ReportStatusPayload struct {
	Status   string `json:"status"`
	Assignee string `json:"assignee,omitempty"`
}

// HubSource is the source id of what the hub itself publishes on FEEDS (the
// alerts of overdue reports).
const HubSource = "iochub"

// reportTransitions are the allowed changes of status: received → assigned →
// in_progress → resolved | rejected, received → rejected, and assigned →
// assigned to hand a report to someone else.
var reportTransitions = map[string][]string{
	ReportReceived:   {ReportAssigned, ReportRejected},
	ReportAssigned:   {ReportAssigned, ReportInProgress},
	ReportInProgress: {ReportResolved, ReportRejected},
}

// checkTransition says why a report in status from cannot go to to, or nil.
func checkTransition(from, to, assignee string) error {
	known := false
	for _, s := range []string{ReportReceived, ReportAssigned, ReportInProgress, ReportResolved, ReportRejected} {
		known = known || s == to
	}
	if !known {
		return fmt.Errorf("status %q is not one of received, assigned, in_progress, resolved, rejected", to)
	}
	allowed := reportTransitions[from]
	for _, s := range allowed {
		if s == to {
			if to == ReportAssigned && strings.TrimSpace(assignee) == "" {
				return errors.New("assigning a report needs an assignee")
			}
			return nil
		}
	}
	if len(allowed) == 0 {
		return fmt.Errorf("the report is %s, which is final", from)
	}
	return fmt.Errorf("a report cannot go from %s to %s; from %s it may go to %s", from, to, from, strings.Join(allowed, " or "))
}

// decodeReport turns a report feed message into its row. The contact stays
// sealed: the aggregator has no key and stores the bytes as they came.
func (d *decoded) decodeReport(data []byte, source string, now time.Time) error {
	m := &iocv1.Report{}
	c, err := decodeObservation(data, m, source, now, func() error {
		return checkText([][2]string{{"id", m.GetId()}, {"category", m.GetCategory()}}, append([]string{m.GetText()}, m.GetMedia()...)...)
	})
	if err != nil {
		return err
	}
	if c.location == nil {
		return errors.New("location is missing")
	}
	p, err := pointLocation(c.location)
	if err != nil {
		return err
	}
	if p.Empty() || !finite(p.X()) || !finite(p.Y()) {
		return errors.New("location is an empty or non-finite Point")
	}
	d.msg = m
	d.row = postgis.ReportRow{
		SourceID: c.source, EventID: m.GetId(), Province: d.province, UnitCode: d.unit, Category: m.GetCategory(),
		Lon: p.X(), Lat: p.Y(), Text: m.GetText(), Media: m.GetMedia(), ContactEnc: m.GetContactSealed(),
		ReportedAt: c.observed, ReceivedAt: c.received,
	}
	return nil
}

// reportProto is the report as STATE carries it: never with the contact.
func reportProto(r postgis.ReportState) *iocv1.Report {
	pt := geom.NewPointFlat(geom.XY, []float64{r.Lon, r.Lat})
	wkbBytes, _ := encodeWKB(pt) // a 2D point always encodes
	return &iocv1.Report{
		Id: r.EventID, EntityId: r.ID, ObservedAt: timestamppb.New(r.ReportedAt),
		Location: &iocv1.Geometry{Wkb: wkbBytes},
		Origin:   &iocv1.Origin{SourceId: r.SourceID, Province: r.Province, Unit: r.UnitCode, ReceivedAt: timestamppb.New(r.ReceivedAt)},
		Category: r.Category, Text: r.Text, Media: r.Media, Status: r.Status, Assignee: r.Assignee,
		SlaDeadline: timestamppb.New(r.Deadline), Overdue: r.Overdue,
	}
}

// reportState is the STATE entity of a report (layer report, entity <source>/<id>).
func reportState(r postgis.ReportState) *iocv1.EntityState {
	return &iocv1.EntityState{
		Layer: subjects.KindReport, EntityId: r.ID, Province: r.Province, Unit: r.UnitCode,
		UpdatedAt: timestamppb.New(r.UpdatedAt), Latest: &iocv1.EntityState_Report{Report: reportProto(r)},
	}
}

// entityStateMsg builds the STATE message of any entity state; the event id
// is eventID (unique per change).
func entityStateMsg(st *iocv1.EntityState, eventID string, at time.Time) (*nats.Msg, error) {
	body, err := proto.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("marshalling state of %s %s: %w", st.GetLayer(), st.GetEntityId(), err)
	}
	ev := ce.Event{ID: eventID, Source: ce.SourceURN(st.GetProvince(), st.GetUnit()), Type: ce.StateType(st.GetLayer()),
		Subject: st.GetEntityId(), Time: at}
	return &nats.Msg{Subject: subjects.State(st.GetProvince(), st.GetLayer(), st.GetEntityId()), Header: ev.Header(), Data: body}, nil
}

// reportStateMsg is the STATE message of a stored report.
func reportStateMsg(r postgis.ReportState) (*nats.Msg, error) {
	return entityStateMsg(reportState(r), r.ID+"@"+r.UpdatedAt.UTC().Format(time.RFC3339Nano), r.UpdatedAt)
}

// reportRollups adds a resolved or rejected report to the roll-ups in the
// transaction that closes it; *postgis.Store is one.
type reportRollups interface {
	ReportClosedRollups(ctx context.Context, tx pgx.Tx, r postgis.ReportState) ([]postgis.Rollup, error)
}

var _ reportRollups = (*postgis.Store)(nil)

// applyReportStatus is the handler of report.status actions. A report
// resolved or rejected counts in the roll-ups in the same transaction (so a redelivered
// action, which is not applied again, never counts twice), published after
// the commit.
func (s *Service) applyReportStatus(ctx context.Context, tx pgx.Tx, a *iocv1.Action) ([]*iocv1.EntityState, error) {
	var p ReportStatusPayload
	if err := json.Unmarshal(a.GetPayload(), &p); err != nil {
		return nil, Refuse(fmt.Sprintf("payload is not a report status: %v", err))
	}
	if a.GetTargetKind() != subjects.KindReport {
		return nil, Refuse(fmt.Sprintf("target kind is %q; want report", a.GetTargetKind()))
	}
	r, err := postgis.ReportForUpdate(ctx, tx, a.GetTarget())
	if errors.Is(err, postgis.ErrNotFound) {
		return nil, Refuse(fmt.Sprintf("report %s does not exist", a.GetTarget()))
	}
	if err != nil {
		return nil, err
	}
	if err := reportActable(ctx, tx, r); err != nil {
		return nil, err
	}
	ev := postgis.ReportEvent{ReportID: r.ID, FromStatus: r.Status, ToStatus: p.Status, Assignee: p.Assignee,
		Actor: a.GetActor(), ActionID: a.GetId(), Note: a.GetNote()}
	if err := checkTransition(r.Status, p.Status, p.Assignee); err != nil {
		ev.Kind, ev.Reason = "refused", err.Error()
		if err := postgis.AddReportEvent(ctx, tx, ev); err != nil {
			return nil, err
		}
		return nil, Refuse(err.Error())
	}
	assignee := r.Assignee
	if p.Assignee != "" {
		assignee = p.Assignee
	}
	ev.Kind, ev.Assignee = "status", assignee
	if err := postgis.AddReportEvent(ctx, tx, ev); err != nil {
		return nil, err
	}
	st, err := postgis.SetReportStatus(ctx, tx, r.ID, p.Status, assignee)
	if err != nil {
		return nil, err
	}
	if rr, ok := s.db.(reportRollups); ok && (st.Status == ReportResolved || st.Status == ReportRejected) {
		rs, err := rr.ReportClosedRollups(ctx, tx, st)
		if err != nil {
			return nil, err
		}
		if len(rs) > 0 {
			AfterCommit(ctx, func() { s.publishRollups(ctx, rs) })
		}
	}
	return []*iocv1.EntityState{reportState(st)}, nil
}

// reportActable refuses a status change of report r (read and locked in
// tx) by an acting stored identity that may not change it as it is now
// (auth.Principal.CanActReport, the gateway's rule at queue time), before
// anything is written: the report's history is of the actions in scope.
func reportActable(ctx context.Context, tx pgx.Tx, r postgis.ReportState) error {
	who, ok := actingAs(ctx)
	if !ok {
		return nil
	}
	tree, err := postgis.UnitTreeOf(ctx, tx, []string{r.Province, r.UnitCode})
	if err != nil {
		return err
	}
	if !who.CanActReport(tree, r.Province, r.UnitCode) {
		return actorMayNot(who, fmt.Sprintf("change report %s of province %s unit %s (operator role in it, reading reports, needed)", r.ID, r.Province, r.UnitCode))
	}
	return nil
}

// overdueAlertIdentifier is the CAP identifier of the alert raised for an overdue report.
func overdueAlertIdentifier(reportID string) string { return "report-overdue:" + reportID }

// overdueAlert is the CAP alert the hub raises for an overdue report, or its
// Cancel (referring to the alert) once the report is closed.
func overdueAlert(r postgis.ReportState, cancel bool, now time.Time) *iocv1.Alert {
	ident := overdueAlertIdentifier(r.ID)
	sent := r.Deadline.UTC().Truncate(time.Second)
	pt := geom.NewPointFlat(geom.XY, []float64{r.Lon, r.Lat})
	wkbBytes, _ := encodeWKB(pt)
	area := &iocv1.AlertArea{AreaDesc: "report " + r.ID, Geometry: &iocv1.Geometry{Wkb: wkbBytes}}
	a := &iocv1.Alert{
		Id: ident, Identifier: ident, Sender: HubSource, Sent: timestamppb.New(sent), Status: "Actual",
		MsgType: "Alert", Scope: "Restricted", Restriction: "IOC operators",
		Origin: &iocv1.Origin{SourceId: HubSource, Province: r.Province, Unit: r.UnitCode, ReceivedAt: timestamppb.New(now)},
		Info: []*iocv1.AlertInfo{
			{Language: "vi-VN", Category: []string{"Other"}, Event: "Phản ánh hiện trường quá hạn", Urgency: "Expected",
				Severity: "Minor", Certainty: "Observed",
				Headline:    fmt.Sprintf("Phản ánh %s (%s) quá hạn xử lý", r.ID, r.Category),
				Description: fmt.Sprintf("Hạn xử lý %s đã qua; trạng thái: %s.", r.Deadline.UTC().Format(time.RFC3339), r.Status),
				Area:        []*iocv1.AlertArea{area}},
			{Language: "en-US", Category: []string{"Other"}, Event: "Citizen report overdue", Urgency: "Expected",
				Severity: "Minor", Certainty: "Observed",
				Headline:    fmt.Sprintf("Report %s (%s) is past its SLA", r.ID, r.Category),
				Description: fmt.Sprintf("The deadline %s has passed; status: %s.", r.Deadline.UTC().Format(time.RFC3339), r.Status),
				Area:        []*iocv1.AlertArea{area}},
		},
	}
	if cancel {
		hubCancel(a, ident, sent, now)
		a.Info[0].Headline = fmt.Sprintf("Phản ánh %s đã được xử lý (%s)", r.ID, r.Status)
		a.Info[1].Headline = fmt.Sprintf("Report %s is closed (%s)", r.ID, r.Status)
	}
	return a
}

// feedAlertMsg is the FEEDS message of an alert the hub raises, as the
// ingest would publish it (CloudEvents headers, Nats-Msg-Id keyed with keys,
// Iochub-Source): a plain id could be taken first by an edge's item, and
// FEEDS would drop the alert as a duplicate.
func feedAlertMsg(a *iocv1.Alert, keys *ce.MsgIDKey) (*nats.Msg, error) {
	body, err := proto.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("marshalling alert %s: %w", a.GetIdentifier(), err)
	}
	o := a.GetOrigin()
	h := ce.Event{ID: a.GetId(), Source: ce.SourceURN(o.GetProvince(), o.GetUnit()), Type: ce.AlertType,
		Subject: a.GetIdentifier(), Time: a.GetSent().AsTime()}.Header()
	h[HeaderSource] = []string{HubSource}
	h[jetstream.MsgIDHeader] = []string{keys.ID(ce.MsgID(HubSource, a.GetId()))}
	return &nats.Msg{Subject: subjects.Feed(o.GetProvince(), o.GetUnit(), subjects.KindAlert), Header: h, Data: body}, nil
}

// ReportStore is what the report sweep needs of the database; *postgis.Store is one.
type ReportStore interface {
	DueReports(ctx context.Context, province string, now time.Time, limit int) ([]postgis.ReportState, error)
	// MarkReportsOverdue returns the roll-ups the reports marked changed.
	MarkReportsOverdue(ctx context.Context, ids []string, at time.Time) ([]postgis.Rollup, error)
	ClosedAlertedReports(ctx context.Context, province string, limit int) ([]postgis.ReportState, error)
	MarkReportAlertsCancelled(ctx context.Context, ids []string) error
}

var _ ReportStore = (*postgis.Store)(nil)

// sweepReports raises the alert of every report past its SLA and cancels
// the alert of every overdue report closed since. Like the expiry of alerts,
// it publishes first and records after: a crash in between publishes again,
// and FEEDS drops the repeated alert by its Nats-Msg-Id.
func (s *Service) sweepReports(ctx context.Context, db ReportStore) error {
	const limit = 500
	now := s.now()
	keys, err := s.msgIDs.Get(ctx)
	if err != nil {
		return err
	}
	due, err := db.DueReports(ctx, s.cfg.Province, now, limit)
	if err != nil {
		return err
	}
	var futures []jetstream.PubAckFuture
	publish := func(m *nats.Msg) error { return publishAsync(s.js, &futures, m) }
	ids := make([]string, 0, len(due))
	for _, r := range due {
		sm, err := reportStateMsg(r)
		if err != nil {
			return err
		}
		am, err := feedAlertMsg(overdueAlert(r, false, now), keys)
		if err != nil {
			return err
		}
		if err := publish(sm); err != nil {
			return err
		}
		if err := publish(am); err != nil {
			return err
		}
		ids = append(ids, r.ID)
	}
	closed, err := db.ClosedAlertedReports(ctx, s.cfg.Province, limit)
	if err != nil {
		return err
	}
	cids := make([]string, 0, len(closed))
	for _, r := range closed {
		am, err := feedAlertMsg(overdueAlert(r, true, now), keys)
		if err != nil {
			return err
		}
		if err := publish(am); err != nil {
			return err
		}
		cids = append(cids, r.ID)
	}
	if len(futures) == 0 {
		return nil
	}
	if _, err := s.waitAcks(ctx, futures); err != nil {
		return err
	}
	if len(ids) > 0 {
		rs, err := db.MarkReportsOverdue(ctx, ids, now)
		if err != nil {
			return err
		}
		s.log.Info("reports overdue", "count", len(ids))
		s.publishRollups(ctx, rs)
	}
	if len(cids) > 0 {
		if err := db.MarkReportAlertsCancelled(ctx, cids); err != nil {
			return err
		}
		s.log.Info("overdue report alerts cancelled", "count", len(cids))
	}
	return nil
}

func encodeWKB(g geom.T) ([]byte, error) { return wkb.Marshal(g, wkb.NDR) }

// initReports sets up the consumer of operator actions (with the report
// status handler) when deps has a pool.
func (s *Service) initReports(deps Deps) error {
	s.now = deps.Now
	if s.now == nil {
		s.now = time.Now
	}
	s.sweepNow = make(chan struct{}, 1)
	if deps.Pool == nil {
		return nil
	}
	s.pool = deps.Pool
	filter := subjects.ActionsAll
	if s.cfg.Province != "" {
		filter = "ioc.action." + subjects.Token(s.cfg.Province) + ".>"
	}
	acts, err := NewActions(ActionsConfig{Durable: s.cfg.Durable + "-actions", FilterSubject: filter,
		AckWait: s.cfg.AckWait, RetryDelay: s.cfg.RetryDelay}, s.js, deps.Pool, s.log)
	if err != nil {
		return err
	}
	acts.RegisterAction(ActionReportStatus, s.applyReportStatus)
	acts.RegisterAction(ActionAlertAck, applyAlertAck)
	acts.RegisterAction(ActionSourceRejections, applySourceRejections)
	acts.applied = func(a *iocv1.Action) {
		if a.GetTargetKind() == subjects.KindReport {
			s.nudgeSweep()
		}
	}
	s.actions = acts
	return nil
}

// RegisterAction makes h the handler of operator actions of type typ; it
// must be called before Run. Without Deps.Pool there is no actions consumer
// and RegisterAction returns ErrConfig.
func (s *Service) RegisterAction(typ string, h ActionHandler) error {
	if s.actions == nil {
		return fmt.Errorf("%w: registering action %s: the aggregator has no Deps.Pool, so no actions consumer", ErrConfig, typ)
	}
	s.actions.RegisterAction(typ, h)
	return nil
}

// nudgeSweep asks for a report sweep now (after a report was closed, so its
// overdue alert is cancelled without waiting for the next tick).
func (s *Service) nudgeSweep() {
	select {
	case s.sweepNow <- struct{}{}:
	default:
	}
}

// startReports runs the actions consumer and the report sweep until ctx
// ends; the returned func waits for them.
func (s *Service) startReports(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	if s.actions != nil {
		wg.Go(func() {
			if err := s.actions.Run(ctx); err != nil {
				s.m.errors.WithLabelValues("actions").Inc()
				s.log.Error("actions consumer stopped", "err", err)
			}
		})
	}
	if db, ok := s.db.(ReportStore); ok && s.cfg.ReportSweepInterval > 0 {
		wg.Go(func() {
			t := time.NewTicker(s.cfg.ReportSweepInterval)
			defer t.Stop()
			for {
				if err := s.sweepReports(ctx, db); err != nil && ctx.Err() == nil {
					s.m.errors.WithLabelValues("reports").Inc()
					s.log.Error("sweeping overdue reports failed", "err", err)
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				case <-s.sweepNow:
				}
			}
		})
	}
	if db, ok := s.db.(RetentionStore); ok && s.cfg.ObservationRetention > 0 {
		wg.Go(func() {
			s.hourly(ctx, "retention", "dropping old observations", func(ctx context.Context) error { return s.dropObservations(ctx, db) })
		})
	}
	if db, ok := s.db.(MemberStore); ok && s.cfg.MemberRetention > 0 {
		wg.Go(func() {
			s.hourly(ctx, "retention", "closing the roll-ups' member days", func(ctx context.Context) error { return s.closeMemberDays(ctx, db) })
		})
	}
	if db, ok := s.db.(FreshnessStore); ok && s.cfg.StaleSweepInterval > 0 {
		wg.Go(func() {
			t := time.NewTicker(s.cfg.StaleSweepInterval)
			defer t.Stop()
			for {
				if err := s.sweepStale(ctx, db); err != nil && ctx.Err() == nil {
					s.m.errors.WithLabelValues("freshness").Inc()
					s.log.Error("sweeping stale sources failed", "err", err)
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	return wg.Wait
}

// publishRollups publishes roll-ups written outside a batch (report and alert changes)
// on ROLLUPS and waits for their acks. A failure is logged: the table is
// right and the next change of the window publishes it again (the known gap
// of docs/rollups.md).
func (s *Service) publishRollups(ctx context.Context, rs []postgis.Rollup) {
	var futures []jetstream.PubAckFuture
	for _, r := range rs {
		msg, err := rollupMsg(r)
		if err == nil {
			err = publishAsync(s.js, &futures, msg)
		}
		if err != nil {
			s.log.Error("publishing roll-ups failed", "err", err)
			return
		}
	}
	if _, err := s.waitAcks(ctx, futures); err != nil {
		s.log.Error("publishing roll-ups failed", "err", err)
	}
}

// hubCancel turns a, an alert the hub raised as ident at sent, into its CAP
// Cancel sent at now (headlines are the caller's). The Cancel ends at once:
// it is a notice, not an alert to keep active.
func hubCancel(a *iocv1.Alert, ident string, sent, now time.Time) {
	a.Id = ident + ":cancel"
	a.Identifier = a.Id
	a.MsgType = "Cancel"
	a.Sent = timestamppb.New(now.UTC().Truncate(time.Second))
	a.References = []string{HubSource + "," + ident + "," + sent.UTC().Format(time.RFC3339)}
	for _, in := range a.Info {
		in.Urgency, in.Certainty, in.Expires = "Past", "Observed", a.Sent
	}
}
