package postgis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit/rollupcheck"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// TestCloseMemberDays: closing the days before a day deletes their member
// rows and moves the horizon; an observation of a closed day then counts as
// late in its windows (their figures and members stay), whether its batch is
// written straight or the exact way, and one of an open day counts as
// before; closing again deletes nothing; and a close waits for the batches
// holding the member days' lock.
func TestCloseMemberDays(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	rollupTree(t, pool)
	ctx := context.Background()
	s := postgis.NewStore(pool)
	d1 := time.Date(2025, 8, 1, 3, 0, 0, 0, time.UTC) // 10:00 of 1 August in Vietnam
	d2 := d1.Add(24 * time.Hour)
	write := func(name string, rows ...postgis.AirRow) {
		t.Helper()
		if _, err := s.WriteBatch(ctx, postgis.Batch{Air: rows}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	layerHour := func(layer string, at time.Time) (n, late, members int) {
		t.Helper()
		err := pool.QueryRow(ctx, `SELECT n, late, members FROM rollup
			WHERE unit_code = 'W1' AND layer = $1 AND win = '1h' AND window_start = $2`, layer, at.Truncate(time.Hour)).Scan(&n, &late, &members)
		if err != nil {
			t.Fatalf("W1's %s hour at %s: %v", layer, at, err)
		}
		return n, late, members
	}
	hour := func(at time.Time) (n, late, members int) { t.Helper(); return layerHour("air", at) }
	segment := func(id string, at time.Time) postgis.TrafficRow {
		r := trafficRow(id, at, 30)
		r.UnitCode = "W1"
		return r
	}
	horizon := func() *time.Time {
		t.Helper()
		var day *time.Time
		if err := pool.QueryRow(ctx, `SELECT day FROM rollup_member_horizon`).Scan(&day); err != nil {
			t.Fatal(err)
		}
		return day
	}
	if h := horizon(); h != nil {
		t.Fatalf("a new database's member horizon is %s; want none", h)
	}

	write("two days", bandRow("st1", "W1", d1, 1), bandRow("st2", "W1", d2, 1))
	// A batch of traffic rows, written straight from the store's copies of
	// their member rows.
	if _, err := s.WriteBatch(ctx, postgis.Batch{Traffic: []postgis.TrafficRow{segment("seg1", d1)}}); err != nil {
		t.Fatal(err)
	}
	rollupcheck.Check(t, pool)
	firstDay := time.Date(2025, 7, 31, 17, 0, 0, 0, time.UTC) // 1 August in Vietnam
	secondDay := firstDay.Add(24 * time.Hour)
	before := count(t, pool, `SELECT count(*) FROM rollup_member_day WHERE day = $1`, firstDay)
	if before == 0 {
		t.Fatal("no member row of the first day")
	}
	kept := count(t, pool, `SELECT count(*) FROM rollup_member_day WHERE day = $1`, secondDay)

	day, deleted, err := s.CloseMemberDays(ctx, d2)
	if err != nil {
		t.Fatal(err)
	}
	if !day.Equal(secondDay) || deleted != int64(before) {
		t.Fatalf("closed before %s, %d rows deleted; want before %s, %d rows", day, deleted, secondDay, before)
	}
	if h := horizon(); h == nil || !h.Equal(secondDay) {
		t.Fatalf("member horizon %v; want %s", h, secondDay)
	}
	if n := count(t, pool, `SELECT count(*) FROM rollup_member_day`); n != kept {
		t.Fatalf("%d member rows left; want the second day's %d", n, kept)
	}
	if _, deleted, err := s.CloseMemberDays(ctx, d2.Add(time.Hour)); err != nil || deleted != 0 {
		t.Fatalf("closing the same day again: %d rows deleted, %v; want none", deleted, err)
	}

	// Written straight (every row new).
	write("after the close", bandRow("st3", "W1", d1.Add(time.Minute), 2), bandRow("st4", "W1", d2.Add(time.Minute), 2))
	if n, late, members := hour(d1); n != 1 || late != 1 || members != 1 {
		t.Fatalf("closed day's hour: n %d, late %d, members %d; want 1, 1, 1", n, late, members)
	}
	if n, late, members := hour(d2); n != 2 || late != 0 || members != 2 {
		t.Fatalf("open day's hour: n %d, late %d, members %d; want 2, 0, 2", n, late, members)
	}
	// The exact way (a redelivered row in the batch).
	write("a redelivery beside a new row", bandRow("st3", "W1", d1.Add(time.Minute), 2), bandRow("st5", "W1", d1.Add(2*time.Minute), 3))
	if _, rewritten := s.WrittenAllNew(); rewritten == 0 {
		t.Fatal("the batch with a redelivered row was not written the exact way")
	}
	if n, late, members := hour(d1); n != 1 || late != 2 || members != 1 {
		t.Fatalf("closed day's hour after the exact batch: n %d, late %d, members %d; want 1, 2, 1", n, late, members)
	}
	// The all-new way (a registered kind's row keeps the batch from the
	// direct way), its member row of the closed day in the store's copies.
	allNew, _ := s.WrittenAllNew()
	if _, err := s.WriteBatch(ctx, postgis.Batch{Traffic: []postgis.TrafficRow{segment("seg1", d1.Add(3*time.Minute)), segment("seg2", d2)},
		Generic: []postgis.GenericRow{stagedRow(0, d2)}}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.WrittenAllNew(); n != allNew+1 {
		t.Fatalf("the traffic batch was not written the all-new way (%d such batches, %d before)", n, allNew)
	}
	if n, late, members := layerHour("traffic", d1); n != 1 || late != 1 || members != 1 {
		t.Fatalf("closed day's traffic hour: n %d, late %d, members %d; want 1, 1, 1", n, late, members)
	}
	if n, late, members := layerHour("traffic", d2); n != 1 || late != 0 || members != 1 {
		t.Fatalf("open day's traffic hour: n %d, late %d, members %d; want 1, 0, 1", n, late, members)
	}
	if n := count(t, pool, `SELECT count(*) FROM rollup_member_day WHERE day < $1`, secondDay); n != 0 {
		t.Fatalf("%d member rows of the closed day written after the close", n)
	}

	// A batch in flight (holding the lock shared) holds the next close back.
	tx := lockMemberDays(t, pool, true)
	done := make(chan error, 1)
	go func() {
		_, _, err := s.CloseMemberDays(ctx, d2.Add(24*time.Hour))
		done <- err
	}()
	waitHeldBack(t, pool, "the close", done)
	if h := horizon(); !h.Equal(secondDay) {
		t.Fatalf("the horizon moved to %s while a batch held the lock", h)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if h := horizon(); !h.Equal(secondDay.Add(24 * time.Hour)) {
		t.Fatalf("member horizon %s after the batch ended; want %s", h, secondDay.Add(24*time.Hour))
	}
	if n := count(t, pool, `SELECT count(*) FROM rollup_member_day`); n != 0 {
		t.Fatalf("%d member rows left after closing the second day", n)
	}

	// A close in flight (holding the lock) holds the batches back, and they
	// read the horizon it moved: the batch of a day it closed counts late.
	tx = lockMemberDays(t, pool, false)
	if _, err := tx.Exec(ctx, `UPDATE rollup_member_horizon SET day = $1`, secondDay.Add(72*time.Hour)); err != nil {
		t.Fatal(err)
	}
	d4 := d2.Add(48 * time.Hour)
	go func() {
		_, err := s.WriteBatch(ctx, postgis.Batch{Air: []postgis.AirRow{bandRow("st6", "W1", d4, 1)}})
		done <- err
	}()
	waitHeldBack(t, pool, "the batch", done)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n, late, members := hour(d4); n != 0 || late != 1 || members != 0 {
		t.Fatalf("the held-back batch's hour: n %d, late %d, members %d; want 0, 1, 0 (its day closed while it waited)", n, late, members)
	}

	// A lock held far longer than a batch: the close gives up (lock_timeout)
	// and leaves the horizon for the next sweep.
	lockMemberDays(t, pool, true) // held until the test ends
	var pgErr *pgconn.PgError
	if _, _, err := s.CloseMemberDays(ctx, d4.Add(72*time.Hour)); !errors.As(err, &pgErr) || pgErr.Code != "55P03" {
		t.Fatalf("closing while a batch holds the lock for long: %v; want lock_not_available (55P03)", err)
	}
	if h := horizon(); !h.Equal(secondDay.Add(72 * time.Hour)) {
		t.Fatalf("member horizon %s after a close that gave up; want %s", h, secondDay.Add(72*time.Hour))
	}
}

// waitHeldBack waits until a session of pool's database waits for the
// member days' advisory lock (its key's low 32 bits in objid), and fails t
// if who, whose end done reports, has ended meanwhile.
func waitHeldBack(t *testing.T, pool *pgxpool.Pool, who string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for count(t, pool, `SELECT count(*) FROM pg_locks
		WHERE locktype = 'advisory' AND NOT granted AND objsubid = 1
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND objid::bigint = hashtext('iochub.rollup_member_day')::bigint & 4294967295`) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s never waited for the member days' lock", who)
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("%s ended (%v) while the lock was held against it", who, err)
	default:
	}
}

// lockMemberDays begins a transaction on pool that holds the member days'
// lock, shared (as a batch) or exclusive (as a close), until it ends (at
// the test's end at the latest).
func lockMemberDays(t *testing.T, pool *pgxpool.Pool, shared bool) pgx.Tx {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(ctx) }) // a no-op after Commit
	lock := `SELECT pg_advisory_xact_lock(hashtext('iochub.rollup_member_day'))`
	if shared {
		lock = `SELECT pg_advisory_xact_lock_shared(hashtext('iochub.rollup_member_day'))`
	}
	if _, err := tx.Exec(ctx, lock); err != nil {
		t.Fatal(err)
	}
	return tx
}
