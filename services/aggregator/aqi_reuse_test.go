package aggregator

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/iochub/iochub/services/aggregator/postgis"
)

// TestAQIOfStateReusedFromRate: the AQI commit takes from rate (a station's
// only row, every row stored) is the one it computes from the station after
// the commit, and it is taken only then.
func TestAQIOfStateReusedFromRate(t *testing.T) {
	history := func() *aqiBook {
		b := newAQIBook(quietLog())
		var rows []postgis.AirRow
		for s := range 4 {
			rows = append(rows, hours(fmt.Sprintf("st%d", s), 0, 30, float64(20+7*s))...)
		}
		storeAll(b, airPending(rows...), nil, hourAt(31))
		return b
	}
	batch := func() *pending {
		return airPending(
			aqiRow("st0", hourAt(30), 35),                     // the only row of its station
			aqiRow("st1", hourAt(30), 80),                     // two rows of st1 in one hour:
			aqiRow("st1", hourAt(30).Add(time.Minute), 10),    // not taken from rate
			aqiRow("st2", hourAt(31), 55),                     // the only row
			aqiRow("new", hourAt(30), 12),                     // a station without history
			aqiRow("st3", hourAt(30).Add(-60*time.Hour), 500), // older than the kept hours: not added
		)
	}
	for _, inserted := range [][]int{nil, {1, 2, 3, 4, 5}} { // all, or row 0 redelivered
		reused, computed := history(), history()
		pr, pc := batch(), batch()
		storeAll(reused, pr, inserted, hourAt(32))
		// The same batch with nothing to reuse: commit computes every AQI.
		computed.rate(pc)
		for i := range pc.items[airKind] {
			pc.items[airKind][i].d.rated = nil
		}
		commitLatest(computed, pc, inserted, hourAt(32))
		for i := range pr.items[airKind] {
			got, want := pr.items[airKind][i].d.annot.GetAqi(), pc.items[airKind][i].d.annot.GetAqi()
			if !proto.Equal(got, want) {
				t.Errorf("inserted %v, row %d: got state AQI %v; want %v", inserted, i, got, want)
			}
		}
		wantRated := []bool{true, false, false, true, true, false}
		for i, want := range wantRated {
			if got := pr.items[airKind][i].d.rated != nil; got != want {
				t.Errorf("row %d rated by rate kept = %v; want %v", i, got, want)
			}
		}
	}
}

// commitLatest is storeAll after rate: commit with the rows given as new
// (nil: all) and the latest row of each station as its state.
func commitLatest(b *aqiBook, p *pending, inserted []int, now time.Time) {
	if inserted == nil {
		for i := range p.batch.Air {
			inserted = append(inserted, i)
		}
	}
	latest := map[string]int{}
	for i, r := range p.batch.Air {
		if j, ok := latest[r.StationID]; !ok || !r.ObservedAt.Before(p.batch.Air[j].ObservedAt) {
			latest[r.StationID] = i
		}
	}
	var res postgis.Result
	res.Air.Inserted = inserted
	for _, i := range latest {
		res.Air.Changed = append(res.Air.Changed, postgis.Changed{Index: i})
	}
	b.commit(p, res, now)
}
