package gateway

import (
	"context"
	"io"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/gateway/pgread"
)

// BenchmarkHistory: GET /v1/history of one station over 1 M raw air
// observations (one every 30 s, 347 days; IOCHUB_BENCH_HISTORY_ROWS, else
// 100 000 so that make bench-smoke stays quick), 1000 points, beside the same
// statement (pgread.SQLHistoryAirEntity) run through pgx with the same
// arguments and its rows scanned, in the same run.
func BenchmarkHistory(b *testing.B) {
	db := testenv.PostGIS(b)
	ctx := context.Background()
	t0 := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	rows := 100_000
	if s := os.Getenv("IOCHUB_BENCH_HISTORY_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1000 {
			b.Fatalf("IOCHUB_BENCH_HISTORY_ROWS=%q: want a number of at least 1000", s)
		}
		rows = n
	}
	if _, err := db.Pool.Exec(ctx, `
CREATE TABLE air_observation_bench PARTITION OF air_observation DEFAULT;
INSERT INTO sensor (kind, id, province, unit_code, source_id, last_event_id, last_observed_at)
VALUES ('air', 'st-bench', '01', '00070', 'b', 'x', now())`); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `
INSERT INTO air_observation (source_id, event_id, observed_at, received_at, station_id, province, unit_code, pm25, pm10, no2, o3, co, so2, aqi)
SELECT 'b', 'e' || i, $1::timestamptz + i * interval '30 seconds', $1::timestamptz, 'st-bench', '01', '00070',
       (i % 977) / 10.0, (i % 541) / 5.0, i % 97, i % 89, i % 7, i % 13, (i % 300)::int
FROM generate_series(0, $2 - 1) AS i`, t0, rows); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `ANALYZE air_observation`); err != nil {
		b.Fatal(err)
	}
	t1 := t0.Add(time.Duration(rows) * 30 * time.Second)
	g, err := New(Config{}, Deps{JS: testenv.NATS(b).JS, Pool: db.Pool, Metrics: prometheus.NewRegistry(), Auth: testAuth(b, nil)})
	if err != nil {
		b.Fatal(err)
	}
	srv := serveGateway(b, g, withTestToken)
	const points = 1000
	url := srv.URL + "/v1/history?entity=st-bench&layer=air&points=1000&from=" + rfc(t0) + "&to=" + rfc(t1)

	b.Run("api", func(b *testing.B) {
		for b.Loop() {
			resp, err := http.Get(url)
			if err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || n < points*100 {
				b.Fatalf("GET = %d, %d bytes", resp.StatusCode, n)
			}
		}
	})
	b.Run("raw-pgx", func(b *testing.B) {
		p := planHistory(historyParams{Entity: "st-bench", From: t0, To: t1, Points: points})
		for b.Loop() {
			r, err := db.Pool.Query(ctx, pgread.SQLHistoryAirEntity, "st-bench", p.Bucket.Seconds(), p.Origin, t1, true, []string{}, []string{})
			if err != nil {
				b.Fatal(err)
			}
			dest := make([]any, 23)
			var t time.Time
			var c int64
			figs := make([]*float64, 21)
			dest[0], dest[1] = &t, &c
			for i := range figs {
				dest[2+i] = &figs[i]
			}
			n := 0
			for r.Next() {
				if err := r.Scan(dest...); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if err := r.Err(); err != nil || n != points {
				b.Fatalf("%d rows, %v; want %d", n, err, points)
			}
		}
	})
}
