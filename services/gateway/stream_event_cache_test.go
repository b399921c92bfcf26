package gateway

import (
	"testing"
	"time"
)

// The event cache is bounded in bytes as well as in positions: 4096 feed
// items of megabytes each would otherwise stay decoded and encoded in the
// gateway. Small positions are shared (one decode for every reader) up to
// eventCacheSize, the oldest going first; heavy ones go out first when the
// bytes run out; one heavier than a sixteenth of the budget is not kept.
func TestEventCacheBounds(t *testing.T) {
	c := newEventCache()
	sh := streamShapes[0]
	stamp := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	msg := func(seq uint64, size int) streamMsg {
		return streamMsg{Subject: "ioc.feed.01.00070.air", Data: make([]byte, size), Stream: sh.stream, Seq: seq, Stamp: stamp}
	}
	check := func(what string) {
		t.Helper()
		sum := 0
		for _, e := range c.m {
			sum += e.cost
		}
		if len(c.m) != c.n || sum != c.bytes || c.n > eventCacheSize || c.bytes > eventCacheBytes {
			t.Fatalf("%s: %d entries (n %d), %d bytes (counted %d); want n = entries ≤ %d and bytes = their cost ≤ %d",
				what, len(c.m), c.n, sum, c.bytes, eventCacheSize, eventCacheBytes)
		}
	}
	// Small positions: shared, at most eventCacheSize, the oldest evicted.
	first := c.get(sh, msg(1, 100))
	if c.get(sh, msg(1, 100)) != first {
		t.Fatal("a cached position was decoded again")
	}
	for seq := uint64(2); seq <= eventCacheSize+10; seq++ {
		c.get(sh, msg(seq, 100))
	}
	check("small positions")
	if c.n != eventCacheSize {
		t.Fatalf("%d positions cached; want %d", c.n, eventCacheSize)
	}
	if _, ok := c.m[eventKey{sh.stream, 1}]; ok {
		t.Fatal("the oldest position is still cached past eventCacheSize")
	}
	if _, ok := c.m[eventKey{sh.stream, eventCacheSize + 10}]; !ok {
		t.Fatal("the newest position is not cached")
	}
	// Heavy positions: the bytes bound the cache, not the count.
	heavy := (eventCacheBytes/16 - 512) / 4 // the heaviest kept
	for seq := uint64(10_000); seq < 10_100; seq++ {
		c.get(sh, msg(seq, heavy))
		check("heavy positions")
	}
	if c.n > 16 {
		t.Fatalf("%d positions cached after 100 of %d bytes; want at most 16", c.n, heavy)
	}
	if _, ok := c.m[eventKey{sh.stream, 10_099}]; !ok {
		t.Fatal("the newest heavy position is not cached")
	}
	// Heavier than a sixteenth of the budget: decoded for its reader, not kept.
	before := c.n
	if e := c.get(sh, msg(20_000, heavy+1)); e == nil || e.ev.msg.Seq != 20_000 {
		t.Fatal("a position too heavy to cache was not decoded for its reader")
	}
	if _, ok := c.m[eventKey{sh.stream, 20_000}]; ok || c.n != before {
		t.Fatal("a position heavier than a sixteenth of the budget was cached")
	}
	// A stream recreated: the position's new message replaces the old, its
	// cost with it.
	again := msg(10_099, 100)
	again.Stamp = stamp.Add(time.Hour)
	if e := c.get(sh, again); e.ev.msg.Stamp != again.Stamp {
		t.Fatal("a recreated stream's position gave the old message")
	}
	check("a recreated stream's position")
}
