package aggregator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twpayne/go-geom"

	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// Sizes of BenchmarkAggregatorDrain: events per phase, the stations they
// come from (as the load generator of issue 12), and the raw consumer's batch
// (the aggregator's default).
// DRAIN_EVENTS overrides drainEvents (make bench-smoke runs a small one).
const (
	drainStations = 2000
	drainBatch    = 500
)

var drainEvents = func() int {
	if n, err := strconv.Atoi(os.Getenv("DRAIN_EVENTS")); err == nil && n > 0 {
		return n
	}
	return 20000
}()

// drainBench is the shared set-up of BenchmarkAggregatorDrain.
type drainBench struct {
	ne   *testenv.NATSEnv
	pool *pgxpool.Pool
	log  *slog.Logger
	// next numbers the events, so that every phase brings new, newer
	// observations (each station's state changes with every one).
	next int
}

// BenchmarkAggregatorDrain measures the aggregator service draining FEEDS:
// drainEvents real-shaped air observations (the protobuf and headers ingest
// publishes, 2,000 stations of one ward under a province under VN, in a
// tree of national size) are
// published first, then the service runs until the consumer's ack floor
// passes the last of them (every one stored and acked), once with roll-ups
// on and once with --no-rollups, in each iteration so that the load of the
// machine weighs on both alike, taking turns at going first. The baseline in the same
// iteration drains the same number of the same messages (on another ward's
// subject) with a bare durable JetStream consumer that fetches 500 at a time
// (FetchNoWait, as the aggregator), COPYs the same rows (decoded before the
// clock starts) into the same partitioned, indexed air_observation in one
// transaction per batch and acks them. All report events/s; on/off and
// hub/raw (roll-ups on, the service's configuration) are the ratios;
// heap-MB is the live heap after a GC at the end (NATS server included:
// it runs in this process, as in `iochub dev`). The CPU per event of this
// process and of PostgreSQL's, and the ratios of their sums (cpu_on/off,
// cpu_hub/raw), move far less with other load than the rates.
func BenchmarkAggregatorDrain(b *testing.B) {
	d := &drainBench{ne: testenv.NATS(b), pool: testenv.PostGIS(b).Pool,
		log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	ctx := context.Background()
	for _, u := range [][2]string{{"VN", ""}, {province, "VN"}, {unit, province}} {
		level := map[string]string{"VN": "national", province: "province", unit: "commune"}[u[0]]
		ring := []float64{105, 20, 105, 23, 108, 23, 108, 20, 105, 20}
		mp := geom.NewMultiPolygonFlat(geom.XY, ring, [][]int{{len(ring)}}).SetSRID(postgis.SRID)
		if _, err := d.pool.Exec(ctx, `INSERT INTO admin_unit (code, level, parent_code, name_vi, boundary, valid_from)
			VALUES ($1, $2, NULLIF($3, ''), $1, $4, '2020-01-01')`, u[0], level, u[1], mp); err != nil {
			b.Fatal(err)
		}
	}
	// The rest of a national tree: 33 more provinces of 100 communes each
	// (the 2025 map has 34 provinces and 3,321 communes), so that what a
	// batch does per unit under VN (the known and stale figures of VN's
	// roll-ups) meets a real tree's size. Their boundaries do not matter:
	// the events name their unit.
	ring := []float64{109, 10, 109, 11, 110, 11, 110, 10, 109, 10}
	far := geom.NewMultiPolygonFlat(geom.XY, ring, [][]int{{len(ring)}}).SetSRID(postgis.SRID)
	if _, err := d.pool.Exec(ctx, `INSERT INTO admin_unit (code, level, parent_code, name_vi, boundary, valid_from)
		SELECT 'b' || p, 'province', 'VN', 'b' || p, $1::geometry, timestamptz '2020-01-01' FROM generate_series(1, 33) p
		UNION ALL
		SELECT 'b' || p || '-' || c, 'commune', 'b' || p, 'b' || p || '-' || c, $1::geometry, timestamptz '2020-01-01'
		FROM generate_series(1, 33) p, generate_series(1, 100) c`, far); err != nil {
		b.Fatal(err)
	}
	on := postgis.NewStore(d.pool)
	off, err := postgis.NewStoreWith(d.pool, postgis.StoreConfig{NoRollups: true})
	if err != nil {
		b.Fatal(err)
	}
	// Warm-up, untimed: the partitions, the stations' sensors and states,
	// the plans; then every phase writes to tables in the same condition.
	d.hub(b, on, drainStations)
	d.raw(b, drainStations)

	server := d.serverCPU(b)
	var onT, offT, rawT, onCPU, offCPU, rawCPU, onSrv, offSrv, rawSrv time.Duration
	// hub runs one phase and adds its time and CPU.
	hub := func(store Store, t, cpu, srv *time.Duration) {
		c0, s0 := cpuTime(b), server()
		*t += d.hub(b, store, drainEvents)
		*cpu, *srv = *cpu+cpuTime(b)-c0, *srv+server()-s0
	}
	for i := 0; i < b.N; i++ {
		// On and off take turns at going first (what a phase leaves, the
		// next pays: the server's purges, the GC, autovacuum).
		if i%2 == 0 {
			hub(on, &onT, &onCPU, &onSrv)
			hub(off, &offT, &offCPU, &offSrv)
		} else {
			hub(off, &offT, &offCPU, &offSrv)
			hub(on, &onT, &onCPU, &onSrv)
		}
		c0, s0 := cpuTime(b), server()
		rawT += d.raw(b, drainEvents)
		rawCPU, rawSrv = rawCPU+cpuTime(b)-c0, rawSrv+server()-s0
	}
	n := float64(b.N * drainEvents)
	b.ReportMetric(n/onT.Seconds(), "on_events/s")
	b.ReportMetric(n/offT.Seconds(), "off_events/s")
	b.ReportMetric(n/rawT.Seconds(), "raw_events/s")
	b.ReportMetric(offT.Seconds()/onT.Seconds(), "on/off")
	b.ReportMetric(rawT.Seconds()/onT.Seconds(), "hub/raw")
	// CPU of this process (aggregator, NATS server, the poll of the ack
	// floor; not PostgreSQL) per event, less bent by other load than rates.
	b.ReportMetric(float64(onCPU.Microseconds())/n, "on_cpu-µs/event")
	b.ReportMetric(float64(offCPU.Microseconds())/n, "off_cpu-µs/event")
	b.ReportMetric(float64(rawCPU.Microseconds())/n, "raw_cpu-µs/event")
	// The same with PostgreSQL's CPU (its processes, read from /proc):
	// what roll-ups cost in CPU, the currency of a 2-core machine, whatever
	// else runs beside. cpu_on/off is off's CPU per event over on's (the
	// goal's direction: 1 when roll-ups cost nothing).
	if onSrv+offSrv > 0 {
		b.ReportMetric(float64(onSrv.Microseconds())/n, "on_pg-cpu-µs/event")
		b.ReportMetric(float64(offSrv.Microseconds())/n, "off_pg-cpu-µs/event")
		b.ReportMetric(float64(rawSrv.Microseconds())/n, "raw_pg-cpu-µs/event")
		b.ReportMetric(float64(offCPU+offSrv)/float64(onCPU+onSrv), "cpu_on/off")
		b.ReportMetric(float64(rawCPU+rawSrv)/float64(onCPU+onSrv), "cpu_hub/raw")
	}
	b.ReportMetric(heapMB(), "heap-MB")
	// The in-process server remembers every Nats-Msg-Id of FEEDS for its
	// duplicate window (1 h by default): let it forget them and measure again.
	st, err := d.ne.JS.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		b.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.Duplicates = 100 * time.Millisecond
	if _, err := d.ne.JS.UpdateStream(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	time.Sleep(time.Second) // the server's purge runs on its own timer; nothing to wait on
	b.ReportMetric(heapMB(), "heap-MB-dedup-expired")
}

// heapMB is the heap in use after a garbage collection, in MiB.
func heapMB() float64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapInuse) / (1 << 20)
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU returns a func giving the CPU time used so far by the
// processes of the PostgreSQL server the pool is connected to (its
// postmaster's children: the backends, the WAL writer, the checkpointer;
// not the backends that have exited), read from /proc; 0 where /proc or the
// server's processes cannot be read (another machine, a remote server).
func (d *drainBench) serverCPU(b *testing.B) func() time.Duration {
	var backend int
	if err := d.pool.QueryRow(context.Background(), `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		b.Fatal(err)
	}
	postmaster, _, ok := procStat(backend)
	if !ok {
		return func() time.Duration { return 0 }
	}
	return func() time.Duration {
		dirs, err := os.ReadDir("/proc")
		if err != nil {
			return 0
		}
		var sum time.Duration
		for _, e := range dirs {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if ppid, cpu, ok := procStat(pid); ok && (ppid == postmaster || pid == postmaster) {
				sum += cpu
			}
		}
		return sum
	}
}

// procStat reads the parent and the CPU time (user + system) of process pid
// from /proc/<pid>/stat.
func procStat(pid int) (ppid int, cpu time.Duration, ok bool) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command (field 2) is in parentheses and may hold spaces: the
	// fields after its closing one are state, ppid, … utime (14), stime (15).
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0, 0, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	utime, err2 := strconv.ParseInt(f[11], 10, 64)
	stime, err3 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, false
	}
	const ticks = 100 // USER_HZ, 100 on Linux
	return ppid, time.Duration(utime+stime) * time.Second / ticks, true
}

// events builds n observations for the feed subject of ward u: the
// messages as ingest publishes them.
func (d *drainBench) events(b *testing.B, u string, n int) []*nats.Msg {
	msgs := make([]*nats.Msg, n)
	for i := range msgs {
		k := d.next
		d.next++
		at := t0.Add(time.Duration(k) * 10 * time.Millisecond)
		m := feedMsg(b, subjects.KindAir, airEvent(b, k%drainStations, at, float64(5+k%150)), "")
		m.Subject = subjects.Feed(province, u, subjects.KindAir)
		msgs[i] = m
	}
	return msgs
}

// publish puts msgs on FEEDS (async, in chunks within the client's bound
// of outstanding publishes, every ack awaited) and returns the stream
// sequence of the last.
func (d *drainBench) publish(b *testing.B, msgs []*nats.Msg) uint64 {
	const chunk = 1000
	var last uint64
	for len(msgs) > 0 {
		n := min(chunk, len(msgs))
		futures := make([]jetstream.PubAckFuture, 0, n)
		for _, m := range msgs[:n] {
			f, err := d.ne.JS.PublishMsgAsync(m)
			if err != nil {
				b.Fatal(err)
			}
			futures = append(futures, f)
		}
		msgs = msgs[n:]
		for _, f := range futures {
			select {
			case a := <-f.Ok():
				last = max(last, a.Sequence)
			case err := <-f.Err():
				b.Fatal(err)
			case <-time.After(time.Minute):
				b.Fatal("no publish ack within a minute")
			}
		}
	}
	return last
}

// hub publishes n events, then runs an aggregator on store until its
// durable acked the last of them, and returns that time.
func (d *drainBench) hub(b *testing.B, store Store, n int) time.Duration {
	last := d.publish(b, d.events(b, unit, n))
	before := d.count(b)
	svc, err := New(Config{Durable: "agg-drain", FilterSubject: subjects.Feed(province, unit, subjects.KindAir),
		ExpiryInterval: -1, ReportSweepInterval: -1, StaleSweepInterval: -1},
		Deps{JS: d.ne.JS, Store: store, Logger: d.log, Metrics: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- svc.Run(ctx) }()
	d.waitAcked(b, "agg-drain", last)
	took := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if got := d.count(b) - before; got != n {
		b.Fatalf("aggregator stored %d rows of %d", got, n)
	}
	return took
}

// waitAcked polls the durable until its ack floor reaches seq.
func (d *drainBench) waitAcked(b *testing.B, durable string, seq uint64) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		c, err := d.ne.JS.Consumer(context.Background(), subjects.StreamFeeds, durable)
		if err == nil {
			info, err := c.Info(context.Background())
			if err == nil && info.AckFloor.Stream >= seq {
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("durable %s did not ack up to %d within 5 minutes", durable, seq)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (d *drainBench) count(b *testing.B) int {
	var n int
	if err := d.pool.QueryRow(context.Background(), "SELECT count(*) FROM air_observation").Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// rawCols are the columns the raw baseline copies (those a feed item sets).
var rawCols = []string{"source_id", "event_id", "observed_at", "received_at", "station_id", "province", "unit_code",
	"location", "pm25", "pm10", "no2", "o3", "co", "so2", "extra"}

// raw publishes n events on another ward's subject and drains them with a
// bare durable consumer and COPY, as described on BenchmarkAggregatorDrain.
func (d *drainBench) raw(b *testing.B, n int) time.Duration {
	const rawUnit = "00071"
	msgs := d.events(b, rawUnit, n)
	rows := make([]postgis.AirRow, n)
	for i, m := range msgs {
		dec, err := decode(m.Subject, m.Header, m.Data, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		rows[i] = dec.row.(postgis.AirRow)
		rows[i].Location.SetSRID(postgis.SRID)
	}
	last := d.publish(b, msgs)
	first := last - uint64(n) + 1
	before := d.count(b)
	ctx := context.Background()
	name := fmt.Sprintf("raw-drain-%d", last)

	start := time.Now()
	cons, err := d.ne.JS.CreateOrUpdateConsumer(ctx, subjects.StreamFeeds, jetstream.ConsumerConfig{
		Durable: name, FilterSubject: subjects.Feed(province, rawUnit, subjects.KindAir),
		AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 4 * drainBatch,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: first,
	})
	if err != nil {
		b.Fatal(err)
	}
	for got := 0; got < n; {
		batch, err := collect(cons.FetchNoWait(drainBatch))
		if err != nil {
			b.Fatal(err)
		}
		if len(batch) == 0 {
			if batch, err = collect(cons.Fetch(drainBatch, jetstream.FetchMaxWait(200*time.Millisecond))); err != nil {
				b.Fatal(err)
			}
		}
		idx := make([]int, len(batch))
		for j, m := range batch {
			md, err := m.Metadata()
			if err != nil {
				b.Fatal(err)
			}
			idx[j] = int(md.Sequence.Stream - first)
		}
		err = pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"air_observation"}, rawCols, pgx.CopyFromSlice(len(idx), func(j int) ([]any, error) {
				r := &rows[idx[j]]
				return []any{r.SourceID, r.EventID, r.ObservedAt, r.ReceivedAt, r.StationID, r.Province, r.UnitCode,
					r.Location, r.PM25, r.PM10, r.NO2, r.O3, r.CO, r.SO2, r.Extra}, nil
			}))
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range batch {
			if err := m.Ack(); err != nil {
				b.Fatal(err)
			}
		}
		got += len(batch)
	}
	d.waitAcked(b, name, last)
	took := time.Since(start)
	if err := d.ne.JS.DeleteConsumer(ctx, subjects.StreamFeeds, name); err != nil {
		b.Fatal(err)
	}
	if got := d.count(b) - before; got != n {
		b.Fatalf("raw COPY stored %d rows of %d", got, n)
	}
	return took
}

// collect drains one fetch; running out of messages or time is not an error.
func collect(b jetstream.MessageBatch, err error) ([]jetstream.Msg, error) {
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	for m := range b.Messages() {
		msgs = append(msgs, m)
	}
	if err := b.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) {
		return msgs, err
	}
	return msgs, nil
}
