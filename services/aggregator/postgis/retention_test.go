package postgis_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// TestDropObservationsBefore: the monthly partitions whose month ended by the
// cutoff are dropped with their rows, later ones and partitions named
// otherwise stay, a second sweep drops nothing, and a late observation of a
// dropped month is stored again in a new partition.
func TestDropObservationsBefore(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	s := postgis.NewStore(pool)
	ctx := context.Background()
	months := []time.Time{
		time.Date(2026, 8, 15, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 9, 15, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 10, 15, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC),
	}
	for i, m := range months {
		if _, err := s.WriteBatch(ctx, postgis.Batch{Air: []postgis.AirRow{airRow("ret-"+m.Format("01"), m, float64(10+i))}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE air_observation_other PARTITION OF air_observation DEFAULT`); err != nil {
		t.Fatal(err)
	}
	// The cutoff falls inside October: August and September ended before it.
	dropped, err := s.DropObservationsBefore(ctx, time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"air_observation_p202608", "air_observation_p202609"}; !slices.Equal(dropped, want) {
		t.Errorf("dropped %v; want %v", dropped, want)
	}
	if n := count(t, pool, `SELECT count(*) FROM air_observation`); n != 2 {
		t.Errorf("%d air observations left; want October's and November's", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM pg_class WHERE relname IN ('air_observation_p202610', 'air_observation_p202611', 'air_observation_other')`); n != 3 {
		t.Errorf("%d of the later and the default partitions left; want 3", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM sensor WHERE id LIKE 'ret-%'`); n != 4 {
		t.Errorf("%d current states left; want all 4 (only raw observations age out)", n)
	}
	if again, err := s.DropObservationsBefore(ctx, time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC)); err != nil || len(again) != 0 {
		t.Errorf("a second sweep dropped %v, %v; want nothing", again, err)
	}
	late := months[0].Add(time.Hour)
	if _, err := s.WriteBatch(ctx, postgis.Batch{Air: []postgis.AirRow{airRow("ret-late", late, 5)}}); err != nil {
		t.Fatalf("a late observation of a dropped month: %v", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM air_observation_p202608`); n != 1 {
		t.Errorf("the dropped month's partition holds %d rows after a late observation; want 1", n)
	}
}

// TestLateObservationAfterAnotherStoreDropped: the partitions a store knows
// are its own memory, and another aggregator (the one holding the
// singleton lease, partitioned) drops the old months. An observation of a
// dropped month that this store had seen used to fail with "no partition
// of relation found for row" (SQLSTATE 23514), which the aggregator counts
// as the data refused: it was dead-lettered, and so was its redrive, until
// a restart. The store makes the partition again and writes the batch.
func TestLateObservationAfterAnotherStoreDropped(t *testing.T) {
	pool := testenv.PostGIS(t).Pool
	ctx := context.Background()
	writer, sweeper := postgis.NewStore(pool), postgis.NewStore(pool)
	aug := time.Date(2026, 8, 15, 0, 0, 0, 0, time.UTC)
	for _, b := range []postgis.Batch{
		{Air: []postgis.AirRow{airRow("drop-a", aug, 10)}},
		{Traffic: []postgis.TrafficRow{trafficRow("drop-s", aug, 30)}},
	} {
		if _, err := writer.WriteBatch(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	dropped, err := sweeper.DropObservationsBefore(ctx, time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"air_observation_p202608", "traffic_observation_p202608"}; !slices.Equal(dropped, want) {
		t.Fatalf("dropped %v; want %v", dropped, want)
	}
	late := aug.Add(time.Hour)
	for _, b := range []postgis.Batch{
		{Air: []postgis.AirRow{airRow("drop-b", late, 11)}},                                                                // the direct way
		{Air: []postgis.AirRow{airRow("drop-c", late, 12)}, Traffic: []postgis.TrafficRow{trafficRow("drop-t", late, 31)}}, // also the direct way
		{Air: []postgis.AirRow{airRow("drop-d", late, 13)}, Generic: []postgis.GenericRow{stagedRow(0, late)}},             // the exact way
	} {
		if _, err := writer.WriteBatch(ctx, b); err != nil {
			t.Fatalf("a late observation of a month another store dropped: %v", err)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM air_observation_p202608`); n != 3 {
		t.Errorf("the dropped month's air partition holds %d rows; want 3", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM traffic_observation_p202608`); n != 1 {
		t.Errorf("the dropped month's traffic partition holds %d rows; want 1", n)
	}
}
