package aggregator

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/wkb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/deadletter"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

const (
	province = "01"
	unit     = "00070"
	sourceID = "src-test"
)

var t0 = time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)

func mustWKB(t testing.TB, g geom.T) *iocv1.Geometry {
	t.Helper()
	b, err := wkb.Marshal(g, binary.LittleEndian)
	if err != nil {
		t.Fatal(err)
	}
	return &iocv1.Geometry{Wkb: b}
}

func stationPoint(i int) (lon, lat float64) {
	return 105.80 + float64(i)*0.001, 21.02 + float64(i)*0.0005
}

func airEvent(t testing.TB, station int, at time.Time, pm25 float64) *iocv1.AirQualityObserved {
	lon, lat := stationPoint(station)
	entity := fmt.Sprintf("urn:ngsi-ld:Device:st-%d", station)
	return &iocv1.AirQualityObserved{
		Id:          entity + "@" + at.UTC().Format(time.RFC3339),
		EntityId:    entity,
		ObservedAt:  timestamppb.New(at),
		Location:    mustWKB(t, geom.NewPointFlat(geom.XY, []float64{lon, lat})),
		Origin:      &iocv1.Origin{SourceId: sourceID, Province: province, Unit: unit, ReceivedAt: timestamppb.New(at.Add(time.Second))},
		Name:        fmt.Sprintf("Trạm %d", station),
		Pm25:        proto.Float64(pm25),
		Pm10:        proto.Float64(pm25 * 1.5),
		Temperature: proto.Float64(27),
		Other:       map[string]float64{"benzene": 1.5},
	}
}

func trafficEvent(t testing.TB, segment int, at time.Time, speed float64) *iocv1.TrafficObserved {
	x := 105.81 + float64(segment)*0.01
	entity := fmt.Sprintf("segment-%d", segment)
	return &iocv1.TrafficObserved{
		Id:                  entity + "@" + at.UTC().Format(time.RFC3339),
		EntityId:            entity,
		ObservedAt:          timestamppb.New(at),
		Location:            mustWKB(t, geom.NewLineStringFlat(geom.XY, []float64{x, 21.0, x + 0.005, 21.004})),
		Origin:              &iocv1.Origin{SourceId: sourceID, Province: province, Unit: unit, ReceivedAt: timestamppb.New(at)},
		Intensity:           proto.Float64(300),
		AverageVehicleSpeed: proto.Float64(speed),
		Congested:           proto.Bool(speed < 15),
		LaneId:              proto.Int32(1),
		LaneDirection:       "forward",
	}
}

// feedMsg builds a feed message as ingest publishes it; msgID overrides the
// Nats-Msg-Id (to get past JetStream's dedup window like a late resend does).
func feedMsg(t testing.TB, kind string, m proto.Message, msgID string) *nats.Msg {
	t.Helper()
	var (
		eventID, entity string
		at              time.Time
		typ             = ce.ObservedType(kind)
	)
	switch v := m.(type) {
	case *iocv1.AirQualityObserved:
		eventID, entity, at = v.GetId(), v.GetEntityId(), v.GetObservedAt().AsTime()
	case *iocv1.TrafficObserved:
		eventID, entity, at = v.GetId(), v.GetEntityId(), v.GetObservedAt().AsTime()
	case *iocv1.Observation:
		eventID, entity, at = v.GetId(), v.GetEntityId(), v.GetObservedAt().AsTime()
	case *iocv1.Alert:
		eventID, entity, at, typ = v.GetIdentifier(), v.GetIdentifier(), v.GetSent().AsTime(), ce.AlertType
	}
	body, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	h := ce.Event{ID: eventID, Source: ce.SourceURN(province, unit), Type: typ, Subject: entity, Time: at}.Header()
	if msgID == "" {
		msgID = sourceID + "/" + eventID
	}
	h[nats.MsgIdHdr] = []string{msgID}
	h[HeaderSource] = []string{sourceID}
	return &nats.Msg{Subject: subjects.Feed(province, unit, kind), Header: h, Data: body}
}

func publish(t testing.TB, js jetstream.JetStream, msgs ...*nats.Msg) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, m := range msgs {
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatalf("publishing %s: %v", m.Subject, err)
		}
	}
}

type running struct {
	svc      *Service
	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
}

// start runs an aggregator until stop or the end of the test.
func start(t *testing.T, ne *testenv.NATSEnv, pool *pgxpool.Pool, cfg Config) *running {
	t.Helper()
	return startOn(t, ne, postgis.NewStore(pool), cfg)
}

// heldStore passes its first pass batches to Store, then holds the next in
// WriteBatch (closing held) until the aggregator's context ends, and fails
// it: the aggregator is stopped with a batch in the middle of its write and
// the rest of the stream not stored, whatever the machine's speed.
type heldStore struct {
	*postgis.Store // with its optional interfaces (AQI history, sweeps…)
	pass           int
	held           chan struct{}
	once           sync.Once
}

func holdAfter(pool *pgxpool.Pool, batches int) *heldStore {
	return &heldStore{Store: postgis.NewStore(pool), pass: batches, held: make(chan struct{})}
}

func (h *heldStore) WriteBatch(ctx context.Context, b postgis.Batch) (postgis.Result, error) {
	if h.pass > 0 { // one batch at a time: the aggregator's commits are in order
		h.pass--
		return h.Store.WriteBatch(ctx, b)
	}
	h.once.Do(func() { close(h.held) })
	<-ctx.Done()
	return postgis.Result{}, ctx.Err()
}

// killMidStream runs an aggregator on durable until it holds a batch after
// batches committed ones, then stops it, and checks that what it stored is
// some of the table's want rows and not all.
func killMidStream(t *testing.T, ne *testenv.NATSEnv, pool *pgxpool.Pool, durable string, batches int, table string, want int) {
	t.Helper()
	h := holdAfter(pool, batches)
	// No sweeps: the tests' events are dated in the past, so a stale sweep
	// at start raises and clears alerts (alert roll-ups) beside what the
	// tests check; the aggregator after the kill runs them as before.
	first := startOn(t, ne, h, Config{Durable: durable, BatchSize: 25, ExpiryInterval: -1, ReportSweepInterval: -1, StaleSweepInterval: -1})
	select {
	case <-h.held:
	case <-time.After(time.Minute):
		t.Fatalf("the aggregator did not reach batch %d within a minute", batches+1)
	}
	first.stop(t)
	if got := rows(t, pool, table); got == 0 || got >= want {
		t.Fatalf("%d of %d rows of %s stored at the kill; want some, not all (the kill must land mid-stream)", got, want, table)
	}
}

// startOn runs an aggregator with cfg on store until the test ends.
func startOn(t *testing.T, ne *testenv.NATSEnv, store Store, cfg Config) *running {
	t.Helper()
	if cfg.AckWait == 0 {
		cfg.AckWait = 2 * time.Second
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = 100 * time.Millisecond
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := New(cfg, Deps{JS: ne.JS, Store: store, Logger: log, Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{svc: svc, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- svc.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.stopOnce.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
}

func rows(t *testing.T, pool *pgxpool.Pool, table string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("counting %s: %v", table, err)
	}
	return n
}

func waitRows(t *testing.T, pool *pgxpool.Pool, table string, want int) {
	t.Helper()
	testkit.Eventually(t, time.Minute, fmt.Sprintf("%d rows in %s", want, table), func() (bool, string) {
		n := rows(t, pool, table)
		return n == want, fmt.Sprintf("%d rows", n)
	})
}

// waitIdle waits until the durable has every message delivered and acked (or
// terminated): none pending, none awaiting its ack, and its ack floor at the
// last message of FEEDS it takes. Pending counts alone were once seen at 0
// for a consumer just created, before it had delivered anything (a run of
// make test under -race).
func waitIdle(t *testing.T, js jetstream.JetStream, durable string) {
	t.Helper()
	waitConsumer(t, js, durable, "idle", func(info *jetstream.ConsumerInfo) (bool, string) {
		last := lastFeedsSeq(t, js, info.Config.FilterSubject)
		return info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= last,
			fmt.Sprintf("pending %d, ack pending %d, ack floor %d of %d", info.NumPending, info.NumAckPending, info.AckFloor.Stream, last)
	})
}

// lastFeedsSeq is the sequence of the last message of FEEDS on filter
// (every subject when empty); 0 when there is none.
func lastFeedsSeq(t *testing.T, js jetstream.JetStream, filter string) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	if filter == "" {
		filter = subjects.FeedsAll
	}
	m, err := st.GetLastMsgForSubject(context.Background(), filter)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0
	}
	if err != nil {
		t.Fatalf("the last message of FEEDS on %s: %v", filter, err)
	}
	return m.Sequence
}

// waitFetching waits until the FEEDS consumer durable exists and a pull
// request of its reader waits on it: the aggregator's work is past its
// start and in its fetch loop.
func waitFetching(t *testing.T, js jetstream.JetStream, durable string) {
	t.Helper()
	waitConsumer(t, js, durable, "fetching", func(info *jetstream.ConsumerInfo) (bool, string) {
		return info.NumWaiting > 0, fmt.Sprintf("%d pull requests waiting", info.NumWaiting)
	})
}

// waitConsumer waits until the info of the FEEDS consumer durable is ok.
func waitConsumer(t *testing.T, js jetstream.JetStream, durable, what string, ok func(*jetstream.ConsumerInfo) (bool, string)) {
	t.Helper()
	testkit.Eventually(t, time.Minute, "consumer "+durable+" "+what, func() (bool, string) {
		c, err := js.Consumer(context.Background(), subjects.StreamFeeds, durable)
		if err != nil {
			return false, err.Error()
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return false, err.Error()
		}
		return ok(info)
	})
}

// lastState reads the state of an entity from STATE.
func lastState(t *testing.T, js jetstream.JetStream, layer, entity string) (*iocv1.EntityState, nats.Header, error) {
	t.Helper()
	st, err := js.Stream(context.Background(), subjects.StreamState)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetLastMsgForSubject(context.Background(), subjects.State(province, layer, entity))
	if err != nil {
		return nil, nil, err
	}
	es := &iocv1.EntityState{}
	if err := proto.Unmarshal(raw.Data, es); err != nil {
		t.Fatalf("decoding state of %s: %v", entity, err)
	}
	return es, raw.Header, nil
}

func waitState(t *testing.T, js jetstream.JetStream, layer, entity string, ok func(*iocv1.EntityState) bool) *iocv1.EntityState {
	t.Helper()
	var got *iocv1.EntityState
	testkit.Eventually(t, time.Minute, "state of "+entity, func() (bool, string) {
		es, _, err := lastState(t, js, layer, entity)
		if err != nil {
			return false, err.Error()
		}
		got = es
		return ok(es), es.String()
	})
	return got
}

func TestStoresAndPublishesState(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	const stations, segments, steps = 4, 2, 10
	var msgs []*nats.Msg
	for k := range steps {
		at := t0.Add(time.Duration(k) * 10 * time.Minute)
		for s := range stations {
			msgs = append(msgs, feedMsg(t, subjects.KindAir, airEvent(t, s, at, float64(100*s+k)), ""))
		}
		for g := range segments {
			msgs = append(msgs, feedMsg(t, subjects.KindTraffic, trafficEvent(t, g, at, float64(10*g+k)), ""))
		}
	}
	publish(t, ne.JS, msgs...)
	r := start(t, ne, pool, Config{Durable: "agg-main", BatchSize: 7})
	waitRows(t, pool, "air_observation", stations*steps)
	waitRows(t, pool, "traffic_observation", segments*steps)
	waitIdle(t, ne.JS, "agg-main")

	last := steps - 1
	for s := range stations {
		want := airEvent(t, s, t0.Add(time.Duration(last)*10*time.Minute), float64(100*s+last))
		es, h, err := lastState(t, ne.JS, subjects.KindAir, want.GetEntityId())
		if err != nil {
			t.Fatalf("state of %s: %v", want.GetEntityId(), err)
		}
		air := es.GetAir()
		if air == nil {
			t.Fatalf("state of %s has no air observation: %v", want.GetEntityId(), es)
		}
		if air.GetId() != want.GetId() || air.GetPm25() != want.GetPm25() || air.GetOther()["benzene"] != 1.5 {
			t.Errorf("state of %s = %s pm25 %v; want %s pm25 %v", want.GetEntityId(), air.GetId(), air.GetPm25(), want.GetId(), want.GetPm25())
		}
		g, err := wkb.Unmarshal(air.GetLocation().GetWkb())
		if err != nil {
			t.Fatalf("state geometry: %v", err)
		}
		lon, lat := stationPoint(s)
		if p, ok := g.(*geom.Point); !ok || p.X() != lon || p.Y() != lat {
			t.Errorf("state geometry of %s = %v; want POINT(%v %v)", want.GetEntityId(), g, lon, lat)
		}
		if es.GetLayer() != "air" || es.GetProvince() != province || es.GetUnit() != unit || es.GetEntityId() != want.GetEntityId() || es.GetUpdatedAt() == nil {
			t.Errorf("state envelope = %v", es)
		}
		if got, want := h.Get(ce.HeaderType), ce.StateType("air"); got != want {
			t.Errorf("ce-type = %q; want %q", got, want)
		}
		if got, want := h.Get(ce.HeaderID), want.GetId(); got != want {
			t.Errorf("ce-id = %q; want %q", got, want)
		}
	}
	for g := range segments {
		want := trafficEvent(t, g, t0.Add(time.Duration(last)*10*time.Minute), float64(10*g+last))
		es, _, err := lastState(t, ne.JS, subjects.KindTraffic, want.GetEntityId())
		if err != nil {
			t.Fatalf("state of %s: %v", want.GetEntityId(), err)
		}
		tr := es.GetTraffic()
		if tr.GetAverageVehicleSpeed() != want.GetAverageVehicleSpeed() || tr.GetId() != want.GetId() {
			t.Errorf("state of %s = %v; want speed %v", want.GetEntityId(), tr, want.GetAverageVehicleSpeed())
		}
		geo, err := wkb.Unmarshal(tr.GetLocation().GetWkb())
		if ls, ok := geo.(*geom.LineString); err != nil || !ok || ls.NumCoords() != 2 {
			t.Errorf("state geometry of %s = %v, %v; want a LineString of 2 points", want.GetEntityId(), geo, err)
		}
	}
	var pm25 float64
	var loc geom.T
	if err := pool.QueryRow(context.Background(), `SELECT (last_values->>'pm25')::float8, location FROM sensor WHERE kind = 'air' AND id = $1`,
		"urn:ngsi-ld:Device:st-3").Scan(&pm25, &loc); err != nil {
		t.Fatal(err)
	}
	if pm25 != 309 {
		t.Errorf("sensor st-3 pm25 = %v; want 309", pm25)
	}
	if p, ok := loc.(*geom.Point); !ok || p.SRID() != 4326 {
		t.Errorf("sensor st-3 location = %#v; want a Point with SRID 4326", loc)
	}

	// The same events again under new message ids: JetStream cannot drop them,
	// the store does.
	for i, m := range msgs {
		m.Header[nats.MsgIdHdr] = []string{fmt.Sprintf("resend-%d", i)}
	}
	publish(t, ne.JS, msgs...)
	testkit.Eventually(t, time.Minute, "duplicates counted", func() (bool, string) {
		n := counterValue(t, r.svc.m.duplicates.WithLabelValues("air")) + counterValue(t, r.svc.m.duplicates.WithLabelValues("traffic"))
		return n == float64(len(msgs)), fmt.Sprintf("%v duplicates", n)
	})
	waitIdle(t, ne.JS, "agg-main")
	if n := rows(t, pool, "air_observation"); n != stations*steps {
		t.Errorf("air rows after resending = %d; want %d", n, stations*steps)
	}
	if n := rows(t, pool, "traffic_observation"); n != segments*steps {
		t.Errorf("traffic rows after resending = %d; want %d", n, segments*steps)
	}
	if got := counterValue(t, r.svc.m.rows.WithLabelValues("air")); got != stations*steps {
		t.Errorf("rows_total{kind=air} = %v; want %d", got, stations*steps)
	}
}

func TestCrashBetweenCommitAndAck(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	const n = 30
	var msgs []*nats.Msg
	for i := range n {
		msgs = append(msgs, feedMsg(t, subjects.KindAir, airEvent(t, i%3, t0.Add(time.Duration(i)*time.Minute), float64(i)), ""))
	}
	publish(t, ne.JS, msgs...)
	// The server's advisories of naks, to tell the messages naked at the
	// stop: a naked message stays ack pending (on the server's redelivery
	// queue) until it is redelivered.
	var nakMu sync.Mutex
	naked := map[uint64]bool{}
	nakSub, err := ne.Conn.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED."+subjects.StreamFeeds+".agg-crash", func(m *nats.Msg) {
		var adv struct {
			StreamSeq uint64 `json:"stream_seq"`
		}
		if json.Unmarshal(m.Data, &adv) == nil {
			nakMu.Lock()
			naked[adv.StreamSeq] = true
			nakMu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = nakSub.Unsubscribe() }()
	if err := ne.Conn.Flush(); err != nil {
		t.Fatal(err)
	}

	var once sync.Once
	var r *running
	ready := make(chan struct{})
	// Batches of a third of the stream, so that more are fetched than the
	// one committed: those must be naked at the stop.
	cfg := Config{Durable: "agg-crash", BatchSize: n / 3}
	cfg.afterCommit = func() { once.Do(func() { <-ready; r.cancel() }) }
	r = start(t, ne, pool, cfg)
	close(ready)
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		r.done <- nil // for the cleanup
	case <-time.After(60 * time.Second):
		t.Fatal("the aggregator did not stop after its crash")
	}
	// A batch was committed: usually the first, and the second when its
	// commit ended before the stop.
	committed := rows(t, pool, "air_observation")
	if committed == 0 {
		t.Fatalf("rows after the commit = 0; want the first batch")
	}
	entity := airEvent(t, 2, t0, 0).GetEntityId()
	for s := range 3 {
		e := airEvent(t, s, t0, 0).GetEntityId()
		if _, _, err := lastState(t, ne.JS, subjects.KindAir, e); !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Fatalf("state of %s published before the crash: err = %v; want ErrMsgNotFound", e, err)
		}
	}
	rollups, err := ne.JS.Stream(context.Background(), subjects.StreamRollups)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"1m", "1h", "1d"} {
		if _, err := rollups.GetLastMsgForSubject(context.Background(), subjects.Rollup(province, unit, subjects.KindAir, w)); !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Fatalf("%s roll-up published before the crash: err = %v; want ErrMsgNotFound", w, err)
		}
	}
	c, err := ne.JS.Consumer(context.Background(), subjects.StreamFeeds, "agg-crash")
	if err != nil {
		t.Fatal(err)
	}
	// Every message fetched is ack pending: the committed batch, not acked,
	// and the batches fetched and not written, naked (the server's
	// advisories come on its own time: wait for them, within the AckWait of
	// 2 s after which an un-naked message would be redelivered anyway).
	testkit.Eventually(t, 1500*time.Millisecond, "the batches not written naked after the crash", func() (bool, string) {
		info, err := c.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		nakMu.Lock()
		defer nakMu.Unlock()
		// At least: a batch whose commit the stop interrupted may have
		// committed and been naked too.
		return info.NumAckPending >= committed && committed+len(naked) >= info.NumAckPending,
			fmt.Sprintf("%d ack pending, %d committed and %d naked; want each committed or naked",
				info.NumAckPending, committed, len(naked))
	})

	start(t, ne, pool, Config{Durable: "agg-crash", BatchSize: n})
	waitIdle(t, ne.JS, "agg-crash")
	es := waitState(t, ne.JS, subjects.KindAir, entity, func(*iocv1.EntityState) bool { return true })
	// Station 2's newest event is i = 29.
	if got := es.GetAir().GetPm25(); got != 29 {
		t.Errorf("state pm25 after redelivery = %v; want 29", got)
	}
	if got := rows(t, pool, "air_observation"); got != n {
		t.Errorf("rows after redelivery = %d; want %d", got, n)
	}
	// The source sent n events and no duplicate: the redelivery of the
	// committed batch (counted before the crash) counts neither again.
	testkit.Eventually(t, 10*time.Second, "the source's figures", func() (bool, string) {
		var events, dups int64
		err := pool.QueryRow(context.Background(), `SELECT coalesce(sum(events), 0), coalesce(sum(duplicates), 0) FROM source_stats WHERE source_id = $1`,
			sourceID).Scan(&events, &dups)
		if err != nil {
			t.Fatal(err)
		}
		return events == n && dups == 0, fmt.Sprintf("%d events, %d duplicates; want %d and 0", events, dups, n)
	})
	// The roll-ups of the committed batch, published again by its
	// redelivery (which inserts nothing of it): each subject's last is its
	// latest window, as stored.
	for _, w := range []struct {
		name  string
		start time.Time
	}{{"1m", t0.Add((n - 1) * time.Minute)}, {"1h", t0}, {"1d", t0.Add(7 * time.Hour).Truncate(24 * time.Hour).Add(-7 * time.Hour)}} {
		raw, err := rollups.GetLastMsgForSubject(context.Background(), subjects.Rollup(province, unit, subjects.KindAir, w.name))
		if err != nil {
			t.Fatalf("%s roll-up after the redelivery: %v", w.name, err)
		}
		var got rollupJSON
		if err := json.Unmarshal(raw.Data, &got); err != nil {
			t.Fatalf("decoding %s: %v", raw.Data, err)
		}
		var stored int64
		if err := pool.QueryRow(context.Background(), `SELECT n + late FROM rollup WHERE unit_code = $1 AND layer = 'air' AND win = $2 AND window_start = $3`,
			unit, w.name, w.start).Scan(&stored); err != nil {
			t.Fatalf("stored %s roll-up at %v: %v", w.name, w.start, err)
		}
		if !got.WindowStart.Equal(w.start) || got.Observations+got.Late != stored {
			t.Errorf("last %s roll-up on ROLLUPS: window %v, %d observations and %d late; want the latest window %v as stored (%d)",
				w.name, got.WindowStart, got.Observations, got.Late, w.start, stored)
		}
	}
}

func TestKillMidStream(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	const stations, steps = 20, 40
	const n = stations * steps
	published := make(chan struct{})
	var msgs []*nats.Msg
	for k := range steps {
		for s := range stations {
			msgs = append(msgs, feedMsg(t, subjects.KindAir, airEvent(t, s, t0.Add(time.Duration(k)*time.Minute), float64(k)), ""))
		}
	}
	go func() {
		defer close(published)
		for _, m := range msgs {
			if _, err := ne.JS.PublishMsg(context.Background(), m); err != nil {
				t.Errorf("publishing %s: %v", m.Subject, err)
				return
			}
		}
	}()
	killMidStream(t, ne, pool, "agg-kill", n/25/4, "air_observation", n)
	start(t, ne, pool, Config{Durable: "agg-kill", BatchSize: 25})
	<-published
	waitRows(t, pool, "air_observation", n)
	waitIdle(t, ne.JS, "agg-kill")
	if got := rows(t, pool, "air_observation"); got != n {
		t.Errorf("rows = %d; want %d", got, n)
	}
	for s := range stations {
		entity := airEvent(t, s, t0, 0).GetEntityId()
		es, _, err := lastState(t, ne.JS, subjects.KindAir, entity)
		if err != nil {
			t.Fatalf("state of %s: %v", entity, err)
		}
		if got := es.GetAir().GetPm25(); got != steps-1 {
			t.Errorf("state of %s pm25 = %v; want %d", entity, got, steps-1)
		}
	}
}

func TestLateObservationKeepsNewerState(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	start(t, ne, pool, Config{Durable: "agg-late"})
	newer := airEvent(t, 1, t0.Add(time.Hour), 50)
	older := airEvent(t, 1, t0, 10)
	publish(t, ne.JS, feedMsg(t, subjects.KindAir, newer, ""))
	waitState(t, ne.JS, subjects.KindAir, newer.GetEntityId(), func(es *iocv1.EntityState) bool { return es.GetAir().GetId() == newer.GetId() })
	waitIdle(t, ne.JS, "agg-late")
	publish(t, ne.JS, feedMsg(t, subjects.KindAir, older, ""))
	waitRows(t, pool, "air_observation", 2)
	waitIdle(t, ne.JS, "agg-late")
	es, _, err := lastState(t, ne.JS, subjects.KindAir, newer.GetEntityId())
	if err != nil {
		t.Fatal(err)
	}
	if es.GetAir().GetId() != newer.GetId() || es.GetAir().GetPm25() != 50 {
		t.Errorf("state after a late observation = %s pm25 %v; want %s pm25 50", es.GetAir().GetId(), es.GetAir().GetPm25(), newer.GetId())
	}
	var observed time.Time
	if err := pool.QueryRow(context.Background(), `SELECT last_observed_at FROM sensor WHERE id = $1`, newer.GetEntityId()).Scan(&observed); err != nil {
		t.Fatal(err)
	}
	if !observed.Equal(t0.Add(time.Hour)) {
		t.Errorf("sensor last_observed_at = %v; want %v", observed, t0.Add(time.Hour))
	}
}

func square(x0, y0, d float64) *geom.Polygon {
	return geom.NewPolygonFlat(geom.XY, []float64{x0, y0, x0 + d, y0, x0 + d, y0 + d, x0, y0 + d, x0, y0}, []int{10})
}

func insertUnit(t *testing.T, pool *pgxpool.Pool, code, level, parent string, x0, y0 float64) {
	t.Helper()
	mp := geom.NewMultiPolygon(geom.XY)
	if err := mp.Push(square(x0, y0, 1)); err != nil {
		t.Fatal(err)
	}
	_, err := pool.Exec(context.Background(), `INSERT INTO admin_unit (code, level, parent_code, name_vi, boundary, valid_from)
		VALUES ($1, $2, NULLIF($3, ''), $1, $4, '2025-07-01')`, code, level, parent, mp.SetSRID(4326))
	if err != nil {
		t.Fatalf("inserting unit %s: %v", code, err)
	}
}

func TestAlertUnits(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	insertUnit(t, pool, "01", "province", "", 105, 20)
	insertUnit(t, pool, "02", "province", "", 106, 20)
	insertUnit(t, pool, "04", "province", "", 110, 20)
	sent := time.Now().UTC().Truncate(time.Second)
	alert := &iocv1.Alert{
		Id: "flood-1", Identifier: "flood-1", Sender: "kttv@example.vn", Sent: timestamppb.New(sent),
		Status: "Actual", MsgType: "Alert", Scope: "Public",
		Origin: &iocv1.Origin{SourceId: sourceID, Province: province, Unit: unit, ReceivedAt: timestamppb.New(sent)},
		Info: []*iocv1.AlertInfo{{
			Language: "vi-VN", Category: []string{"Met"}, Event: "Lũ", Urgency: "Immediate", Severity: "Severe",
			Certainty: "Observed", Headline: "Cảnh báo lũ", Expires: timestamppb.New(sent.Add(6 * time.Hour)),
			Area: []*iocv1.AlertArea{
				{AreaDesc: "bờ sông", Geometry: mustWKB(t, square(105.9, 20.4, 0.2))},
				{AreaDesc: "mã", Geocode: []*iocv1.Geocode{{ValueName: "GSO", Value: "01"}}},
			},
		}},
	}
	publish(t, ne.JS, feedMsg(t, subjects.KindAlert, alert, ""))
	start(t, ne, pool, Config{Durable: "agg-alert"})
	id := sourceID + "/flood-1"
	es := waitState(t, ne.JS, subjects.KindAlert, id, func(*iocv1.EntityState) bool { return true })
	if es.GetAlertState() != "active" || !slices.Equal(es.GetUnits(), []string{"01", "02"}) {
		t.Errorf("alert state = %q units %v; want active [01 02]", es.GetAlertState(), es.GetUnits())
	}
	if es.GetAlert().GetInfo()[0].GetHeadline() != "Cảnh báo lũ" {
		t.Errorf("alert in state = %v", es.GetAlert())
	}
	r, err := pool.Query(context.Background(), `SELECT unit_code FROM alert_unit WHERE alert_id = $1 ORDER BY 1`, id)
	if err != nil {
		t.Fatal(err)
	}
	var units []string
	for r.Next() {
		var u string
		if err := r.Scan(&u); err != nil {
			t.Fatal(err)
		}
		units = append(units, u)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(units, []string{"01", "02"}) {
		t.Errorf("alert_unit = %v; want [01 02]", units)
	}
	var event string
	if err := pool.QueryRow(context.Background(), `SELECT info->0->>'event' FROM alert WHERE id = $1`, id).Scan(&event); err != nil {
		t.Fatal(err)
	}
	if event != "Lũ" {
		t.Errorf("alert info event = %q; want Lũ", event)
	}
}

func TestUndecodableMessagesAreDeadLettered(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	good := feedMsg(t, subjects.KindAir, airEvent(t, 1, t0, 5), "")
	garbage := feedMsg(t, subjects.KindAir, airEvent(t, 2, t0, 5), "")
	garbage.Data = []byte{0xff, 0xff, 0xff}
	noHeaders := feedMsg(t, subjects.KindAir, airEvent(t, 3, t0, 5), "")
	delete(noHeaders.Header, ce.HeaderID)
	unknown := feedMsg(t, subjects.KindAir, airEvent(t, 4, t0, 5), "")
	unknown.Subject = subjects.Feed(province, unit, "sewage")
	publish(t, ne.JS, garbage, noHeaders, unknown, good)
	r := start(t, ne, pool, Config{Durable: "agg-bad"})
	waitRows(t, pool, "air_observation", 1)
	waitIdle(t, ne.JS, "agg-bad")
	if got := counterValue(t, r.svc.m.errors.WithLabelValues("decode")); got != 3 {
		t.Errorf("errors_total{stage=decode} = %v; want 3", got)
	}
	if got := rows(t, pool, "air_observation"); got != 1 {
		t.Errorf("rows = %d; want 1", got)
	}
	letters := waitDeadletters(t, ne.JS, 3)
	wantReasons := map[string]string{
		garbage.Header.Get(ce.HeaderID):     "unmarshal",
		noHeaders.Header.Get(nats.MsgIdHdr): "ce-id",
		unknown.Header.Get(ce.HeaderID):     "sewage",
	}
	for _, l := range letters {
		if l.Stage != deadletter.StageDecode || l.Delivered != 1 || l.FeedsSeq == 0 || l.Time.IsZero() {
			t.Errorf("dead letter %+v; want stage decode, delivered 1, a FEEDS sequence and a time", l)
		}
		key := l.EventID
		if key == "" {
			key = l.Header.Get(deadletter.HeaderMsgID)
		}
		want, ok := wantReasons[key]
		if !ok || !strings.Contains(strings.ToLower(l.Reason), want) {
			t.Errorf("dead letter of %q has reason %q; want one naming %q", key, l.Reason, want)
		}
	}
	if got := counterValue(t, r.svc.m.deadletters.WithLabelValues(subjects.KindAir, deadletter.StageDecode)); got != 2 {
		t.Errorf("deadletters_total{kind=air,stage=decode} = %v; want 2", got)
	}
	if got := counterValue(t, r.svc.m.deadletters.WithLabelValues("other", deadletter.StageDecode)); got != 1 {
		t.Errorf("deadletters_total{kind=other,stage=decode} = %v; want 1", got)
	}
}

// waitDeadletters waits for n dead letters on DEADLETTER and returns them
// whole (headers and payload), oldest first.
func waitDeadletters(t *testing.T, js jetstream.JetStream, n int) []deadletter.Letter {
	t.Helper()
	var got []deadletter.Letter
	testkit.Eventually(t, time.Minute, fmt.Sprintf("%d dead letters", n), func() (bool, string) {
		list, _, err := deadletter.List(context.Background(), js, deadletter.Query{})
		if err != nil {
			return false, err.Error()
		}
		got = list
		return len(list) == n, fmt.Sprintf("%d dead letters", len(list))
	})
	for i, l := range got {
		full, err := deadletter.Get(context.Background(), js, l.Sequence)
		if err != nil {
			t.Fatal(err)
		}
		got[i] = full
	}
	return got
}

func TestNew(t *testing.T) {
	ne := testNATS(t)
	tests := []struct {
		name string
		cfg  Config
		deps Deps
		ok   bool
	}{
		{"defaults", Config{}, Deps{JS: ne.JS, Store: postgis.NewStore(nil)}, true},
		{"no JetStream", Config{}, Deps{Store: postgis.NewStore(nil)}, false},
		{"no store", Config{}, Deps{JS: ne.JS}, false},
		{"negative batch", Config{BatchSize: -1}, Deps{JS: ne.JS, Store: postgis.NewStore(nil)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg, tt.deps)
			if (err == nil) != tt.ok {
				t.Fatalf("New: err = %v; want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Errorf("err = %v; want ErrConfig", err)
			}
			if tt.ok && (s.cfg.Durable != "aggregator" || s.cfg.FilterSubject != subjects.FeedsAll || s.cfg.BatchSize != 500 || s.cfg.BatchBytes != defaultBatchBytes) {
				t.Errorf("defaults = %+v", s.cfg)
			}
		})
	}
	reg := prometheus.NewRegistry()
	if _, err := New(Config{Durable: "x"}, Deps{JS: ne.JS, Store: postgis.NewStore(nil), Metrics: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Durable: "x"}, Deps{JS: ne.JS, Store: postgis.NewStore(nil), Metrics: reg}); !errors.Is(err, ErrConfig) {
		t.Errorf("second aggregator with the same durable on one registry: err = %v; want ErrConfig", err)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestPoisonMessageIsDeadLettered(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	var msgs []*nats.Msg
	for i := range 5 {
		msgs = append(msgs, feedMsg(t, subjects.KindAir, airEvent(t, i, t0, float64(i)), ""))
	}
	// An entity id too large for a btree index: it decodes, but PostgreSQL
	// refuses it, and with it the whole batch.
	b := make([]byte, 20000)
	_, _ = rand.Read(b)
	huge := airEvent(t, 9, t0, 9)
	huge.EntityId = hex.EncodeToString(b)
	huge.Id = "huge@x"
	msgs = slices.Insert(msgs, 2, feedMsg(t, subjects.KindAir, huge, "huge"))
	publish(t, ne.JS, msgs...)
	// The reader cuts a batch where its deliveries pause, so the poison may
	// come alone (a slow machine, -race): the batch it came in says how many
	// writes must fail.
	var shared atomic.Int32 // -1 alone, 1 with others
	cfg := Config{Durable: "agg-poison", beforeWrite: func(b postgis.Batch) {
		if shared.Load() != 0 || !slices.ContainsFunc(b.Air, func(r postgis.AirRow) bool { return r.EventID == huge.GetId() }) {
			return
		}
		if len(b.Air) > 1 {
			shared.Store(1)
		} else {
			shared.Store(-1)
		}
	}}
	r := start(t, ne, pool, cfg)
	waitRows(t, pool, "air_observation", 5)
	waitIdle(t, ne.JS, "agg-poison")
	if got := rows(t, pool, "sensor"); got != 5 {
		t.Errorf("sensors = %d; want 5", got)
	}
	switch got := counterValue(t, r.svc.m.errors.WithLabelValues("write")); shared.Load() {
	case 1:
		if got < 2 {
			t.Errorf("errors_total{stage=write} = %v; want at least 2 (the batch, then the message alone)", got)
		}
	case -1:
		if got < 1 {
			t.Errorf("errors_total{stage=write} = %v; want at least 1 (the message, in a batch of its own)", got)
		}
	default:
		t.Error("no batch brought the poison to the committer")
	}
	waitState(t, ne.JS, subjects.KindAir, airEvent(t, 4, t0, 0).GetEntityId(), func(*iocv1.EntityState) bool { return true })
	letters := waitDeadletters(t, ne.JS, 1)
	l := letters[0]
	if l.Stage != deadletter.StageStore || l.EventID != "huge@x" || l.Source != sourceID || l.Reason == "" ||
		l.Subject != subjects.Feed(province, unit, subjects.KindAir) || l.Header.Get(deadletter.HeaderMsgID) != "huge" {
		t.Errorf("dead letter = %+v; want stage store, event huge@x of %s on the feed subject, with a reason", l, sourceID)
	}
	if len(l.Reason) > deadletter.MaxReason {
		t.Errorf("reason of %d bytes; want at most %d", len(l.Reason), deadletter.MaxReason)
	}
	if !slices.Equal(l.Data, msgs[2].Data) {
		t.Error("the dead letter's payload differs from the original")
	}
	if got := counterValue(t, r.svc.m.deadletters.WithLabelValues(subjects.KindAir, deadletter.StageStore)); got != 1 {
		t.Errorf("deadletters_total{kind=air,stage=store} = %v; want 1", got)
	}
}

// TestDeadLetterRedriveAfterFix: an item the database refuses (here a
// trigger stands for a missing unit, partition or constraint fix) is
// dead-lettered without holding up the items behind it; once the cause is
// fixed, a redrive stores it, once however often it is redriven.
func TestDeadLetterRedriveAfterFix(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `
CREATE FUNCTION refuse_blocked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.id = 'urn:ngsi-ld:Device:st-7' THEN RAISE EXCEPTION 'station st-7 is blocked'; END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER refuse_blocked BEFORE INSERT OR UPDATE ON sensor FOR EACH ROW EXECUTE FUNCTION refuse_blocked();`); err != nil {
		t.Fatal(err)
	}
	var msgs []*nats.Msg
	for i := range 4 {
		msgs = append(msgs, feedMsg(t, subjects.KindAir, airEvent(t, i, t0, float64(i)), ""))
	}
	blocked := airEvent(t, 7, t0, 7)
	msgs = slices.Insert(msgs, 1, feedMsg(t, subjects.KindAir, blocked, ""))
	publish(t, ne.JS, msgs...)
	start(t, ne, pool, Config{Durable: "agg-redrive"})
	waitRows(t, pool, "air_observation", 4) // the ones behind it are not blocked
	l := waitDeadletters(t, ne.JS, 1)[0]
	if l.Stage != deadletter.StageStore || !strings.Contains(l.Reason, "station st-7 is blocked") || l.EventID != blocked.GetId() {
		t.Fatalf("dead letter = %+v; want stage store with the trigger's reason", l)
	}
	waitIdle(t, ne.JS, "agg-redrive")

	if _, err := pool.Exec(ctx, `DROP TRIGGER refuse_blocked ON sensor`); err != nil {
		t.Fatal(err)
	}
	if _, err := deadletter.Redrive(ctx, ne.JS, l.Sequence); err != nil {
		t.Fatalf("Redrive: %v", err)
	}
	waitRows(t, pool, "air_observation", 5)
	if _, err := deadletter.Redrive(ctx, ne.JS, l.Sequence); !errors.Is(err, deadletter.ErrNotFound) {
		t.Errorf("second Redrive: err = %v; want ErrNotFound (it was deleted)", err)
	}
	// A redrive published again (an operator's retry racing the delete) is
	// absorbed by the store's idempotency.
	again := feedMsg(t, subjects.KindAir, blocked, deadletter.RedriveMsgID("late", 99))
	publish(t, ne.JS, again)
	waitIdle(t, ne.JS, "agg-redrive")
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM air_observation WHERE event_id = $1`, blocked.GetId()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("rows of the redriven event = %d; want 1", n)
	}
	if list, _, err := deadletter.List(ctx, ne.JS, deadletter.Query{}); err != nil || len(list) != 0 {
		t.Errorf("dead letters after the redrive = %v, %v; want none", list, err)
	}
}

func capEvent(t testing.TB, id, msgType string, sent time.Time, refs ...string) *iocv1.Alert {
	return &iocv1.Alert{
		Id: id, Identifier: id, Sender: "kttv@example.vn", Sent: timestamppb.New(sent), Status: "Actual",
		MsgType: msgType, Scope: "Public", References: refs,
		Origin: &iocv1.Origin{SourceId: sourceID, Province: province, Unit: unit, ReceivedAt: timestamppb.New(sent)},
		Info: []*iocv1.AlertInfo{{Language: "vi-VN", Event: "Bão", Expires: timestamppb.New(sent.Add(6 * time.Hour)),
			Area: []*iocv1.AlertArea{{Geometry: mustWKB(t, square(105.2, 20.2, 0.1))}}}},
	}
}

func TestAlertLifecycle(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	insertUnit(t, pool, "01", "province", "", 105, 20)
	start(t, ne, pool, Config{Durable: "agg-life", ExpiryInterval: 100 * time.Millisecond})
	sent := time.Now().UTC().Truncate(time.Second)
	ref := func(id string) string { return "kttv@example.vn," + id + "," + sent.Format(time.RFC3339) }
	id := func(identifier string) string { return sourceID + "/" + identifier }
	hasState := func(want string) func(*iocv1.EntityState) bool {
		return func(es *iocv1.EntityState) bool { return es.GetAlertState() == want }
	}

	publish(t, ne.JS, feedMsg(t, subjects.KindAlert, capEvent(t, "a1", "Alert", sent), ""))
	waitState(t, ne.JS, subjects.KindAlert, id("a1"), hasState("active"))

	publish(t, ne.JS, feedMsg(t, subjects.KindAlert, capEvent(t, "u1", "Update", sent.Add(time.Minute), ref("a1")), ""))
	es := waitState(t, ne.JS, subjects.KindAlert, id("a1"), hasState("superseded"))
	if es.GetAlert().GetIdentifier() != "a1" || !slices.Equal(es.GetUnits(), []string{"01"}) {
		t.Errorf("superseded state = %v; want alert a1 with units [01]", es)
	}
	waitState(t, ne.JS, subjects.KindAlert, id("u1"), hasState("active"))

	publish(t, ne.JS, feedMsg(t, subjects.KindAlert, capEvent(t, "c1", "Cancel", sent.Add(2*time.Minute), ref("u1")), ""))
	waitState(t, ne.JS, subjects.KindAlert, id("u1"), hasState("cancelled"))

	// Expiry: the time passes in the database.
	publish(t, ne.JS, feedMsg(t, subjects.KindAlert, capEvent(t, "e1", "Alert", sent), ""))
	waitState(t, ne.JS, subjects.KindAlert, id("e1"), hasState("active"))
	if _, err := pool.Exec(context.Background(), `UPDATE alert SET expires = now() - interval '1 second' WHERE id = $1`, id("e1")); err != nil {
		t.Fatal(err)
	}
	waitState(t, ne.JS, subjects.KindAlert, id("e1"), hasState("expired"))
	testkit.Eventually(t, time.Minute, "e1 recorded as expired", func() (bool, string) {
		var st string
		if err := pool.QueryRow(context.Background(), `SELECT state FROM alert WHERE id = $1`, id("e1")).Scan(&st); err != nil {
			return false, err.Error()
		}
		return st == "expired", st
	})
}

// An alert under the identifier another sender's alert of the same source
// was stored with (CAP identifiers are unique per sender only) is not
// stored over it, nor dropped as its duplicate: it is dead-lettered with
// the reason, and its batch-mates are stored. So is the second sender's
// alert of a batch that holds both.
func TestAlertOfAnotherSenderIsDeadLettered(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	insertUnit(t, pool, province, "province", "", 105, 20)
	first := capEvent(t, "X-1", "Alert", t0)
	other := capEvent(t, "X-1", "Alert", t0.Add(time.Hour)) // later: it would have replaced the first
	other.Sender = "police@example.vn"
	both := capEvent(t, "Y-1", "Alert", t0)
	bothOther := capEvent(t, "Y-1", "Alert", t0.Add(time.Minute))
	bothOther.Sender = "police@example.vn"
	r := start(t, ne, pool, Config{Durable: "agg-senders"})
	publish(t, ne.JS, feedMsg(t, subjects.KindAlert, first, ""))
	waitIdle(t, ne.JS, "agg-senders")
	publish(t, ne.JS,
		feedMsg(t, subjects.KindAlert, capEvent(t, "ok-1", "Alert", t0), ""),
		feedMsg(t, subjects.KindAlert, other, "other-X-1"),
		feedMsg(t, subjects.KindAlert, both, ""),
		feedMsg(t, subjects.KindAlert, bothOther, "other-Y-1"),
		feedMsg(t, subjects.KindAlert, capEvent(t, "ok-2", "Alert", t0), ""))
	letters := waitDeadletters(t, ne.JS, 2)
	waitIdle(t, ne.JS, "agg-senders")
	for _, l := range letters {
		if l.Stage != deadletter.StageStore || !strings.Contains(l.Reason, "from two senders") {
			t.Errorf("dead letter %s: stage %s, reason %q; want the store's, naming the two senders", l.EventID, l.Stage, l.Reason)
		}
	}
	rows, err := pool.Query(context.Background(), `SELECT identifier || ' ' || sender FROM alert ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	senders, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	// Of Y-1's two senders, the one written first stays; the other is the letter.
	if len(senders) != 4 || senders[0] != "X-1 kttv@example.vn" || !strings.HasPrefix(senders[1], "Y-1 ") ||
		senders[2] != "ok-1 kttv@example.vn" || senders[3] != "ok-2 kttv@example.vn" {
		t.Errorf("stored alerts %v; want X-1 of kttv, one Y-1, ok-1 and ok-2", senders)
	}
	if got := counterValue(t, r.svc.m.deadletters.WithLabelValues(subjects.KindAlert, deadletter.StageStore)); got != 2 {
		t.Errorf("deadletters_total{kind=alert,stage=store} = %v; want 2", got)
	}
}
