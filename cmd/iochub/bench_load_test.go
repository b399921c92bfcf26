package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/iochub/iochub/internal/loadgen"
	"github.com/iochub/iochub/internal/testenv"
)

// loadSettings are the end-to-end load's rate and length: E2E_RATE
// (default 20000 events/s) and E2E_DURATION (default 60s; 10s when
// BENCH_QUICK is set).
func loadSettings(b *testing.B) (float64, time.Duration) {
	r, d := 20000.0, 60*time.Second
	if os.Getenv("BENCH_QUICK") != "" {
		d = 10 * time.Second
	}
	if v := os.Getenv("E2E_RATE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			b.Fatalf("E2E_RATE: %v", err)
		}
		r = f
	}
	if v := os.Getenv("E2E_DURATION"); v != "" {
		x, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("E2E_DURATION: %v", err)
		}
		d = x
	}
	return r, d
}

// BenchmarkEndToEndLoad offers E2E_RATE air observations a second for
// E2E_DURATION through the whole hub (HTTP ingest, FEEDS, the aggregator and
// PostGIS, STATE, the gateway's live view), with internal/loadgen (which
// shares no code with the hub), then the same items through a bare
// pipeline in the same run: raw JetStream publish → raw durable consumer →
// raw COPY → raw publish → raw subscriber. It reports both latencies and
// throughputs and hub/bare: "fixed" at the rate, "max" as fast as each
// goes. Run it with -benchtime 1x.
func BenchmarkEndToEndLoad(b *testing.B) {
	rateN, dur := loadSettings(b)
	for _, mode := range []struct {
		name string
		rate float64
	}{{"fixed", rateN}, {"max", 0}} {
		b.Run(mode.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				hubRes := runHubLoad(b, mode.rate, dur)
				bareRes := runBareLoad(b, mode.rate, dur)
				b.Logf("hub:  %s", hubRes)
				b.Logf("bare: %s", bareRes)
				b.ReportMetric(hubRes.StoredRate(), "hub-events/s")
				b.ReportMetric(bareRes.StoredRate(), "bare-events/s")
				if bareRes.StoredRate() > 0 {
					b.ReportMetric(hubRes.StoredRate()/bareRes.StoredRate(), "hub/bare")
				}
				b.ReportMetric(float64(hubRes.P50.Microseconds())/1000, "hub-p50-ms")
				b.ReportMetric(float64(hubRes.P99.Microseconds())/1000, "hub-p99-ms")
				b.ReportMetric(float64(bareRes.P50.Microseconds())/1000, "bare-p50-ms")
				b.ReportMetric(float64(bareRes.P99.Microseconds())/1000, "bare-p99-ms")
				b.ReportMetric(100*hubRes.SeenShare(), "hub-seen-%")
				b.ReportMetric(float64(hubRes.Behind), "hub-behind")
				b.ReportMetric(0, "ns/op")
				if hubRes.Accepted == 0 || hubRes.Behind > 0 {
					b.Errorf("the hub accepted %d, %d stations behind at the end: %s", hubRes.Accepted, hubRes.Behind, hubRes.FirstError)
				}
			}
		})
	}
}

func runHubLoad(b *testing.B, r float64, dur time.Duration) loadgen.Result {
	b.Helper()
	n := testenv.NATS(b)
	db := testenv.PostGISWithUnits(b)
	h := startHubTB(b, "all", n, db, func(c *config) { c.Ingest.Limits.SourceRate = -1; c.Ingest.Limits.SourceConcurrency = 16 })
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		URL: h.url, Token: devToken, Province: "01", Rate: r, Duration: dur,
	})
	if err != nil {
		b.Fatalf("load: %v (%s)", err, res)
	}
	return res
}

// runBareLoad is the baseline: the generator's items published to a
// JetStream stream with message ids (dedup), a durable pull consumer that
// COPYs each fetch into a table with a primary key in one transaction and
// then publishes each row's id on core NATS, and a subscriber that matches
// them like the live view's frames.
func runBareLoad(b *testing.B, r float64, dur time.Duration) loadgen.Result {
	b.Helper()
	ctx := context.Background()
	n := testenv.NATS(b)
	db := testenv.PostGISWithUnits(b)
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE bare_obs (id text PRIMARY KEY, station text NOT NULL,
		observed_at timestamptz NOT NULL, lon float8, lat float8, pm25 float8, body bytea)`); err != nil {
		b.Fatal(err)
	}
	if _, err := n.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "BARE", Subjects: []string{"bare.feed.>"},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}); err != nil {
		b.Fatal(err)
	}
	cons, err := n.JS.CreateOrUpdateConsumer(ctx, "BARE", jetstream.ConsumerConfig{Durable: "bare", AckPolicy: jetstream.AckAllPolicy, MaxAckPending: 20000})
	if err != nil {
		b.Fatal(err)
	}
	g := loadgen.NewGenerator("bare"+strconv.FormatInt(time.Now().UnixMilli()%1e6, 36), 2000, [4]float64{105.80, 21.00, 105.86, 21.05})
	tr := loadgen.NewTracker(g)
	sub, err := n.Conn.Subscribe("bare.state.>", func(m *nats.Msg) { tr.Seen(string(m.Data), time.Now()) })
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	_ = sub.SetPendingLimits(-1, -1)

	// The consumer: fetch up to 500, COPY, commit, publish, ack.
	stop := make(chan struct{})
	consDone := make(chan error, 1)
	go func() { consDone <- bareConsume(ctx, cons, db, n.Conn, stop) }()

	res := loadgen.Result{}
	var lim *rate.Limiter
	const batch, workers = 200, 8
	if r > 0 {
		lim = rate.NewLimiter(rate.Limit(r/batch), workers)
	}
	sendCtx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var mine []int
			for s := w; s < g.Stations(); s += workers {
				mine = append(mine, s)
			}
			next := 0
			var buf []byte
			refs := make([]loadgen.Ref, 0, batch)
			for sendCtx.Err() == nil {
				if lim != nil && lim.Wait(sendCtx) != nil {
					return
				}
				refs = refs[:0]
				futs := make([]jetstream.PubAckFuture, 0, batch)
				t0 := time.Now()
				for i := 0; i < batch; i++ {
					s := mine[next%len(mine)]
					next++
					var ref loadgen.Ref
					buf, ref = g.Append(buf[:0], s)
					refs = append(refs, ref)
					m := &nats.Msg{Subject: "bare.feed.01." + strconv.Itoa(s), Data: append([]byte(nil), buf...), Header: nats.Header{}}
					m.Header.Set(jetstream.MsgIDHeader, g.ItemID(ref))
					f, err := n.JS.PublishMsgAsync(m)
					if err != nil {
						b.Error(err)
						return
					}
					futs = append(futs, f)
				}
				tr.Sent(refs, t0)
				ok := refs[:0:0]
				for i, f := range futs {
					select {
					case <-f.Ok():
						ok = append(ok, refs[i])
					case err := <-f.Err():
						b.Error(err)
						return
					}
				}
				tr.Accepted(ok)
				mu.Lock()
				res.Posts++
				res.Offered += len(refs)
				res.Accepted += len(ok)
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	res.Send = time.Since(start)
	for end := time.Now().Add(30 * time.Second); tr.Behind() > 0 && time.Now().Before(end); {
		tr.WaitChange(50 * time.Millisecond)
	}
	res.Total = time.Since(start)
	res.Behind = tr.Behind()
	res.Seen, res.P50, res.P99, res.Max = tr.Latencies()
	close(stop)
	if err := <-consDone; err != nil {
		b.Fatalf("bare consumer: %v", err)
	}
	return res
}

// bareObs is what the bare consumer reads of an item.
type bareObs struct {
	ID       string `json:"id"`
	Station  string `json:"refPointOfInterest"`
	Observed string `json:"dateObserved"`
	Location struct {
		Coordinates [2]float64 `json:"coordinates"`
	} `json:"location"`
	PM25 float64 `json:"pm25"`
}

func bareConsume(ctx context.Context, cons jetstream.Consumer, db *testenv.DBEnv, nc *nats.Conn, stop <-chan struct{}) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(2000))
	if err != nil {
		return err
	}
	defer it.Stop()
	for {
		// The first message of a batch waits; the rest are what is there
		// already (up to 500), as a consumer that batches without adding
		// latency takes them.
		var msgs []jetstream.Msg
		for len(msgs) == 0 {
			select {
			case <-stop:
				return nil
			default:
			}
			m, err := it.Next(jetstream.NextMaxWait(100 * time.Millisecond))
			if err == nil {
				msgs = append(msgs, m)
			} else if !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
				return err
			}
		}
		for len(msgs) < 500 {
			m, err := it.Next(jetstream.NextMaxWait(time.Millisecond))
			if err != nil {
				break
			}
			msgs = append(msgs, m)
		}
		rows := make([][]any, 0, len(msgs))
		ids := make([]string, 0, len(msgs))
		for _, m := range msgs {
			var o bareObs
			if err := json.Unmarshal(m.Data(), &o); err != nil {
				return fmt.Errorf("decoding %q: %w", m.Data(), err)
			}
			at, err := time.Parse(time.RFC3339Nano, o.Observed)
			if err != nil {
				return err
			}
			rows = append(rows, []any{o.ID, o.Station, at, o.Location.Coordinates[0], o.Location.Coordinates[1], o.PM25, m.Data()})
			ids = append(ids, o.ID)
		}
		tx, err := db.Pool.Begin(ctx)
		if err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"bare_obs"}, []string{"id", "station", "observed_at", "lon", "lat", "pm25", "body"}, pgx.CopyFromRows(rows)); err != nil {
			_ = tx.Rollback(ctx)
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		for _, id := range ids {
			if err := nc.Publish("bare.state.01", []byte(id)); err != nil {
				return err
			}
		}
		if err := msgs[len(msgs)-1].Ack(); err != nil {
			return err
		}
	}
}
