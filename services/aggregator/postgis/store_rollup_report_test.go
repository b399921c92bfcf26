package postgis_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit/rollupcheck"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// randomRollupReports are n citizen reports in W1 and W2 on 2025-06-01 and
// 2025-08-01 (reported_at across the day boundary in Asia/Ho_Chi_Minh), some
// received late, for the roll-up invariant.
func randomRollupReports(rng *rand.Rand, n int) []postgis.ReportRow {
	days := []time.Time{time.Date(2025, 6, 1, 16, 50, 0, 0, time.UTC), time.Date(2025, 8, 1, 16, 50, 0, 0, time.UTC)}
	out := make([]postgis.ReportRow, 0, n)
	for i := range n {
		day := days[rng.IntN(2)]
		at := day.Add(time.Duration(rng.IntN(40*60)) * time.Second)
		received := at.Add(time.Duration(rng.IntN(60)) * time.Second)
		if rng.IntN(10) == 0 {
			received = at.Add(3 * time.Hour)
		}
		unit, province := "W1", "01"
		if day.Month() == time.June {
			province = "OLD"
		} else if rng.IntN(2) == 0 {
			unit = "W2"
		}
		out = append(out, postgis.ReportRow{SourceID: "rep", EventID: fmt.Sprintf("r%d", i), Province: province, UnitCode: unit,
			Category: []string{"flooding", "traffic", "other"}[rng.IntN(3)], Lon: 105.5, Lat: 20.5,
			ReportedAt: at, ReceivedAt: received})
	}
	return out
}

// takeReports takes up to 20 reports off rest for a batch, with, now and
// then, one of them twice (a resend inside the batch).
func takeReports(rng *rand.Rand, rest []postgis.ReportRow) (batch, left []postgis.ReportRow) {
	k := min(len(rest), rng.IntN(20))
	batch = append([]postgis.ReportRow(nil), rest[:k]...)
	if k > 1 && rng.IntN(2) == 0 {
		batch = append(batch, batch[rng.IntN(k)])
		rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
	}
	return batch, rest[k:]
}

// sqlReportRollupDiff is the invariant of the report layer: every stored
// report roll-up against plain SQL over the report rows and their history —
// opened at reported_at (late by received_at as observations; open_n
// whatever the lateness), resolved at the time of the status event to
// resolved (within the SLA when not after the deadline), rejected at the time
// of the status event to rejected, closed (either) at that time but toward
// the units of the report at its reported_at, overdue at the deadline of the
// reports marked overdue — with ancestors by joins and groups by
// unit_groups. Each event r has observed_at (the time its units are taken
// at) and at (the time of its window). It returns the rows of either side
// missing from the other.
const sqlReportRollupDiff = `WITH ev AS (
    SELECT unit_code, province, reported_at AS observed_at, reported_at AS at, received_at,
        1 AS opened, 0 AS resolved, 0 AS in_sla, 0 AS overdue, 0 AS rejected, 0 AS closed
    FROM report
    UNION ALL
    SELECT r.unit_code, r.province, e.at, e.at, e.at, 0, 1, (e.at <= r.sla_deadline)::int, 0, 0, 0
    FROM report_event e JOIN report r ON r.id = e.report_id
    WHERE e.kind = 'status' AND e.to_status = 'resolved'
    UNION ALL
    SELECT r.unit_code, r.province, e.at, e.at, e.at, 0, 0, 0, 0, 1, 0
    FROM report_event e JOIN report r ON r.id = e.report_id
    WHERE e.kind = 'status' AND e.to_status = 'rejected'
    UNION ALL
    SELECT r.unit_code, r.province, r.reported_at, e.at, e.at, 0, 0, 0, 0, 0, 1
    FROM report_event e JOIN report r ON r.id = e.report_id
    WHERE e.kind = 'status' AND e.to_status IN ('resolved', 'rejected')
    UNION ALL
    SELECT unit_code, province, sla_deadline, sla_deadline, sla_deadline, 0, 0, 0, 1, 0, 0 FROM report WHERE overdue
), up AS (
    SELECT r.at, r.received_at, r.opened, r.resolved, r.in_sla, r.overdue, r.rejected, r.closed, x.code, x.prov FROM ev r
` + rollupcheck.UnitsOf + `
), w AS (
    SELECT up.*, v.win, v.start, up.opened = 1 AND up.received_at > v.start + v.len + interval '2 hours' AS late
    FROM (SELECT up.*, up.at AS observed_at FROM up) up ` + rollupcheck.WindowsOf + `
), expected AS (
    SELECT code AS unit_code, 'report' AS layer, win, start AS window_start, max(prov) AS province,
        coalesce(sum(opened) FILTER (WHERE NOT late), 0) AS n, count(*) FILTER (WHERE late) AS late,
        sum(resolved) AS resolved_n, sum(in_sla) AS resolved_in_sla_n, sum(overdue) AS overdue_n,
        sum(opened) AS open_n, sum(closed) AS closed_n, sum(rejected) AS rejected_n
    FROM w
    GROUP BY code, win, start
), stored AS (
    SELECT unit_code, layer, win, window_start, province, n, late, resolved_n, resolved_in_sla_n, overdue_n,
        open_n, closed_n, rejected_n
    FROM rollup WHERE layer = 'report'
)
(SELECT 'stored' AS side, * FROM (SELECT * FROM stored EXCEPT SELECT * FROM expected) s)
UNION ALL
(SELECT 'expected', * FROM (SELECT * FROM expected EXCEPT SELECT * FROM stored) e)
ORDER BY 2, 3, 4, 5, 1`

// checkReportRollups fails t when a stored report roll-up differs from plain SQL.
func checkReportRollups(t *testing.T, pool *pgxpool.Pool, step int) {
	t.Helper()
	checkDiff(t, pool, "report roll-up", step, sqlReportRollupDiff)
}

// resolveReport takes report id through assigned and in_progress to
// resolved in one transaction as the report.status handler does (history
// row, status, roll-ups), and rolls it back when cancel is set.
func resolveReport(ctx context.Context, t *testing.T, s *postgis.Store, id string, cancel bool) []postgis.Rollup {
	t.Helper()
	return closeReport(ctx, t, s, id, []string{"assigned", "in_progress", "resolved"}, cancel)
}

// closeReport takes report id through the statuses path (the last final)
// in one transaction as the report.status handler does, and rolls it back
// when cancel is set.
func closeReport(ctx context.Context, t *testing.T, s *postgis.Store, id string, path []string, cancel bool) []postgis.Rollup {
	t.Helper()
	var out []postgis.Rollup
	errCancel := errors.New("cancelled before the commit")
	err := s.BeginFunc(ctx, func(tx pgx.Tx) error {
		r, err := postgis.ReportForUpdate(ctx, tx, id)
		if err != nil {
			return err
		}
		from := r.Status
		for i, to := range path {
			if err := postgis.AddReportEvent(ctx, tx, postgis.ReportEvent{ReportID: id, Kind: "status", FromStatus: from, ToStatus: to, Assignee: "team"}); err != nil {
				return err
			}
			if r, err = postgis.SetReportStatus(ctx, tx, id, to, "team"); err != nil {
				return err
			}
			rs, err := s.ReportClosedRollups(ctx, tx, r)
			if err != nil {
				return err
			}
			if i < len(path)-1 && len(rs) > 0 {
				return fmt.Errorf("report %s %s changed %d roll-ups", id, to, len(rs))
			}
			out = append(out, rs...)
			from = to
		}
		if cancel {
			return errCancel
		}
		return nil
	})
	if cancel && errors.Is(err, errCancel) {
		return nil
	}
	if err != nil {
		t.Fatalf("closing report %s: %v", id, err)
	}
	return out
}

// TestRollupReportChanges: reports opened (with resends and redelivered
// batches), resolved within or after their SLA or rejected (some rolled
// back), and marked overdue by the sweep (twice for the same time) count in
// the report roll-ups exactly as plain SQL over the report rows and their
// history says, after every step; and the gauge reports open of every report
// roll-up equals plain SQL.
func TestRollupReportChanges(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	rollupTree(t, pool)
	s := postgis.NewStore(pool)
	ctx := context.Background()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 8))
	now := time.Now().UTC().Truncate(time.Microsecond)

	var reports []postgis.ReportRow
	for i := range 80 {
		at := now.Add(-time.Duration(rng.IntN(10*3600)) * time.Second) // flooding's SLA is 4 h, traffic's 24 h
		rec := at.Add(time.Duration(rng.IntN(60)) * time.Second)
		if rng.IntN(8) == 0 {
			rec = at.Add(3 * time.Hour)
		}
		unit := []string{"W1", "W2"}[rng.IntN(2)]
		reports = append(reports, postgis.ReportRow{SourceID: "rep", EventID: fmt.Sprintf("c%d", i), Province: "01", UnitCode: unit,
			Category: []string{"flooding", "traffic"}[rng.IntN(2)], Lon: 105.5, Lat: 20.5, ReportedAt: at, ReceivedAt: rec})
	}
	var written []postgis.Batch
	var ids []string
	resolved := map[string]bool{}
	sawInSLA, sawLate, sawOverdue, sawRejected, sawOpen := false, false, false, false, false
	for step := 0; len(reports) > 0 || step < 40; step++ {
		switch op := rng.IntN(5); {
		case len(reports) > 0 && op < 2:
			var b postgis.Batch
			b.Reports, reports = takeReports(rng, reports)
			res, err := s.WriteBatch(ctx, b)
			if err != nil {
				t.Fatalf("step %d: WriteBatch: %v", step, err)
			}
			if res.Reports.New > 0 && len(res.Rollups) == 0 {
				t.Fatalf("step %d: %d new reports changed no roll-up", step, res.Reports.New)
			}
			for _, i := range res.Reports.Inserted {
				ids = append(ids, b.Reports[i].ID())
			}
			written = append(written, b)
		case len(written) > 0 && op == 2: // a redelivery: nothing new
			const digest = `SELECT coalesce(sum(hashtext(r::text)::bigint), 0) FROM rollup r`
			before := count(t, pool, digest)
			b := written[rng.IntN(len(written))]
			b.Redelivered = true
			res, err := s.WriteBatch(ctx, b)
			if err != nil {
				t.Fatalf("step %d: WriteBatch again: %v", step, err)
			}
			if after := count(t, pool, digest); after != before {
				t.Fatalf("step %d: a redelivered batch changed the roll-ups", step)
			}
			// It returns its windows as stored, to publish again.
			var fresh []postgis.Rollup
			for _, r := range res.Rollups {
				if r.Layer == "report" {
					fresh = append(fresh, postgis.Rollup{UnitCode: r.UnitCode, Layer: r.Layer, Window: r.Window, WindowStart: r.WindowStart})
				}
			}
			if len(b.Reports) > 0 && len(fresh) == 0 {
				t.Fatalf("step %d: a redelivered batch of %d reports returned no window to publish again", step, len(b.Reports))
			}
			if err := s.RollupContext(ctx, fresh); err != nil {
				t.Fatal(err)
			}
			i := 0
			for _, r := range res.Rollups {
				if r.Layer != "report" {
					continue
				}
				var n, late, open int64
				if err := pool.QueryRow(ctx, `SELECT n, late, open_n FROM rollup WHERE unit_code = $1 AND layer = 'report' AND win = $2 AND window_start = $3`,
					r.UnitCode, r.Window, r.WindowStart).Scan(&n, &late, &open); err != nil {
					t.Fatalf("step %d: %s: %v", step, r.Key(), err)
				}
				if r.N != n || r.Late != late || r.OpenN != open || r.ReportsOpen != fresh[i].ReportsOpen {
					t.Fatalf("step %d: redelivery returned %s with n %d late %d opened %d open %d; stored %d %d %d, open %d",
						step, r.Key(), r.N, r.Late, r.OpenN, r.ReportsOpen, n, late, open, fresh[i].ReportsOpen)
				}
				i++
			}
		case len(ids) > 0 && op == 3:
			id := ids[rng.IntN(len(ids))]
			if resolved[id] {
				break
			}
			st := reportStatus(ctx, t, pool, id)
			if st == "resolved" || st == "rejected" {
				break
			}
			cancel := rng.IntN(4) == 0
			if rng.IntN(3) == 0 { // rejected instead
				rs := closeReport(ctx, t, s, id, []string{"rejected"}, cancel)
				for _, r := range rs {
					sawRejected = sawRejected || r.RejectedN > 0
				}
				if !cancel {
					resolved[id] = true
				}
				break
			}
			rs := resolveReport(ctx, t, s, id, cancel)
			if !cancel {
				resolved[id] = true
				if len(rs) == 0 {
					t.Fatalf("step %d: resolving %s changed no roll-up", step, id)
				}
				for _, r := range rs {
					sawInSLA = sawInSLA || r.ResolvedInSLAN > 0
					sawLate = sawLate || r.ResolvedN > r.ResolvedInSLAN
				}
			}
		default: // the overdue sweep, twice at the same time: the second marks nothing
			due, err := s.DueReports(ctx, "", now, 500)
			if err != nil {
				t.Fatal(err)
			}
			var dueIDs []string
			for _, r := range due {
				dueIDs = append(dueIDs, r.ID)
			}
			for round := range 2 {
				rs, err := s.MarkReportsOverdue(ctx, dueIDs, now)
				if err != nil {
					t.Fatalf("step %d: MarkReportsOverdue: %v", step, err)
				}
				if round == 1 && len(rs) > 0 {
					t.Fatalf("step %d: marking the same reports overdue again changed %d roll-ups", step, len(rs))
				}
				sawOverdue = sawOverdue || len(rs) > 0
			}
		}
		checkReportRollups(t, pool, step)
		if step%5 == 4 {
			sawOpen = checkGauges(t, pool, s, "report", step) > 0 || sawOpen
		}
	}
	sawOpen = checkGauges(t, pool, s, "report", -1) > 0 || sawOpen
	// A seed may leave a case out: make sure each is seen once, through the
	// same calls, and checked against plain SQL like every random step.
	force := func(n int, category string, age time.Duration, resolve bool) []postgis.Rollup {
		at := now.Add(-age)
		r := postgis.ReportRow{SourceID: "rep", EventID: fmt.Sprintf("forced%d", n), Province: "01", UnitCode: "W1",
			Category: category, Lon: 105.5, Lat: 20.5, ReportedAt: at, ReceivedAt: at.Add(time.Second)}
		if _, err := s.WriteBatch(ctx, postgis.Batch{Reports: []postgis.ReportRow{r}}); err != nil {
			t.Fatalf("forced report %d: %v", n, err)
		}
		if resolve {
			return resolveReport(ctx, t, s, r.ID(), false)
		}
		due, err := s.DueReports(ctx, "", now, 500)
		if err != nil {
			t.Fatal(err)
		}
		var dueIDs []string
		for _, d := range due {
			dueIDs = append(dueIDs, d.ID)
		}
		rs, err := s.MarkReportsOverdue(ctx, dueIDs, now)
		if err != nil {
			t.Fatalf("forced overdue sweep: %v", err)
		}
		return rs
	}
	if !sawInSLA {
		for _, r := range force(1, "traffic", 10*time.Minute, true) {
			sawInSLA = sawInSLA || r.ResolvedInSLAN > 0
		}
		checkReportRollups(t, pool, -1)
	}
	if !sawLate {
		for _, r := range force(2, "traffic", 30*time.Hour, true) { // traffic's SLA is 24 h
			sawLate = sawLate || r.ResolvedN > r.ResolvedInSLAN
		}
		checkReportRollups(t, pool, -2)
	}
	if !sawOverdue {
		sawOverdue = len(force(3, "flooding", 30*time.Hour, false)) > 0 // flooding's SLA is 4 h
		checkReportRollups(t, pool, -3)
	}
	if !sawRejected {
		at := now.Add(-time.Hour)
		r := postgis.ReportRow{SourceID: "rep", EventID: "forced4", Province: "01", UnitCode: "W2", Category: "traffic",
			Lon: 105.5, Lat: 20.5, ReportedAt: at, ReceivedAt: at}
		if _, err := s.WriteBatch(ctx, postgis.Batch{Reports: []postgis.ReportRow{r}}); err != nil {
			t.Fatalf("forced report 4: %v", err)
		}
		for _, r := range closeReport(ctx, t, s, "rep/forced4", []string{"rejected"}, false) {
			sawRejected = sawRejected || r.RejectedN > 0
		}
		checkReportRollups(t, pool, -4)
		sawOpen = checkGauges(t, pool, s, "report", -4) > 0 || sawOpen
	}
	if !sawInSLA || !sawLate || !sawOverdue || !sawRejected || !sawOpen {
		t.Fatalf("resolved within the SLA %v, after it %v, overdue %v, rejected %v, open %v: a forced case changed no roll-up (seed %d)",
			sawInSLA, sawLate, sawOverdue, sawRejected, sawOpen, seed)
	}
}

// reportStatus is the stored status of report id.
func reportStatus(ctx context.Context, t *testing.T, pool *pgxpool.Pool, id string) string {
	t.Helper()
	var st string
	if err := pool.QueryRow(ctx, `SELECT status FROM report WHERE id = $1`, id).Scan(&st); err != nil {
		t.Fatal(err)
	}
	return st
}
