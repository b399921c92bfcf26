package postgis_test

import (
	"fmt"
	"math/rand/v2"
	"time"

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
