package aggregator

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

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
