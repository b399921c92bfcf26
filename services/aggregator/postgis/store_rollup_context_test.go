package postgis_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// contextFigures returns the Known and Stale figures of the hourly roll-ups
// of rs by unit.
func contextFigures(rs []postgis.Rollup) map[string]string {
	got := map[string]string{}
	for _, r := range rs {
		if r.Window == "1h" {
			got[r.UnitCode] = fmt.Sprintf("known %d stale %d", r.Known, r.Stale)
		}
	}
	return got
}

// freshContext returns a copy of rs with the Known and Stale figures of a
// fresh read (sqlRollupContext, no copies) in a transaction of its own.
func freshContext(t *testing.T, s *postgis.Store, rs []postgis.Rollup) []postgis.Rollup {
	t.Helper()
	fresh := slices.Clone(rs)
	for i := range fresh {
		fresh[i].Known, fresh[i].Stale = -1, -1
	}
	if err := s.RollupContext(context.Background(), fresh); err != nil {
		t.Fatalf("reading the context afresh: %v", err)
	}
	return fresh
}

// twoStations are the stations (and their units) of most batches below.
var twoStations = map[string]string{"st1": "W1", "st2": "W2"}

// stationRows returns a row at at of each station of stations (by id, its
// unit), in the order of their ids.
func stationRows(stations map[string]string, at time.Time) []postgis.AirRow {
	var rows []postgis.AirRow
	for _, st := range slices.Sorted(maps.Keys(stations)) {
		r := airRow(st, at, 10)
		r.UnitCode = stations[st]
		rows = append(rows, r)
	}
	return rows
}

// checkFresh fails t where a roll-up of rs has other Known or Stale figures
// than a fresh read gives.
func checkFresh(t *testing.T, s *postgis.Store, step string, rs []postgis.Rollup) {
	t.Helper()
	fresh := freshContext(t, s, rs)
	for i, r := range rs {
		if r.Known != fresh[i].Known || r.Stale != fresh[i].Stale {
			t.Errorf("%s: %s known %d stale %d; a fresh read gives known %d stale %d",
				step, r.Key(), r.Known, r.Stale, fresh[i].Known, fresh[i].Stale)
		}
	}
}

// TestRollupContextCache: the Known and Stale figures of the roll-ups a
// store writes, from the counts it keeps in memory (contextCache), equal a
// fresh read after each change of what they count, whoever makes it; the
// steady state reads none.
func TestRollupContextCache(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	rollupTree(t, pool)
	ctx := context.Background()
	s := postgis.NewStore(pool)
	at := time.Date(2025, 8, 1, 3, 0, 0, 0, time.UTC)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	minute := 0
	// write writes a row of each station (by unit) a minute after the
	// last batch, checks every roll-up's figures against a fresh read and
	// the hourly ones of want, and returns the hourly ones.
	write := func(step string, stations map[string]string, want map[string]string) {
		t.Helper()
		minute++
		res, err := s.WriteBatch(ctx, postgis.Batch{Air: stationRows(stations, at.Add(time.Duration(minute)*time.Minute))})
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		checkFresh(t, s, step, res.Rollups)
		got := contextFigures(res.Rollups)
		for u, w := range want {
			if got[u] != w {
				t.Errorf("%s: %s %s; want %s", step, u, got[u], w)
			}
		}
	}
	base := twoStations
	write("first batch", base, map[string]string{
		"W1": "known 1 stale 0", "W2": "known 1 stale 0", "01": "known 2 stale 0", "VN": "known 2 stale 0", "G1": "known 1 stale 0",
	})
	// The first batch added its stations: what it read is not kept (its
	// transaction changed the context); the next one reads and keeps it.
	write("second batch", base, map[string]string{"01": "known 2 stale 0"})
	reads := s.ContextReads()
	for i := range 3 {
		write(fmt.Sprintf("steady batch %d", i), base, map[string]string{"01": "known 2 stale 0"})
	}
	if n := s.ContextReads() - reads; n != 0 {
		t.Errorf("the steady batches read the context %d times; want 0", n)
	}

	// A new station in the batch: counted in its own transaction.
	write("new station in the batch", map[string]string{"st1": "W1", "st2": "W2", "st3": "W2"}, map[string]string{
		"W2": "known 2 stale 0", "01": "known 3 stale 0", "G1": "known 2 stale 0",
	})
	// A new station written by another writer (another aggregator).
	exec(`INSERT INTO sensor (kind, id, province, unit_code, source_id, last_event_id, last_observed_at)
		VALUES ('air', 'st4', '01', 'W1', 'other', 'e', $1)`, at)
	write("new station elsewhere", base, map[string]string{"W1": "known 2 stale 0", "01": "known 4 stale 0"})
	exec(`UPDATE sensor SET unit_code = 'W1' WHERE id = 'st3'`)
	write("station moved", base, map[string]string{"W1": "known 3 stale 0", "W2": "known 1 stale 0", "G1": "known 1 stale 0"})

	// A source turned stale, fresh again, stale and moved, then all gone.
	exec(`INSERT INTO source_stats (source_id, unit_code, province, last_event_at, last_seen_at, first_seen_at, stale_since)
		VALUES ('x', 'W2', '01', $1, $1, $1, $1), ('y', 'W2', '01', $1, $1, $1, NULL)`, at)
	write("source stale", base, map[string]string{"W2": "known 1 stale 1", "01": "known 4 stale 1", "G1": "known 1 stale 1"})
	exec(`UPDATE source_stats SET stale_since = NULL WHERE source_id = 'x'`)
	write("source fresh", base, map[string]string{"W2": "known 1 stale 0", "01": "known 4 stale 0"})
	exec(`UPDATE source_stats SET stale_since = $1 WHERE source_id = 'x'`, at)
	write("source stale again", base, map[string]string{"W2": "known 1 stale 1", "01": "known 4 stale 1"})
	exec(`UPDATE source_stats SET unit_code = 'W1' WHERE source_id = 'x'`)
	write("stale source moved", base, map[string]string{"W1": "known 3 stale 1", "W2": "known 1 stale 0", "G1": "known 1 stale 0"})
	exec(`TRUNCATE source_stats`)
	write("sources truncated", base, map[string]string{"W1": "known 3 stale 0", "01": "known 4 stale 0"})

	// A unit added under W1 where a station was already, moved, removed.
	exec(`INSERT INTO sensor (kind, id, province, unit_code, source_id, last_event_id, last_observed_at)
		VALUES ('air', 'st6', '01', 'W3', 'other', 'e', $1)`, at)
	write("station in no unit", base, map[string]string{"W1": "known 3 stale 0", "01": "known 4 stale 0"})
	exec(`INSERT INTO admin_unit (code, level, parent_code, name_vi, boundary, valid_from)
		VALUES ('W3', 'commune', 'W1', 'W3', ST_Multi(ST_MakeEnvelope(105, 20, 106, 21, 4326)), '2025-07-01')`)
	write("unit added", base, map[string]string{"W1": "known 4 stale 0", "01": "known 5 stale 0"})
	exec(`UPDATE admin_unit SET parent_code = 'W2' WHERE code = 'W3'`)
	write("unit moved", base, map[string]string{"W1": "known 3 stale 0", "W2": "known 2 stale 0", "01": "known 5 stale 0"})
	exec(`DELETE FROM admin_unit WHERE code = 'W3'`)
	write("unit removed", base, map[string]string{"W2": "known 1 stale 0", "01": "known 4 stale 0"})

	// A member added to a custom group.
	exec(`INSERT INTO unit_group_member (group_code, member_code, valid_from) VALUES ('G1', 'W1', '2025-07-01')`)
	write("group member added", base, map[string]string{"G1": "known 4 stale 0"})
	// Its membership ended, open again, then deleted.
	exec(`UPDATE unit_group_member SET valid_to = '2025-07-02' WHERE group_code = 'G1' AND member_code = 'W1'`)
	write("group membership ended", base, map[string]string{"G1": "known 1 stale 0"})
	exec(`UPDATE unit_group_member SET valid_to = NULL WHERE group_code = 'G1' AND member_code = 'W1'`)
	write("group membership open again", base, map[string]string{"G1": "known 4 stale 0"})
	exec(`DELETE FROM unit_group_member WHERE group_code = 'G1' AND member_code = 'W1'`)
	write("group member deleted", base, map[string]string{"G1": "known 1 stale 0"})

	reads = s.ContextReads()
	write("steady again", base, nil)
	if n := s.ContextReads() - reads; n != 0 {
		t.Errorf("the steady batch read the context %d times; want 0", n)
	}
}

// TestRollupContextCacheTimes: the counts a store keeps hold only for the
// transactions whose now() lies between the same boundaries of the tree
// (valid_from, valid_to) as the read's, and those a transaction read after
// changing them itself are not kept.
func TestRollupContextCacheTimes(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	rollupTree(t, pool)
	ctx := context.Background()
	s := postgis.NewStore(pool)
	at := time.Date(2025, 8, 1, 3, 0, 0, 0, time.UTC)
	minute := 0
	write := func(step string) map[string]string {
		t.Helper()
		minute++
		res, err := s.WriteBatch(ctx, postgis.Batch{Air: stationRows(twoStations, at.Add(time.Duration(minute)*time.Minute))})
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		fresh := freshContext(t, s, res.Rollups)
		got, want := contextFigures(res.Rollups), contextFigures(fresh)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: hourly figures %v; a fresh read gives %v", step, got, want)
		}
		return got
	}
	// inTx compares the hourly figures of units read in tx through s's
	// copies with those read afresh.
	inTx := func(step string, tx pgx.Tx, units ...string) {
		t.Helper()
		var rs []postgis.Rollup
		for _, u := range units {
			rs = append(rs, postgis.Rollup{UnitCode: u, Layer: "air", Window: "1h", WindowStart: at})
		}
		cached, fresh := slices.Clone(rs), slices.Clone(rs)
		if err := s.RollupContextCachedIn(ctx, tx, cached); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if err := postgis.RollupContextIn(ctx, tx, fresh); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if got, want := contextFigures(cached), contextFigures(fresh); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: hourly figures %v; a fresh read in the transaction gives %v", step, got, want)
		}
	}
	// olderTx begins a transaction whose now() is fixed from here on (its
	// first statement), rolled back at the end of the test at the latest.
	olderTx := func() pgx.Tx {
		t.Helper()
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tx.Rollback(ctx) }) // a no-op after the rollback
		if _, err := tx.Exec(ctx, `SELECT now()`); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	unitRing := `ST_Multi(ST_MakeEnvelope(105, 20, 106, 21, 4326))`
	write("first batch")

	// A unit that begins between an older transaction's now() and a batch's:
	// the batch's copies (from its start on) do not hold for the older one.
	old := olderTx()
	if _, err := pool.Exec(ctx, `INSERT INTO admin_unit (code, level, parent_code, name_vi, boundary, valid_from)
		VALUES ('W5', 'commune', '01', 'W5', `+unitRing+`, clock_timestamp());
		INSERT INTO sensor (kind, id, province, unit_code, source_id, last_event_id, last_observed_at)
		VALUES ('air', 'st5', '01', 'W5', 'other', 'e', now())`); err != nil {
		t.Fatal(err)
	}
	if got := write("unit begun"); got["01"] != "known 3 stale 0" {
		t.Errorf("unit begun: 01 %s; want known 3 stale 0", got["01"])
	}
	inTx("older transaction", old, "01", "VN")
	if err := old.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	// A unit that ends between an older transaction's now() and a batch's:
	// the older one's copies do not hold for the batch.
	old = olderTx()
	if _, err := pool.Exec(ctx, `UPDATE admin_unit SET valid_to = clock_timestamp() WHERE code = 'W5'`); err != nil {
		t.Fatal(err)
	}
	inTx("before the unit's end", old, "W1", "W2", "01", "VN", "G1")
	if err := old.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got := write("unit ended"); got["01"] != "known 2 stale 0" {
		t.Errorf("unit ended: 01 %s; want known 2 stale 0", got["01"])
	}

	// A transaction that adds a station and reads the figures, then rolls
	// back: what it read (its own change counted) is not kept.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after the rollback
	if _, err := tx.Exec(ctx, `INSERT INTO sensor (kind, id, province, unit_code, source_id, last_event_id, last_observed_at)
		VALUES ('air', 'st9', '01', 'W1', 'other', 'e', now())`); err != nil {
		t.Fatal(err)
	}
	inTx("own change", tx, "W1", "W2", "01", "VN", "G1")
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got := write("own change rolled back"); got["W1"] != "known 1 stale 0" {
		t.Errorf("own change rolled back: W1 %s; want known 1 stale 0", got["W1"])
	}
}

// TestRollupContextCacheFull: a store whose memory holds fewer units than its
// batches write roll-ups of keeps no more than its limit, reads the counts
// of the others in every batch, and its figures still equal a fresh read,
// before and after a change of what they count.
func TestRollupContextCacheFull(t *testing.T) {
	const limit = 2
	pool := testenv.PostGIS(t).Pool
	rollupTree(t, pool)
	ctx := context.Background()
	s := postgis.NewStore(pool)
	s.LimitContextCache(limit)
	at := time.Date(2025, 8, 1, 3, 0, 0, 0, time.UTC)
	write := func(step string, minute int) {
		t.Helper()
		res, err := s.WriteBatch(ctx, postgis.Batch{Air: stationRows(twoStations, at.Add(time.Duration(minute)*time.Minute))})
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		checkFresh(t, s, step, res.Rollups)
		if contextFigures(res.Rollups)["VN"] == "" {
			t.Errorf("%s: no hourly roll-up of VN", step)
		}
	}
	write("first batch", 1) // adds its stations: keeps nothing
	write("second batch", 2)
	reads := s.ContextReads()
	for i := range 3 {
		write(fmt.Sprintf("batch %d with a full cache", i), 3+i)
	}
	// W1, W2, 01, VN and G1 are five units: three are never held.
	if n := s.ContextReads() - reads; n != 3 {
		t.Errorf("3 batches with a full cache read the context %d times; want 3", n)
	}
	if held := s.LimitContextCache(0); held != limit {
		t.Errorf("the cache holds %d units; want its limit, %d", held, limit)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO sensor (kind, id, province, unit_code, source_id, last_event_id, last_observed_at)
		VALUES ('air', 'st9', '01', 'W1', 'other', 'e', $1)`, at); err != nil {
		t.Fatal(err)
	}
	write("new station elsewhere", 10)
	write("after the new station", 11)
}
