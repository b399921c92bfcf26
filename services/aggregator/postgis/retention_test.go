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
