package aggregator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/deadletter"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

func TestClassifyStoreErrors(t *testing.T) {
	pg := func(code string) error {
		return fmt.Errorf("writing batch: %w", &pgconn.PgError{Code: code, Message: "x"})
	}
	tests := []struct {
		name              string
		err               error
		rejected, timeout bool
	}{
		{"unique violation", pg("23505"), true, false},
		{"raise exception", pg("P0001"), true, false},
		{"program limit (index row too large)", pg("54000"), true, false},
		{"statement timeout", pg("57014"), false, true},
		{"admin shutdown", pg("57P01"), false, false},
		{"serialisation failure", pg("40001"), false, false},
		{"connection failure", pg("08006"), false, false},
		{"too many connections", pg("53300"), false, false},
		{"read-only transaction (a standby, a full disk)", pg("25006"), false, false},
		{"idle in transaction session timeout", pg("25P03"), false, false},
		{"transaction timeout (PostgreSQL 17: the batch ran too long, as at statement_timeout)", pg("25P04"), false, true},
		{"a statement after a failed one (the failure is the data's)", pg("25P02"), true, false},
		{"snapshot too old", pg("72000"), false, false},
		{"privilege revoked", pg("42501"), false, false},
		{"a table a migration not applied yet makes", pg("42P01"), false, false},
		{"a column a migration not applied yet makes", pg("42703"), false, false},
		{"a function a migration not applied yet makes", pg("42883"), false, false},
		{"another error of class 42 (refused, as before)", pg("42804"), true, false},
		{"not a database error", errors.New("dial tcp: refused"), false, false},
		{"invalid JSON checked by the store", fmt.Errorf("writing batch: %w", postgis.ErrInvalidJSON), true, false},
		{"a value the store's COPY cannot encode", fmt.Errorf("writing batch: %w", postgis.ErrUnencodable), true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rejected(tt.err); got != tt.rejected {
				t.Errorf("rejected = %v; want %v", got, tt.rejected)
			}
			if got := postgis.ServerTimedOut(tt.err); got != tt.timeout {
				t.Errorf("ServerTimedOut = %v; want %v", got, tt.timeout)
			}
		})
	}
}

func TestMetricKind(t *testing.T) {
	for subject, want := range map[string]string{
		subjects.Feed("01", "00070", subjects.KindAir): subjects.KindAir,
		subjects.Feed("01", "00070", "sewage"):         "other",
		"not.a.feed":                                   "other",
	} {
		if got := metricKind(subject); got != want {
			t.Errorf("metricKind(%q) = %q; want %q", subject, got, want)
		}
	}
}

// failingStore fails every batch holding the air event bad with err; the
// rest it stores.
type failingStore struct {
	*postgis.Store
	bad string
	err error
}

func (s failingStore) WriteBatch(ctx context.Context, b postgis.Batch) (postgis.Result, error) {
	for _, r := range b.Air {
		if r.EventID == s.bad {
			return postgis.Result{}, fmt.Errorf("writing batch: %w", s.err)
		}
	}
	return s.Store.WriteBatch(ctx, b)
}

func startWith(t *testing.T, ne *testenv.NATSEnv, store Store, cfg Config) *Service {
	t.Helper()
	cfg.AckWait, cfg.RetryDelay = 2*time.Second, 50*time.Millisecond
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := New(cfg, Deps{JS: ne.JS, Store: store, Logger: log, Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return svc
}

// A batch cancelled at statement_timeout (57014) used to count as transient
// and was retried whole forever, blocking the stream. Now it is split, and
// the one message that still times out alone is dead-lettered at its second
// delivery.
func TestStatementTimeoutIsSplitThenDeadLettered(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	var msgs []*nats.Msg
	for i := range 4 {
		msgs = append(msgs, feedMsg(t, subjects.KindAir, airEvent(t, i, t0, float64(i)), ""))
	}
	slow := airEvent(t, 8, t0, 8)
	msgs = append(msgs, feedMsg(t, subjects.KindAir, slow, ""))
	publish(t, ne.JS, msgs...)
	store := failingStore{Store: postgis.NewStore(pool), bad: slow.GetId(),
		err: &pgconn.PgError{Code: "57014", Message: "canceling statement due to statement timeout"}}
	svc := startWith(t, ne, store, Config{Durable: "agg-timeout"})
	waitRows(t, pool, "air_observation", 4)
	l := waitDeadletters(t, ne.JS, 1)[0]
	if l.Stage != deadletter.StageStore || l.EventID != slow.GetId() || l.Delivered != 2 || !strings.Contains(l.Reason, "57014") {
		t.Errorf("dead letter = %+v; want the slow event at stage store, delivered twice, reason naming 57014", l)
	}
	waitIdle(t, ne.JS, "agg-timeout")
	if got := counterValue(t, svc.m.deadletters.WithLabelValues(subjects.KindAir, deadletter.StageStore)); got != 1 {
		t.Errorf("deadletters_total{kind=air,stage=store} = %v; want 1", got)
	}
}

// With a bounded MaxDeliver, JetStream would drop an item past its last
// delivery without a trace; the aggregator dead-letters it at that delivery.
func TestLastDeliveryIsDeadLettered(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	stuck := airEvent(t, 5, t0, 5)
	good := airEvent(t, 1, t0, 1)
	publish(t, ne.JS, feedMsg(t, subjects.KindAir, stuck, ""))
	store := failingStore{Store: postgis.NewStore(pool), bad: stuck.GetId(),
		err: &pgconn.PgError{Code: "08006", Message: "connection failure"}}
	startWith(t, ne, store, Config{Durable: "agg-maxdeliver", MaxDeliver: 3})
	l := waitDeadletters(t, ne.JS, 1)[0]
	if l.EventID != stuck.GetId() || l.Delivered != 3 || !strings.Contains(l.Reason, "after 3 deliveries") {
		t.Errorf("dead letter = %+v; want the stuck event, delivered 3 times, reason naming the deliveries", l)
	}
	waitIdle(t, ne.JS, "agg-maxdeliver")
	// The consumer goes on with the items behind it.
	publish(t, ne.JS, feedMsg(t, subjects.KindAir, good, ""))
	waitRows(t, pool, "air_observation", 1)
}

// forgeDeadletter puts the dead letter of msg (as if FEEDS sequence seq
// failed at stage store) on DEADLETTER and returns its sequence there.
func forgeDeadletter(t *testing.T, js jetstream.JetStream, msg *nats.Msg, feedsSeq uint64) uint64 {
	t.Helper()
	dl := deadletter.Build(msg.Header, msg.Data, deadletter.Info{Subject: msg.Subject, FeedsSeq: feedsSeq,
		Stage: deadletter.StageStore, Reason: "forged", Time: time.Now(), Delivered: 1})
	ack, err := js.PublishMsg(context.Background(), dl)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

func TestDeadletterActions(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	ctx := context.Background()
	acts, err := NewActions(ActionsConfig{}, ne.JS, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	redrive, discard := DeadletterActions(ne.JS, nil, nil)
	acts.RegisterAction(deadletter.ActionRedrive, redrive)
	acts.RegisterAction(deadletter.ActionDiscard, discard)
	ev := airEvent(t, 3, t0, 3)
	orig := feedMsg(t, subjects.KindAir, ev, "")
	toRedrive := forgeDeadletter(t, ne.JS, orig, 100)
	toDiscard := forgeDeadletter(t, ne.JS, orig, 101)
	action := func(id, typ, province string, seq uint64) *iocv1.Action {
		return &iocv1.Action{Id: id, Type: typ, Actor: "ops@example.vn", Province: province,
			TargetKind: deadletter.TargetKind, Target: strconv.FormatUint(seq, 10), At: timestamppb.New(t0)}
	}
	apply := func(a *iocv1.Action, wantApplied bool) {
		t.Helper()
		_, applied, err := acts.Apply(ctx, a)
		if err != nil || applied != wantApplied {
			t.Fatalf("Apply(%s %s): applied %v, err %v; want applied %v", a.GetType(), a.GetTarget(), applied, err, wantApplied)
		}
	}
	// A redrive whose transaction is rolled back after it published (as a
	// failed commit would) leaves the letter to redrive again; it used to
	// be deleted, and the retry recorded as refused ("does not exist").
	acts.RegisterAction("test.redrive-then-fail", func(ctx context.Context, tx pgx.Tx, a *iocv1.Action) ([]*iocv1.EntityState, error) {
		if _, err := redrive(ctx, tx, a); err != nil {
			return nil, err
		}
		return nil, errors.New("the commit fails")
	})
	if _, applied, err := acts.Apply(ctx, action("a0", "test.redrive-then-fail", province, toRedrive)); err == nil || applied {
		t.Fatalf("a redrive rolled back: applied %v, %v; want an error", applied, err)
	}
	if _, err := deadletter.Get(ctx, ne.JS, toRedrive); err != nil {
		t.Fatalf("the dead letter of a redrive rolled back: %v; want it still there", err)
	}
	apply(action("a1", deadletter.ActionRedrive, "99", toRedrive), false) // another province's
	apply(action("a2", deadletter.ActionRedrive, province, toRedrive), true)
	apply(action("a3", deadletter.ActionRedrive, province, toRedrive), false) // gone
	apply(action("a4", deadletter.ActionDiscard, province, toDiscard), true)

	feeds, err := ne.JS.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	m, err := feeds.GetLastMsgForSubject(ctx, orig.Subject)
	if err != nil {
		t.Fatalf("the redriven item is not on FEEDS: %v", err)
	}
	keys, err := natsx.FeedMsgIDKey(ctx, ne.JS)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Header.Get(nats.MsgIdHdr), keys.ID(deadletter.RedriveMsgID(orig.Header.Get(nats.MsgIdHdr), toRedrive)); got != want {
		t.Errorf("redrive Nats-Msg-Id = %q; want %q", got, want)
	}
	if m.Header.Get(deadletter.HeaderReason) != "" || m.Header.Get("ce-id") != ev.GetId() || string(m.Data) != string(orig.Data) {
		t.Errorf("redriven message headers %v; want the original's, without dead-letter headers, and its payload", m.Header)
	}
	if list, _, err := deadletter.List(ctx, ne.JS, deadletter.Query{}); err != nil || len(list) != 0 {
		t.Errorf("dead letters left = %v, %v; want none", list, err)
	}
	var audit []string
	rows, err := pool.Query(ctx, `SELECT action || ' ' || target || ' ' || (detail->>'result') FROM audit_log ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		audit = append(audit, s)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	r, d := strconv.FormatUint(toRedrive, 10), strconv.FormatUint(toDiscard, 10)
	want := []string{
		"deadletter.redrive deadletter:" + r + " refused",
		"deadletter.redrive deadletter:" + r + " applied",
		"deadletter.redrive deadletter:" + r + " refused",
		"deadletter.discard deadletter:" + d + " applied",
	}
	if strings.Join(audit, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit_log:\n%s\nwant:\n%s", strings.Join(audit, "\n"), strings.Join(want, "\n"))
	}
}

// TestDeadletterActionWithinActorScope: a dead-letter redrive or discard is
// applied only when its actor, as it is when the action is applied, may act
// on the letter (the gateway's rule at queue time: an operator of the
// letter's province, or of the unit its original subject names, reading its
// kind). Out of scope it is refused with its reason and the letter stays.
func TestDeadletterActionWithinActorScope(t *testing.T) {
	ne, pool := testNATS(t), testenv.PostGISWithUnits(t).Pool
	ctx := context.Background()
	acts, err := NewActions(ActionsConfig{}, ne.JS, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	redrive, discard := DeadletterActions(ne.JS, nil, nil)
	acts.RegisterAction(deadletter.ActionRedrive, redrive)
	acts.RegisterAction(deadletter.ActionDiscard, discard)
	letter := func(unit string, feedsSeq uint64) uint64 {
		m := feedMsg(t, subjects.KindAir, airEvent(t, int(feedsSeq), t0, 3), "")
		m.Subject = subjects.Feed(province, unit, subjects.KindAir)
		return forgeDeadletter(t, ne.JS, m, feedsSeq)
	}
	ward, beside, ward2 := letter("00070", 200), letter("00004", 201), letter("00070", 202) // wards of Hà Nội (01)
	opWard := storeIdentity(t, pool, auth.RoleOperator, []string{"00070"})
	op79 := storeIdentity(t, pool, auth.RoleOperator, []string{"79"})
	opWater := storeIdentity(t, pool, auth.RoleOperator, []string{"01"}, "water")
	viewer01 := storeIdentity(t, pool, auth.RoleViewer, []string{"01"})
	narrowed := storeIdentity(t, pool, auth.RoleOperator, []string{"01"})
	narrowIdentity(t, pool, narrowed, "00004")

	action := func(id, typ, actor string, seq uint64) *iocv1.Action {
		return &iocv1.Action{Id: id, Type: typ, Actor: actor, Province: province,
			TargetKind: deadletter.TargetKind, Target: strconv.FormatUint(seq, 10), At: timestamppb.New(t0)}
	}
	for _, tc := range []struct {
		name   string
		a      *iocv1.Action
		refuse bool
	}{
		{"a ward beside the letter's", action("d-beside", deadletter.ActionRedrive, opWard, beside), true},
		{"another province", action("d-79", deadletter.ActionDiscard, op79, ward), true},
		{"an operator reading another kind", action("d-water", deadletter.ActionDiscard, opWater, ward), true},
		{"a viewer", action("d-viewer", deadletter.ActionDiscard, viewer01, ward), true},
		{"narrowed since it was queued", action("d-narrowed", deadletter.ActionRedrive, narrowed+" as Lan", ward), true},
		{"the letter's ward", action("d-ward", deadletter.ActionDiscard, opWard+" as An", ward), false},
		{"the narrowed scope", action("d-narrowed-b", deadletter.ActionDiscard, narrowed, beside), false},
		{"a redrive in its ward", action("d-redrive", deadletter.ActionRedrive, opWard, ward2), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, applied, err := acts.Apply(ctx, tc.a)
			if err != nil || applied == tc.refuse {
				t.Fatalf("applied %v, %v; want applied %v", applied, err, !tc.refuse)
			}
			result, reason := actionOutcome(t, pool, tc.a.GetId())
			seq, _ := strconv.ParseUint(tc.a.GetTarget(), 10, 64)
			_, err = deadletter.Get(ctx, ne.JS, seq)
			if tc.refuse {
				if result != "refused" || !strings.Contains(reason, "dead letter "+tc.a.GetTarget()+" of province") || !strings.Contains(reason, "may not") || err != nil {
					t.Errorf("recorded %s %q, letter %v; want refused naming the letter, the letter kept", result, reason, err)
				}
				return
			}
			if result != "applied" || !errors.Is(err, deadletter.ErrNotFound) {
				t.Errorf("recorded %s %q, letter %v; want applied, the letter gone", result, reason, err)
			}
		})
	}
}

// The same through the real store: the database's own 57014. The trigger
// raises query_canceled itself rather than sleeping past a statement_timeout,
// since WriteBatch may set its own timeout (SET LOCAL) over any the test sets.
func TestDatabaseQueryCanceledIsDeadLettered(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `
CREATE FUNCTION slow_sensor() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.id = 'urn:ngsi-ld:Device:st-8' THEN
		RAISE EXCEPTION 'canceling statement due to statement timeout' USING ERRCODE = 'query_canceled';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER slow_sensor BEFORE INSERT OR UPDATE ON sensor FOR EACH ROW EXECUTE FUNCTION slow_sensor();`); err != nil {
		t.Fatal(err)
	}
	var msgs []*nats.Msg
	for i := range 3 {
		msgs = append(msgs, feedMsg(t, subjects.KindAir, airEvent(t, i, t0, float64(i)), ""))
	}
	slow := airEvent(t, 8, t0, 8)
	msgs = append(msgs, feedMsg(t, subjects.KindAir, slow, ""))
	publish(t, ne.JS, msgs...)
	startWith(t, ne, postgis.NewStore(pool), Config{Durable: "agg-db-timeout"})
	waitRows(t, pool, "air_observation", 3)
	l := waitDeadletters(t, ne.JS, 1)[0]
	if l.Stage != deadletter.StageStore || l.EventID != slow.GetId() || l.Delivered != 2 || !strings.Contains(l.Reason, "57014") {
		t.Errorf("dead letter = %+v; want the slow event at stage store, delivered twice, reason naming 57014", l)
	}
}

// An undecodable item near the server's max payload is still dead-lettered:
// its letter (the payload plus the Iochub-Dl-* headers) would be past the max
// payload, so the publish would fail on every delivery and the item would be
// neither stored nor dead-lettered.
func TestDeadLetterNearMaxPayload(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	big := feedMsg(t, subjects.KindAir, airEvent(t, 1, t0, 5), "")
	max := ne.JS.Conn().MaxPayload()
	size := len("NATS/1.0\r\n\r\n")
	for k, vs := range big.Header {
		for _, v := range vs {
			size += len(k) + len(v) + 4
		}
	}
	big.Data = make([]byte, int(max)-size-64) // garbage: fails to decode
	for i := range big.Data {
		big.Data[i] = 0xff
	}
	good := feedMsg(t, subjects.KindAir, airEvent(t, 2, t0, 5), "")
	publish(t, ne.JS, big, good)
	startWith(t, ne, postgis.NewStore(pool), Config{Durable: "agg-maxpayload"})
	l := waitDeadletters(t, ne.JS, 1)[0]
	if l.EventID != big.Header.Get("ce-id") || l.Stage != deadletter.StageDecode {
		t.Errorf("dead letter = %+v; want the big item at stage decode", l)
	}
	if len(l.Data) != len(big.Data) && l.Header.Get(deadletter.HeaderPayloadDropped) != strconv.Itoa(len(big.Data)) {
		t.Errorf("dead letter keeps %d of %d bytes and says dropped %q", len(l.Data), len(big.Data),
			l.Header.Get(deadletter.HeaderPayloadDropped))
	}
	waitIdle(t, ne.JS, "agg-maxpayload")
	waitRows(t, pool, "air_observation", 1)
}

// An item at its last delivery (MaxDeliver) whose dead letter cannot be
// published is not naked (JetStream would drop it): the publish is retried
// until DEADLETTER takes it.
func TestDeadLetterRetriedAtLastDelivery(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	ctx := context.Background()
	if err := ne.JS.DeleteStream(ctx, subjects.StreamDeadletter); err != nil {
		t.Fatal(err)
	}
	garbage := feedMsg(t, subjects.KindAir, airEvent(t, 1, t0, 5), "")
	garbage.Data = []byte{0xff, 0xff, 0xff}
	publish(t, ne.JS, garbage)
	svc := startWith(t, ne, postgis.NewStore(pool), Config{Durable: "agg-dl-last", MaxDeliver: 1})
	testkit.Eventually(t, time.Minute, "a failed dead-letter publish", func() (bool, string) {
		n := counterValue(t, svc.m.errors.WithLabelValues("deadletter"))
		return n >= 1, fmt.Sprintf("%v failures", n)
	})
	if err := natsx.EnsureStreams(ctx, ne.JS, natsx.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	l := waitDeadletters(t, ne.JS, 1)[0]
	if l.EventID != garbage.Header.Get("ce-id") || l.Stage != deadletter.StageDecode {
		t.Errorf("dead letter = %+v; want the garbage item at stage decode", l)
	}
}

// A dead letter whose payload was left out (too large to keep) is refused a
// redrive: it would put an empty item back on FEEDS.
func TestRedriveRefusesDroppedPayload(t *testing.T) {
	ne := testNATS(t)
	msg := feedMsg(t, subjects.KindAir, airEvent(t, 1, t0, 5), "")
	msg.Data = make([]byte, ne.JS.Conn().MaxPayload()-100)
	dl := deadletter.Build(msg.Header, msg.Data, deadletter.Info{Subject: msg.Subject, FeedsSeq: 9,
		Stage: deadletter.StageDecode, Reason: "too big", Time: time.Now(), MaxPayload: ne.JS.Conn().MaxPayload()})
	if dl.Header.Get(deadletter.HeaderPayloadDropped) == "" {
		t.Fatal("payload kept; the test wants one left out")
	}
	ack, err := ne.JS.PublishMsg(context.Background(), dl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := deadletter.Redrive(context.Background(), ne.JS, ack.Sequence); !errors.Is(err, deadletter.ErrNotRedrivable) {
		t.Errorf("Redrive = %v; want ErrNotRedrivable", err)
	}
	if _, err := deadletter.Get(context.Background(), ne.JS, ack.Sequence); err != nil {
		t.Errorf("the refused letter is gone: %v", err)
	}
}

// readOnlyStore writes through ro, a store whose database refuses every
// write as read-only (a primary demoted to a standby, or put in read-only
// mode), counting its failures, until writable is set; then through Store.
type readOnlyStore struct {
	*postgis.Store
	ro       *postgis.Store
	writable atomic.Bool
	failures atomic.Int64
}

func (s *readOnlyStore) WriteBatch(ctx context.Context, b postgis.Batch) (postgis.Result, error) {
	if s.writable.Load() {
		return s.Store.WriteBatch(ctx, b)
	}
	res, err := s.ro.WriteBatch(ctx, b)
	if err != nil {
		s.failures.Add(1)
	}
	return res, err
}

// A database that is read-only for a while (SQLSTATE 25006) refuses the
// write of every item, not of one: it used to count as the data refused,
// so the batch was split and each of its items dead-lettered. It is
// retried instead, and stored once the database takes writes again.
func TestReadOnlyDatabaseIsRetried(t *testing.T) {
	ne, db := testNATS(t), testenv.PostGIS(t)
	sep := "?"
	if strings.Contains(db.URL, "?") {
		sep = "&"
	}
	roPool, err := schema.Open(context.Background(), db.URL+sep+"default_transaction_read_only=on")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(roPool.Close)
	store := &readOnlyStore{Store: postgis.NewStore(db.Pool), ro: postgis.NewStore(roPool)}
	var msgs []*nats.Msg
	for i := range 3 {
		msgs = append(msgs, feedMsg(t, subjects.KindAir, airEvent(t, i, t0, float64(i)), ""))
	}
	publish(t, ne.JS, msgs...)
	svc := startWith(t, ne, store, Config{Durable: "agg-readonly"})
	// A batch and its three items written alone make four failures: past
	// six, the batch was retried whole.
	testkit.Eventually(t, time.Minute, "the batch retried while the database is read-only", func() (bool, string) {
		n := store.failures.Load()
		letters, _, err := deadletter.List(context.Background(), ne.JS, deadletter.Query{})
		if err != nil {
			return false, err.Error()
		}
		return n >= 6 || len(letters) > 0, fmt.Sprintf("%d failed writes, %d dead letters", n, len(letters))
	})
	if letters, _, err := deadletter.List(context.Background(), ne.JS, deadletter.Query{}); err != nil || len(letters) != 0 {
		t.Fatalf("dead letters while the database is read-only = %d (%v); want none: it is not the items' fault", len(letters), err)
	}
	var pg *pgconn.PgError
	if _, err := store.ro.WriteBatch(context.Background(), postgis.Batch{Air: []postgis.AirRow{{}}}); !errors.As(err, &pg) || pg.Code != "25006" {
		t.Fatalf("the read-only store's error = %v; want SQLSTATE 25006", err)
	}
	store.writable.Store(true)
	waitRows(t, db.Pool, "air_observation", 3)
	waitIdle(t, ne.JS, "agg-readonly")
	if letters, _, err := deadletter.List(context.Background(), ne.JS, deadletter.Query{}); err != nil || len(letters) != 0 {
		t.Errorf("dead letters = %d (%v); want none: a read-only database is not the items' fault", len(letters), err)
	}
	if got := counterValue(t, svc.m.deadletters.WithLabelValues(subjects.KindAir, deadletter.StageStore)); got != 0 {
		t.Errorf("deadletters_total{kind=air,stage=store} = %v; want 0", got)
	}
}
