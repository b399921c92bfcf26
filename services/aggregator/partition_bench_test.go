package aggregator

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// scaleProvinces are the partitions of BenchmarkAggregatorScaling.
var scaleProvinces = []string{"01", "02", "04", "06", "08", "10", "11", "12"}

// scaleInstances are the numbers of partitioned aggregators measured.
var scaleInstances = []int{1, 2, 4}

// BenchmarkAggregatorScaling measures partitioned aggregators (--partitioned)
// draining FEEDS: 1, then 2, then 4 instances in this process (each with its
// own NATS connection and database pool, as processes would have) share 8
// provinces; once each holds its share and has stored one item of each of
// its provinces (untimed: the services warmed), drainEvents air observations spread
// evenly over the provinces (250 stations each) are published, and the clock
// runs from the first publish until every partition's durable acked the last
// of its items. The baseline in the same iteration is one bare durable
// consumer of every province (fetch 500, decode, COPY into air_observation in
// one transaction, ack), running while the same number of new items is
// published the same way. Each iteration runs the four phases in another
// order. Reported: events/s of each instance count, the
// ratios ×2/×1 and ×4/×1, raw events/s and 1/raw (one partitioned
// instance: every province's durable, roll-ups on, against the bare COPY).
func BenchmarkAggregatorScaling(b *testing.B) {
	e := newPartitionedEnv(b, scaleProvinces)
	// Longer than the tests' shortest: a loaded machine must not make an
	// instance lose a lease (and a partition move) in the middle of a phase.
	e.leaseTTL = 10 * time.Second
	if os.Getenv("BENCH_QUICK") != "" {
		// scripts/bench.sh's quick run: its phases last a second, and the
		// shares settle in ticks of a third of the TTL (most of the run's
		// time at 10 s: 7 ticks for 4 instances). On a loaded machine a
		// lease may then lapse mid-phase: a quick figure may include a
		// partition's move (the phase still waits for every ack).
		e.leaseTTL = MinLeaseTTL
	}
	s := &scaleBench{e: e}
	s.phase(b, 1, 2000) // untimed: the month's partitions, the sensors, the plans
	took := make([]time.Duration, len(scaleInstances))
	var rawT time.Duration
	for i := 0; i < b.N; i++ {
		// Each iteration starts at another phase, so that none is always
		// the first after the last (the database's background work).
		for p := range len(scaleInstances) + 1 {
			j := (i + p) % (len(scaleInstances) + 1)
			if j == len(scaleInstances) {
				rawT += s.raw(b, drainEvents)
				continue
			}
			took[j] += s.phase(b, scaleInstances[j], drainEvents)
		}
	}
	n := float64(b.N * drainEvents)
	for j, k := range scaleInstances {
		b.ReportMetric(n/took[j].Seconds(), fmt.Sprintf("x%d_events/s", k))
	}
	b.ReportMetric(took[0].Seconds()/took[1].Seconds(), "x2/x1")
	b.ReportMetric(took[0].Seconds()/took[2].Seconds(), "x4/x1")
	b.ReportMetric(n/rawT.Seconds(), "raw_events/s")
	b.ReportMetric(rawT.Seconds()/took[0].Seconds(), "x1/raw")
}

type scaleBench struct {
	e      *partitionedEnv
	next   int // numbers the events: each phase's are new
	phases int
}

// events builds n air observations spread over the provinces, each
// province's from its own 250 stations.
func (s *scaleBench) events(b *testing.B, n int) []*nats.Msg {
	msgs := make([]*nats.Msg, n)
	np := len(scaleProvinces)
	for i := range msgs {
		k := s.next
		s.next++
		pi := k % np
		p := scaleProvinces[pi]
		at := t0.Add(time.Duration(k) * 10 * time.Millisecond)
		m := feedMsg(b, subjects.KindAir, airEvent(b, pi*1000+(k/np)%250, at, float64(5+k%150)), "")
		m.Subject = subjects.Feed(p, partitionUnit(p), subjects.KindAir)
		msgs[i] = m
	}
	return msgs
}

// publish puts msgs on FEEDS (async, chunked, every ack awaited) and
// returns the last sequence of each province.
func (s *scaleBench) publish(b *testing.B, msgs []*nats.Msg) map[string]uint64 {
	last := map[string]uint64{}
	const chunk = 1000
	for len(msgs) > 0 {
		n := min(chunk, len(msgs))
		futures := make([]jetstream.PubAckFuture, 0, n)
		for _, m := range msgs[:n] {
			f, err := s.e.ne.JS.PublishMsgAsync(m)
			if err != nil {
				b.Fatal(err)
			}
			futures = append(futures, f)
		}
		for i, f := range futures {
			select {
			case a := <-f.Ok():
				p, _, _, _ := subjects.ParseFeed(msgs[i].Subject)
				last[p] = max(last[p], a.Sequence)
			case err := <-f.Err():
				b.Fatal(err)
			case <-time.After(time.Minute):
				b.Fatal("no publish ack within a minute")
			}
		}
		msgs = msgs[n:]
	}
	return last
}

// phase starts k partitioned aggregators, waits until each holds its
// share, publishes n events and returns the time until every partition
// acked its last; then it stops them (releasing their leases).
func (s *scaleBench) phase(b *testing.B, k, n int) time.Duration {
	s.phases++
	ins := make([]*instance, k)
	for i := range ins {
		ins[i] = s.e.start(b, fmt.Sprintf("p%d-%d", s.phases, i))
	}
	np := len(scaleProvinces)
	s.e.waitShares(b, ins, np/k, (np+k-1)/k)
	// One item per province first, untimed: every partition's service has
	// warmed its books and is consuming before the clock starts.
	for p, seq := range s.publish(b, s.events(b, np)) {
		waitAckedTB(b, s.e.ne.JS, partitionDurable(p), seq)
	}
	msgs := s.events(b, n)
	before := s.count(b)
	start := time.Now()
	last := s.publish(b, msgs)
	for p, seq := range last {
		waitAckedTB(b, s.e.ne.JS, partitionDurable(p), seq)
	}
	took := time.Since(start)
	for _, in := range ins {
		if err := in.run.Stop(); err != nil {
			b.Fatal(err)
		}
	}
	if got := s.count(b) - before; got != n {
		b.Fatalf("%d aggregators stored %d rows of %d", k, got, n)
	}
	return took
}

// raw drains n new events of every province with one bare durable consumer
// and COPY while they are published.
func (s *scaleBench) raw(b *testing.B, n int) time.Duration {
	ctx := context.Background()
	st, err := s.e.ne.JS.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		b.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		b.Fatal(err)
	}
	name := fmt.Sprintf("raw-scale-%d", info.State.LastSeq)
	cons, err := s.e.ne.JS.CreateOrUpdateConsumer(ctx, subjects.StreamFeeds, jetstream.ConsumerConfig{
		Durable: name, FilterSubject: subjects.FeedsAll, AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 4 * drainBatch,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: info.State.LastSeq + 1,
	})
	if err != nil {
		b.Fatal(err)
	}
	msgs := s.events(b, n)
	before := s.count(b)
	var wg sync.WaitGroup
	var drainErr error
	start := time.Now()
	wg.Go(func() { drainErr = s.drainRaw(ctx, cons, n) })
	s.publish(b, msgs)
	wg.Wait()
	took := time.Since(start)
	if drainErr != nil {
		b.Fatal(drainErr)
	}
	if err := s.e.ne.JS.DeleteConsumer(ctx, subjects.StreamFeeds, name); err != nil {
		b.Fatal(err)
	}
	if got := s.count(b) - before; got != n {
		b.Fatalf("raw COPY stored %d rows of %d", got, n)
	}
	return took
}

// drainRaw fetches, decodes, COPYs and acks n messages of cons.
func (s *scaleBench) drainRaw(ctx context.Context, cons jetstream.Consumer, n int) error {
	for got := 0; got < n; {
		batch, err := collect(cons.FetchNoWait(drainBatch))
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			if batch, err = collect(cons.Fetch(drainBatch, jetstream.FetchMaxWait(200*time.Millisecond))); err != nil {
				return err
			}
		}
		rows := make([]postgis.AirRow, len(batch))
		for i, m := range batch {
			d, err := decode(m.Subject(), m.Headers(), m.Data(), time.Now())
			if err != nil {
				return err
			}
			rows[i] = d.row.(postgis.AirRow)
			rows[i].Location.SetSRID(postgis.SRID)
		}
		err = pgx.BeginFunc(ctx, s.e.db.Pool, func(tx pgx.Tx) error {
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"air_observation"}, rawCols, pgx.CopyFromSlice(len(rows), func(j int) ([]any, error) {
				r := &rows[j]
				return []any{r.SourceID, r.EventID, r.ObservedAt, r.ReceivedAt, r.StationID, r.Province, r.UnitCode,
					r.Location, r.PM25, r.PM10, r.NO2, r.O3, r.CO, r.SO2, r.Extra}, nil
			}))
			return err
		})
		if err != nil {
			return err
		}
		for _, m := range batch {
			if err := m.Ack(); err != nil {
				return err
			}
		}
		got += len(batch)
	}
	return nil
}

func (s *scaleBench) count(b *testing.B) int {
	var n int
	if err := s.e.db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM air_observation").Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// waitAckedTB polls durable until its ack floor reaches seq.
func waitAckedTB(b *testing.B, js jetstream.JetStream, durable string, seq uint64) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		c, err := js.Consumer(context.Background(), subjects.StreamFeeds, durable)
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
