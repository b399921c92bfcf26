package postgis

import (
	"context"
	"fmt"
	"maps"
	"os"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/testenv"
)

// sqlGaugesFromHistory is the baseline of BenchmarkRollupGauges, the gauges
// by plain SQL: every change of the unit and layer up to the end of the
// window, as the 1d rows of the days before its day plus the rows of its
// length in its day up to it (what sqlRollupGauges read before migration
// 00037).
const sqlGaugesFromHistory = `SELECT i.ord,
    coalesce(sum(r.activated0_n - r.ended0_n), 0)::bigint, coalesce(sum(r.activated1_n - r.ended1_n), 0)::bigint,
    coalesce(sum(r.activated2_n - r.ended2_n), 0)::bigint, coalesce(sum(r.activated3_n - r.ended3_n), 0)::bigint,
    coalesce(sum(r.activated4_n - r.ended4_n), 0)::bigint, coalesce(sum(r.open_n - r.closed_n), 0)::bigint
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])
    WITH ORDINALITY AS i (unit_code, layer, win, start, day, ord)
CROSS JOIN LATERAL (
    SELECT activated0_n, activated1_n, activated2_n, activated3_n, activated4_n,
        ended0_n, ended1_n, ended2_n, ended3_n, ended4_n, open_n, closed_n
    FROM rollup WHERE unit_code = i.unit_code AND layer = i.layer AND win = '1d' AND window_start < i.day
    UNION ALL
    SELECT activated0_n, activated1_n, activated2_n, activated3_n, activated4_n,
        ended0_n, ended1_n, ended2_n, ended3_n, ended4_n, open_n, closed_n
    FROM rollup WHERE unit_code = i.unit_code AND layer = i.layer AND win = i.win
        AND window_start >= i.day AND window_start <= i.start
) r
GROUP BY i.ord`

// BenchmarkRollupGauges: the read of the gauges a batch of current alerts
// and reports publishes (a ward, its province and VN; alert and report;
// the four windows: 24 roll-ups) after days of history (a change in every
// window of every day), by sqlRollupGauges (the totals less what came
// after) against the plain SQL prefix sum over the history
// (sqlGaugesFromHistory); both must give the same gauges.
//
//	go test -run '^$' -bench RollupGauges -benchtime 200x ./services/aggregator/postgis/
//
// With BENCH_QUICK (scripts/bench.sh), a year of history only.
func BenchmarkRollupGauges(b *testing.B) {
	db := testenv.PostGIS(b)
	ctx := context.Background()
	day := time.Date(2026, 11, 30, 17, 0, 0, 0, time.UTC)
	units, layers := []string{"W1", "01", "VN"}, []string{alertLayer, reportLayer}
	wins := []struct {
		name string
		at   time.Duration // the window's start in its day
	}{{"1d", 0}, {"1h", 10 * time.Hour}, {"15m", 10 * time.Hour}, {"1m", 10*time.Hour + 10*time.Minute}}
	var ku, kl, kw []string
	var ks, kd []time.Time
	for _, u := range units {
		for _, l := range layers {
			for _, w := range wins {
				ku, kl, kw = append(ku, u), append(kl, l), append(kw, w.name)
				ks, kd = append(ks, day.Add(w.at)), append(kd, day)
			}
		}
	}
	// read returns the gauges by roll-up (ord).
	read := func(b *testing.B, sql string) map[int64][6]int64 {
		rows, err := db.Pool.Query(ctx, sql, ku, kl, kw, ks, kd)
		if err != nil {
			b.Fatal(err)
		}
		defer rows.Close()
		out := map[int64][6]int64{}
		for rows.Next() {
			var ord int64
			var g [6]int64
			if err := rows.Scan(&ord, &g[0], &g[1], &g[2], &g[3], &g[4], &g[5]); err != nil {
				b.Fatal(err)
			}
			out[ord] = g
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		return out
	}
	histories := []int{30, 365, 1095}
	if os.Getenv("BENCH_QUICK") != "" { // scripts/bench.sh: a year only
		histories = []int{365}
	}
	for _, days := range histories {
		if _, err := db.Pool.Exec(ctx, `TRUNCATE rollup, rollup_gauge_total`); err != nil {
			b.Fatal(err)
		}
		if _, err := db.Pool.Exec(ctx, `INSERT INTO rollup (unit_code, layer, win, window_start, province, activated3_n, open_n)
			SELECT u, l, w.win, $1::timestamptz - d * interval '24 hours' + w.at, '01', 1, 1
			FROM unnest($3::text[]) u, unnest($4::text[]) l, generate_series(0, $2::int) d,
				(VALUES ('1d', interval '0'), ('1h', interval '10 hours'), ('15m', interval '10 hours'), ('1m', interval '10 hours 10 minutes')) w (win, at)`,
			day, days, units, layers); err != nil {
			b.Fatal(err)
		}
		// The totals: added by their trigger (migration 00037) as the rows
		// are written.
		if _, err := db.Pool.Exec(ctx, `ANALYZE rollup, rollup_gauge_total`); err != nil {
			b.Fatal(err)
		}
		want := read(b, sqlGaugesFromHistory)
		if got := read(b, sqlRollupGauges); len(got) != len(ku) || !maps.Equal(got, want) {
			b.Fatalf("%d days: the gauges from the totals %v; from the history %v", days, got, want)
		}
		for _, q := range []struct{ name, sql string }{{"totals", sqlRollupGauges}, {"baseline-history-sql", sqlGaugesFromHistory}} {
			b.Run(fmt.Sprintf("days=%d/%s", days, q.name), func(b *testing.B) {
				for b.Loop() {
					read(b, q.sql)
				}
			})
		}
	}
}
