package postgis_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
	"github.com/iochub/iochub/internal/testkit/rollupcheck"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// overlapRows are n air rows of stations o0…o5 from minute from on, every
// row of its own instant.
func overlapRows(from, n int) []postgis.AirRow {
	var out []postgis.AirRow
	for i := from; i < from+n; i++ {
		r := airRow(fmt.Sprintf("o%d", i%6), t0.Add(time.Duration(i)*time.Minute), float64(i%300))
		v := int32(i % 300)
		r.AQI = postgis.AQI{Value: &v, Band: int16(1 + i%6), Dominant: "pm25"}
		out = append(out, r)
	}
	return out
}

// overlapped writes bs with s as the aggregator's committer does under a
// backlog: each batch started (StartBatch) before the one before is
// finished; a batch StartBatch declines is written with WriteBatch after
// the one before. It returns each batch's result and how many were started.
func overlapped(tb testing.TB, s *postgis.Store, bs []postgis.Batch) ([]postgis.Result, int) {
	tb.Helper()
	ctx := context.Background()
	out := make([]postgis.Result, len(bs))
	started := 0
	prev, prevAt := (*postgis.Started)(nil), -1
	finish := func(next **postgis.Started) {
		if prev == nil {
			return
		}
		res, err := prev.Finish(ctx, func() {
			if next != nil && *next != nil {
				(*next).Abort(ctx)
				*next = nil
			}
		})
		if err != nil {
			if next != nil && *next != nil {
				(*next).Abort(ctx) // else the pool's close would wait for its connection
			}
			tb.Fatalf("batch %d: Finish: %v", prevAt, err)
		}
		out[prevAt], prev = res, nil
	}
	for i, b := range bs {
		st := s.StartBatch(ctx, b, prev)
		if st != nil {
			started++
		}
		finish(&st)
		if st == nil {
			res, err := s.WriteBatch(ctx, b)
			if err != nil {
				tb.Fatalf("batch %d: WriteBatch: %v", i, err)
			}
			out[i] = res
			continue
		}
		prev, prevAt = st, i
	}
	finish(nil)
	return out, started
}

// TestStartedAsWriteBatch: batches written two at a time (StartBatch while
// the batch before is finished) store the same rows, leave the same
// station states and report the same results as the same batches written
// one after the other by WriteBatch, roll-ups on and off: with stations in
// every batch, a batch whose rows the next one repeats (its COPY waits for
// the batch before, then is written the exact way), a batch repeating an
// older one and a batch with a row twice. With roll-ups on, every roll-up
// equals plain SQL over the rows.
func TestStartedAsWriteBatch(t *testing.T) {
	for _, noRollups := range []bool{false, true} {
		t.Run(fmt.Sprintf("no_rollups=%v", noRollups), func(t *testing.T) {
			pool, s := storeOn(t, postgis.StoreConfig{NoRollups: noRollups})
			serialPool, serial := storeOn(t, postgis.StoreConfig{NoRollups: noRollups})
			for _, p := range []*pgxpool.Pool{pool, serialPool} {
				insertUnit(t, p, "01", "province", "", 105, 20)
				insertUnit(t, p, "00070", "commune", "01", 105, 20)
			}
			twice := overlapRows(60, 5)
			twice = append(twice, twice[2])
			bs := []postgis.Batch{
				{Air: overlapRows(0, 20)},
				{Air: overlapRows(20, 20)},
				{Air: append(overlapRows(40, 10), overlapRows(30, 5)...)}, // five rows of the batch before
				{Air: overlapRows(50, 10)},
				{Air: overlapRows(0, 20)}, // a redelivery of the first
				{Air: twice},
				{Air: overlapRows(66, 30)},
			}
			// Partitions first: StartBatch declines a batch needing one.
			if _, err := s.WriteBatch(context.Background(), postgis.Batch{Air: overlapRows(1000, 1)}); err != nil {
				t.Fatal(err)
			}
			if _, err := serial.WriteBatch(context.Background(), postgis.Batch{Air: overlapRows(1000, 1)}); err != nil {
				t.Fatal(err)
			}
			got, _ := overlapped(t, s, bs)
			for i, b := range bs {
				want, err := serial.WriteBatch(context.Background(), b)
				if err != nil {
					t.Fatalf("batch %d, serial: %v", i, err)
				}
				if g, w := slices.Sorted(slices.Values(got[i].Air.Inserted)), slices.Sorted(slices.Values(want.Air.Inserted)); !slices.Equal(g, w) ||
					got[i].Air.New != want.Air.New || got[i].Air.Duplicates != want.Air.Duplicates {
					t.Fatalf("batch %d: %d new, %d duplicates, inserted %v; serially %d, %d, %v", i,
						got[i].Air.New, got[i].Air.Duplicates, g, want.Air.New, want.Air.Duplicates, w)
				}
				if g, w := changedIndexes(got[i].Air.Changed), changedIndexes(want.Air.Changed); !slices.Equal(g, w) {
					t.Fatalf("batch %d: changed %v; serially %v", i, g, w)
				}
				if !noRollups && (len(got[i].Rollups) == 0) != (len(want.Rollups) == 0) {
					t.Fatalf("batch %d: %d roll-ups; serially %d", i, len(got[i].Rollups), len(want.Rollups))
				}
			}
			if g, w := airObservations(t, pool), airObservations(t, serialPool); !slices.Equal(g, w) {
				t.Fatalf("rows:\n%v\nserially:\n%v", g, w)
			}
			if g, w := sensorState(t, pool), sensorState(t, serialPool); !slices.Equal(g, w) {
				t.Fatalf("states:\n%v\nserially:\n%v", g, w)
			}
			if n := count(t, pool, `SELECT count(*) FROM air_observation`); n != 96 {
				t.Fatalf("%d rows stored; want 96", n)
			}
			if allNew, rewritten := s.WrittenAllNew(); rewritten != 3 || allNew != 5 {
				t.Fatalf("%d batches written as all new, %d again the exact way; want 5 and 3", allNew, rewritten)
			}
			if !noRollups {
				rollupcheck.Check(t, pool)
				if n := count(t, pool, `SELECT count(*) FROM rollup`); n == 0 {
					t.Fatal("no roll-up")
				}
			}
		})
	}
}

// TestStartedStopsTheNext: a batch that must be written again the exact way
// (a row stored before) while the next one is started with a row of its
// own gives the next one up first (stop): the next one's COPY, which waited
// on that row, would otherwise hold the exact way's insert until the
// statement timeout. Both batches end stored once, the next one written
// again after.
func TestStartedStopsTheNext(t *testing.T) {
	pool, s := storeOn(t, postgis.StoreConfig{StatementTimeout: 5 * time.Second})
	insertUnit(t, pool, "01", "province", "", 105, 20)
	insertUnit(t, pool, "00070", "commune", "01", 105, 20)
	ctx := context.Background()
	if _, err := s.WriteBatch(ctx, postgis.Batch{Air: overlapRows(0, 1)}); err != nil {
		t.Fatal(err)
	}
	// a: a row stored before and ten new ones; b: a's last row and its own.
	a := postgis.Batch{Air: overlapRows(0, 11)}
	b := postgis.Batch{Air: append(overlapRows(10, 1), overlapRows(20, 5)...)}
	sa := s.StartBatch(ctx, a, nil)
	if sa == nil {
		t.Fatal("a batch of air rows in known partitions was not started")
	}
	sb := s.StartBatch(ctx, b, sa)
	if sb == nil {
		t.Fatal("a batch of air rows in known partitions was not started")
	}
	defer sb.Abort(ctx) // a no-op once it was given up; else the pool's close would wait for its connection
	stopped := false
	start := time.Now()
	ra, err := sa.Finish(ctx, func() {
		sb.Abort(ctx)
		stopped = true
	})
	if err != nil {
		t.Fatalf("a: %v (after %v)", err, time.Since(start))
	}
	if !stopped {
		t.Fatal("a was written again without stopping b")
	}
	if ra.Air.New != 10 || ra.Air.Duplicates != 1 {
		t.Fatalf("a: %d new, %d duplicates; want 10 and 1", ra.Air.New, ra.Air.Duplicates)
	}
	rb, err := s.WriteBatch(ctx, b)
	if err != nil {
		t.Fatalf("b: %v", err)
	}
	if rb.Air.New != 5 || rb.Air.Duplicates != 1 {
		t.Fatalf("b: %d new, %d duplicates; want 5 and 1", rb.Air.New, rb.Air.Duplicates)
	}
	if n := count(t, pool, `SELECT count(*) FROM air_observation`); n != 16 {
		t.Fatalf("%d rows stored; want 16", n)
	}
	rollupcheck.Check(t, pool)
}

// TestStartedRollupInvariant writes random air batches two at a time, with
// duplicates inside a batch, redeliveries of earlier batches and of the
// batch before, and checks after each finish that every stored roll-up
// equals plain SQL over the raw rows.
func TestStartedRollupInvariant(t *testing.T) {
	pool, s := storeOn(t, postgis.StoreConfig{})
	rollupTree(t, pool)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 11))
	air, _, _, _ := randomRollupRows(rng, 400)
	var bs []postgis.Batch
	for len(air) > 0 {
		var b postgis.Batch
		switch {
		case len(bs) > 0 && rng.IntN(4) == 0: // a redelivery, often of the batch before
			k := len(bs) - 1
			if rng.IntN(2) == 0 {
				k = rng.IntN(len(bs))
			}
			b = bs[k]
		default:
			n := min(len(air), 1+rng.IntN(40))
			b.Air, air = append([]postgis.AirRow(nil), air[:n]...), air[n:]
			if len(b.Air) > 1 && rng.IntN(3) == 0 {
				b.Air = append(b.Air, b.Air[rng.IntN(len(b.Air))])
			}
		}
		bs = append(bs, b)
	}
	// The partitions of the rows (StartBatch declines a batch needing one).
	all := postgis.Batch{}
	for _, b := range bs {
		all.Air = append(all.Air, b.Air...)
	}
	for prov, at := range map[string]time.Time{"OLD": time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), "01": time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC)} {
		r := airRow("p", at, 1)
		r.UnitCode, r.Province = "W1", prov
		if _, err := s.WriteBatch(context.Background(), postgis.Batch{Air: []postgis.AirRow{r}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < len(bs); i += 2 {
		overlapped(t, s, bs[i:min(i+2, len(bs))])
		rollupcheck.Check(t, pool)
	}
	want := map[string]bool{}
	for _, r := range all.Air {
		want[r.SourceID+"/"+r.EventID+"/"+r.ObservedAt.String()] = true
	}
	if n := count(t, pool, `SELECT count(*) FROM air_observation WHERE station_id <> 'p'`); n != len(want) {
		t.Fatalf("%d rows stored; want %d", n, len(want))
	}
	if _, rewritten := s.WrittenAllNew(); rewritten == 0 {
		t.Fatal("no batch was written again the exact way; the test lost its redeliveries")
	}
}

// TestStartedOnOneConnection: on a pool of one connection, a batch started
// beside the batch before waits for that batch's connection to come back
// before it takes one, rather than take it first and wait for the batch
// before, which would then wait for it: twenty rounds of two batches all
// finish.
func TestStartedOnOneConnection(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	cfg := pool.Config().Copy()
	cfg.MaxConns = 1
	bg := context.Background()
	one, err := pgxpool.NewWithConfig(bg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	s := postgis.NewStore(one)
	if _, err := s.WriteBatch(bg, postgis.Batch{Air: overlapRows(0, 1)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	for round := range 20 {
		from := 1 + round*20
		a := s.StartBatch(ctx, postgis.Batch{Air: overlapRows(from, 10)}, nil)
		b := s.StartBatch(ctx, postgis.Batch{Air: overlapRows(from+10, 10)}, a)
		if a == nil || b == nil {
			t.Fatal("a batch of air rows in known partitions was not started")
		}
		ra, errA := a.Finish(ctx, func() { b.Abort(ctx) })
		rb, errB := b.Finish(ctx, func() {})
		if errA != nil || errB != nil {
			t.Fatalf("round %d: %v, %v", round, errA, errB)
		}
		if ra.Air.New != 10 || rb.Air.New != 10 {
			t.Fatalf("round %d: %d and %d new; want 10 and 10", round, ra.Air.New, rb.Air.New)
		}
	}
}

// TestStartedFenced: a batch started under a partition's fence and finished
// after another holder took the partition fails with ErrFenced and stores
// nothing; the takeover did not wait for the started batch (its fence is
// checked when it is finished, so a started batch holds no lock the
// takeover waits on).
func TestStartedFenced(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	s := postgis.NewStore(pool)
	ctx := context.Background()
	oldCtx, _ := holding(t, s, "a")
	if _, err := s.WriteBatch(oldCtx, postgis.Batch{Air: overlapRows(0, 1)}); err != nil {
		t.Fatalf("the holder's batch: %v", err)
	}
	st := s.StartBatch(oldCtx, postgis.Batch{Air: overlapRows(1, 10)}, nil)
	if st == nil {
		t.Fatal("a batch of air rows in known partitions was not started")
	}
	defer st.Abort(ctx)
	if _, err := s.AcquirePartition(ctx, "01", "b", 2*time.Second); err != nil {
		t.Fatalf("taking the partition while a batch of the old holder is started: %v", err)
	}
	if _, err := st.Finish(oldCtx, func() {}); !errors.Is(err, postgis.ErrFenced) {
		t.Fatalf("the started batch of the stale holder: %v; want ErrFenced", err)
	}
	if n := count(t, pool, "SELECT count(*) FROM air_observation"); n != 1 {
		t.Fatalf("air_observation rows = %d; want 1", n)
	}
}

// TestStartedCopyTimedOutWaiting: a started batch whose COPY ran out of
// time waiting on a row of the batch before (held open here past the
// statement timeout) is written again the exact way once that batch
// committed, the repeated row a duplicate, not failed as too costly.
func TestStartedCopyTimedOutWaiting(t *testing.T) {
	pool, s := storeOn(t, postgis.StoreConfig{StatementTimeout: 300 * time.Millisecond})
	ctx := context.Background()
	if _, err := s.WriteBatch(ctx, postgis.Batch{Air: overlapRows(0, 1)}); err != nil {
		t.Fatal(err)
	}
	a := s.StartBatch(ctx, postgis.Batch{Air: overlapRows(1, 5)}, nil)
	b := s.StartBatch(ctx, postgis.Batch{Air: overlapRows(5, 5)}, a) // row 5 is a's too
	if a == nil || b == nil {
		t.Fatal("a batch of air rows in known partitions was not started")
	}
	defer b.Abort(ctx)
	// b's COPY waits on a's row 5 until the statement timeout ends it.
	testkit.Eventually(t, 30*time.Second, "b's COPY ended", func() (bool, string) {
		return b.CopyEnded(), "copying"
	})
	if _, err := a.Finish(ctx, func() {}); err != nil {
		t.Fatalf("a: %v", err)
	}
	rb, err := b.Finish(ctx, func() {})
	if err != nil {
		t.Fatalf("b: %v", err)
	}
	if rb.Air.New != 4 || rb.Air.Duplicates != 1 {
		t.Fatalf("b: %d new, %d duplicates; want 4 and 1", rb.Air.New, rb.Air.Duplicates)
	}
	if n := count(t, pool, `SELECT count(*) FROM air_observation`); n != 10 {
		t.Fatalf("%d rows stored; want 10", n)
	}
}
