package aggregator

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/testenv"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// TestApplyAlertAck acknowledges an alert twice with two actions (two
// operators at once): the first is applied with its audit row and publishes
// the acknowledged state; the second changes nothing, writes no audit row
// and publishes the first acknowledgement again.
func TestApplyAlertAck(t *testing.T) {
	ctx := context.Background()
	pool := testDB(t)
	store := postgis.NewStore(pool)
	at := time.Date(2025, 7, 1, 8, 0, 0, 0, time.UTC)
	body, _ := proto.Marshal(&iocv1.Alert{Id: "k1", Identifier: "k1", Sender: "kttv", Sent: timestamppb.New(at)})
	batch := postgis.Batch{Alerts: []postgis.AlertRow{{SourceID: "s", EventID: "k1", Identifier: "k1",
		Sender: "kttv", Sent: at, Status: "Actual", MsgType: "Alert", Scope: "Public", Info: []byte(`[]`), Province: "01",
		UnitCode: "00070", ReceivedAt: at, Body: body}}}
	if _, err := store.WriteBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	acts, err := NewActions(ActionsConfig{}, testNATS(t).JS, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	acts.RegisterAction(ActionAlertAck, applyAlertAck)
	ack := func(id, actor, target string, when time.Time) *iocv1.Action {
		return &iocv1.Action{Id: id, Type: ActionAlertAck, Actor: actor, Province: "01", TargetKind: "alert", Target: target, At: timestamppb.New(when)}
	}
	for _, tc := range []struct {
		name        string
		a           *iocv1.Action
		wantApplied bool
		wantBy      string // of the published state; "" = none
	}{
		{"first", ack("k-a1", "op-1 as An", "s/k1", at.Add(time.Minute)), true, "op-1 as An"},
		{"same id again", ack("k-a1", "op-1 as An", "s/k1", at.Add(time.Minute)), false, ""},
		{"second operator", ack("k-a2", "op-2", "s/k1", at.Add(2*time.Minute)), false, "op-1 as An"},
		{"unknown alert", ack("k-a3", "op-2", "s/none", at), false, ""},
		{"not an alert", func() *iocv1.Action { a := ack("k-a4", "op-2", "s/k1", at); a.TargetKind = "report"; return a }(), false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			states, applied, err := acts.Apply(ctx, tc.a)
			if err != nil || applied != tc.wantApplied {
				t.Fatalf("got applied %v, err %v; want %v, no error", applied, err, tc.wantApplied)
			}
			if tc.wantBy == "" {
				if len(states) != 0 {
					t.Errorf("got %d states; want none", len(states))
				}
				return
			}
			if len(states) != 1 {
				t.Fatalf("got %d states; want 1", len(states))
			}
			st := states[0]
			if st.GetEntityId() != "s/k1" || st.GetAlertState() != "active" || st.GetAlert().GetIdentifier() != "k1" ||
				st.GetAlertAck().GetBy() != tc.wantBy || !st.GetAlertAck().GetAt().AsTime().Equal(at.Add(time.Minute)) {
				t.Errorf("state = %v; want alert s/k1 acknowledged by %s at %s", st, tc.wantBy, at.Add(time.Minute))
			}
		})
	}
	// The same alert again (a feed polled twice): the row is rewritten and
	// keeps its acknowledgement, which its published state carries.
	res, err := store.WriteBatch(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if ch := res.Alerts.Changed; len(ch) != 1 || ch[0].AckedBy != "op-1 as An" || !ch[0].AckedAt.Equal(at.Add(time.Minute)) {
		t.Errorf("rewritten alert = %+v; want it acknowledged by op-1 as An at %s", ch, at.Add(time.Minute))
	}
	rows, err := pool.Query(ctx, `SELECT detail->>'id' || ' ' || (detail->>'result') FROM audit_log WHERE action = 'alert.ack' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if want := []string{"k-a1 applied", "k-a3 refused", "k-a4 refused"}; !slices.Equal(got, want) {
		t.Errorf("audit rows = %q; want %q", got, want)
	}
}

// TestAlertAckWithinActorScope: an alert.ack is applied only when its
// actor, as it is when the action is applied, may act on the alert (the
// gateway's rule at queue time: an operator reading alerts, of the alert's
// province, its unit or a unit of that province its area touches). Out of
// scope it is refused with its reason and the alert is left unacknowledged.
func TestAlertAckWithinActorScope(t *testing.T) {
	ctx := context.Background()
	pool := testenv.PostGISWithUnits(t).Pool
	at := time.Date(2025, 7, 1, 8, 0, 0, 0, time.UTC)
	var batch postgis.Batch
	// In Hà Nội (01): a in ward 00070, b in ward 00004; c in ward 00070 with
	// an area that touches 00004 too.
	for _, al := range []struct{ id, unit string }{{"a", "00070"}, {"b", "00004"}, {"c", "00070"}} {
		body, _ := proto.Marshal(&iocv1.Alert{Id: al.id, Identifier: al.id, Sender: "kttv", Sent: timestamppb.New(at)})
		batch.Alerts = append(batch.Alerts, postgis.AlertRow{SourceID: "s", EventID: al.id, Identifier: al.id,
			Sender: "kttv", Sent: at, Status: "Actual", MsgType: "Alert", Scope: "Public", Info: []byte(`[]`), Province: "01",
			UnitCode: al.unit, ReceivedAt: at, Body: body})
	}
	if _, err := postgis.NewStore(pool).WriteBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO alert_unit (alert_id, unit_code) VALUES ('s/c', '00070'), ('s/c', '00004')
		ON CONFLICT DO NOTHING`); err != nil {
		t.Fatal(err)
	}
	acts, err := NewActions(ActionsConfig{}, testNATS(t).JS, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	acts.RegisterAction(ActionAlertAck, applyAlertAck)
	opWard := storeIdentity(t, pool, auth.RoleOperator, []string{"00070"})
	opBeside := storeIdentity(t, pool, auth.RoleOperator, []string{"00004"})
	op79 := storeIdentity(t, pool, auth.RoleOperator, []string{"79"})
	opWater := storeIdentity(t, pool, auth.RoleOperator, []string{"01"}, "water")
	viewer01 := storeIdentity(t, pool, auth.RoleViewer, []string{"01"})
	narrowed := storeIdentity(t, pool, auth.RoleOperator, []string{"01"})
	narrowIdentity(t, pool, narrowed, "00004")

	ack := func(id, actor, alert string) *iocv1.Action {
		return &iocv1.Action{Id: id, Type: ActionAlertAck, Actor: actor, Province: "01", TargetKind: "alert", Target: "s/" + alert,
			At: timestamppb.New(at.Add(time.Minute))}
	}
	for _, tc := range []struct {
		name   string
		a      *iocv1.Action
		wantBy string // the acknowledgement the alert then has; "" = none
		refuse bool
	}{
		{"a ward beside the alert's", ack("k-beside", opWard, "b"), "", true},
		{"another province", ack("k-79", op79, "a"), "", true},
		{"an operator reading no alerts", ack("k-water", opWater, "a"), "", true},
		{"a viewer", ack("k-viewer", viewer01, "a"), "", true},
		{"narrowed since it was queued", ack("k-narrowed", narrowed+" as Lan", "a"), "", true},
		{"the alert's ward", ack("k-ward", opWard+" as An", "a"), opWard + " as An", false},
		{"the narrowed scope", ack("k-narrowed-b", narrowed, "b"), narrowed, false},
		{"a ward its area touches", ack("k-touches", opBeside, "c"), opBeside, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, applied, err := acts.Apply(ctx, tc.a)
			if err != nil || applied == tc.refuse {
				t.Fatalf("applied %v, %v; want applied %v", applied, err, !tc.refuse)
			}
			result, reason := actionOutcome(t, pool, tc.a.GetId())
			if tc.refuse && (result != "refused" || !strings.Contains(reason, "may not acknowledge alert "+tc.a.GetTarget())) {
				t.Errorf("recorded %s %q; want refused, naming the alert", result, reason)
			}
			if !tc.refuse && result != "applied" {
				t.Errorf("recorded %s %q; want applied", result, reason)
			}
			var by string
			if err := pool.QueryRow(ctx, `SELECT coalesce(acked_by, '') FROM alert WHERE id = $1`, tc.a.GetTarget()).Scan(&by); err != nil || by != tc.wantBy {
				t.Errorf("alert %s acknowledged by %q (%v); want %q", tc.a.GetTarget(), by, err, tc.wantBy)
			}
		})
	}
}
