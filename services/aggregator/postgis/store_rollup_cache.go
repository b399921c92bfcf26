package postgis

import (
	"slices"
	"sync"
)

// maxCachedMembers bounds the member rows a memberCache holds (each about
// 1.6 kB): 16,384 rows, ~26 MB, a day of 16,000 stations and segments (one
// shared row each for the units of its path), or of 4,000 counted unit by
// unit in a ward, its province, VN and a group. A full cache keeps the
// rows it holds (their new versions too) and takes no more until a new day
// lets it drop the older ones; meanwhile the batches read the rows it lacks
// in part, as the exact way does, without a lock.
const maxCachedMembers = 1 << 14

// memberCache keeps in a store's memory the rollup_member_day rows its
// batches read whole or wrote, each with its version, so that the next batch
// of the same entities and day neither reads nor locks them: it counts its
// members from the copy and writes a row back only where the row's version
// is still the copy's (sqlUpdateMemberDays), the batch failing otherwise
// (errMemberVersion) and being written again the exact way. A copy is
// installed only after its batch committed; any other writer of a row (an
// exact batch, another aggregator) changes its version. The copies are a
// speed-up only: a missing or stale copy costs a read, never a count.
// It is safe for concurrent use.
type memberCache struct {
	mu   sync.Mutex
	rows map[entityDay]map[string]*cachedMember // by entity day and unit
	n    int
	// newest is the latest day installed (Unix seconds).
	newest int64
	// bound, when not 0, replaces maxCachedMembers (for the tests).
	bound int
}

// max is the number of rows the cache may hold.
func (c *memberCache) max() int {
	if c.bound > 0 {
		return c.bound
	}
	return maxCachedMembers
}

// cachedMember is a whole member row (headSlots + minutesPerDay grades) at
// a version.
type cachedMember struct {
	grades  []byte
	version int64
	units   []string // a shared row's (memberRow.units)
}

// full reports whether the cache takes no more rows.
func (c *memberCache) full() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n >= c.max()
}

// take adds to out the rows of the entity days of keys that the cache
// holds, and returns the entity days it does not hold. The rows share the
// cache's bytes (borrowed): a batch that changes one changes its own copy
// (memberRow.own), so a batch that fails leaves the cache as it was.
func (c *memberCache) take(keys []entityDay, out map[memberKey]*memberRow) []entityDay {
	c.mu.Lock()
	defer c.mu.Unlock()
	var missed []entityDay
	// One allocation for the rows of a batch (an entity day has one shared
	// row, or a row per unit of its path).
	slab := make([]memberRow, 0, len(keys))
	for _, ed := range keys {
		units, ok := c.rows[ed]
		if !ok {
			missed = append(missed, ed)
			continue
		}
		for unit, r := range units {
			g := r.grades
			if len(slab) == cap(slab) {
				slab = make([]memberRow, 0, len(keys))
			}
			slab = append(slab, memberRow{head: g[:headSlots:headSlots], minutes: g[headSlots:len(g):len(g)],
				version: r.version, whole: g, borrowed: true, units: r.units})
			out[memberKey{ed.layer, ed.entity, ed.day, unit}] = &slab[len(slab)-1]
		}
	}
	return missed
}

// install keeps the rows of m that were read whole, as a committed batch
// left them: a row written at its version + 1. It keeps an entity day's rows
// all or none (a batch takes the rows of an entity day the cache holds as
// all its rows), and none of one read in part. m's rows must not change
// after (install may keep their bytes).
func (c *memberCache) install(m *memberRows) {
	if m == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rows == nil {
		c.rows = map[entityDay]map[string]*cachedMember{}
	}
	// The rows to install, linked by entity day (most entity days have one
	// row, their shared one): no slice per entity day.
	type entry struct {
		k    memberKey
		r    *memberRow
		next int // the next row of the entity day, -1 after the last
	}
	type day struct{ first, n int } // a day holds a row at least
	entries := make([]entry, 0, len(m.grades))
	days := make(map[entityDay]day, len(m.grades))
	for k, r := range m.grades {
		ed := k.entityDay()
		if held, ok := c.rows[ed][k.unit]; ok && !r.written && held.version >= r.version {
			continue // unchanged, and held already (most rows of most batches)
		}
		d, seen := days[ed]
		if !seen {
			d.first = -1
		}
		entries = append(entries, entry{k: k, r: r, next: d.first})
		d.first, d.n = len(entries)-1, d.n+1
		days[ed] = d
	}
	prev := c.newest
	for ed := range days {
		c.newest = max(c.newest, ed.day)
	}
	if c.newest > prev && c.n >= c.max() {
		c.evict() // a new day: a full cache makes room for it
	}
	for ed, d := range days {
		whole := true
		for i := d.first; i >= 0; i = entries[i].next {
			r := entries[i].r
			whole = whole && r.lo == 0 && len(r.head) == headSlots && len(r.minutes) == minutesPerDay
		}
		units, ok := c.rows[ed]
		if whole && !ok && c.n+d.n > c.max() {
			c.evict() // room for the newest day
		}
		if !whole || (!ok && c.n+d.n > c.max()) {
			if ok { // a batch read it in part: it holds them no more
				c.n -= len(units)
				delete(c.rows, ed)
			}
			continue
		}
		if !ok {
			units = map[string]*cachedMember{}
			c.rows[ed] = units
		}
		for i := d.first; i >= 0; i = entries[i].next {
			k, r := entries[i].k, entries[i].r
			v := r.version
			if r.written {
				v++
			}
			old, ok := units[k.unit]
			if ok && old.version >= v {
				continue // a later batch installed it already
			}
			g := r.whole
			if g == nil {
				g = append(slices.Clip(r.head), r.minutes...)
			}
			if ok {
				// Batches that took the row hold its fields' values, not
				// the struct: it is changed in place.
				old.grades, old.version, old.units = g, v, r.units
				continue
			}
			c.n++
			units[k.unit] = &cachedMember{grades: g, version: v, units: r.units}
		}
	}
}

// evict drops the rows of the days before the newest (the day of the
// latest observation it was given).
func (c *memberCache) evict() {
	for ed, units := range c.rows {
		if ed.day < c.newest {
			c.n -= len(units)
			delete(c.rows, ed)
		}
	}
}

// forget drops the rows of the entity days of m (written by a batch that
// did not use the cache, or failed).
func (c *memberCache) forget(m *memberRows) {
	if m == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for ed := range m.ranges {
		if units, ok := c.rows[ed]; ok {
			c.n -= len(units)
			delete(c.rows, ed)
		}
	}
}
