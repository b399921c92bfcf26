package aggregator

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twpayne/go-geom"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

func reportEvent(t testing.TB) *iocv1.Report {
	return &iocv1.Report{Id: "r-1", EntityId: "r-1", ObservedAt: timestamppb.New(t0), Category: "flooding",
		Location: mustWKB(t, geom.NewPointFlat(geom.XY, []float64{105.85, 21.02})), Text: "ngập", Media: []string{"https://x.vn/a.jpg"},
		ContactSealed: []byte{1, 2, 3}, Status: "received",
		Origin: &iocv1.Origin{SourceId: sourceID, Province: province, Unit: unit, ReceivedAt: timestamppb.New(t0.Add(time.Second))}}
}

func reportHeader() map[string][]string {
	h := ce.Event{ID: "r-1", Source: ce.SourceURN(province, unit), Type: ce.ObservedType("report"), Subject: "r-1", Time: t0}.Header()
	h[HeaderSource] = []string{sourceID}
	return h
}

func TestDecodeReport(t *testing.T) {
	body, _ := proto.Marshal(reportEvent(t))
	d, err := decode(subjects.Feed(province, unit, subjects.KindReport), reportHeader(), body, t0)
	if err != nil {
		t.Fatal(err)
	}
	r := d.row.(postgis.ReportRow)
	if r.ID() != sourceID+"/r-1" || r.Category != "flooding" || r.Lon != 105.85 || r.Lat != 21.02 || string(r.ContactEnc) != "\x01\x02\x03" ||
		!r.ReportedAt.Equal(t0) || r.UnitCode != unit || len(r.Media) != 1 {
		t.Errorf("row = %+v", r)
	}
	for _, tc := range []struct {
		name   string
		change func(m *iocv1.Report)
		want   string
	}{
		{"no location", func(m *iocv1.Report) { m.Location = nil }, "location is missing"},
		{"line", func(m *iocv1.Report) {
			m.Location = mustWKB(t, geom.NewLineStringFlat(geom.XY, []float64{1, 2, 3, 4}))
		}, "want a Point"},
		{"no time", func(m *iocv1.Report) { m.ObservedAt = nil }, "observed_at is missing"},
		{"no category", func(m *iocv1.Report) { m.Category = "" }, "category is empty"},
		{"NUL in text", func(m *iocv1.Report) { m.Text = "a\x00" }, "NUL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := reportEvent(t)
			tc.change(m)
			body, _ := proto.Marshal(m)
			_, err := decode(subjects.Feed(province, unit, subjects.KindReport), reportHeader(), body, t0)
			if !errors.Is(err, ErrBadMessage) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want ErrBadMessage with %q", err, tc.want)
			}
		})
	}
}

// FuzzDecodeReport decodes arbitrary report bodies: no panic, and an
// accepted one has an id, a category and a finite point.
func FuzzDecodeReport(f *testing.F) {
	body, _ := proto.Marshal(reportEvent(f))
	f.Add(body)
	f.Add([]byte{0x0a, 0x01, 0x61})
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := decode(subjects.Feed(province, unit, subjects.KindReport), reportHeader(), body, t0)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v is not ErrBadMessage", err)
			}
			return
		}
		r := d.row.(postgis.ReportRow)
		if r.EventID == "" || r.Category == "" || !finite(r.Lon) || !finite(r.Lat) || r.ReportedAt.IsZero() {
			t.Fatalf("accepted a report without id, category, point or time: %+v", r)
		}
	})
}

// TestReportSweep drives the overdue sweep with an injected clock on real
// NATS and PostGIS: the alert raised on FEEDS, the state on STATE, the rows
// marked once; the Cancel after the report is resolved.
func TestReportSweep(t *testing.T) {
	ctx := context.Background()
	n := testNATS(t)
	db := testenv.PostGIS(t)
	store := postgis.NewStore(db.Pool)
	now := t0
	svc, err := New(Config{Durable: "sweep"}, Deps{JS: n.JS, Store: store, Pool: db.Pool, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.WriteBatch(ctx, postgis.Batch{Reports: []postgis.ReportRow{
		{SourceID: "s", EventID: "late", Province: province, UnitCode: unit, Category: "flooding", Lon: 105.85, Lat: 21.02, ReportedAt: t0.Add(-5 * time.Hour), ReceivedAt: t0},
		{SourceID: "s", EventID: "fresh", Province: province, UnitCode: unit, Category: "flooding", Lon: 105.85, Lat: 21.02, ReportedAt: t0.Add(-time.Hour), ReceivedAt: t0},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := svc.sweepReports(ctx, store); err != nil {
		t.Fatal(err)
	}
	if err := svc.sweepReports(ctx, store); err != nil { // nothing new
		t.Fatal(err)
	}
	alerts := feedAlerts(t, n.JS)
	if len(alerts) != 1 {
		t.Fatalf("got %d alerts on FEEDS; want 1 (the late report, once)", len(alerts))
	}
	a := alerts[0]
	if a.GetIdentifier() != "report-overdue:s/late" || a.GetMsgType() != "Alert" || a.GetSender() != HubSource ||
		a.GetOrigin().GetSourceId() != HubSource || len(a.GetInfo()) != 2 || !a.GetSent().AsTime().Equal(t0.Add(-time.Hour)) {
		t.Errorf("alert = %v", a)
	}
	st := stateOf(t, n.JS, subjects.State(province, subjects.KindReport, "s/late"))
	if !st.GetReport().GetOverdue() {
		t.Errorf("published state is not overdue: %v", st)
	}
	var overdue []string
	rows, _ := db.Pool.Query(ctx, `SELECT id FROM report WHERE overdue AND alert_state = 'raised' ORDER BY id`)
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		overdue = append(overdue, id)
	}
	rows.Close()
	if strings.Join(overdue, ",") != "s/late" {
		t.Errorf("overdue reports = %v; want [s/late]", overdue)
	}

	// Resolve it: the next sweep cancels the alert, once.
	for i, status := range []string{"assigned", "in_progress", "resolved"} {
		p, _ := json.Marshal(ReportStatusPayload{Status: status, Assignee: "đội 1"})
		if _, applied, err := svc.actions.Apply(ctx, &iocv1.Action{Id: "x" + status, Type: ActionReportStatus, Actor: "op",
			Province: province, TargetKind: "report", Target: "s/late", Payload: p}); err != nil || !applied {
			t.Fatalf("step %d: applied %v, err %v", i, applied, err)
		}
	}
	// The resolution and the overdue mark are on ROLLUPS: the report's day
	// roll-up as last published says resolved once, after its deadline.
	rst, err := n.JS.Stream(ctx, subjects.StreamRollups)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, time.Minute, "the report roll-ups on ROLLUPS", func() (bool, string) {
		raw, err := rst.GetLastMsgForSubject(ctx, subjects.Rollup(province, unit, subjects.KindReport, "1d"))
		if err != nil {
			return false, err.Error()
		}
		var got rollupJSON
		if err := json.Unmarshal(raw.Data, &got); err != nil {
			return false, err.Error()
		}
		if got.Resolved == nil || *got.Resolved != 1 || got.ResolvedInSLA == nil || *got.ResolvedInSLA != 0 {
			return false, string(raw.Data)
		}
		return true, ""
	})
	var overdueN, resolvedN int64
	if err := db.Pool.QueryRow(ctx, `SELECT coalesce(sum(overdue_n), 0), coalesce(sum(resolved_n), 0) FROM rollup
		WHERE layer = 'report' AND unit_code = $1 AND win = '1d'`, unit).Scan(&overdueN, &resolvedN); err != nil {
		t.Fatal(err)
	}
	if overdueN != 1 || resolvedN != 1 {
		t.Errorf("day roll-ups of %s: %d overdue, %d resolved; want 1 and 1", unit, overdueN, resolvedN)
	}

	now = now.Add(time.Minute)
	for range 2 {
		if err := svc.sweepReports(ctx, store); err != nil {
			t.Fatal(err)
		}
	}
	alerts = feedAlerts(t, n.JS)
	if len(alerts) != 2 {
		t.Fatalf("got %d alerts on FEEDS; want the alert and its Cancel", len(alerts))
	}
	c := alerts[1]
	if c.GetMsgType() != "Cancel" || len(c.GetReferences()) != 1 ||
		c.GetReferences()[0] != "iochub,report-overdue:s/late,"+t0.Add(-time.Hour).Format(time.RFC3339) {
		t.Errorf("cancel = %v", c)
	}
}

// TestReportSweepNotPreempted: the hub's own alerts have identifiers anyone
// can work out ("report-overdue:<source>/<event id>"), and an edge can put
// any message into the hub's FEEDS (by sourcing, which FEEDS deduplicates
// by message id as it does a publish): one under the alert's plain message
// id "hub/<identifier>", there before the sweep, does not keep the alert
// out, since the hub keys its ids (before, FEEDS dropped the alert as a
// duplicate and the report was marked alerted all the same).
func TestReportSweepNotPreempted(t *testing.T) {
	ctx := context.Background()
	n := testNATS(t)
	db := testenv.PostGIS(t)
	store := postgis.NewStore(db.Pool)
	svc, err := New(Config{Durable: "sweep"}, Deps{JS: n.JS, Store: store, Pool: db.Pool, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.WriteBatch(ctx, postgis.Batch{Reports: []postgis.ReportRow{
		{SourceID: "s", EventID: "late", Province: province, UnitCode: unit, Category: "flooding", Lon: 105.85, Lat: 21.02, ReportedAt: t0.Add(-5 * time.Hour), ReceivedAt: t0},
	}}); err != nil {
		t.Fatal(err)
	}
	forged := &nats.Msg{Subject: subjects.Feed(province, unit, subjects.KindAir), Data: []byte("forged")}
	if _, err := n.JS.PublishMsg(ctx, forged, jetstream.WithMsgID(ce.MsgID(HubSource, "report-overdue:s/late"))); err != nil {
		t.Fatal(err)
	}
	if err := svc.sweepReports(ctx, store); err != nil {
		t.Fatal(err)
	}
	if alerts := feedAlerts(t, n.JS); len(alerts) != 1 || alerts[0].GetIdentifier() != "report-overdue:s/late" {
		t.Fatalf("FEEDS holds the alerts %v; want report-overdue:s/late", alerts)
	}
}

func feedAlerts(t *testing.T, js jetstream.JetStream) []*iocv1.Alert {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*iocv1.Alert
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if _, _, kind, _ := subjects.ParseFeed(m.Subject); kind != subjects.KindAlert {
			continue
		}
		if got := m.Header.Get(HeaderSource); got != HubSource {
			t.Errorf("%s = %q; want %s", HeaderSource, got, HubSource)
		}
		a := &iocv1.Alert{}
		if err := proto.Unmarshal(m.Data, a); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

func stateOf(t *testing.T, js jetstream.JetStream, subject string) *iocv1.EntityState {
	t.Helper()
	s, err := js.Stream(context.Background(), subjects.StreamState)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(context.Background(), subject)
	if err != nil {
		t.Fatalf("no state on %s: %v", subject, err)
	}
	st := &iocv1.EntityState{}
	if err := proto.Unmarshal(m.Data, st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestReportStatusWithinActorScope: a report.status is applied only when
// its actor, as it is when the action is applied, may change the report
// (the gateway's rule at queue time: an operator reading reports, of the
// report's province or a unit it lies in). Out of scope it is refused with
// its reason, before anything is written: the report keeps its status and
// its history has no event of the action.
func TestReportStatusWithinActorScope(t *testing.T) {
	ctx := context.Background()
	pool := testenv.PostGISWithUnits(t).Pool
	at := time.Date(2025, 7, 1, 8, 0, 0, 0, time.UTC)
	var batch postgis.Batch
	for _, r := range []struct{ id, unit string }{{"a", "00070"}, {"b", "00004"}} { // wards of Hà Nội (01)
		batch.Reports = append(batch.Reports, postgis.ReportRow{SourceID: "s", EventID: r.id, Province: "01", UnitCode: r.unit,
			Category: "flooding", Lon: 105.85, Lat: 21.02, Text: "ngập", ContactEnc: []byte{1}, ReportedAt: at, ReceivedAt: at})
	}
	if _, err := postgis.NewStore(pool).WriteBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	acts, err := NewActions(ActionsConfig{}, testNATS(t).JS, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	acts.RegisterAction(ActionReportStatus, (&Service{}).applyReportStatus)
	opWard := storeIdentity(t, pool, auth.RoleOperator, []string{"00070"})
	op79 := storeIdentity(t, pool, auth.RoleOperator, []string{"79"})
	opAir := storeIdentity(t, pool, auth.RoleOperator, []string{"01"}, "air")
	viewer01 := storeIdentity(t, pool, auth.RoleViewer, []string{"01"})
	narrowed := storeIdentity(t, pool, auth.RoleOperator, []string{"01"})
	narrowIdentity(t, pool, narrowed, "00004")

	assign := func(id, actor, report string) *iocv1.Action {
		p, _ := json.Marshal(ReportStatusPayload{Status: "assigned", Assignee: "đội 1"})
		return &iocv1.Action{Id: id, Type: ActionReportStatus, Actor: actor, Province: "01", TargetKind: "report", Target: "s/" + report,
			At: timestamppb.New(at), Payload: p}
	}
	for _, tc := range []struct {
		name   string
		a      *iocv1.Action
		refuse bool
	}{
		{"a ward beside the report's", assign("s-beside", opWard, "b"), true},
		{"another province", assign("s-79", op79, "a"), true},
		{"an operator reading no reports", assign("s-air", opAir, "a"), true},
		{"a viewer", assign("s-viewer", viewer01, "a"), true},
		{"narrowed since it was queued", assign("s-narrowed", narrowed+" as Lan", "a"), true},
		{"the report's ward", assign("s-ward", opWard+" as An", "a"), false},
		{"the narrowed scope", assign("s-narrowed-b", narrowed, "b"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before string
			if err := pool.QueryRow(ctx, `SELECT status FROM report WHERE id = $1`, tc.a.GetTarget()).Scan(&before); err != nil {
				t.Fatal(err)
			}
			_, applied, err := acts.Apply(ctx, tc.a)
			if err != nil || applied == tc.refuse {
				t.Fatalf("applied %v, %v; want applied %v", applied, err, !tc.refuse)
			}
			result, reason := actionOutcome(t, pool, tc.a.GetId())
			var status string
			var events int
			if err := pool.QueryRow(ctx, `SELECT r.status, (SELECT count(*) FROM report_event e WHERE e.action_id = $2)
				FROM report r WHERE r.id = $1`, tc.a.GetTarget(), tc.a.GetId()).Scan(&status, &events); err != nil {
				t.Fatal(err)
			}
			if tc.refuse {
				if result != "refused" || !strings.Contains(reason, "may not change report "+tc.a.GetTarget()) || status != before || events != 0 {
					t.Errorf("recorded %s %q, status %s, %d events; want refused naming the report, status %s, no event", result, reason, status, events, before)
				}
				return
			}
			if result != "applied" || status != "assigned" || events != 1 {
				t.Errorf("recorded %s %q, status %s, %d events; want applied, assigned, 1 event", result, reason, status, events)
			}
		})
	}
}
