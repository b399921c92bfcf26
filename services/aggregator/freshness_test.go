package aggregator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/alertrule"
	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testkit"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// testClock is an injectable hub clock, safe across goroutines.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

type sourceStatsRow struct {
	events, duplicates int64
	interval           *float64
	staleSince         *time.Time
	clearPending       bool
}

func readSourceStats(t *testing.T, pool *pgxpool.Pool, src, unit string) (sourceStatsRow, bool) {
	t.Helper()
	var r sourceStatsRow
	err := pool.QueryRow(context.Background(), `SELECT events, duplicates, interval_s, stale_since, clear_pending
FROM source_stats WHERE source_id = $1 AND unit_code = $2`, src, unit).Scan(&r.events, &r.duplicates, &r.interval, &r.staleSince, &r.clearPending)
	if err != nil {
		return r, false
	}
	return r, true
}

func waitSourceStats(t *testing.T, pool *pgxpool.Pool, what string, ok func(sourceStatsRow) bool) sourceStatsRow {
	t.Helper()
	var got sourceStatsRow
	testkit.Eventually(t, time.Minute, what, func() (bool, string) {
		r, found := readSourceStats(t, pool, sourceID, unit)
		got = r
		return found && ok(r), fmt.Sprintf("%+v (found %v)", r, found)
	})
	return got
}

// Staleness raised after 3× the configured interval of silence (on the
// hub's clock), once; cleared by a Cancel when data returns.
func TestStaleSourceRaisedAndCleared(t *testing.T) {
	ctx := context.Background()
	n := testNATS(t)
	pool := testDB(t)
	if _, err := pool.Exec(ctx, `INSERT INTO source (id, unit_code, token_sha256, interval_s) VALUES ($1, $2, '\x01', 60)`, sourceID, unit); err != nil {
		t.Fatal(err)
	}
	clock := &testClock{t: t0}
	store := postgis.NewStore(pool)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := New(Config{Durable: "fresh", AckWait: 2 * time.Second, RetryDelay: 100 * time.Millisecond, StaleSweepInterval: -1},
		Deps{JS: n.JS, Store: store, Logger: log, Metrics: prometheus.NewRegistry(), Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })

	first := airEvent(t, 1, t0, 20)
	publish(t, n.JS, feedMsg(t, subjects.KindAir, first, ""))
	waitSourceStats(t, pool, "first event counted", func(r sourceStatsRow) bool { return r.events == 1 })
	// The same event resent under another message id: stored once, counted a duplicate.
	publish(t, n.JS, feedMsg(t, subjects.KindAir, first, "resend-1"))
	r := waitSourceStats(t, pool, "duplicate counted", func(r sourceStatsRow) bool { return r.events == 2 })
	if r.duplicates != 1 || r.interval == nil || *r.interval != 60 {
		t.Fatalf("stats = %+v; want 1 duplicate and the configured interval 60s", r)
	}

	sweep := func() {
		t.Helper()
		if err := svc.sweepStale(ctx, store); err != nil {
			t.Fatal(err)
		}
	}
	staleAlerts := func() []string {
		var out []string
		for _, a := range feedAlerts(t, n.JS) {
			out = append(out, a.GetMsgType()+" "+a.GetIdentifier())
		}
		return out
	}
	clock.set(t0.Add(3*time.Minute - time.Second)) // silent for less than 3 × 60s
	sweep()
	if got := staleAlerts(); len(got) != 0 {
		t.Fatalf("alerts before 3× the interval: %v", got)
	}
	clock.set(t0.Add(3 * time.Minute))
	// The first sweep that marks the pair cannot read the roll-ups to
	// publish again: the next does.
	if err := svc.sweepStale(ctx, &failingLatest{Store: store}); err == nil {
		t.Fatal("a sweep whose read of the latest roll-ups failed reported no error")
	}
	sweep()
	sweep() // nothing new
	ident := "source-stale:" + sourceID + "/" + unit + ":" + strconv.FormatInt(t0.Add(3*time.Minute).Unix(), 10)
	if got := staleAlerts(); len(got) != 1 || got[0] != "Alert "+ident {
		t.Fatalf("alerts after 3× the interval = %v; want [Alert %s]", got, ident)
	}
	if r, _ := readSourceStats(t, pool, sourceID, unit); r.staleSince == nil {
		t.Fatalf("stats = %+v; want stale", r)
	}
	// No batch comes from the silent unit: the sweep publishes its latest
	// roll-ups again, counting the pair stale.
	lastAir1m := func() rollupJSON {
		t.Helper()
		rst, err := n.JS.Stream(ctx, subjects.StreamRollups)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := rst.GetLastMsgForSubject(ctx, subjects.Rollup(province, unit, subjects.KindAir, "1m"))
		if err != nil {
			t.Fatal(err)
		}
		var got rollupJSON
		if err := json.Unmarshal(raw.Data, &got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := lastAir1m(); !got.WindowStart.Equal(t0) || got.Stale != 1 || got.Observations != 1 {
		t.Fatalf("last 1m air roll-up after the sweep: window %v, stale %d, %d observations; want %v, 1 stale, 1",
			got.WindowStart, got.Stale, got.Observations, t0)
	}
	// The aggregator stores the hub's alert like any other.
	testkit.Eventually(t, time.Minute, "stale alert stored active", func() (bool, string) {
		var state string
		err := pool.QueryRow(ctx, `SELECT state FROM alert WHERE identifier = $1`, ident).Scan(&state)
		return err == nil && state == "active", fmt.Sprintf("state %q, err %v", state, err)
	})

	// The live view follows the alert's state by this entity id (gateway stale.go).
	testkit.Eventually(t, time.Minute, "stale alert on STATE", func() (bool, string) {
		st, _, err := lastState(t, n.JS, subjects.KindAlert, HubSource+"/"+ident)
		return err == nil && st.GetAlertState() == "active" && st.GetAlert().GetSender() == HubSource, fmt.Sprintf("%v, err %v", st, err)
	})

	// Data returns: the pair is fresh again and the next sweep cancels the alert, once.
	clock.set(t0.Add(5 * time.Minute))
	publish(t, n.JS, feedMsg(t, subjects.KindAir, airEvent(t, 1, t0.Add(5*time.Minute), 21), ""))
	waitSourceStats(t, pool, "data returned", func(r sourceStatsRow) bool { return r.events == 3 && r.staleSince == nil && r.clearPending })
	// The batch that brought it counts the pair fresh in its own roll-ups.
	testkit.Eventually(t, time.Minute, "the returning batch's 1m roll-up", func() (bool, string) {
		got := lastAir1m()
		if !got.WindowStart.Equal(t0.Add(5 * time.Minute)) {
			return false, "window " + got.WindowStart.String()
		}
		if got.Stale != 0 {
			t.Fatalf("the returning batch's roll-up counts %d stale pairs; want 0", got.Stale)
		}
		return true, ""
	})
	sweep()
	sweep()
	got := staleAlerts()
	if len(got) != 2 || got[1] != "Cancel "+ident+":cancel" {
		t.Fatalf("alerts = %v; want the alert and its Cancel", got)
	}
	testkit.Eventually(t, time.Minute, "stale alert cancelled", func() (bool, string) {
		var state string
		err := pool.QueryRow(ctx, `SELECT state FROM alert WHERE identifier = $1`, ident).Scan(&state)
		return err == nil && state == "cancelled", fmt.Sprintf("state %q, err %v", state, err)
	})
	if r, _ := readSourceStats(t, pool, sourceID, unit); r.clearPending || r.staleSince != nil {
		t.Fatalf("stats after the Cancel = %+v; want fresh, nothing to clear", r)
	}
	// Silent again: a new alert, not the old one.
	clock.set(t0.Add(8 * time.Minute))
	sweep()
	if got := staleAlerts(); len(got) != 3 || got[2] == got[0] {
		t.Fatalf("alerts after a second silence = %v; want a third, new alert", got)
	}
}

// Without a configured interval, the interval is the median of the recent
// gaps between arrivals, and the stale deadline 3× that after the last one.
func TestLearnedInterval(t *testing.T) {
	ctx := context.Background()
	pool := testDB(t)
	store := postgis.NewStore(pool)
	at := t0
	for _, gap := range []time.Duration{0, 10 * time.Second, 12 * time.Second, 10 * time.Second, 10 * time.Minute, 9 * time.Second} {
		at = at.Add(gap)
		if err := store.RecordSourceActivity(ctx, []postgis.SourceActivity{{SourceID: "learn", UnitCode: unit, Province: province,
			LastEvent: at, Events: 1}}, at); err != nil {
			t.Fatal(err)
		}
	}
	var iv float64
	var staleAt time.Time
	var events int64
	if err := pool.QueryRow(ctx, `SELECT interval_s, stale_at, events FROM source_stats WHERE source_id = 'learn'`).Scan(&iv, &staleAt, &events); err != nil {
		t.Fatal(err)
	}
	if iv != 10 || !staleAt.Equal(at.Add(30*time.Second)) || events != 6 {
		t.Errorf("interval %vs, stale at %v, events %d; want 10s (median of 10, 12, 10, 600, 9), %v, 6", iv, staleAt, events, at.Add(30*time.Second))
	}
	due, err := store.DueStaleSources(ctx, "", at.Add(29*time.Second), 10)
	if err != nil || len(due) != 0 {
		t.Fatalf("due before the deadline: %v, %v", due, err)
	}
	due, err = store.DueStaleSources(ctx, province, at.Add(30*time.Second), 10)
	if err != nil || len(due) != 1 || due[0].Interval != 10*time.Second {
		t.Fatalf("due at the deadline: %+v, %v", due, err)
	}
	if due, _ := store.DueStaleSources(ctx, "79", at.Add(time.Hour), 10); len(due) != 0 {
		t.Errorf("due in another province: %+v", due)
	}
}

// A rejection summary of the ingest adds to source_rejection once, however
// often it is delivered; a malformed one is refused.
func TestSourceRejectionsAction(t *testing.T) {
	ctx := context.Background()
	n := testNATS(t)
	pool := testDB(t)
	svc, err := New(Config{Durable: "rej"}, Deps{JS: n.JS, Store: postgis.NewStore(pool), Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	apply := func(id, payload string) bool {
		t.Helper()
		_, applied, err := svc.actions.Apply(ctx, &iocv1.Action{Id: id, Type: ActionSourceRejections, Actor: "ingest",
			Province: province, TargetKind: "source", Target: "rejections", At: timestamppb.New(t0), Payload: []byte(payload)})
		if err != nil {
			t.Fatal(err)
		}
		return applied
	}
	if !apply("r1", `{"sources":{"s1":{"invalid:pm25":2,"outside-unit":1}}}`) {
		t.Fatal("r1 not applied")
	}
	apply("r1", `{"sources":{"s1":{"invalid:pm25":2,"outside-unit":1}}}`) // redelivered
	apply("r2", `{"sources":{"s1":{"invalid:pm25":3},"s2":{"unreadable":1}}}`)
	if apply("r3", `{"sources":{"s1":{"invalid:pm25":-3}}}`) || apply("r4", `not json`) {
		t.Fatal("a malformed summary was applied")
	}
	got := map[string]int64{}
	rows, err := pool.Query(ctx, `SELECT source_id || ' ' || reason, count FROM source_rejection`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k string
		var c int64
		if err := rows.Scan(&k, &c); err != nil {
			t.Fatal(err)
		}
		got[k] = c
	}
	rows.Close()
	want := map[string]int64{"s1 invalid:pm25": 5, "s1 outside-unit": 1, "s2 unreadable": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("source_rejection = %v; want %v", got, want)
	}
}

// A batch's events are counted per source and unit; its duplicates by the
// rows the store says it inserted, none when its result does not add up;
// the hub's own alerts are no source.
func TestSourceActivity(t *testing.T) {
	dm := func(src, u string, at time.Time) decodedMsg {
		return decodedMsg{d: decoded{source: src, unit: u, province: province, event: ce.Event{Time: at}}}
	}
	p := &pending{items: map[*kindOps][]decodedMsg{
		airKind:     {dm("a", unit, t0), dm("a", unit, t0.Add(time.Minute)), dm("b", "00004", t0)},
		trafficKind: {dm("a", unit, t0), dm("a", unit, t0)},
		alertKind:   {dm(HubSource, unit, t0), dm(alertrule.SourceID, unit, t0)},
	}}
	got := sourceActivity(p, postgis.Result{
		Air:     postgis.KindResult{New: 2, Duplicates: 1},                     // which row was the duplicate is unknown: none counted
		Traffic: postgis.KindResult{New: 1, Duplicates: 1, Inserted: []int{1}}, // the first was the duplicate
	})
	want := []postgis.SourceActivity{
		{SourceID: "a", UnitCode: unit, Province: province, LastEvent: t0.Add(time.Minute), Events: 4, Duplicates: 1},
		{SourceID: "b", UnitCode: "00004", Province: province, LastEvent: t0, Events: 1},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("activity = %+v\nwant %+v", got, want)
	}
	got = sourceActivity(&pending{items: map[*kindOps][]decodedMsg{airKind: {dm("a", unit, t0), dm("b", unit, t0)}}},
		postgis.Result{Air: postgis.KindResult{Duplicates: 2}}) // all duplicates (none inserted): each pair's
	if len(got) != 2 || got[0].Duplicates != 1 || got[1].Duplicates != 1 {
		t.Errorf("all-duplicate batch: %+v", got)
	}
	// The rows inserted listed: each duplicate is its own pair's.
	got = sourceActivity(&pending{items: map[*kindOps][]decodedMsg{airKind: {dm("a", unit, t0), dm("b", unit, t0), dm("b", unit, t0), dm(HubSource, unit, t0)}}},
		postgis.Result{Air: postgis.KindResult{New: 1, Duplicates: 3, Inserted: []int{0}}})
	if len(got) != 2 || got[0].Duplicates != 0 || got[1].Duplicates != 2 {
		t.Errorf("mixed batch with its rows inserted: %+v; want b's 2 duplicates", got)
	}

	// The hub's own redelivery of a committed batch (its ack lost) finds its
	// rows there: they were counted by the batch that stored them, and are
	// neither events nor duplicates again. A redelivered row stored now (its
	// first batch rolled back) is an event; a first delivery found there is
	// the source's duplicate. c's only item is a redelivery: no activity.
	again := func(m decodedMsg) decodedMsg { m.msg = secondDelivery{}; return m }
	got = sourceActivity(&pending{items: map[*kindOps][]decodedMsg{airKind: {
		again(dm("a", unit, t0)), again(dm("a", unit, t0.Add(time.Minute))), dm("a", unit, t0), again(dm("c", unit, t0)), dm("b", unit, t0)}}},
		postgis.Result{Air: postgis.KindResult{New: 2, Duplicates: 3, Inserted: []int{1, 4}}})
	want = []postgis.SourceActivity{
		{SourceID: "a", UnitCode: unit, Province: province, LastEvent: t0.Add(time.Minute), Events: 2, Duplicates: 1},
		{SourceID: "b", UnitCode: unit, Province: province, LastEvent: t0, Events: 1},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("redelivered batch: activity = %+v\nwant %+v", got, want)
	}
	// Reports list the ones they inserted too.
	got = sourceActivity(&pending{items: map[*kindOps][]decodedMsg{reportKind: {again(dm("a", unit, t0)), dm("a", unit, t0), dm("a", unit, t0)}}},
		postgis.Result{Reports: postgis.ReportResult{New: 1, Duplicates: 2, Inserted: []int{1}}})
	if len(got) != 1 || got[0].Events != 2 || got[0].Duplicates != 1 {
		t.Errorf("reports with one redelivered, one new, one resent: %+v; want 2 events, 1 duplicate", got)
	}
	// A whole batch redelivered after its commit, all found there: nothing.
	got = sourceActivity(&pending{items: map[*kindOps][]decodedMsg{airKind: {again(dm("a", unit, t0)), again(dm("b", unit, t0))}}},
		postgis.Result{Air: postgis.KindResult{Duplicates: 2}})
	if len(got) != 0 {
		t.Errorf("a committed batch redelivered records %+v; want nothing", got)
	}
}

// secondDelivery is a message JetStream delivered before.
type secondDelivery struct{ jetstream.Msg }

func (secondDelivery) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: 2}, nil
}

// failingLatest is a store whose read of the latest roll-ups fails.
type failingLatest struct{ *postgis.Store }

func (failingLatest) LatestRollupsOf(context.Context, []string) ([]postgis.Rollup, error) {
	return nil, errors.New("the database is down")
}
