package postgis

import (
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// maxCachedUnits bounds the units whose counts a contextCache holds: far
// more than the ~3,400 units (and groups) of Vietnam's tree. A full cache
// takes no more units; the batches read the counts of the others each time.
const maxCachedUnits = 1 << 14

// contextCache keeps in a store's memory the known sensors and stale
// sources of the units its batches wrote roll-ups of (sqlRollupContext),
// as read at one version of the roll-up context (rollup_context, migration
// 00032) and for the times between two boundaries of the tree (valid_from,
// valid_to): for any transaction that sees that version, changed nothing of
// it itself, and whose now() is between them, the read gives the same
// counts. Each batch's read (sqlRollupContextCached) checks that in the
// database, in the statement that would read them, and reads them only when
// it does not hold (or for the units the cache lacks). The copies are a
// speed-up only: a stale copy is never used, several stores (aggregators)
// each see the others' changes through the version. It is safe for
// concurrent use.
type contextCache struct {
	mu      sync.Mutex
	version int64 // -1: nothing held
	// from and until bound the now() the counts hold for (nil: open).
	from, until *time.Time
	// units holds the counts of each unit read, by kind ("" for stale).
	units map[string]map[string]int64
	// limit bounds len(units) (maxCachedUnits).
	limit int
	// reads counts the statements that read counts (not a whole hit).
	reads atomic.Int64
}

// newContextCache returns an empty contextCache.
func newContextCache() *contextCache {
	return &contextCache{version: -1, limit: maxCachedUnits}
}

// contextState is what a cached read of the context holds until its
// statement's answer: the version and times the copies were for, and the
// copies of the units the cache held.
type contextState struct {
	version     int64
	from, until *time.Time
	held        map[kindKey]int64
}

// take returns the units of units (sorted, distinct) the cache lacks, and
// the state of the others.
func (c *contextCache) take(units []string) (missing []string, st contextState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st = contextState{version: c.version, from: c.from, until: c.until, held: map[kindKey]int64{}}
	for _, u := range units {
		kinds, ok := c.units[u]
		if !ok {
			missing = append(missing, u)
			continue
		}
		for k, n := range kinds {
			st.held[kindKey{u, k}] = n
		}
	}
	if missing == nil {
		missing = []string{} // an empty array, not NULL
	}
	return missing, st
}

// install keeps the counts of units (all of them, read at version between
// from and until): added to the copies held for the same, in place of them
// otherwise.
func (c *contextCache) install(version int64, from, until *time.Time, units []string, counts map[kindKey]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version != version || !sameTime(c.from, from) || !sameTime(c.until, until) {
		c.version, c.from, c.until, c.units = version, from, until, map[string]map[string]int64{}
	}
	for _, u := range units {
		if _, ok := c.units[u]; !ok && len(c.units) >= c.limit {
			continue
		}
		c.units[u] = map[string]int64{}
	}
	for k, n := range counts {
		if kinds, ok := c.units[k.unit]; ok {
			kinds[k.kind] = n
		}
	}
}

// sameTime reports whether a and b are both open (nil) or the same instant.
func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// queueRollupContextCached is queueRollupContext through cache: it queues
// sqlRollupContextCached, which reads the counts of the units cache lacks,
// or of all units when its copies do not hold; the copies fill the map it
// returns where they hold, and the counts read are installed in cache
// (unless the transaction changed the context: it alone sees them).
func queueRollupContextCached(pb *pgx.Batch, units []string, cache *contextCache) map[kindKey]int64 {
	missing, st := cache.take(units)
	counts := map[kindKey]int64{}
	collect := func(rows pgx.Rows) error {
		var (
			state       string
			version     int64
			from, until *time.Time
			read        = map[kindKey]int64{}
		)
		for rows.Next() {
			var unit *string
			var k kindKey
			var n int64
			var lo, hi *time.Time
			if err := rows.Scan(&unit, &k.kind, &n, &lo, &hi); err != nil {
				return fmt.Errorf("reading sensors and stale sources: %w", err)
			}
			if unit == nil {
				state, version, from, until = k.kind, n, lo, hi
				continue
			}
			k.unit = *unit
			read[k] = n
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading sensors and stale sources of %d units: %w", len(units), err)
		}
		switch state {
		case "hit":
			maps.Copy(counts, st.held)
			if len(missing) > 0 {
				cache.reads.Add(1)
				cache.install(st.version, st.from, st.until, missing, read)
			}
		case "read":
			cache.reads.Add(1)
			cache.install(version, from, until, units, read)
		case "changed":
			cache.reads.Add(1)
		default:
			return fmt.Errorf("reading sensors and stale sources of %d units: no version read", len(units))
		}
		maps.Copy(counts, read)
		return nil
	}
	queueGeneric(pb, func() { pb.Queue(sqlRollupContextCached, units, missing, st.version, st.from, st.until).Query(collect) })
	return counts
}
