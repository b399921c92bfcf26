package aggregator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testkit"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

func TestCheckTransition(t *testing.T) {
	for _, tc := range []struct {
		from, to, assignee string
		want               string // "" = allowed, else part of the reason
	}{
		{"received", "assigned", "a", ""},
		{"received", "rejected", "", ""},
		{"assigned", "in_progress", "", ""},
		{"assigned", "assigned", "b", ""},
		{"in_progress", "resolved", "", ""},
		{"in_progress", "rejected", "", ""},
		{"received", "assigned", " ", "needs an assignee"},
		{"received", "resolved", "", "cannot go from received to resolved; from received it may go to assigned or rejected"},
		{"received", "in_progress", "", "cannot go from received to in_progress"},
		{"assigned", "resolved", "", "cannot go from assigned to resolved"},
		{"resolved", "assigned", "a", "the report is resolved, which is final"},
		{"rejected", "received", "", "the report is rejected, which is final"},
		{"received", "done", "", `status "done" is not one of`},
	} {
		t.Run(tc.from+"→"+tc.to, func(t *testing.T) {
			err := checkTransition(tc.from, tc.to, tc.assignee)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v; want allowed", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v; want …%s…", err, tc.want)
			}
		})
	}
}

// TestApplyActions runs actions through Apply on a real PostGIS: applied
// once per id, refused with a reason, audit rows in the same transaction.
func TestApplyActions(t *testing.T) {
	ctx := context.Background()
	pool := testDB(t)
	store := postgis.NewStore(pool)
	at := time.Date(2025, 7, 1, 8, 0, 0, 0, time.UTC)
	if _, err := store.WriteBatch(ctx, postgis.Batch{Reports: []postgis.ReportRow{{SourceID: "s", EventID: "r1", Province: "01", UnitCode: "00070",
		Category: "flooding", Lon: 105.85, Lat: 21.02, Text: "ngập", ContactEnc: []byte{1, 2, 3}, ReportedAt: at, ReceivedAt: at}}}); err != nil {
		t.Fatal(err)
	}
	acts, err := NewActions(ActionsConfig{}, testNATS(t).JS, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	acts.RegisterAction(ActionReportStatus, (&Service{}).applyReportStatus) // no store: no roll-ups
	calls := 0
	acts.RegisterAction("test.fail", func(ctx context.Context, tx pgx.Tx, a *iocv1.Action) ([]*iocv1.EntityState, error) {
		calls++
		return nil, errors.New("database on fire")
	})
	// A value the database refuses, after a write and a hook: the write is
	// rolled back, the hook never runs, and the action is refused for good.
	hooked := false
	acts.RegisterAction("test.nul", func(ctx context.Context, tx pgx.Tx, a *iocv1.Action) ([]*iocv1.EntityState, error) {
		if _, err := tx.Exec(ctx, `INSERT INTO audit_log (actor, action, target, detail) VALUES ('t', 'written before', 'x', '{}')`); err != nil {
			return nil, err
		}
		AfterCommit(ctx, func() { hooked = true })
		_, err := tx.Exec(ctx, `SELECT $1::text`, "a\x00b")
		return nil, err
	})
	action := func(id, typ, status, assignee string) *iocv1.Action {
		p, _ := json.Marshal(ReportStatusPayload{Status: status, Assignee: assignee})
		return &iocv1.Action{Id: id, Type: typ, Actor: "op", Province: "01", TargetKind: "report", Target: "s/r1",
			At: timestamppb.New(at), Payload: p, Note: "n"}
	}
	for _, tc := range []struct {
		name        string
		a           *iocv1.Action
		wantApplied bool
		wantStatus  string // of the published state; "" = none
		wantErr     bool
	}{
		{"assign", action("a1", ActionReportStatus, "assigned", "team 3"), true, "assigned", false},
		{"same id again", action("a1", ActionReportStatus, "assigned", "team 3"), false, "", false},
		{"invalid transition", action("a2", ActionReportStatus, "resolved", ""), false, "", false},
		{"unknown type", action("a3", "report.teleport", "", ""), false, "", false},
		{"unknown report", func() *iocv1.Action {
			a := action("a4", ActionReportStatus, "assigned", "x")
			a.Target = "s/none"
			return a
		}(), false, "", false},
		{"handler fails", action("a5", "test.fail", "", ""), false, "", true},
		{"a value the database refuses", action("a7", "test.nul", "", ""), false, "", false},
		{"a NUL in the assignee", action("a8", ActionReportStatus, "assigned", "a\x00b"), false, "", false},
		{"a NUL in the note", func() *iocv1.Action {
			a := action("a9", "report.teleport", "", "")
			a.Note = "x\x00"
			return a
		}(), false, "", false},
		{"start", action("a6", ActionReportStatus, "in_progress", ""), true, "in_progress", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			states, applied, err := acts.Apply(ctx, tc.a)
			if (err != nil) != tc.wantErr || applied != tc.wantApplied {
				t.Fatalf("got applied %v, err %v; want %v, error %v", applied, err, tc.wantApplied, tc.wantErr)
			}
			if tc.wantStatus == "" {
				if len(states) != 0 {
					t.Errorf("got %d states; want none", len(states))
				}
				return
			}
			if len(states) != 1 {
				t.Fatalf("got %d states; want 1", len(states))
			}
			r := states[0].GetReport()
			if r.GetStatus() != tc.wantStatus || r.GetAssignee() != "team 3" || len(r.GetContactSealed()) != 0 || states[0].GetEntityId() != "s/r1" {
				t.Errorf("state = %v; want status %s, assignee team 3, no contact", states[0], tc.wantStatus)
			}
			if want := at.Add(4 * time.Hour); !r.GetSlaDeadline().AsTime().Equal(want) {
				t.Errorf("deadline = %v; want %v", r.GetSlaDeadline().AsTime(), want)
			}
		})
	}
	// The failed handler rolled back: no record, so it is retried.
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM action_done WHERE id = 'a5'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("failed action recorded %d times (%v); want 0", n, err)
	}
	if hooked {
		t.Error("the refused action's AfterCommit hook ran")
	}
	var leftOut string
	if err := pool.QueryRow(ctx, `SELECT string_agg(detail->>'id' || ' ' || coalesce(detail->>'payload_left_out', '') || coalesce(detail->>'note_left_out', ''), '; ' ORDER BY id)
		FROM audit_log WHERE detail ? 'payload_left_out' OR detail ? 'note_left_out'`).Scan(&leftOut); err != nil ||
		leftOut != "a8 not JSON jsonb can hold (a NUL, or bytes not UTF-8); a9 holds a NUL or bytes not UTF-8" {
		t.Errorf("audit rows with a part left out: %q (%v); want a8's payload and a9's note", leftOut, err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'written before'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the refused action's write was kept %d times (%v); want 0", n, err)
	}
	rows, err := pool.Query(ctx, `SELECT detail->>'id', detail->>'result', coalesce(detail->>'reason', '') FROM audit_log ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var id, result, reason string
		if err := rows.Scan(&id, &result, &reason); err != nil {
			t.Fatal(err)
		}
		got = append(got, id+" "+result+" "+reason)
	}
	want := []string{
		"a1 applied ",
		"a2 refused a report cannot go from assigned to resolved; from assigned it may go to assigned or in_progress",
		`a3 refused action type "report.teleport" is not known`,
		"a4 refused report s/none does not exist",
		`a7 refused the database refused a value of the action: invalid byte sequence for encoding "UTF8": 0x00 (SQLSTATE 22021)`,
		`a8 refused the database refused a value of the action: invalid byte sequence for encoding "UTF8": 0x00 (SQLSTATE 22021)`,
		`a9 refused action type "report.teleport" is not known`,
		"a6 applied ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// An action whose id, actor or target PostgreSQL's text cannot hold is one
// the aggregator cannot even record as handled: handle terminates it,
// naming the field.
func TestUnstorableHead(t *testing.T) {
	ok := &iocv1.Action{Id: "a1", Type: ActionReportStatus, Actor: "op as Nguyễn Văn A", Province: "01", TargetKind: "report", Target: "s/r1"}
	if why := unstorableHead(ok); why != "" {
		t.Errorf("a storable action: %q", why)
	}
	for _, tc := range []struct {
		edit func(a *iocv1.Action)
		want string
	}{
		{func(a *iocv1.Action) { a.Actor = "op\x00" }, "action actor has a NUL character at byte 2"},
		{func(a *iocv1.Action) { a.Target = "s/\xff" }, "action target is not valid UTF-8"},
		{func(a *iocv1.Action) { a.Id = "\x00" }, "action id has a NUL character at byte 0"},
	} {
		a := proto.Clone(ok).(*iocv1.Action)
		tc.edit(a)
		if why := unstorableHead(a); why != tc.want {
			t.Errorf("unstorableHead = %q; want %q", why, tc.want)
		}
	}
}

// TestActionStatementTimeout: an action whose work runs past the actions'
// statement timeout is refused, saying so, instead of holding the consumer
// (which applies one action at a time) for as long as it runs; the next
// action is applied.
func TestActionStatementTimeout(t *testing.T) {
	ctx := context.Background()
	pool := testDB(t)
	acts, err := NewActions(ActionsConfig{StatementTimeout: 100 * time.Millisecond}, testNATS(t).JS, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	acts.RegisterAction("test.slow", func(ctx context.Context, tx pgx.Tx, a *iocv1.Action) ([]*iocv1.EntityState, error) {
		_, err := tx.Exec(ctx, `SELECT pg_sleep(30)`)
		return nil, err
	})
	acts.RegisterAction("test.quick", func(ctx context.Context, tx pgx.Tx, a *iocv1.Action) ([]*iocv1.EntityState, error) {
		_, err := tx.Exec(ctx, `SELECT 1`)
		return nil, err
	})
	act := func(id, typ string) *iocv1.Action {
		return &iocv1.Action{Id: id, Type: typ, Actor: "op", Province: "01", TargetKind: "x", Target: id, At: timestamppb.Now()}
	}
	if _, applied, err := acts.Apply(ctx, act("slow-1", "test.slow")); err != nil || applied {
		t.Fatalf("the slow action: applied %v, %v; want refused", applied, err)
	}
	var reason string
	if err := pool.QueryRow(ctx, `SELECT detail->>'reason' FROM audit_log WHERE detail->>'id' = 'slow-1' AND detail->>'result' = 'refused'`).Scan(&reason); err != nil ||
		!strings.Contains(reason, "ran past its 100ms limit") {
		t.Errorf("the slow action's audit: %q, %v; want refused, naming the 100ms limit", reason, err)
	}
	if _, applied, err := acts.Apply(ctx, act("quick-1", "test.quick")); err != nil || !applied {
		t.Errorf("the next action: applied %v, %v; want applied", applied, err)
	}
}

// TestPoisonActionRefusedAfterAttempts: an action whose handler fails the
// same way at every delivery (an error, not a refusal) is recorded as
// refused with its last error at its last attempt, and acked, instead of
// being redelivered for ever; the action behind it is applied.
func TestPoisonActionRefusedAfterAttempts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ne, pool := testNATS(t), testDB(t)
	acts, err := NewActions(ActionsConfig{Durable: "poison", AckWait: 5 * time.Second, RetryDelay: 20 * time.Millisecond, MaxAttempts: 3}, ne.JS, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	acts.RegisterAction("test.fail", func(ctx context.Context, tx pgx.Tx, a *iocv1.Action) ([]*iocv1.EntityState, error) {
		calls++
		return nil, errors.New("FEEDS refused it\x00 again")
	})
	acts.RegisterAction("test.ok", func(ctx context.Context, tx pgx.Tx, a *iocv1.Action) ([]*iocv1.EntityState, error) {
		return nil, nil
	})
	for _, a := range []*iocv1.Action{
		{Id: "p1", Type: "test.fail", Actor: "op", Province: "01", TargetKind: "x", Target: "p1", At: timestamppb.Now()},
		{Id: "ok1", Type: "test.ok", Actor: "op", Province: "01", TargetKind: "x", Target: "ok1", At: timestamppb.Now()},
	} {
		body, _ := proto.Marshal(a)
		if _, err := ne.JS.Publish(ctx, subjects.Action(a.Province, a.TargetKind, a.Target), body); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- acts.Run(ctx) }()
	stop := sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	result := func(id string) (string, string) {
		var result, reason string
		_ = pool.QueryRow(ctx, `SELECT result, coalesce(reason, '') FROM action_done WHERE id = $1`, id).Scan(&result, &reason)
		return result, reason
	}
	testkit.Eventually(t, 30*time.Second, "the poison action recorded as refused", func() (bool, string) {
		res, reason := result("p1")
		return res == "refused", res + " " + reason
	})
	if res, reason := result("p1"); reason != "not applied after 3 attempts; the last failed: applying action p1 (test.fail): FEEDS refused it  again" {
		t.Errorf("p1: %s %q; want its last error as the reason", res, reason)
	}
	testkit.Eventually(t, 30*time.Second, "the action behind it applied", func() (bool, string) {
		res, _ := result("ok1")
		return res == "applied", res
	})
	testkit.Eventually(t, 30*time.Second, "the poison action acked", func() (bool, string) {
		c, err := ne.JS.Consumer(ctx, subjects.StreamActions, "poison")
		if err != nil {
			return false, err.Error()
		}
		info, err := c.Info(ctx)
		if err != nil {
			return false, err.Error()
		}
		return info.NumAckPending == 0 && info.NumPending == 0, fmt.Sprintf("%d ack pending, %d pending", info.NumAckPending, info.NumPending)
	})
	stop() // calls is read once Run has returned
	if calls != 3 {
		t.Errorf("the failing handler ran %d times; want 3 (MaxAttempts)", calls)
	}
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE detail->>'id' = 'p1' AND detail->>'result' = 'refused'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("p1's audit rows: %d (%v); want 1", n, err)
	}
}

// TestDeletedActionsConsumerComesBack: the actions consumer's durable
// deleted under it ends its subscription; Run makes the consumer again, so
// an action published after the deletion is applied.
func TestDeletedActionsConsumerComesBack(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ne, pool := testNATS(t), testDB(t)
	acts, err := NewActions(ActionsConfig{Durable: "acts-deleted", AckWait: 30 * time.Second, RetryDelay: 50 * time.Millisecond}, ne.JS, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	acts.RegisterAction("test.ok", func(ctx context.Context, tx pgx.Tx, a *iocv1.Action) ([]*iocv1.EntityState, error) {
		return nil, nil
	})
	send := func(id string) {
		t.Helper()
		body, _ := proto.Marshal(&iocv1.Action{Id: id, Type: "test.ok", Actor: "op", Province: "01", TargetKind: "x", Target: id, At: timestamppb.Now()})
		if _, err := ne.JS.Publish(ctx, subjects.Action("01", "x", id), body); err != nil {
			t.Fatal(err)
		}
	}
	applied := func(id string) func() (bool, string) {
		return func() (bool, string) {
			var result string
			_ = pool.QueryRow(ctx, `SELECT result FROM action_done WHERE id = $1`, id).Scan(&result)
			return result == "applied", result
		}
	}
	done := make(chan error, 1)
	go func() { done <- acts.Run(ctx) }()
	t.Cleanup(sync.OnceFunc(func() { cancel(); <-done }))
	send("before")
	testkit.Eventually(t, 30*time.Second, "the action sent before the deletion applied", applied("before"))
	if err := ne.JS.DeleteConsumer(ctx, subjects.StreamActions, "acts-deleted"); err != nil {
		t.Fatal(err)
	}
	send("after")
	testkit.Eventually(t, 30*time.Second, "the action sent after the deletion applied", applied("after"))
}

// TestActionsStopNaksWhatItHolds: an actions consumer stopped while it
// handles one action and holds the next ones pulled gives them all back
// (naks): a second consumer of the same durable applies every action well
// within AckWait, which the held ones would otherwise wait.
func TestActionsStopNaksWhatItHolds(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	const n, ackWait = 10, 2 * time.Minute
	bg := context.Background()
	for i := range n {
		id := fmt.Sprintf("held-%d", i)
		body, _ := proto.Marshal(&iocv1.Action{Id: id, Type: "test.ok", Actor: "op", Province: "01", TargetKind: "x", Target: id, At: timestamppb.Now()})
		if _, err := ne.JS.Publish(bg, subjects.Action("01", "x", id), body); err != nil {
			t.Fatal(err)
		}
	}
	run := func(block bool) (stop func()) {
		t.Helper()
		acts, err := NewActions(ActionsConfig{Durable: "acts-held", AckWait: ackWait, RetryDelay: 50 * time.Millisecond}, ne.JS, pool, nil)
		if err != nil {
			t.Fatal(err)
		}
		held := make(chan struct{})
		var once sync.Once
		acts.RegisterAction("test.ok", func(ctx context.Context, tx pgx.Tx, a *iocv1.Action) ([]*iocv1.EntityState, error) {
			if !block {
				return nil, nil
			}
			once.Do(func() { close(held) })
			<-ctx.Done() // the first action is in hand when the consumer stops
			return nil, ctx.Err()
		})
		ctx, cancel := context.WithCancel(bg)
		done := make(chan error, 1)
		go func() { done <- acts.Run(ctx) }()
		stop = sync.OnceFunc(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
		t.Cleanup(stop)
		if block {
			select {
			case <-held:
			case <-time.After(30 * time.Second):
				t.Fatal("the first consumer got no action")
			}
		}
		return stop
	}
	run(true)()
	var applied int
	if err := pool.QueryRow(bg, `SELECT count(*) FROM action_done WHERE result = 'applied'`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != 0 {
		t.Fatalf("%d actions applied by the consumer that held them; want 0", applied)
	}
	run(false)
	testkit.Eventually(t, 20*time.Second, fmt.Sprintf("all %d actions applied by the second consumer (AckWait is %v)", n, ackWait), func() (bool, string) {
		if err := pool.QueryRow(bg, `SELECT count(*) FROM action_done WHERE result = 'applied'`).Scan(&applied); err != nil {
			return false, err.Error()
		}
		return applied == n, fmt.Sprintf("%d applied", applied)
	})
}
