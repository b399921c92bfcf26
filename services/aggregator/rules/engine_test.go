package rules_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/wkb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/alertrule"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
	"github.com/iochub/iochub/services/aggregator/rules"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var t0 = time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

// publishState puts an entity state on STATE, as the aggregator does.
func publishState(t *testing.T, js jetstream.JetStream, st *iocv1.EntityState) {
	t.Helper()
	b, err := proto.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(context.Background(), &nats.Msg{Subject: subjects.State(st.Province, st.Layer, st.EntityId), Data: b}); err != nil {
		t.Fatal(err)
	}
}

func trafficState(seg string, min int, speed float64) *iocv1.EntityState {
	line, _ := wkb.Marshal(geom.NewLineStringFlat(geom.XY, []float64{105.85, 21.02, 105.853, 21.025}), wkb.NDR)
	return &iocv1.EntityState{Layer: "traffic", EntityId: seg, Province: "01", Unit: "00070",
		Latest: &iocv1.EntityState_Traffic{Traffic: &iocv1.TrafficObserved{EntityId: seg, ObservedAt: timestamppb.New(at(min)),
			AverageVehicleSpeed: &speed, Location: &iocv1.Geometry{Wkb: line}}}}
}

func waterState(station string, min int, alarm int32) *iocv1.EntityState {
	pt, _ := wkb.Marshal(geom.NewPointFlat(geom.XY, []float64{105.86, 21.03}), wkb.NDR)
	return &iocv1.EntityState{Layer: "water", EntityId: station, Province: "01", Unit: "00070", WaterAlarm: alarm,
		Latest: &iocv1.EntityState_Water{Water: &iocv1.WaterObserved{EntityId: station, ObservedAt: timestamppb.New(at(min)),
			Location: &iocv1.Geometry{Wkb: pt}}}}
}

func airState(station string, min int, band int32) *iocv1.EntityState {
	pt, _ := wkb.Marshal(geom.NewPointFlat(geom.XY, []float64{105.85, 21.03}), wkb.NDR)
	return &iocv1.EntityState{Layer: "air", EntityId: station, Province: "01", Unit: "00070", Aqi: &iocv1.AirQualityIndex{Band: band},
		Latest: &iocv1.EntityState_Air{Air: &iocv1.AirQualityObserved{EntityId: station, ObservedAt: timestamppb.New(at(min)),
			Location: &iocv1.Geometry{Wkb: pt}}}}
}

// alerts reads the alerts the engine publishes on FEEDS.
type alerts struct {
	t  *testing.T
	it jetstream.MessagesContext
}

func watchAlerts(t *testing.T, js jetstream.JetStream) *alerts {
	t.Helper()
	cons, err := js.OrderedConsumer(context.Background(), subjects.StreamFeeds, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"ioc.feed.*.*.alert"}})
	if err != nil {
		t.Fatal(err)
	}
	it, err := cons.Messages()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(it.Stop)
	return &alerts{t: t, it: it}
}

// next returns the next alert and its message, failing after 15 s.
func (a *alerts) next() (*iocv1.Alert, jetstream.Msg) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	m, err := a.it.Next(jetstream.NextContext(ctx))
	if err != nil {
		a.t.Fatalf("waiting for an alert on FEEDS: %v", err)
	}
	var al iocv1.Alert
	if err := proto.Unmarshal(m.Data(), &al); err != nil {
		a.t.Fatal(err)
	}
	return &al, m
}

// none checks that no alert comes within d.
func (a *alerts) none(d time.Duration) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if m, err := a.it.Next(jetstream.NextContext(ctx)); err == nil {
		a.t.Fatalf("got an alert on %s: %s; want none", m.Subject(), m.Headers().Get("ce-id"))
	}
}

func putRule(t *testing.T, db *testenv.DBEnv, id, body string) {
	t.Helper()
	r, err := alertrule.Parse(id, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := pgx.BeginFunc(context.Background(), db.Pool, func(tx pgx.Tx) error {
		_, _, err := postgis.PutRule(context.Background(), tx, r, "test")
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// engine is a running engine with what the tests need to feed it.
type engine struct {
	*rules.Engine
	t   *testing.T
	js  jetstream.JetStream
	reg *prometheus.Registry
}

// publish puts st on STATE and waits until the engine has evaluated it. STATE
// keeps one message per subject: a state published before the engine read the
// previous one of its entity would replace it unseen (under load that made
// these tests miss an alert).
func (e *engine) publish(st *iocv1.EntityState) {
	e.t.Helper()
	before := e.evaluated()
	publishState(e.t, e.js, st)
	testkit.Eventually(e.t, 15*time.Second, "the engine evaluating the state of "+st.GetEntityId(), func() (bool, string) {
		n := e.evaluated()
		return n > before, fmt.Sprintf("%v states evaluated, %v before", n, before)
	})
}

// evaluated is the engine's iochub_rules_states_total.
func (e *engine) evaluated() float64 {
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatalf("gathering the engine's metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "iochub_rules_states_total" && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// startEngine runs an engine of province 01, polling its rules every 100
// ms, with cfg's CatchUpWait, whose wall clock is now, until stop or the
// test's end; it does not wait for it to be ready. done gets what Run
// returned.
func startEngine(t *testing.T, n *testenv.NATSEnv, db *testenv.DBEnv, cfg rules.Config, now func() time.Time) (
	eng *rules.Engine, reg *prometheus.Registry, done <-chan error, stop context.CancelFunc) {
	t.Helper()
	reg = prometheus.NewRegistry()
	cfg.Province, cfg.PollInterval = "01", 100*time.Millisecond
	eng, err := rules.New(cfg, rules.Deps{JS: n.JS, Store: postgis.NewStore(db.Pool), Now: now, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- eng.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-ran:
				if err != nil {
					t.Errorf("engine: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("engine did not stop in 10 s")
			}
		})
	}
	t.Cleanup(stop)
	return eng, reg, ran, stop
}

// runEngine runs an engine whose wall clock is now, and waits until it is
// ready. Silence is measured on it against the times states reached STATE
// (the real clock).
func runEngine(t *testing.T, n *testenv.NATSEnv, db *testenv.DBEnv, now func() time.Time) (*engine, context.CancelFunc) {
	t.Helper()
	eng, reg, done, stop := startEngine(t, n, db, rules.Config{}, now)
	// Publishing before the engine's consumer exists would let STATE (one message
	// per subject) replace a state the test means the engine to see.
	select {
	case <-eng.Ready():
	case err := <-done:
		t.Fatalf("engine stopped before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("engine not ready in 30 s")
	}
	return &engine{Engine: eng, t: t, js: n.JS, reg: reg}, stop
}

// TestEngineOnState drives the engine with entity states on STATE (water and
// air as the aggregator publishes them) and reads its alerts on FEEDS.
func TestEngineOnState(t *testing.T) {
	n := testenv.NATS(t)
	db := testenv.PostGIS(t)
	putRule(t, db, "flood", `{"province":"01","kind":"water_level","params":{"minAlarm":2},"severity":"Extreme"}`)
	putRule(t, db, "smog", `{"province":"01","kind":"aqi_band","params":{"minBand":4},"for":"1h","severity":"Severe"}`)
	watch := watchAlerts(t, n.JS)
	eng, _ := runEngine(t, n, db, time.Now)

	eng.publish(waterState("w1", 0, 1))
	eng.publish(waterState("w1", 10, 2))
	a, m := watch.next()
	wantID := rules.Identifier("flood", "w1", at(10))
	if a.GetIdentifier() != wantID || a.GetMsgType() != "Alert" || m.Headers().Get(rules.HeaderRule) != "flood" ||
		m.Subject() != "ioc.feed.01.00070.alert" || a.GetInfo()[0].GetCategory()[0] != "Met" || a.GetInfo()[0].GetSeverity() != "Extreme" {
		t.Fatalf("flood alert: %v on %s", a, m.Subject())
	}
	if g, err := wkb.Unmarshal(a.GetInfo()[0].GetArea()[0].GetGeometry().GetWkb()); err != nil || g.(*geom.Point).X() != 105.86 {
		t.Errorf("flood area: %v, %v; want the station's point", g, err)
	}
	eng.publish(waterState("w1", 20, 3))
	eng.publish(airState("a1", 0, 4))
	eng.publish(airState("a1", 30, 5))
	watch.none(500 * time.Millisecond)
	eng.publish(airState("a1", 60, 4))
	a, _ = watch.next()
	if a.GetIdentifier() != rules.Identifier("smog", "a1", at(0)) || a.GetInfo()[1].GetCategory()[0] != "Env" || !a.GetSent().AsTime().Equal(at(60)) {
		t.Fatalf("smog alert: %v", a)
	}
	eng.publish(waterState("w1", 30, 0))
	a, _ = watch.next()
	if a.GetMsgType() != "Cancel" || a.GetReferences()[0] != rules.Reference(wantID, at(10)) || !a.GetSent().AsTime().Equal(at(30)) {
		t.Fatalf("flood cancel: %v", a)
	}
	eng.publish(airState("a1", 70, 2))
	a, _ = watch.next()
	if a.GetMsgType() != "Cancel" || a.GetIdentifier() != rules.CancelID(rules.Identifier("smog", "a1", at(0))) {
		t.Fatalf("smog cancel: %v", a)
	}
}

// TestEngineRestartAndReload starts the engine with an alert it raised before
// (in the alert table) and changes a rule while it runs.
func TestEngineRestartAndReload(t *testing.T) {
	n := testenv.NATS(t)
	db := testenv.PostGIS(t)
	ctx := context.Background()
	putRule(t, db, "jam", `{"province":"01","kind":"congestion","params":{"maxSpeed":15},"for":"10m","severity":"Moderate"}`)
	// The engine raised this one before it stopped, and the aggregator stored it.
	raised := rules.Identifier("jam", "s1", at(0))
	_, err := postgis.NewStore(db.Pool).WriteBatch(ctx, postgis.Batch{Alerts: []postgis.AlertRow{{
		SourceID: "rules", EventID: raised, Identifier: raised, Sender: "rules", Sent: at(10), Status: "Actual",
		MsgType: "Alert", Scope: "Public", Province: "01", UnitCode: "00070", ReceivedAt: at(10)}}})
	if err != nil {
		t.Fatal(err)
	}
	// Its segment's last state still holds, and another segment is congested for long enough.
	publishState(t, n.JS, trafficState("s1", 12, 5))
	publishState(t, n.JS, trafficState("s2", 0, 5))
	watch := watchAlerts(t, n.JS)
	wall := time.Now().Truncate(time.Second)
	eng, _ := runEngine(t, n, db, func() time.Time { return wall })
	<-eng.Ready() // the last states are evaluated: s2 holds since 0
	eng.publish(trafficState("s2", 10, 5))
	a, _ := watch.next()
	if a.GetIdentifier() != rules.Identifier("jam", "s2", at(0)) {
		t.Fatalf("got %s; want s2's alert only (s1's was raised before the restart)", a.GetIdentifier())
	}
	eng.publish(trafficState("s1", 13, 40))
	a, _ = watch.next()
	if a.GetMsgType() != "Cancel" || a.GetReferences()[0] != rules.Reference(raised, at(10)) {
		t.Fatalf("got %v; want the Cancel of the alert raised before the restart", a)
	}

	// Lowering the threshold below s2's speed (5 < 4 no longer holds) cancels its alert.
	putRule(t, db, "jam", `{"province":"01","kind":"congestion","params":{"maxSpeed":4},"for":"10m","severity":"Moderate"}`)
	eng.Notify()
	a, _ = watch.next()
	if a.GetMsgType() != "Cancel" || a.GetIdentifier() != rules.CancelID(rules.Identifier("jam", "s2", at(0))) {
		t.Fatalf("after the change: got %v; want s2's alert cancelled", a)
	}
	// A new rule is found by the poll, without Notify, and evaluated on the last states at once.
	putRule(t, db, "crawl", `{"province":"01","kind":"congestion","params":{"maxSpeed":6,"segments":["s2"]},"for":"0s","severity":"Minor"}`)
	a, _ = watch.next()
	if a.GetIdentifier() != rules.Identifier("crawl", "s2", at(10)) {
		t.Fatalf("new rule: got %s; want crawl's alert on s2", a.GetIdentifier())
	}
	// Deleting it cancels its alert at the wall clock.
	if err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error { _, err := postgis.DeleteRule(ctx, tx, "crawl"); return err }); err != nil {
		t.Fatal(err)
	}
	a, _ = watch.next()
	if a.GetMsgType() != "Cancel" || !a.GetSent().AsTime().Equal(wall) {
		t.Fatalf("deleted rule: got %v; want a Cancel sent at the wall clock", a)
	}
	watch.none(300 * time.Millisecond)
}

// TestEngineSilentEntity raises an alert on a water station that then sends
// nothing: once the wall clock passes the rule's stale duration, the engine
// cancels the alert with a note saying since when there is no data; a rule
// with a longer stale duration keeps its alert.
func TestEngineSilentEntity(t *testing.T) {
	n := testenv.NATS(t)
	db := testenv.PostGIS(t)
	putRule(t, db, "flood", `{"province":"01","kind":"water_level","params":{"minAlarm":2},"stale":"10m","severity":"Extreme"}`)
	putRule(t, db, "flood-long", `{"province":"01","kind":"water_level","params":{"minAlarm":2},"stale":"1h","severity":"Severe"}`)
	watch := watchAlerts(t, n.JS)
	var clock atomic.Int64 // the engine's wall clock, unix nanoseconds
	clock.Store(time.Now().UnixNano())
	eng, _ := runEngine(t, n, db, func() time.Time { return time.Unix(0, clock.Load()).UTC() })
	<-eng.Ready()

	eng.publish(waterState("w1", 0, 2))
	raised := map[string]string{}
	for range 2 {
		a, m := watch.next()
		if a.GetMsgType() != "Alert" {
			t.Fatalf("got %s %s; want the two rules' alerts", a.GetMsgType(), a.GetIdentifier())
		}
		raised[m.Headers().Get(rules.HeaderRule)] = a.GetIdentifier()
	}
	if raised["flood"] != rules.Identifier("flood", "w1", at(0)) || raised["flood-long"] != rules.Identifier("flood-long", "w1", at(0)) {
		t.Fatalf("raised %v; want flood and flood-long on w1", raised)
	}
	// Nine minutes of silence: nothing yet.
	clock.Add(int64(9 * time.Minute))
	watch.none(500 * time.Millisecond)
	// Past ten minutes: flood's alert is cancelled, at the wall clock.
	clock.Add(int64(2 * time.Minute))
	a, m := watch.next()
	wantNote := "no data since " + at(0).Format("2006-01-02T15:04:05-07:00")
	if a.GetMsgType() != "Cancel" || m.Headers().Get(rules.HeaderRule) != "flood" ||
		a.GetIdentifier() != rules.CancelID(raised["flood"]) || !strings.HasPrefix(a.GetNote(), wantNote) ||
		!a.GetSent().AsTime().Equal(time.Unix(0, clock.Load())) || a.GetInfo()[1].GetResponseType()[0] != "Monitor" {
		t.Fatalf("got %s %s (rule %s) note %q sent %v; want flood's Cancel, note starting %q, sent at the wall clock",
			a.GetMsgType(), a.GetIdentifier(), m.Headers().Get(rules.HeaderRule), a.GetNote(), a.GetSent().AsTime(), wantNote)
	}
	// Once, and not flood-long's (stale after an hour).
	watch.none(500 * time.Millisecond)
	// The station reports again: flood raises a new alert. STATE stamps the
	// state with the real clock, so the engine's clock goes back to it.
	clock.Store(time.Now().UnixNano())
	eng.publish(waterState("w1", 30, 3))
	a, _ = watch.next()
	if a.GetMsgType() != "Alert" || a.GetIdentifier() != rules.Identifier("flood", "w1", at(30)) {
		t.Fatalf("got %s %s; want flood's new alert since the new state", a.GetMsgType(), a.GetIdentifier())
	}
}

// TestEngineWaitsForFeedsBeforeRestoring: an alert the engine raised just
// before a restart is on FEEDS, not yet stored. The engine waits for the
// aggregator's consumer to take it before it reads the raised alerts, so it
// finds it and does not raise the condition again under another identifier
// when the entity's states come back.
// The same with the aggregator partitioned: its consumer of province 01.
func TestEngineWaitsForFeedsBeforeRestoring(t *testing.T) {
	for _, c := range []struct {
		name     string
		consumer jetstream.ConsumerConfig
		cfg      rules.Config
	}{
		{"one aggregator", jetstream.ConsumerConfig{Durable: "aggregator", AckPolicy: jetstream.AckExplicitPolicy}, rules.Config{CatchUpWait: time.Minute}},
		{"partitioned", jetstream.ConsumerConfig{Durable: "aggregator-01", FilterSubject: subjects.FeedProvince("01"), AckPolicy: jetstream.AckExplicitPolicy},
			rules.Config{CatchUpWait: time.Minute, FeedsPartitionPrefix: "aggregator-"}},
	} {
		t.Run(c.name, func(t *testing.T) { engineWaitsForFeeds(t, c.consumer, c.cfg) })
	}
}

func engineWaitsForFeeds(t *testing.T, consumer jetstream.ConsumerConfig, cfg rules.Config) {
	n := testenv.NATS(t)
	db := testenv.PostGIS(t)
	ctx := context.Background()
	putRule(t, db, "jam", `{"province":"01","kind":"congestion","params":{"maxSpeed":15},"for":"10m","severity":"Moderate"}`)
	feeds, err := n.JS.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	agg, err := feeds.CreateOrUpdateConsumer(ctx, consumer)
	if err != nil {
		t.Fatal(err)
	}
	// The raise of before the restart: on FEEDS, the aggregator behind it.
	raised := rules.Identifier("jam", "s1", at(0))
	body, err := proto.Marshal(&iocv1.Alert{Id: raised, Identifier: raised, Sender: "rules", Status: "Actual", MsgType: "Alert"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.JS.Publish(ctx, subjects.Feed("01", "00070", "alert"), body); err != nil {
		t.Fatal(err)
	}
	publishState(t, n.JS, trafficState("s1", 12, 5)) // the condition still holds
	watch := watchAlerts(t, n.JS)
	if a, _ := watch.next(); a.GetIdentifier() != raised {
		t.Fatalf("first alert on FEEDS %s; want the raise of before the restart", a.GetIdentifier())
	}
	// The aggregator had taken it and stopped before its batch committed.
	msgs, err := agg.Fetch(10, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var taken []jetstream.Msg
	for m := range msgs.Messages() {
		taken = append(taken, m)
	}
	if len(taken) != 1 {
		t.Fatalf("the aggregator's consumer took %d messages; want the raise", len(taken))
	}
	eng, _, _, _ := startEngine(t, n, db, cfg, time.Now)
	select {
	case <-eng.Ready():
		t.Fatal("the engine started before the aggregator took what FEEDS held")
	case <-time.After(300 * time.Millisecond):
	}
	// The aggregator stores the alert, then acks it.
	if _, err := postgis.NewStore(db.Pool).WriteBatch(ctx, postgis.Batch{Alerts: []postgis.AlertRow{{
		SourceID: "rules", EventID: raised, Identifier: raised, Sender: "rules", Sent: at(10), Status: "Actual",
		MsgType: "Alert", Scope: "Public", Province: "01", UnitCode: "00070", ReceivedAt: at(10)}}}); err != nil {
		t.Fatal(err)
	}
	for _, m := range taken {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-eng.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("engine not ready 30 s after the aggregator caught up")
	}
	publishState(t, n.JS, trafficState("s1", 23, 5))
	watch.none(500 * time.Millisecond)
}

// TestEngineDoesNotWaitForAbandonedConsumers: FEEDS consumers that no
// aggregator of this configuration runs (an "aggregator" nobody ever pulled
// from, an "aggregator-01" left by partitions) hold no alert the engine
// must find first: it starts without waiting out its CatchUpWait.
func TestEngineDoesNotWaitForAbandonedConsumers(t *testing.T) {
	n := testenv.NATS(t)
	db := testenv.PostGIS(t)
	ctx := context.Background()
	feeds, err := n.JS.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"aggregator", "aggregator-01"} {
		if _, err := feeds.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.JS.Publish(ctx, subjects.Feed("01", "00070", "air"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	eng, _, _, _ := startEngine(t, n, db, rules.Config{CatchUpWait: 10 * time.Minute}, time.Now)
	select {
	case <-eng.Ready():
	case <-time.After(time.Minute):
		t.Fatal("the engine waited for consumers nobody runs")
	}
}
