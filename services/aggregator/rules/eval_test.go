package rules

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/wkb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/alertrule"
	"github.com/iochub/iochub/internal/ce"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

var t0 = time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

func traffic(seg string, min int, speed *float64) *iocv1.EntityState {
	line, _ := wkb.Marshal(geom.NewLineStringFlat(geom.XY, []float64{105.80, 21.00, 105.81, 21.01}), wkb.NDR)
	return &iocv1.EntityState{Layer: "traffic", EntityId: seg, Province: "01", Unit: "00070",
		Latest: &iocv1.EntityState_Traffic{Traffic: &iocv1.TrafficObserved{Id: fmt.Sprintf("%s@%d", seg, min), EntityId: seg,
			Name: "Đường Láng", ObservedAt: timestamppb.New(at(min)), AverageVehicleSpeed: speed, Location: &iocv1.Geometry{Wkb: line}}}}
}

func air(station string, min int, band int32) *iocv1.EntityState {
	pt, _ := wkb.Marshal(geom.NewPointFlat(geom.XY, []float64{105.85, 21.03}), wkb.NDR)
	st := &iocv1.EntityState{Layer: "air", EntityId: station, Province: "01", Unit: "00070",
		Latest: &iocv1.EntityState_Air{Air: &iocv1.AirQualityObserved{EntityId: station, ObservedAt: timestamppb.New(at(min)),
			Location: &iocv1.Geometry{Wkb: pt}}}}
	if band > 0 {
		st.Aqi = &iocv1.AirQualityIndex{Band: band}
	}
	return st
}

func water(station string, min int, alarm int32) *iocv1.EntityState {
	return &iocv1.EntityState{Layer: "water", EntityId: station, Province: "01", Unit: "00070", WaterAlarm: alarm,
		Latest: &iocv1.EntityState_Water{Water: &iocv1.WaterObserved{EntityId: station, ObservedAt: timestamppb.New(at(min))}}}
}

func speed(v float64) *float64 { return &v }

func congestion(id string, max float64, forMin int, segments ...string) alertrule.Rule {
	return alertrule.Rule{ID: id, Province: "01", Kind: alertrule.KindCongestion, Params: alertrule.Params{MaxSpeed: max, Segments: segments},
		For: time.Duration(forMin) * time.Minute, Severity: "Moderate", Enabled: true, Version: 1}
}

// describe renders transitions as "raise r1 s1 since+0 at+10" lines.
func describe(ts []Transition) string {
	var b []string
	for _, t := range ts {
		b = append(b, fmt.Sprintf("%s %s %s since+%d at+%d", t.Action, t.Rule.ID, t.Entity,
			int(t.Since.Sub(t0).Minutes()), int(t.At.Sub(t0).Minutes())))
	}
	return strings.Join(b, "; ")
}

func TestCheck(t *testing.T) {
	aqi := alertrule.Rule{ID: "a", Province: "01", Kind: alertrule.KindAQIBand, Params: alertrule.Params{MinBand: 4}, Enabled: true}
	wl := alertrule.Rule{ID: "w", Province: "01", Kind: alertrule.KindWaterLevel, Params: alertrule.Params{MinAlarm: 2}, Enabled: true}
	cg := congestion("c", 15, 0)
	only := congestion("c", 15, 0, "s2")
	off := congestion("c", 15, 0)
	off.Enabled = false
	other := traffic("s1", 0, speed(3))
	other.Province = "79"
	tests := []struct {
		name string
		rule alertrule.Rule
		st   *iocv1.EntityState
		want Verdict
	}{
		{"slow", cg, traffic("s1", 0, speed(14.9)), Holds},
		{"at the threshold", cg, traffic("s1", 0, speed(15)), Clear},
		{"no speed", cg, traffic("s1", 0, nil), Unknown},
		{"not a listed segment", only, traffic("s1", 0, speed(3)), NotApplicable},
		{"listed segment", only, traffic("s2", 0, speed(3)), Holds},
		{"disabled", off, traffic("s1", 0, speed(3)), NotApplicable},
		{"other province", cg, other, NotApplicable},
		{"other layer", cg, air("a1", 0, 5), NotApplicable},
		{"band above", aqi, air("a1", 0, 5), Holds},
		{"band at", aqi, air("a1", 0, 4), Holds},
		{"band below", aqi, air("a1", 0, 3), Clear},
		{"no AQI yet", aqi, air("a1", 0, 0), Unknown},
		{"alarm II", wl, water("w1", 0, 2), Holds},
		{"alarm I", wl, water("w1", 0, 1), Clear},
		{"below alarms", wl, water("w1", 0, 0), Clear},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Check(&tt.rule, tt.st); got != tt.want {
				t.Errorf("got %v; want %v", got, tt.want)
			}
		})
	}
}

func TestEvaluatorDuration(t *testing.T) {
	type step struct {
		st   *iocv1.EntityState
		want string
	}
	tests := []struct {
		name  string
		rules []alertrule.Rule
		steps []step
	}{
		{"raised after the duration, cancelled on recovery", []alertrule.Rule{congestion("r1", 15, 10)}, []step{
			{traffic("s1", 0, speed(10)), ""},
			{traffic("s1", 5, speed(8)), ""},
			{traffic("s1", 10, speed(12)), "raise r1 s1 since+0 at+10"},
			{traffic("s1", 12, speed(5)), ""},
			{traffic("s1", 15, speed(30)), "cancel r1 s1 since+0 at+15"},
			{traffic("s1", 16, speed(40)), ""},
		}},
		{"a recovery before the duration restarts the clock", []alertrule.Rule{congestion("r1", 15, 10)}, []step{
			{traffic("s1", 0, speed(10)), ""},
			{traffic("s1", 8, speed(20)), ""},
			{traffic("s1", 9, speed(10)), ""},
			{traffic("s1", 18, speed(10)), ""},
			{traffic("s1", 19, speed(10)), "raise r1 s1 since+9 at+19"},
		}},
		{"no speed changes nothing", []alertrule.Rule{congestion("r1", 15, 0)}, []step{
			{traffic("s1", 0, speed(10)), "raise r1 s1 since+0 at+0"},
			{traffic("s1", 1, nil), ""},
			{traffic("s1", 2, speed(50)), "cancel r1 s1 since+0 at+2"},
		}},
		{"a late state is ignored", []alertrule.Rule{congestion("r1", 15, 5)}, []step{
			{traffic("s1", 10, speed(10)), ""},
			{traffic("s1", 3, speed(50)), ""},
			{traffic("s1", 15, speed(10)), "raise r1 s1 since+10 at+15"},
			{traffic("s1", 12, speed(50)), ""},
		}},
		{"two rules, two segments", []alertrule.Rule{congestion("r1", 15, 0), congestion("r2", 30, 0, "s2")}, []step{
			{traffic("s1", 0, speed(20)), ""},
			{traffic("s2", 0, speed(20)), "raise r2 s2 since+0 at+0"},
			{traffic("s2", 1, speed(10)), "raise r1 s2 since+1 at+1"},
			{traffic("s2", 2, speed(40)), "cancel r1 s2 since+1 at+2; cancel r2 s2 since+0 at+2"},
		}},
		{"aqi band for an hour", []alertrule.Rule{{ID: "aq", Province: "01", Kind: alertrule.KindAQIBand, Params: alertrule.Params{MinBand: 4}, For: time.Hour, Severity: "Severe", Enabled: true}}, []step{
			{air("a1", 0, 4), ""},
			{air("a1", 30, 0), ""},
			{air("a1", 60, 5), "raise aq a1 since+0 at+60"},
			{air("a1", 120, 2), "cancel aq a1 since+0 at+120"},
		}},
		{"water level at once", []alertrule.Rule{{ID: "wl", Province: "01", Kind: alertrule.KindWaterLevel, Params: alertrule.Params{MinAlarm: 2}, Severity: "Extreme", Enabled: true}}, []step{
			{water("w1", 0, 1), ""},
			{water("w1", 5, 2), "raise wl w1 since+5 at+5"},
			{water("w1", 6, 3), ""},
			{water("w1", 7, 0), "cancel wl w1 since+5 at+7"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := NewEvaluator(fixed(at(100)))
			if got := ev.SetRules(tt.rules, at(100)); len(got) != 0 {
				t.Fatalf("SetRules: got %s; want nothing", describe(got))
			}
			for i, s := range tt.steps {
				if got := describe(obs(ev, s.st)); got != s.want {
					t.Errorf("step %d: got %q; want %q", i, got, s.want)
				}
			}
		})
	}
}

func TestEvaluatorRuleChanges(t *testing.T) {
	ev := NewEvaluator(fixed(at(100)))
	ev.SetRules([]alertrule.Rule{congestion("r1", 15, 0), congestion("r2", 15, 0)}, at(0))
	if got := describe(obs(ev, traffic("s1", 1, speed(10)))); got != "raise r1 s1 since+1 at+1; raise r2 s1 since+1 at+1" {
		t.Fatalf("got %q", got)
	}
	// r1 deleted, r2's threshold lowered below the current speed, r3 added and holding at once.
	r2 := congestion("r2", 5, 0)
	r2.Version = 2
	got := describe(ev.SetRules([]alertrule.Rule{r2, congestion("r3", 20, 0)}, at(50)))
	want := "cancel r1 s1 since+1 at+50; cancel r2 s1 since+1 at+1; raise r3 s1 since+1 at+1"
	if got != want {
		t.Errorf("after the change: got %q; want %q", got, want)
	}
	// Disabling r3 cancels its alert at the wall clock.
	r3 := congestion("r3", 20, 0)
	r3.Enabled = false
	if got := describe(ev.SetRules([]alertrule.Rule{r2, r3}, at(60))); got != "cancel r3 s1 since+1 at+60" {
		t.Errorf("after disabling: got %q", got)
	}
	// Setting the same rules again does nothing.
	if got := ev.SetRules([]alertrule.Rule{r2, r3}, at(70)); len(got) != 0 {
		t.Errorf("same rules: got %q; want nothing", describe(got))
	}
	// Limiting a rule to other segments cancels its alert on this one.
	if got := describe(ev.SetRules([]alertrule.Rule{congestion("r4", 20, 0)}, at(80))); got != "raise r4 s1 since+1 at+1" {
		t.Errorf("new rule on the last state: got %q", got)
	}
	obs(ev, traffic("s1", 81, speed(10)))
	if got := describe(ev.SetRules([]alertrule.Rule{congestion("r4", 20, 0, "s9")}, at(90))); got != "cancel r4 s1 since+1 at+90" {
		t.Errorf("after limiting: got %q", got)
	}
}

func TestEvaluatorRestore(t *testing.T) {
	ev := NewEvaluator(fixed(at(100)))
	id := Identifier("r1", "s1", at(0))
	gone := Identifier("old", "s1", at(0))
	_, skipped := ev.Restore([]Raised{
		{Identifier: id, Sent: at(10), Province: "01", Unit: "00070"},
		{Identifier: gone, Sent: at(10), Province: "01", Unit: "00070"},
		{Identifier: "foreign", Sent: at(10), Province: "01", Unit: "00070"},
	})
	if len(skipped) != 1 || skipped[0] != "foreign" {
		t.Errorf("skipped %v; want [foreign]", skipped)
	}
	// The alert of a rule that is gone is cancelled at once.
	if got := describe(ev.SetRules([]alertrule.Rule{congestion("r1", 15, 10)}, at(20))); got != "cancel old s1 since+0 at+20" {
		t.Errorf("SetRules: got %q", got)
	}
	// The last state, delivered again after the restart, still holds: nothing is raised twice.
	if got := obs(ev, traffic("s1", 12, speed(10))); len(got) != 0 {
		t.Errorf("redelivered state: got %q; want nothing", describe(got))
	}
	got := obs(ev, traffic("s1", 13, speed(50)))
	if describe(got) != "cancel r1 s1 since+0 at+13" || got[0].Identifier != id || !got[0].RaisedAt.Equal(at(10)) {
		t.Errorf("recovery: got %q (%s, %v); want the restored alert cancelled", describe(got), got[0].Identifier, got[0].RaisedAt)
	}
}

func TestUnraise(t *testing.T) {
	ev := NewEvaluator(fixed(at(100)))
	ev.SetRules([]alertrule.Rule{congestion("r1", 15, 0)}, at(0))
	first := obs(ev, traffic("s1", 1, speed(10)))
	ev.Unraise(first[0])
	again := obs(ev, traffic("s1", 2, speed(10)))
	if describe(again) != "raise r1 s1 since+1 at+2" || again[0].Identifier != first[0].Identifier {
		t.Errorf("got %q (%s); want the same alert raised again", describe(again), again[0].Identifier)
	}
}

func TestAlert(t *testing.T) {
	ev := NewEvaluator(fixed(at(100)))
	r := congestion("r1", 15, 0)
	r.Severity = "Severe"
	ev.SetRules([]alertrule.Rule{r}, at(0))
	raise := obs(ev, traffic("s 1", 1, speed(7.5)))[0]
	ids, err := ce.NewMsgIDKey(bytes.Repeat([]byte{7}, ce.MsgIDKeySize))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := Message(raise, at(100), ids)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != "ioc.feed.01.00070.alert" {
		t.Errorf("subject %q", msg.Subject)
	}
	wantID := "rule:r1:s%201:" + fmt.Sprint(at(1).Unix())
	for k, want := range map[string]string{"Nats-Msg-Id": ids.ID("rules/" + wantID), ce.HeaderFeedSource: "rules", HeaderRule: "r1",
		ce.HeaderID: wantID, ce.HeaderType: ce.AlertType, ce.HeaderSource: "urn:ioc:01:00070"} {
		if got := msg.Header.Get(k); got != want {
			t.Errorf("header %s = %q; want %q", k, got, want)
		}
	}
	var a iocv1.Alert
	if err := proto.Unmarshal(msg.Data, &a); err != nil {
		t.Fatal(err)
	}
	if a.GetIdentifier() != wantID || a.GetId() != wantID || a.GetMsgType() != "Alert" || a.GetStatus() != "Actual" ||
		a.GetSender() != "rules" || !a.GetSent().AsTime().Equal(at(1)) || a.GetOrigin().GetSourceId() != "rules" {
		t.Errorf("alert header fields: %v", &a)
	}
	if len(a.GetInfo()) != 2 || a.GetInfo()[0].GetLanguage() != "vi-VN" || a.GetInfo()[1].GetLanguage() != "en-US" {
		t.Fatalf("info: %v", a.GetInfo())
	}
	en := a.GetInfo()[1]
	if en.GetSeverity() != "Severe" || en.GetCategory()[0] != "Transport" || en.GetHeadline() != "Traffic congestion: Đường Láng (s 1)" ||
		en.GetDescription() != "Average speed on Đường Láng (s 1) is 7.5 km/h (< 15) since 2026-11-21T08:01:00+00:00" {
		t.Errorf("en info: %v", en)
	}
	if a.GetInfo()[0].GetEvent() != "Ùn tắc giao thông" {
		t.Errorf("vi event %q", a.GetInfo()[0].GetEvent())
	}
	g, err := wkb.Unmarshal(en.GetArea()[0].GetGeometry().GetWkb())
	if err != nil {
		t.Fatal(err)
	}
	poly, ok := g.(*geom.Polygon)
	if !ok || poly.NumLinearRings() != 1 || poly.Area() <= 0 {
		t.Fatalf("area is %T %v; want a polygon around the segment", g, g)
	}
	if b := poly.Bounds(); b.Min(0) >= 105.80 || b.Max(0) <= 105.81 || b.Min(1) >= 21.00 || b.Max(1) <= 21.01 {
		t.Errorf("area bounds %v do not contain the segment", b)
	}

	cancel := obs(ev, traffic("s 1", 5, speed(50)))[0]
	msg, err = Message(cancel, at(100), ids)
	if err != nil {
		t.Fatal(err)
	}
	var c iocv1.Alert
	if err := proto.Unmarshal(msg.Data, &c); err != nil {
		t.Fatal(err)
	}
	if c.GetMsgType() != "Cancel" || c.GetIdentifier() != wantID+":cancel" || msg.Header.Get("Nats-Msg-Id") != ids.ID("rules/"+wantID+":cancel") ||
		len(c.GetReferences()) != 1 || c.GetReferences()[0] != "rules,"+wantID+",2026-11-21T08:01:00+00:00" {
		t.Errorf("cancel: %v, Nats-Msg-Id %q", &c, msg.Header.Get("Nats-Msg-Id"))
	}
	if !c.GetInfo()[0].GetExpires().AsTime().Equal(at(5)) || c.GetInfo()[1].GetResponseType()[0] != "AllClear" {
		t.Errorf("cancel info: %v", c.GetInfo())
	}
	if _, err := Message(Transition{Action: Raise, Identifier: "x"}, at(0), ids); err == nil {
		t.Error("a transition without province or unit built a message")
	}
}

// fixed is a wall clock stopped at t.
func fixed(t time.Time) func() time.Time { return func() time.Time { return t } }

// obs observes a state as if it reached STATE at its observation time.
func obs(ev *Evaluator, st *iocv1.EntityState) []Transition { return ev.Observe(st, ObservedAt(st)) }

// TestEvaluatorStale drives the evaluator with a wall clock of its own: a
// step with a state observes it as received at received; a step without
// one sweeps at now.
func TestEvaluatorStale(t *testing.T) {
	wl := alertrule.Rule{ID: "wl", Province: "01", Kind: alertrule.KindWaterLevel, Params: alertrule.Params{MinAlarm: 2}, Severity: "Extreme", Enabled: true}
	short := alertrule.Rule{ID: "aq", Province: "01", Kind: alertrule.KindAQIBand, Params: alertrule.Params{MinBand: 4, Stale: 30 * time.Minute},
		For: time.Hour, Severity: "Severe", Enabled: true}
	jam := congestion("cg", 15, 0)
	type step struct {
		now      int
		st       *iocv1.EntityState
		received int
		want     string
	}
	tests := []struct {
		name    string
		rules   []alertrule.Rule
		restore []Raised
		steps   []step
	}{
		{"a silent gauge's alert is cancelled after the default 2h", []alertrule.Rule{wl}, nil, []step{
			{0, water("w1", 0, 2), 0, "raise wl w1 since+0 at+0"},
			{60, nil, 0, ""},
			{90, water("w1", 90, 3), 90, ""},
			{209, nil, 0, ""},
			{210, nil, 0, "cancel wl w1 since+0 at+210"},
			{211, nil, 0, ""},
			// Its last state delivered again (a restart) is old news: nothing is raised again.
			{212, water("w1", 90, 3), 90, ""},
			// Data again: a new alert, with a new identifier.
			{215, water("w1", 215, 2), 215, "raise wl w1 since+215 at+215"},
		}},
		{"silence is measured from when states arrive, not their observation times", []alertrule.Rule{wl}, nil, []step{
			{300, water("w1", 0, 2), 300, "raise wl w1 since+0 at+0"},
			{419, nil, 0, ""},
			{420, nil, 0, "cancel wl w1 since+0 at+420"},
		}},
		{"a state that reached STATE longer than stale ago raises nothing", []alertrule.Rule{wl}, nil, []step{
			{200, water("w1", 0, 2), 0, ""},
			{200, nil, 0, ""},
		}},
		{"states without the rule's value are not data", []alertrule.Rule{jam}, nil, []step{
			{0, traffic("s1", 0, speed(5)), 0, "raise cg s1 since+0 at+0"},
			{60, traffic("s1", 60, nil), 60, ""},
			{100, traffic("s1", 100, nil), 100, ""},
			{120, nil, 0, "cancel cg s1 since+0 at+120"},
		}},
		{"a rule's own stale duration; a condition not raised yet is forgotten", []alertrule.Rule{short}, nil, []step{
			{0, air("a1", 0, 5), 0, ""},
			{29, nil, 0, ""},
			{30, nil, 0, ""},
			// The clock of the condition starts again.
			{40, air("a1", 40, 5), 40, ""},
			{60, air("a1", 60, 5), 60, ""},
			{100, air("a1", 100, 5), 100, "raise aq a1 since+40 at+100"},
			{130, nil, 0, "cancel aq a1 since+40 at+130"},
		}},
		{"a restored alert without a state starts its silence at the first sweep", []alertrule.Rule{wl},
			[]Raised{{Identifier: Identifier("wl", "w1", at(0)), Sent: at(0), Province: "01", Unit: "00070"}}, []step{
				{500, nil, 0, ""},
				{619, nil, 0, ""},
				{620, nil, 0, "cancel wl w1 since+0 at+620"},
			}},
		{"a restored alert whose last state is old is cancelled at the first sweep", []alertrule.Rule{wl},
			[]Raised{{Identifier: Identifier("wl", "w1", at(0)), Sent: at(0), Province: "01", Unit: "00070"}}, []step{
				{500, water("w1", 10, 3), 10, ""},
				{500, nil, 0, "cancel wl w1 since+0 at+500"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := t0
			ev := NewEvaluator(func() time.Time { return now })
			if dups, _ := ev.Restore(tt.restore); len(dups) != 0 {
				t.Fatalf("restore: got %q; want no Cancel", describe(dups))
			}
			ev.SetRules(tt.rules, t0)
			for i, s := range tt.steps {
				now = at(s.now)
				var got []Transition
				if s.st != nil {
					got = ev.Observe(s.st, at(s.received))
				} else {
					got = ev.Sweep()
				}
				if d := describe(got); d != s.want {
					t.Errorf("step %d: got %q; want %q", i, d, s.want)
				}
				for _, tr := range got {
					silent := s.st == nil && tr.Action == Cancel
					if silent != !tr.NoDataSince.IsZero() {
						t.Errorf("step %d: NoDataSince %v on %s; want it set on the Cancels of sweeps only", i, tr.NoDataSince, tr.Action)
					}
				}
			}
		})
	}
}

func TestAlertOfSilence(t *testing.T) {
	now := at(0)
	ev := NewEvaluator(func() time.Time { return now })
	r := alertrule.Rule{ID: "wl", Province: "01", Kind: alertrule.KindWaterLevel, Params: alertrule.Params{MinAlarm: 2}, Severity: "Extreme", Enabled: true}
	ev.SetRules([]alertrule.Rule{r}, now)
	st := water("w1", 0, 2)
	st.GetWater().Name = "Sông Hồng - Long Biên"
	raise := ev.Observe(st, at(1))
	if len(raise) != 1 {
		t.Fatalf("got %q; want a raise", describe(raise))
	}
	now = at(150)
	got := ev.Sweep()
	if len(got) != 1 {
		t.Fatalf("sweep: got %q; want a cancel", describe(got))
	}
	if !got[0].NoDataSince.Equal(at(0)) || !got[0].LastReceived.Equal(at(1)) || got[0].Identifier != raise[0].Identifier {
		t.Errorf("cancel: no data since %v, received %v, identifier %s; want %v, %v, %s",
			got[0].NoDataSince, got[0].LastReceived, got[0].Identifier, at(0), at(1), raise[0].Identifier)
	}
	a, err := Alert(got[0], now)
	if err != nil {
		t.Fatal(err)
	}
	wantNote := "no data since 2026-11-21T08:00:00+00:00 (last state received 2026-11-21T08:01:00+00:00); rule wl cancels its alert after 2h0m0s without data"
	if a.GetMsgType() != "Cancel" || a.GetNote() != wantNote || !a.GetSent().AsTime().Equal(at(150)) ||
		a.GetReferences()[0] != Reference(raise[0].Identifier, at(0)) {
		t.Errorf("got %s %q sent %v refs %v; want a Cancel sent at the wall clock with note %q", a.GetMsgType(), a.GetNote(),
			a.GetSent().AsTime(), a.GetReferences(), wantNote)
	}
	en := a.GetInfo()[1]
	wantDesc := "No data from Sông Hồng - Long Biên (w1) since 2026-11-21T08:00:00+00:00; the alert of rule wl is cancelled."
	if en.GetHeadline() != "No data from Sông Hồng - Long Biên (w1)" || en.GetDescription() != wantDesc ||
		en.GetResponseType()[0] != "Monitor" || en.GetInstruction() == "" {
		t.Errorf("en info: headline %q, description %q, responseType %v; want the no-data wording, %q, Monitor",
			en.GetHeadline(), en.GetDescription(), en.GetResponseType(), wantDesc)
	}
	if vi := a.GetInfo()[0]; vi.GetHeadline() != "Mất dữ liệu từ Sông Hồng - Long Biên (w1)" {
		t.Errorf("vi headline %q", vi.GetHeadline())
	}
}

// TestEvaluatorRuleChangesKind: a rule that watches another kind (or
// province) after a change cancels the alerts it raised on the old one at
// once, with the old rule's description, instead of leaving them active
// until their entities go stale.
func TestEvaluatorRuleChangesKind(t *testing.T) {
	ev := NewEvaluator(fixed(at(100)))
	r := alertrule.Rule{ID: "k1", Province: "01", Kind: alertrule.KindAQIBand, Params: alertrule.Params{MinBand: 4},
		Severity: "Moderate", Enabled: true, Version: 1}
	ev.SetRules([]alertrule.Rule{r}, at(0))
	if got := describe(obs(ev, air("a1", 1, 5))); got != "raise k1 a1 since+1 at+1" {
		t.Fatalf("got %q", got)
	}
	wl := r
	wl.Kind, wl.Params, wl.Version = alertrule.KindWaterLevel, alertrule.Params{MinAlarm: 2}, 2
	ts := ev.SetRules([]alertrule.Rule{wl}, at(50))
	if got := describe(ts); got != "cancel k1 a1 since+1 at+50" {
		t.Fatalf("after the change of kind: got %q; want the air alert cancelled at once", got)
	}
	if ts[0].Rule.Kind != alertrule.KindAQIBand {
		t.Errorf("the cancel describes a %s rule; want the rule that raised it (aqi_band)", ts[0].Rule.Kind)
	}
	if len(ev.Raised()) != 0 {
		t.Errorf("raised after the change: %v; want none", ev.Raised())
	}
	moved := wl
	moved.Province, moved.Version = "79", 3
	if got := describe(obs(ev, water("w1", 60, 3))); got != "raise k1 w1 since+60 at+60" {
		t.Fatalf("water rule: got %q", got)
	}
	if got := describe(ev.SetRules([]alertrule.Rule{moved}, at(70))); got != "cancel k1 w1 since+60 at+70" {
		t.Errorf("after the move to 79: got %q; want the 01 alert cancelled at once", got)
	}
}

// TestEvaluatorOtherProvinceSameEntity: a source of another province may send
// states under the id of a station of this one (entity ids are the
// sources'); they must neither hide this province's states from its rules
// nor cancel its alerts.
func TestEvaluatorOtherProvinceSameEntity(t *testing.T) {
	wl := alertrule.Rule{ID: "wl", Province: "01", Kind: alertrule.KindWaterLevel, Params: alertrule.Params{MinAlarm: 2},
		Severity: "Severe", Enabled: true, Version: 1}
	foreign := func(min int, alarm int32) *iocv1.EntityState {
		st := water("w1", min, alarm)
		st.Province, st.Unit = "79", "26734"
		return st
	}
	ev := NewEvaluator(fixed(at(100)))
	ev.SetRules([]alertrule.Rule{wl}, at(0))
	if got := describe(obs(ev, water("w1", 1, 3))); got != "raise wl w1 since+1 at+1" {
		t.Fatalf("raise: got %q", got)
	}
	// Province 79's w1, observed later, with no alarm.
	if got := obs(ev, foreign(50, 0)); len(got) != 0 {
		t.Errorf("a state of province 79: got %q; want nothing", describe(got))
	}
	// A change of the rule is judged on province 01's w1, whose alarm holds.
	wl2 := wl
	wl2.Severity, wl2.Version = "Extreme", 2
	if got := ev.SetRules([]alertrule.Rule{wl2}, at(60)); len(got) != 0 {
		t.Errorf("rule changed: got %q; want nothing (w1 of 01 still at alarm 3)", describe(got))
	}
	// Province 01's w1 recovers at 10, before 79's state at 50: not a late state of its own.
	if got := describe(obs(ev, water("w1", 10, 0))); got != "cancel wl w1 since+1 at+10" {
		t.Errorf("recovery in 01: got %q; want the alert cancelled", got)
	}
}

// TestUnraiseThenClear: a raise JetStream did not acknowledge may be stored
// all the same (the ack lost or late); when the condition clears, or the
// entity goes silent, before another state raises it again, it is cancelled
// rather than left active.
func TestUnraiseThenClear(t *testing.T) {
	now := at(0)
	ev := NewEvaluator(func() time.Time { return now })
	ev.SetRules([]alertrule.Rule{congestion("r1", 15, 0)}, at(0))
	first := obs(ev, traffic("s1", 1, speed(10)))
	ev.Unraise(first[0])
	got := obs(ev, traffic("s1", 2, speed(50)))
	if describe(got) != "cancel r1 s1 since+1 at+2" || got[0].Identifier != first[0].Identifier {
		t.Errorf("cleared: got %q; want the alert whose raise had no ack cancelled", describe(got))
	}

	now = at(10)
	first = obs(ev, traffic("s2", 10, speed(10)))
	ev.Unraise(first[0])
	now = at(10 + 120)
	got = ev.Sweep()
	if describe(got) != "cancel r1 s2 since+10 at+130" || got[0].Identifier != first[0].Identifier {
		t.Errorf("silent: got %q; want the alert whose raise had no ack cancelled", describe(got))
	}
}

// TestEvaluatorRestoreTwice: when the alert table holds two active alerts of
// one rule and entity (raised again after a restart that did not find the
// first), the newer is kept and the older cancelled at once, not left active
// for ever.
func TestEvaluatorRestoreTwice(t *testing.T) {
	ev := NewEvaluator(fixed(at(100)))
	older, newer := Identifier("r1", "s1", at(0)), Identifier("r1", "s1", at(30))
	for _, order := range [][]string{{older, newer}, {newer, older}} {
		ev := NewEvaluator(fixed(at(100)))
		var raised []Raised
		for _, id := range order {
			_, _, since, _ := ParseIdentifier(id)
			raised = append(raised, Raised{Identifier: id, Sent: since, Province: "01", Unit: "00070"})
		}
		cancels, _ := ev.Restore(raised)
		if describe(cancels) != "cancel r1 s1 since+0 at+100" || cancels[0].Identifier != older {
			t.Errorf("restore %v: got %q; want the older alert cancelled", order, describe(cancels))
		}
		if got := ev.Raised(); len(got) != 1 || got[0].Identifier != newer {
			t.Errorf("restore %v: raised %v; want the newer only", order, got)
		}
	}
	// The same alert listed twice is one alert.
	if cancels, _ := ev.Restore([]Raised{{Identifier: newer, Sent: at(30), Province: "01", Unit: "00070"},
		{Identifier: newer, Sent: at(30), Province: "01", Unit: "00070"}}); len(cancels) != 0 {
		t.Errorf("one alert twice: got %q; want nothing", describe(cancels))
	}
}

// TestRuleChangeEvaluatesItsOwnStates: a new or changed rule is evaluated
// against the latest states of its own province and layer, found among the
// states of every province and layer, in entity order; another province's
// segment of the same id is left alone.
func TestRuleChangeEvaluatesItsOwnStates(t *testing.T) {
	ev := NewEvaluator(fixed(at(100)))
	ev.SetRules(nil, at(0))
	in := func(prov string, st *iocv1.EntityState) *iocv1.EntityState { st.Province = prov; return st }
	for _, st := range []*iocv1.EntityState{
		in("01", traffic("s2", 1, speed(10))), in("01", traffic("s1", 1, speed(10))), in("01", traffic("s3", 1, speed(30))),
		in("79", traffic("s1", 1, speed(10))), in("0", traffic("s9", 1, speed(10))), in("01", air("s1", 1, 5)),
		in("01", water("s1", 1, 3)),
	} {
		if got := obs(ev, st); len(got) != 0 {
			t.Fatalf("no rules yet: got %s", describe(got))
		}
	}
	r79 := congestion("r79", 15, 0)
	r79.Province = "79"
	got := describe(ev.SetRules([]alertrule.Rule{congestion("r01", 15, 0), r79}, at(50)))
	if want := "raise r01 s1 since+1 at+1; raise r01 s2 since+1 at+1; raise r79 s1 since+1 at+1"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	// Changing one rule touches only its own holdings.
	r01 := congestion("r01", 5, 0)
	r01.Version = 2
	got = describe(ev.SetRules([]alertrule.Rule{r01, r79}, at(60)))
	if want := "cancel r01 s1 since+1 at+1; cancel r01 s2 since+1 at+1"; got != want {
		t.Errorf("after lowering r01: got %q; want %q", got, want)
	}
}
