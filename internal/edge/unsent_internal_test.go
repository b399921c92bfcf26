package edge

import (
	"fmt"
	"testing"
	"time"
)

// look is one look of the tracker: FEEDS's first sequence (its last is
// 100, so it is never empty) and the hub's sourcing consumers; want are
// the losses it finds ("6-12", "4-5 resume") and unknown the span it
// reports as left while it does not know what the hub holds.
type look struct {
	first   uint64
	cons    []sourcing
	want    []string
	unknown string
}

// TestUnsentTracker covers what the real-server tests cannot bring about
// on demand: items the hub was sent but did not store, a consumer that
// skipped past expired items, a source added anew, an edge restarted.
func TestUnsentTracker(t *testing.T) {
	a := func(delivered uint64) sourcing { return sourcing{id: "a", start: 1, delivered: delivered} }
	for _, c := range []struct {
		name  string
		looks []look
		total uint64
	}{
		{"sourced in time", []look{
			{first: 1, cons: []sourcing{a(5)}},
			{first: 6},
		}, 0},
		{"expired during a cut", []look{
			{first: 1, cons: []sourcing{a(5)}},
			{first: 1},
			{first: 13, want: []string{"6-12"}},
			{first: 13, cons: []sourcing{{id: "b", start: 6, delivered: 13}}},
			{first: 14, cons: []sourcing{{id: "b", start: 6, delivered: 13}}},
		}, 7},
		{"sent but not stored before the cut", []look{
			{first: 1, cons: []sourcing{a(5)}},
			{first: 13, want: []string{"6-12"}},
			// The hub had stored 3 only: 4 and 5 are lost too.
			{first: 13, cons: []sourcing{{id: "b", start: 4, delivered: 12}}, want: []string{"4-5 resume"}},
			{first: 13, cons: []sourcing{{id: "b", start: 4, delivered: 12}}},
		}, 9},
		{"a consumer that skipped past expired items", []look{
			{first: 1, cons: []sourcing{a(5)}},
			{first: 11, cons: []sourcing{a(5)}, want: []string{"6-10"}},
			{first: 11, cons: []sourcing{a(12)}},
			// The hub had stored 3: 4 and 5 are lost, 6 to 10 counted once.
			{first: 13, cons: []sourcing{{id: "b", start: 4, delivered: 12}}, want: []string{"4-5 resume", "11-12"}},
		}, 9},
		{"a source added anew starts at 1 and loses nothing", []look{
			{first: 1, cons: []sourcing{a(5)}},
			{first: 6},
			{first: 6, cons: []sourcing{{id: "b", start: 1, delivered: 10}}},
			{first: 11, cons: []sourcing{{id: "b", start: 1, delivered: 10}}},
		}, 0},
		{"restarted with the link down", []look{
			{first: 6},
			{first: 13, unknown: "6-12"},
			{first: 13, unknown: ""},
			{first: 13, cons: []sourcing{{id: "b", start: 6, delivered: 12}}, want: []string{"6-12"}},
		}, 7},
		{"restarted, the hub had it all", []look{
			{first: 6},
			{first: 13, unknown: "6-12"},
			{first: 13, cons: []sourcing{{id: "b", start: 13, delivered: 12}}},
		}, 0},
		{"never sourced until --retain removed items", []look{
			{first: 1},
			{first: 4, unknown: "1-3"},
			{first: 4, cons: []sourcing{a(3)}, want: []string{"1-3"}},
		}, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			var tr unsentTracker
			for i, l := range c.looks {
				losses, unknown := tr.observe(feedsState{first: l.first, msgs: 101 - l.first}, l.cons)
				var got []string
				for _, x := range losses {
					s := fmt.Sprintf("%d-%d", x.From, x.To)
					if x.AtResume {
						s += " resume"
					}
					got = append(got, s)
				}
				if fmt.Sprint(got) != fmt.Sprint(l.want) {
					t.Errorf("look %d: losses %q; want %q", i, got, l.want)
				}
				u := ""
				if unknown.To > 0 {
					u = fmt.Sprintf("%d-%d", unknown.From, unknown.To)
				}
				if u != l.unknown {
					t.Errorf("look %d: unknown %q; want %q", i, u, l.unknown)
				}
			}
			if tr.total != c.total {
				t.Errorf("%d items counted; want %d", tr.total, c.total)
			}
		})
	}
}

// TestRecordSetLast: the record's last run is the latest one counted,
// merged with the one before when it continues it (a run that left over
// several looks), keeping when the first of it was stored.
func TestRecordSetLast(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name     string
		runs     [][2]uint64
		from, to uint64
		// storedAfter is the run whose StoredAfter the last keeps.
		storedAfter int
	}{
		{"one", [][2]uint64{{6, 12}}, 6, 12, 0},
		{"continued", [][2]uint64{{6, 6}, {7, 12}}, 6, 12, 0},
		{"continued twice", [][2]uint64{{6, 6}, {7, 9}, {10, 12}}, 6, 12, 0},
		{"apart", [][2]uint64{{6, 8}, {10, 12}}, 10, 12, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r UnsentRecord
			for i, s := range c.runs {
				r.setLast(&LostRun{FromSeq: s[0], ToSeq: s[1], StoredAfter: t0.Add(time.Duration(i) * time.Minute)})
			}
			wantAfter := t0.Add(time.Duration(c.storedAfter) * time.Minute)
			if r.Last.FromSeq != c.from || r.Last.ToSeq != c.to || !r.Last.StoredAfter.Equal(wantAfter) {
				t.Errorf("last %d-%d stored after %s; want %d-%d after %s", r.Last.FromSeq, r.Last.ToSeq, r.Last.StoredAfter, c.from, c.to, wantAfter)
			}
		})
	}
}
