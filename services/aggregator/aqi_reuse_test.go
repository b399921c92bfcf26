package aggregator

import (
	"context"
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

// TestAQIRatedAheadAsInOrder: batches rated ahead (the next one while the
// one before is written) get the AQI, row and state, that rating them one
// after the other's commit gives: stations the batch before has are left to
// settle, after its commit; a batch before that was not stored (naked) or
// the book forgetting stations (a sweep) is taken into account.
func TestAQIRatedAheadAsInOrder(t *testing.T) {
	batches := func() []*pending {
		return []*pending{
			airPending(aqiRow("a", hourAt(30), 40), aqiRow("b", hourAt(30), 90)),
			airPending(aqiRow("b", hourAt(31), 10), aqiRow("c", hourAt(31), 70)),
			airPending(aqiRow("a", hourAt(31), 300), aqiRow("c", hourAt(31).Add(time.Minute), 5), aqiRow("d", hourAt(31), 15)),
		}
	}
	history := func() *aqiBook {
		b := newAQIBook(quietLog())
		var rows []postgis.AirRow
		for i, s := range []string{"a", "b", "c"} {
			rows = append(rows, hours(s, 0, 30, float64(20+9*i))...)
		}
		storeAll(b, airPending(rows...), nil, hourAt(30))
		b.warm = true
		return b
	}
	for _, tc := range []struct {
		name  string
		fails int // the batch the store refuses (naked), -1 none
		sweep bool
	}{{"all stored", -1, false}, {"second naked", 1, false}, {"first naked", 0, false}, {"sweep between", -1, true}} {
		t.Run(tc.name, func(t *testing.T) {
			inOrder, ahead := history(), history()
			want, got := batches(), batches()
			now := hourAt(32)
			for i, p := range want { // one after the other
				inOrder.rate(p)
				if i != tc.fails {
					commitLatest(inOrder, p, nil, now)
				}
				if tc.sweep && i == 0 {
					forget(inOrder, "c", now)
				}
			}
			// All three rated ahead before the first is committed.
			for _, p := range got {
				ahead.rateAhead(p)
			}
			for i, p := range got {
				ahead.settle(context.Background(), nil, p, now)
				if i != tc.fails {
					commitLatest(ahead, p, nil, now)
				}
				ahead.done(p)
				if tc.sweep && i == 0 {
					forget(ahead, "c", now)
				}
			}
			for i := range want {
				for j := range want[i].batch.Air {
					w, g := want[i].batch.Air[j].AQI, got[i].batch.Air[j].AQI
					if string(w.JSON) != string(g.JSON) {
						t.Errorf("batch %d row %d: got row AQI %s; want %s", i, j, g.JSON, w.JSON)
					}
					if ws, gs := want[i].items[airKind][j].d.annot.GetAqi(), got[i].items[airKind][j].d.annot.GetAqi(); !proto.Equal(ws, gs) {
						t.Errorf("batch %d row %d: got state AQI %v; want %v", i, j, gs, ws)
					}
				}
			}
			if len(ahead.busy) != 0 {
				t.Errorf("stations still busy after every batch: %v", ahead.busy)
			}
		})
	}
}

// forget makes the book forget station id as a sweep does.
func forget(b *aqiBook, id string, now time.Time) {
	b.stations[postgis.StationRef{ID: id}].seen = now.Add(-2 * aqiKeep)
	b.lastSweep = time.Time{}
	b.sweep(now)
}
