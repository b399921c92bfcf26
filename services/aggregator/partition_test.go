package aggregator

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twpayne/go-geom"

	"github.com/iochub/iochub/internal/edge"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// testLeaseTTL is the lease TTL of the partitioned tests: the shortest.
const testLeaseTTL = MinLeaseTTL

// partitionProvinces are the provinces (so the partitions) of the
// partitioned tests; each has one ward, partitionUnit.
var partitionProvinces = []string{"01", "02", "04", "06", "08", "10"}

func partitionUnit(p string) string { return p + "070" }

// insertProvinces adds VN, the provinces and their wards to admin_unit.
func insertProvinces(t testing.TB, pool *pgxpool.Pool, provinces []string) {
	t.Helper()
	ctx := context.Background()
	add := func(code, level, parent string, x float64) {
		ring := []float64{x, 20, x, 21, x + 1, 21, x + 1, 20, x, 20}
		mp := geom.NewMultiPolygonFlat(geom.XY, ring, [][]int{{len(ring)}}).SetSRID(postgis.SRID)
		if _, err := pool.Exec(ctx, `INSERT INTO admin_unit (code, level, parent_code, name_vi, boundary, valid_from)
			VALUES ($1, $2, NULLIF($3, ''), $1, $4, '2020-01-01')`, code, level, parent, mp); err != nil {
			t.Fatal(err)
		}
	}
	add("VN", "national", "", 100)
	for i, p := range provinces {
		add(p, "province", "VN", 100+float64(i))
		add(partitionUnit(p), "commune", p, 100+float64(i))
	}
}

// partitionedEnv is a NATS server and a database with provinces.
type partitionedEnv struct {
	ne        *testenv.NATSEnv
	db        *testenv.DBEnv
	provinces []string
	leaseTTL  time.Duration // of the instances started
	edges     edge.LostPollConfig
	// running counts, by province, the instances whose work of that
	// partition runs; overlap records a start while another ran it.
	mu      sync.Mutex
	running map[string]int
	overlap []string
}

func newPartitionedEnv(t testing.TB, provinces []string) *partitionedEnv {
	e := &partitionedEnv{ne: testenv.NATS(t), db: testenv.PostGIS(t), provinces: provinces, leaseTTL: testLeaseTTL, running: map[string]int{}}
	insertProvinces(t, e.db.Pool, provinces)
	return e
}

// instance is one partitioned aggregator with its own NATS connection and
// database pool, as a process of its own would have.
type instance struct {
	name string
	nc   *nats.Conn
	role *Role
	reg  *prometheus.Registry
	run  *testkit.Running
}

// start starts a partitioned aggregator named name.
func (e *partitionedEnv) start(t testing.TB, name string) *instance {
	t.Helper()
	nc, err := natsx.Connect(e.ne.URL, "aggregator "+name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := schema.Open(context.Background(), e.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("instance", name)
	cfg := RoleConfig{
		Aggregator: Config{AckWait: 2 * time.Second, RetryDelay: 100 * time.Millisecond, ExpiryInterval: -1},
		Partition:  PartitionConfig{Enabled: true, Instance: name, LeaseTTL: e.leaseTTL},
		Edges:      e.edges,
	}
	r, err := NewRole(cfg, RoleDeps{JS: js, Pool: pool, Logger: log, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	run := r.part.run
	r.part.run = func(ctx context.Context, p string, epoch int64) error {
		e.mu.Lock()
		if e.running[p] > 0 {
			e.overlap = append(e.overlap, fmt.Sprintf("%s started %s while another ran it", name, p))
		}
		e.running[p]++
		e.mu.Unlock()
		defer func() {
			e.mu.Lock()
			e.running[p]--
			e.mu.Unlock()
		}()
		return run(ctx, p, epoch)
	}
	in := &instance{name: name, nc: nc, role: r, reg: reg}
	in.run = testkit.Start(t, "aggregator "+name, r.Run)
	return in
}

// kill stops in as a crash would: its connection to NATS is cut first, so
// nothing is acked, naked or released; its leases expire.
func (in *instance) kill(t *testing.T) {
	t.Helper()
	in.nc.Close()
	if err := in.run.Stop(); err != nil {
		t.Error(err)
	}
}

func (in *instance) held() int {
	return int(testutil.ToFloat64(in.role.part.m.held))
}

// holders reads the lease bucket: the holder of each partition leased.
func (e *partitionedEnv) holders(t testing.TB) map[string]string {
	t.Helper()
	ctx := context.Background()
	kv, err := e.ne.JS.KeyValue(ctx, DefaultLeaseBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	kl, err := kv.ListKeysFiltered(ctx, partitionPrefix+">")
	if err != nil {
		t.Fatal(err)
	}
	for k := range kl.Keys() { // closed once every key was listed
		en, err := kv.Get(ctx, k)
		if err != nil {
			continue // expired meanwhile
		}
		out[strings.TrimPrefix(k, partitionPrefix)] = string(en.Value())
	}
	return out
}

// waitShares waits until every partition is leased and each instance of ins
// holds between lo and hi of them (by its gauge), the leases agreeing.
func (e *partitionedEnv) waitShares(t testing.TB, ins []*instance, lo, hi int) map[string]string {
	t.Helper()
	var h map[string]string
	testkit.Eventually(t, time.Minute, fmt.Sprintf("each of %d instances holding %d to %d partitions", len(ins), lo, hi), func() (bool, string) {
		h = e.holders(t)
		by := map[string]int{}
		for _, who := range h {
			by[who]++
		}
		ok := len(h) == len(e.provinces)
		state := fmt.Sprintf("leases %v;", h)
		for _, in := range ins {
			n := by[in.name]
			ok = ok && n >= lo && n <= hi && in.held() == n
			state += fmt.Sprintf(" %s holds %d (gauge %d)", in.name, n, in.held())
		}
		return ok, state
	})
	return h
}

// checkNoOverlap fails t if a partition's work ever started on one instance
// while another ran it.
func (e *partitionedEnv) checkNoOverlap(t *testing.T) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, o := range e.overlap {
		t.Error(o)
	}
}

// singletons counts the instances of ins running the global work.
func singletons(ins ...*instance) int {
	n := 0
	for _, in := range ins {
		n += int(testutil.ToFloat64(in.role.part.m.singleton))
	}
	return n
}

// TestPartitionsShared: three aggregators share six provinces two each; a
// fourth joining gets its share from them (each then holds one or two);
// one of them holds the singleton lease; stopping one gives its partitions
// back at once, and the others take them; no partition's work ever runs on
// two at a time.
func TestPartitionsShared(t *testing.T) {
	e := newPartitionedEnv(t, partitionProvinces)
	a, b, c := e.start(t, "a"), e.start(t, "b"), e.start(t, "c")
	e.waitShares(t, []*instance{a, b, c}, 2, 2)
	testkit.Eventually(t, time.Minute, "one singleton", func() (bool, string) {
		n := singletons(a, b, c)
		return n == 1, fmt.Sprintf("%d instances run the global work", n)
	})

	d := e.start(t, "d")
	e.waitShares(t, []*instance{a, b, c, d}, 1, 2)

	// A graceful stop releases the leases: the others hold all without
	// waiting for the TTL (the released keys are deleted, not left to expire).
	if err := d.run.Stop(); err != nil {
		t.Fatal(err)
	}
	e.waitShares(t, []*instance{a, b, c}, 2, 2)
	testkit.Eventually(t, time.Minute, "one singleton after the stop", func() (bool, string) {
		n := singletons(a, b, c)
		return n == 1, fmt.Sprintf("%d instances run the global work", n)
	})
	var released float64
	for _, in := range []*instance{d} {
		released += testutil.ToFloat64(in.role.part.m.changes.WithLabelValues("released"))
	}
	if released == 0 {
		t.Error("the stopped instance released no lease")
	}
	e.checkNoOverlap(t)
	// The epochs in the database name the holders of the leases.
	h := e.holders(t)
	rows, err := e.db.Pool.Query(context.Background(), "SELECT partition, holder FROM aggregator_partition")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var p, who string
		if err := rows.Scan(&p, &who); err != nil {
			t.Fatal(err)
		}
		if h[p] != "" && h[p] != who {
			t.Errorf("partition %s: lease of %s, epoch of %s", p, h[p], who)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// loader publishes air observations spread over partitionProvinces until
// stopped, keeping the event id of every item whose publish was acked
// (accepted).
type loader struct {
	js       jetstream.JetStream
	accepted sync.Map // event id → struct{}
	n        atomic.Int64
	stop     chan struct{}
	done     chan struct{}
}

func startLoader(t *testing.T, js jetstream.JetStream) *loader {
	l := &loader{js: js, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for k := 0; ; k++ {
			select {
			case <-l.stop:
				return
			default:
			}
			p := partitionProvinces[k%len(partitionProvinces)]
			ev := airEvent(t, k%300, t0.Add(time.Duration(k)*time.Second), float64(5+k%150))
			m := feedMsg(t, subjects.KindAir, ev, "")
			m.Subject = subjects.Feed(p, partitionUnit(p), subjects.KindAir)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := js.PublishMsg(ctx, m)
			cancel()
			if err == nil {
				l.accepted.Store(ev.GetId(), struct{}{})
				l.n.Add(1)
			}
		}
	}()
	t.Cleanup(l.halt)
	return l
}

func (l *loader) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}

// TestPartitionsMoveOnKill: under load, one of three aggregators dies
// without releasing anything; once its leases expire the two others take its
// partitions, and every accepted item is stored exactly once.
func TestPartitionsMoveOnKill(t *testing.T) {
	e := newPartitionedEnv(t, partitionProvinces)
	a, b, c := e.start(t, "a"), e.start(t, "b"), e.start(t, "c")
	e.waitShares(t, []*instance{a, b, c}, 2, 2)
	l := startLoader(t, e.ne.JS)
	testkit.Eventually(t, time.Minute, "items stored before the kill", func() (bool, string) {
		n := rows(t, e.db.Pool, "air_observation")
		return n >= 300, fmt.Sprintf("%d rows", n)
	})

	killed := time.Now()
	c.kill(t)
	h := e.waitShares(t, []*instance{a, b}, 3, 3)
	t.Logf("c's partitions moved %s after the kill (lease TTL %s): %v", time.Since(killed).Round(time.Millisecond), testLeaseTTL, h)
	testkit.Eventually(t, time.Minute, "items stored after the move", func() (bool, string) {
		n := l.n.Load()
		return n >= 1200, fmt.Sprintf("%d accepted", n)
	})
	l.halt()

	want := int(l.n.Load())
	testkit.Eventually(t, 2*time.Minute, fmt.Sprintf("the %d accepted items stored", want), func() (bool, string) {
		n := rows(t, e.db.Pool, "air_observation")
		return n >= want, fmt.Sprintf("%d rows", n)
	})
	for _, p := range partitionProvinces {
		waitIdle(t, e.ne.JS, partitionDurable(p))
	}
	ids := map[string]int{}
	r, err := e.db.Pool.Query(context.Background(), "SELECT event_id FROM air_observation")
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var id string
		if err := r.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids[id]++
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	missing, extra := 0, 0
	l.accepted.Range(func(k, _ any) bool {
		if ids[k.(string)] != 1 {
			missing++
		}
		return true
	})
	for id, n := range ids {
		if _, ok := l.accepted.Load(id); !ok || n != 1 {
			extra++
		}
	}
	if missing != 0 || extra != 0 || len(ids) != want {
		t.Errorf("%d accepted, %d stored: %d accepted not stored once, %d stored not accepted or twice", want, len(ids), missing, extra)
	}
	e.checkNoOverlap(t)
}

// pausingStore is a store whose WriteBatch waits while paused, as a holder
// stopped by the scheduler or a long GC pause would.
type pausingStore struct {
	Store
	paused  atomic.Bool
	waiting chan struct{} // a write is waiting
	resume  chan struct{}
	once    sync.Once
}

func (s *pausingStore) WriteBatch(ctx context.Context, b postgis.Batch) (postgis.Result, error) {
	if s.paused.Load() {
		s.once.Do(func() { close(s.waiting) })
		<-s.resume
	}
	return s.Store.WriteBatch(ctx, b)
}

// TestStaleHolderFenced: a holder paused in the middle of a write while its
// partition was taken cannot store its batch when it resumes: the write is
// refused, the batch naked and the holder stops; the new holder stores
// every item exactly once.
func TestStaleHolderFenced(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	store := postgis.NewStore(pool)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := Config{Durable: partitionDurable(province), FilterSubject: subjects.FeedProvince(province), Province: province,
		AckWait: 2 * time.Second, RetryDelay: 100 * time.Millisecond, ExpiryInterval: -1, ReportSweepInterval: -1, StaleSweepInterval: -1}
	runHolder := func(name string, st Store, reg *prometheus.Registry) (*Service, *testkit.Running) {
		epoch, err := store.AcquirePartition(ctx, province, name, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := New(cfg, Deps{JS: ne.JS, Store: st, Logger: log.With("holder", name), Metrics: reg})
		if err != nil {
			t.Fatal(err)
		}
		return svc, testkit.Start(t, name, func(ctx context.Context) error {
			ctx, cancel := context.WithCancel(postgis.WithFence(ctx, postgis.Fence{Partition: province, Epoch: epoch}))
			defer cancel()
			svc.fenced = cancel
			return svc.Run(ctx)
		})
	}
	paused := &pausingStore{Store: store, waiting: make(chan struct{}), resume: make(chan struct{})}
	paused.paused.Store(true)
	old, oldRun := runHolder("old", paused, prometheus.NewRegistry())
	var msgs []*nats.Msg
	for i := range 20 {
		msgs = append(msgs, feedMsg(t, subjects.KindAir, airEvent(t, i, t0.Add(time.Duration(i)*time.Minute), 10), ""))
	}
	publish(t, ne.JS, msgs[:10]...)
	<-paused.waiting // the old holder is inside WriteBatch, paused

	_, newRun := runHolder("new", store, prometheus.NewRegistry())
	publish(t, ne.JS, msgs[10:]...)
	close(paused.resume) // the old holder wakes up and writes
	select {
	case <-oldRun.Done():
	case <-time.After(time.Minute):
		t.Fatal("the fenced holder did not stop")
	}
	if n := testutil.ToFloat64(old.m.errors.WithLabelValues("fenced")); n != 1 {
		t.Errorf("fenced writes of the old holder = %v; want 1", n)
	}
	waitRows(t, pool, "air_observation", 20) // the old holder's batch, redelivered to the new one
	waitIdle(t, ne.JS, cfg.Durable)
	if n := rows(t, pool, "air_observation"); n != 20 {
		t.Errorf("air_observation rows = %d; want 20", n)
	}
	if err := newRun.Stop(); err != nil {
		t.Error(err)
	}
}

// TestPartitionConfig: the flags set the partitioning, and a lease shorter
// than MinLeaseTTL or an instance name that is no KV key token is refused.
func TestPartitionConfig(t *testing.T) {
	var c RoleConfig
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"--partitioned", "--partition-instance", "agg-1", "--partition-lease-ttl", "5s", "--partition-lease-replicas", "3"}); err != nil {
		t.Fatal(err)
	}
	if !c.Partition.Enabled || c.Partition.Instance != "agg-1" || c.Partition.LeaseTTL != 5*time.Second || c.Partition.Replicas != 3 {
		t.Errorf("flags not taken: %+v", c.Partition)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("valid flags do not validate: %v", err)
	}
	for _, bad := range []PartitionConfig{{LeaseTTL: time.Second}, {Instance: "agg 1"}, {Instance: "agg.1"}, {Refresh: -time.Second}, {Replicas: -1}, {Replicas: 6}} {
		if err := bad.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v validates (%v); want ErrConfig", bad, err)
		}
	}
	if got := (PartitionConfig{}).withDefaults(); got.Instance == "" || (PartitionConfig{}).withDefaults().Instance == got.Instance ||
		got.Validate() != nil {
		t.Errorf("default instance names %q: want a valid name of its own per instance", got.Instance)
	}
}

// TestCutOffHolderStops: an instance cut off from NATS (alive, but unable to
// renew) stops consuming its partitions before another can take them: the
// instance that takes them never runs one while the first still does.
func TestCutOffHolderStops(t *testing.T) {
	e := newPartitionedEnv(t, partitionProvinces)
	a := e.start(t, "a")
	e.waitShares(t, []*instance{a}, len(partitionProvinces), len(partitionProvinces))
	// a holds the singleton too before the cut (taken after the partitions).
	testkit.Eventually(t, time.Minute, "a running the global work", func() (bool, string) {
		n := singletons(a)
		return n == 1, fmt.Sprintf("%d instances run the global work", n)
	})
	// Every partition's work of a is in its fetch loop: a work cut off while
	// it still creates its consumer fails and gives its lease back
	// (released), which is not what this test is about.
	for _, p := range partitionProvinces {
		waitFetching(t, e.ne.JS, partitionDurable(p))
	}
	a.nc.Close() // its Run goes on
	b := e.start(t, "b")
	e.waitShares(t, []*instance{b}, len(partitionProvinces), len(partitionProvinces))
	e.checkNoOverlap(t)
	if n := testutil.ToFloat64(a.role.part.m.changes.WithLabelValues("expired")); n != float64(len(partitionProvinces)+1) {
		t.Errorf("leases a let go for want of renewal = %v; want %d (the partitions and the singleton)", n, len(partitionProvinces)+1)
	}
	if err := a.run.Stop(); err != nil {
		t.Error(err)
	}
}
