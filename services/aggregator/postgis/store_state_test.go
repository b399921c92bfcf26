package postgis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// TestAirStateUpdatesAreHOT: writing the newer state of stations whose rows
// were just inserted updates them in place (HOT: no index entries), as a
// feed's next batch of the same stations does. It needs room on the pages of
// sensor (its fillfactor) and no index on a column the update changes;
// without either, every update writes each of the table's indexes.
func TestAirStateUpdatesAreHOT(t *testing.T) {
	const stations = 200
	ctx := context.Background()
	pool := testenv.PostGIS(t).Pool
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for step := range 2 {
		rows := make([]postgis.AirRow, stations)
		for i := range rows {
			rows[i] = airRow(fmt.Sprintf("hot%03d", i), base.Add(time.Duration(step)*time.Minute), float64(10*step+i))
		}
		changed, err := postgis.WriteAirStates(ctx, tx, postgis.Batch{Air: rows})
		if err != nil {
			t.Fatal(err)
		}
		if len(changed) != stations {
			t.Fatalf("step %d: %d states written; want %d", step, len(changed), stations)
		}
	}
	// This transaction's own counts, so nothing waits for the statistics.
	var inserted, updated, hot int64
	if err := tx.QueryRow(ctx, `SELECT n_tup_ins, n_tup_upd, n_tup_hot_upd
		FROM pg_stat_xact_user_tables WHERE relname = 'sensor'`).Scan(&inserted, &updated, &hot); err != nil {
		t.Fatal(err)
	}
	if inserted != stations || updated != stations || hot != updated {
		t.Fatalf("sensor: %d inserted, %d updated of which %d HOT; want %d, %d, all HOT",
			inserted, updated, hot, stations, stations)
	}
}
