package units

import (
	"slices"
	"sort"
	"time"
)

// Timeline holds the versions of the units and answers "which units were
// valid at time t" with an Index of exactly those: an event is attributed on
// the map valid at its observation time. It is immutable after NewTimeline
// and safe for concurrent use. It keeps one Index per period between two
// consecutive version boundaries, so its memory grows with the number of
// distinct maps, not of events.
type Timeline struct {
	starts  []time.Time // starts[i] begins period i+1; period 0 is before starts[0]
	periods []*Index    // len(starts)+1
}

// NewTimeline indexes the versions us (any order; Unit.ValidFrom/ValidTo).
// Versions of one code must not overlap; where they do the later ValidFrom
// wins in Get.
func NewTimeline(us []Unit) *Timeline {
	var cuts []time.Time
	for _, u := range us {
		if !u.ValidFrom.IsZero() {
			cuts = append(cuts, u.ValidFrom)
		}
		if !u.ValidTo.IsZero() {
			cuts = append(cuts, u.ValidTo)
		}
	}
	slices.SortFunc(cuts, func(a, b time.Time) int { return a.Compare(b) })
	cuts = slices.CompactFunc(cuts, func(a, b time.Time) bool { return a.Equal(b) })
	tl := &Timeline{starts: cuts, periods: make([]*Index, len(cuts)+1)}
	// Each version is prepared once and its rings shared by the periods it is
	// valid in: a period per group edit or map change must not copy every
	// boundary again (200 periods of 160 units took 1.4 GB when it did).
	built := make([]*entry, len(us))
	for p := range tl.periods {
		// A representative instant of period p: its start, or just before the
		// first cut for period 0.
		var at time.Time
		if p == 0 {
			if len(cuts) > 0 {
				at = cuts[0].Add(-time.Nanosecond)
			}
		} else {
			at = cuts[p-1]
		}
		var in []entry
		for i, u := range us {
			if validAt(u, at, p == 0 && len(cuts) > 0) {
				if built[i] == nil {
					e := newEntry(u)
					built[i] = &e
				}
				in = append(in, *built[i])
			}
		}
		// Within a period a code has one version; keep the latest if the data overlaps.
		slices.SortStableFunc(in, func(a, b entry) int { return b.unit.ValidFrom.Compare(a.unit.ValidFrom) })
		seen := map[string]bool{}
		in = slices.DeleteFunc(in, func(e entry) bool {
			if seen[e.unit.Code] {
				return true
			}
			seen[e.unit.Code] = true
			return false
		})
		tl.periods[p] = indexOf(in)
	}
	return tl
}

// validAt reports whether u is valid at t; before says t stands for "before
// every boundary", where only versions valid since ever are.
func validAt(u Unit, t time.Time, before bool) bool {
	if before {
		return u.ValidFrom.IsZero()
	}
	return (u.ValidFrom.IsZero() || !t.Before(u.ValidFrom)) && (u.ValidTo.IsZero() || t.Before(u.ValidTo))
}

// At returns the index of the units valid at t.
func (tl *Timeline) At(t time.Time) *Index {
	if tl == nil {
		return nil
	}
	// The number of starts at or before t is the period.
	p := sort.Search(len(tl.starts), func(i int) bool { return tl.starts[i].After(t) })
	return tl.periods[p]
}

// Periods returns the index of every period, oldest first.
func (tl *Timeline) Periods() []*Index {
	if tl == nil {
		return nil
	}
	return slices.Clone(tl.periods)
}

// Current returns the index of the units valid now and after: the last period.
func (tl *Timeline) Current() *Index {
	if tl == nil {
		return nil
	}
	return tl.periods[len(tl.periods)-1]
}

// Ancestors returns the version of unit code valid at t followed by its
// ancestors valid at t, up to the root (the national unit, VN, on a complete
// map); nil when no version of code is valid at t. The SQL function
// unit_ancestors(code, at) (migration 00015) gives the same from PostGIS.
func (tl *Timeline) Ancestors(code string, t time.Time) []Unit {
	return tl.At(t).Ancestors(code)
}

// Ancestors returns unit code followed by its ancestors in the index, up to
// the root; nil when code is not in the index. A parent missing from the
// index ends the chain.
func (ix *Index) Ancestors(code string) []Unit {
	var out []Unit
	for range 16 { // deeper than any real hierarchy; stops a cycle in bad data
		u, ok := ix.Get(code)
		if !ok {
			return out
		}
		out = append(out, u)
		if u.ParentCode == "" {
			return out
		}
		code = u.ParentCode
	}
	return out
}
