package gateway

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/gateway/pgread"
)

// ogcBenchClients is how many clients query at once.
const ogcBenchClients = 16

// BenchmarkOGCItems: GET /ogc/collections/stations/items?bbox=<random
// 0.1° box in Việt Nam>&limit=100 by 16 concurrent clients over stored
// stations, beside the baseline: the same statements (page and
// numberMatched, from FeatureQuery.Build) sent directly through pgx in one
// batch on the same pool, the rows read and dropped: the API adds HTTP,
// authentication, the read-only transaction with its statement_timeout and
// the Feature framing. It reports req/s and the p99
// latency of each; api/x-of-sql is the API's share of the baseline's rate.
// IOCHUB_BENCH_OGC_ROWS sets the stations stored (default 20 000, quick
// enough for bench-smoke; docs/benchmarks.md has 1 000 000).
func BenchmarkOGCItems(b *testing.B) {
	rows := 20000
	if v := os.Getenv("IOCHUB_BENCH_OGC_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("IOCHUB_BENCH_OGC_ROWS=%q: want a positive number", v)
		}
		rows = n
	}
	db := testenv.PostGIS(b)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO sensor (kind, id, name, province, unit_code, source_id, location, last_event_id, last_observed_at, last_values)
		SELECT 'air', 'b-' || i, 'Trạm ' || i, '01', '01', 'bench',
		       ST_SetSRID(ST_MakePoint(102 + random() * 7.5, 8.5 + random() * 15), 4326), 'e', now(),
		       jsonb_build_object('pm25', 20, 'aqi', jsonb_build_object('hourly', 60, 'band', 2))
		FROM generate_series(1, $1::int) i`, rows); err != nil {
		b.Fatal(err)
	}
	// Set hint bits and the visibility map now, not during the first run measured.
	if _, err := db.Pool.Exec(ctx, `VACUUM ANALYZE sensor`); err != nil {
		b.Fatal(err)
	}
	// Read the table and its GiST index once, so neither side measured first pays the cold cache.
	var warm int64
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM sensor WHERE location && ST_MakeEnvelope(100, 0, 120, 30, 4326)
		AND length(last_values::text) > 0`).Scan(&warm); err != nil {
		b.Fatal(err)
	}
	g, err := New(Config{}, Deps{JS: testenv.NATS(b).JS, Pool: db.Pool, Metrics: prometheus.NewRegistry(), Auth: testAuth(b, nil)})
	if err != nil {
		b.Fatal(err)
	}
	srv := serveGateway(b, g)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: ogcBenchClients}}
	c := pgread.CollectionByID("stations")

	box := func(r *rand.Rand) [4]float64 {
		x, y := 102+r.Float64()*7.4, 8.5+r.Float64()*14.9
		return [4]float64{x, y, x + 0.1, y + 0.1}
	}
	var sqlRate float64
	b.Run("sql", func(b *testing.B) {
		sqlRate = ogcBenchRun(b, func(r *rand.Rand) error {
			bb := box(r)
			page, count, vals, countArgs, err := pgread.FeatureQuery{C: c, Scope: pgread.Scope{All: true}, BBox: &bb, Limit: 100, Count: true}.Build()
			if err != nil {
				return err
			}
			// One round trip for both, as the API sends them.
			batch := &pgx.Batch{}
			batch.Queue(page, vals...)
			batch.Queue(count, vals[:countArgs]...)
			br := db.Pool.SendBatch(ctx, batch)
			defer br.Close()
			rs, err := br.Query()
			if err != nil {
				return err
			}
			for rs.Next() {
				_ = rs.RawValues()
			}
			rs.Close()
			if rs.Err() != nil {
				return rs.Err()
			}
			var n int64
			return br.QueryRow().Scan(&n)
		})
	})
	b.Run("api", func(b *testing.B) {
		rate := ogcBenchRun(b, func(r *rand.Rand) error {
			bb := box(r)
			u := fmt.Sprintf("%s/ogc/collections/stations/items?limit=100&bbox=%g,%g,%g,%g", srv.URL, bb[0], bb[1], bb[2], bb[3])
			req, err := http.NewRequest(http.MethodGet, u, nil)
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET %s = %d", u, resp.StatusCode)
			}
			return nil
		})
		if sqlRate > 0 {
			b.ReportMetric(rate/sqlRate, "x-of-sql")
		}
	})
}

// ogcBenchRun runs do b.N times from ogcBenchClients goroutines and
// reports req/s and p99-ms; it returns the rate.
func ogcBenchRun(b *testing.B, do func(r *rand.Rand) error) float64 {
	b.SetParallelism((ogcBenchClients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	var mu sync.Mutex
	var lat []time.Duration
	var seed uint64
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		seed++
		r := rand.New(rand.NewPCG(seed, 42))
		mu.Unlock()
		var mine []time.Duration
		for pb.Next() {
			t0 := time.Now()
			if err := do(r); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	p99 := lat[min(len(lat)-1, len(lat)*99/100)]
	rate := float64(len(lat)) / elapsed.Seconds()
	b.ReportMetric(rate, "req/s")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	return rate
}
