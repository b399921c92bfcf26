package aggregator

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// BenchmarkRollupLatency measures, one observation at a time, the time from
// the publish of an air observation on FEEDS to the arrival of its unit's 1m
// roll-up from ROLLUPS (rollup-p50-ms), and from the roll-up's updatedAt
// (the write transaction's start, on the database's clock, the same machine)
// to that arrival (tx-to-rollup-p50-ms). The baseline in the same run is a
// bare NATS publish to a subscriber on the same connection (nats-rtt-p50-ms).
func BenchmarkRollupLatency(b *testing.B) {
	ne, pool := testenv.NATS(b), testenv.PostGIS(b).Pool
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := New(Config{Durable: "agg-bench", AckWait: 2 * time.Second, RetryDelay: 100 * time.Millisecond},
		Deps{JS: ne.JS, Store: postgis.NewStore(pool), Logger: log, Metrics: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Run: %v", err)
		}
	}()
	got := make(chan *nats.Msg, 64)
	sub, err := ne.Conn.ChanSubscribe(subjects.Rollup(province, unit, subjects.KindAir, "1m"), got)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	rtt := make(chan *nats.Msg, 64)
	rsub, err := ne.Conn.ChanSubscribe("bench.rtt", rtt)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = rsub.Unsubscribe() }()

	var total, tx, raw []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		at := t0.Add(time.Duration(i) * time.Minute)
		msg := feedMsg(b, subjects.KindAir, airEvent(b, i%10, at, float64(10+i%50)), "")
		sent := time.Now()
		if _, err := ne.JS.PublishMsg(context.Background(), msg); err != nil {
			b.Fatal(err)
		}
		for deadline := time.After(30 * time.Second); ; {
			var m *nats.Msg
			select {
			case m = <-got:
			case <-deadline:
				b.Fatalf("observation %d: no roll-up of its minute within 30 s", i)
			}
			arrived := time.Now()
			var r rollupJSON
			if err := json.Unmarshal(m.Data, &r); err != nil {
				b.Fatal(err)
			}
			if r.WindowStart.Equal(at) {
				total, tx = append(total, arrived.Sub(sent)), append(tx, arrived.Sub(r.UpdatedAt))
				break
			}
		}

		sent = time.Now()
		if err := ne.Conn.Publish("bench.rtt", msg.Data); err != nil {
			b.Fatal(err)
		}
		select {
		case <-rtt:
			raw = append(raw, time.Since(sent))
		case <-time.After(10 * time.Second):
			b.Fatal("bare NATS message not received within 10 s")
		}
	}
	b.StopTimer()
	p50 := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2]) / float64(time.Millisecond)
	}
	b.ReportMetric(p50(total), "rollup-p50-ms")
	b.ReportMetric(p50(tx), "tx-to-rollup-p50-ms")
	b.ReportMetric(p50(raw), "nats-rtt-p50-ms")
}
