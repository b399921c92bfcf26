package postgis

import (
	"slices"
	"sync"
)

// maxCachedMembers bounds the member rows a memberCache holds (each about
// 1.6 kB): 16,384 rows, ~26 MB, the rows of a day of 4,000 stations and
// segments in a ward, its province, VN and a group.
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
}

// cachedMember is a whole member row (headSlots + minutesPerDay grades) at
// a version.
type cachedMember struct {
	grades  []byte
	version int64
}

// take adds to out copies of the rows of the entity days of keys that the
// cache holds, and returns the entity days it does not hold.
func (c *memberCache) take(keys []entityDay, out map[memberKey]*memberRow) []entityDay {
	c.mu.Lock()
	defer c.mu.Unlock()
	var missed []entityDay
	for _, ed := range keys {
		units, ok := c.rows[ed]
		if !ok {
			missed = append(missed, ed)
			continue
		}
		for unit, r := range units {
			g := slices.Clone(r.grades)
			out[memberKey{ed.layer, ed.entity, ed.day, unit}] = &memberRow{head: g[:headSlots:headSlots], minutes: g[headSlots:], version: r.version, whole: g}
		}
	}
	return missed
}

// install keeps the rows of m that were read whole, as a committed batch
// left them: a row written at its version + 1. m's rows must not change
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
	for k, r := range m.grades {
		if r.lo != 0 || len(r.head) != headSlots || len(r.minutes) != minutesPerDay {
			continue // read in part
		}
		v := r.version
		if r.written {
			v++
		}
		ed := k.entityDay()
		units := c.rows[ed]
		if units == nil {
			units = map[string]*cachedMember{}
			c.rows[ed] = units
		}
		if old, ok := units[k.unit]; ok {
			if old.version >= v {
				continue // a later batch installed it already
			}
		} else {
			c.n++
		}
		g := r.whole
		if g == nil {
			g = append(slices.Clip(r.head), r.minutes...)
		}
		units[k.unit] = &cachedMember{grades: g, version: v}
		c.newest = max(c.newest, k.day)
	}
	if c.n > maxCachedMembers {
		c.evict()
	}
}

// evict drops the days before the newest, then, if the cache is still over
// its bound, everything.
func (c *memberCache) evict() {
	for ed, units := range c.rows {
		if ed.day < c.newest {
			c.n -= len(units)
			delete(c.rows, ed)
		}
	}
	if c.n > maxCachedMembers {
		c.rows, c.n = nil, 0
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
