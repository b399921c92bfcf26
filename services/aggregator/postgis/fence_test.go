package postgis_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// holding takes partition 01 for holder and returns a context whose writes
// are fenced with the epoch it got, and that epoch.
func holding(tb testing.TB, s *postgis.Store, holder string) (context.Context, int64) {
	tb.Helper()
	ctx := context.Background()
	epoch, err := s.AcquirePartition(ctx, "01", holder, time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	return postgis.WithFence(ctx, postgis.Fence{Partition: "01", Epoch: epoch}), epoch
}

// TestFenceRefusesStaleHolder: once a partition was taken again, a batch
// written under the previous holder's epoch fails with ErrFenced and stores
// nothing, both on the all-new path and the exact one; the new holder's
// batch is stored.
func TestFenceRefusesStaleHolder(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	s := postgis.NewStore(pool)
	ctx := context.Background()

	oldCtx, old := holding(t, s, "a")
	if _, err := s.WriteBatch(oldCtx, postgis.Batch{Air: []postgis.AirRow{airRow("st1", t0, 10)}}); err != nil {
		t.Fatalf("the holder's batch: %v", err)
	}
	cur, err := s.AcquirePartition(ctx, "01", "b", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if cur <= old {
		t.Fatalf("epoch after taking the partition again = %d; want above %d", cur, old)
	}
	for name, b := range map[string]postgis.Batch{
		"all new": {Air: []postgis.AirRow{airRow("st1", t0.Add(time.Minute), 11)}},
		"exact":   {Air: []postgis.AirRow{airRow("st1", t0, 10), airRow("st1", t0.Add(2*time.Minute), 12)}},
	} {
		if _, err := s.WriteBatch(oldCtx, b); !errors.Is(err, postgis.ErrFenced) {
			t.Errorf("%s: the stale holder's batch: %v; want ErrFenced", name, err)
		}
	}
	if n := count(t, pool, "SELECT count(*) FROM air_observation"); n != 1 {
		t.Errorf("air_observation rows after the stale writes = %d; want 1", n)
	}
	// Another partition's fence does not stand for this one.
	if _, err := s.WriteBatch(postgis.WithFence(ctx, postgis.Fence{Partition: "79", Epoch: cur}),
		postgis.Batch{Air: []postgis.AirRow{airRow("st1", t0.Add(3*time.Minute), 13)}}); !errors.Is(err, postgis.ErrFenced) {
		t.Errorf("a batch under a partition never taken: %v; want ErrFenced", err)
	}
	curCtx := postgis.WithFence(ctx, postgis.Fence{Partition: "01", Epoch: cur})
	if _, err := s.WriteBatch(curCtx, postgis.Batch{Air: []postgis.AirRow{airRow("st1", t0.Add(time.Minute), 11)}}); err != nil {
		t.Fatalf("the new holder's batch: %v", err)
	}
	if n := count(t, pool, "SELECT count(*) FROM air_observation"); n != 2 {
		t.Errorf("air_observation rows = %d; want 2", n)
	}
}

// TestAcquireWaitsForHolder: taking a partition waits for the transaction
// the holder has open under its fence (it cannot be fenced midway and still
// commit after the new holder started), and succeeds once it ended.
func TestAcquireWaitsForHolder(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	s := postgis.NewStore(pool)
	ctx := context.Background()
	oldCtx, old := holding(t, s, "a")
	held := make(chan struct{})
	finish := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.BeginFunc(oldCtx, func(tx pgx.Tx) error {
			close(held)
			<-finish
			return nil
		})
	}()
	var once sync.Once
	release := func() { once.Do(func() { close(finish) }) }
	defer release() // a failure below must not leave the transaction open
	<-held
	if _, err := s.AcquirePartition(ctx, "01", "b", 50*time.Millisecond); err == nil {
		t.Fatal("the partition was taken while its holder had a transaction open")
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("the holder's transaction, begun before the partition was taken: %v", err)
	}
	cur, err := s.AcquirePartition(ctx, "01", "b", time.Second)
	if err != nil {
		t.Fatalf("taking the partition after its holder's transaction ended: %v", err)
	}
	if err := s.BeginFunc(oldCtx, func(pgx.Tx) error { return nil }); !errors.Is(err, postgis.ErrFenced) {
		t.Errorf("the old holder's next transaction: %v; want ErrFenced", err)
	}
	if cur != old+1 {
		t.Errorf("epoch = %d; want %d", cur, old+1)
	}
}

// TestCurrentProvinces lists the provinces valid now, not those closed.
func TestCurrentProvinces(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO admin_unit (code, level, name_vi, boundary, valid_from) VALUES ('VN', 'national', 'VN', ST_Multi(ST_MakeEnvelope(100, 8, 110, 24, 4326)), '2020-01-01')`,
		`INSERT INTO admin_unit (code, level, parent_code, name_vi, boundary, valid_from) VALUES ('01', 'province', 'VN', 'HN', ST_Multi(ST_MakeEnvelope(105, 20, 106, 21, 4326)), '2020-01-01')`,
		`INSERT INTO admin_unit (code, level, parent_code, name_vi, boundary, valid_from, valid_to) VALUES ('02', 'province', 'VN', 'HG', ST_Multi(ST_MakeEnvelope(104, 22, 105, 23, 4326)), '2020-01-01', '2025-07-01')`,
		`INSERT INTO admin_unit (code, level, parent_code, name_vi, boundary, valid_from) VALUES ('79', 'province', 'VN', 'HCM', ST_Multi(ST_MakeEnvelope(106, 10, 107, 11, 4326)), '2020-01-01')`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	got, err := postgis.NewStore(pool).CurrentProvinces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "01" || got[1] != "79" {
		t.Errorf("CurrentProvinces = %v; want [01 79]", got)
	}
}

// BenchmarkWriteBatchFenced measures what the fence costs a batch: 500 air
// rows (roll-ups on) written under a partition's fence and without one,
// batch for batch in one loop so that the load of the machine weighs on both
// alike; fenced/plain is the ratio of their rates.
func BenchmarkWriteBatchFenced(b *testing.B) {
	const n = 500
	pool := testenv.PostGIS(b).Pool
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO admin_unit (code, level, name_vi, boundary, valid_from) VALUES ('VN', 'national', 'VN', ST_Multi(ST_MakeEnvelope(105, 20, 106, 21, 4326)), '2020-01-01')`,
		`INSERT INTO admin_unit (code, level, parent_code, name_vi, boundary, valid_from) VALUES ('01', 'province', 'VN', '01', ST_Multi(ST_MakeEnvelope(105, 20, 106, 21, 4326)), '2020-01-01')`,
		`INSERT INTO admin_unit (code, level, parent_code, name_vi, boundary, valid_from) VALUES ('00070', 'commune', '01', '00070', ST_Multi(ST_MakeEnvelope(105, 20, 106, 21, 4326)), '2020-01-01')`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	s := postgis.NewStore(pool)
	fctx, _ := holding(b, s, "bench")
	fBase, pBase := benchBase(), benchBase()
	var fenced, plain time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if _, err := s.WriteBatch(fctx, postgis.Batch{Air: benchRows(fBase+i, n)}); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if _, err := s.WriteBatch(ctx, postgis.Batch{Air: benchRows(pBase+i, n)}); err != nil {
			b.Fatal(err)
		}
		fenced, plain = fenced+mid.Sub(start), plain+time.Since(mid)
	}
	b.ReportMetric(float64(b.N*n)/fenced.Seconds(), "fenced_rows/s")
	b.ReportMetric(float64(b.N*n)/plain.Seconds(), "plain_rows/s")
	b.ReportMetric(plain.Seconds()/fenced.Seconds(), "fenced/plain")
}
