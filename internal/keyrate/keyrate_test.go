package keyrate

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

var t0 = time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)

// take calls Allow and fails the test unless it answers want.
func take(t *testing.T, l *Limiter, key string, at time.Time, want bool) time.Duration {
	t.Helper()
	ok, wait := l.Allow(key, at)
	if ok != want {
		t.Fatalf("Allow(%q, t0+%s) = %v (wait %s); want %v", key, at.Sub(t0), ok, wait, want)
	}
	if ok && wait != 0 {
		t.Fatalf("Allow(%q) allowed with a wait of %s; want 0", key, wait)
	}
	return wait
}

func TestBurstAndRefill(t *testing.T) {
	l := New(Config{Rate: 0.5, Burst: 3, MaxKeys: 10})
	for range 3 {
		take(t, l, "a", t0, true)
	}
	if wait := take(t, l, "a", t0, false); wait != 2*time.Second {
		t.Errorf("past the burst: wait %s; want 2s (one token every 2 s)", wait)
	}
	if wait := take(t, l, "a", t0.Add(500*time.Millisecond), false); wait != 1500*time.Millisecond {
		t.Errorf("0.5 s later: wait %s; want 1.5s", wait)
	}
	take(t, l, "b", t0, true) // a bucket per key
	// A refusal takes no token: 2 s after the burst, exactly one is back.
	take(t, l, "a", t0.Add(2*time.Second), true)
	take(t, l, "a", t0.Add(2*time.Second), false)
	// A long pause refills the bucket to its burst, no more.
	for range 3 {
		take(t, l, "a", t0.Add(time.Hour), true)
	}
	take(t, l, "a", t0.Add(time.Hour), false)
}

func TestNever(t *testing.T) {
	for _, c := range []Config{{Rate: 1, Burst: 0}, {Rate: 0, Burst: 1}} {
		t.Run(fmt.Sprintf("rate %g burst %d", c.Rate, c.Burst), func(t *testing.T) {
			l := New(Config{Rate: c.Rate, Burst: c.Burst, MaxKeys: 10})
			for range c.Burst {
				take(t, l, "a", t0, true)
			}
			if wait := take(t, l, "a", t0.Add(time.Hour), false); wait != rate.InfDuration {
				t.Errorf("wait %s; want rate.InfDuration", wait)
			}
		})
	}
}

func TestNil(t *testing.T) {
	var l *Limiter
	if ok, wait := l.Allow("a", t0); !ok || wait != 0 {
		t.Errorf("nil Allow = %v, %s; want true, 0", ok, wait)
	}
	l.Touch("a", t0)
	if n := l.Len(); n != 0 {
		t.Errorf("nil Len = %d; want 0", n)
	}
}

// TestBoundedKeys: a full map forgets the buckets a new one would equal
// (full) first, then the least recently seen: never a key's drained bucket
// while a full one can go, never a busy key.
func TestBoundedKeys(t *testing.T) {
	l := New(Config{Rate: 1, Burst: 2, MaxKeys: 3})
	take(t, l, "idle", t0.Add(-10*time.Second), true) // full again at t0
	take(t, l, "idle-too", t0.Add(-9*time.Second), true)
	take(t, l, "drained", t0, true)
	take(t, l, "drained", t0, true)
	take(t, l, "new", t0, true)
	if _, ok := l.keys["idle"]; ok || l.Len() != 2 {
		t.Errorf("keys %v; want every full one forgotten when the map was full (drained and new kept)", l.keys)
	}
	if _, ok := l.keys["drained"]; !ok {
		t.Fatal("the drained bucket was forgotten while a full one could go")
	}
	take(t, l, "drained", t0, false) // not forgotten, so not refilled

	// Past the bound with no full bucket, the least recently seen goes.
	l.cfg.MaxKeys = 2
	t1 := t0.Add(time.Millisecond)
	take(t, l, "new", t1, true)
	take(t, l, "new", t1, false)
	take(t, l, "third", t1.Add(500*time.Microsecond), true)
	if _, ok := l.keys["drained"]; ok || l.Len() > 2 {
		t.Errorf("keys %v; want the least recently seen (drained) forgotten, at most 2 kept", l.keys)
	}

	// Touch counts as seen: touched, "new" is kept and "third", seen since
	// "new" was but before it was touched, goes.
	t2 := t1.Add(time.Millisecond)
	l.Touch("new", t2)
	l.Touch("gone", t2) // not remembered: stays so
	take(t, l, "fourth", t2, true)
	if _, ok := l.keys["new"]; !ok || l.Len() != 2 {
		t.Errorf("keys %v; want the touched key kept, 2 in all", l.keys)
	}
}

// TestBusyKeys: a busy key is never forgotten, however many keys come and
// go; once the buckets have refilled, a newcomer makes room by dropping every
// full one at once.
func TestBusyKeys(t *testing.T) {
	busy := map[string]bool{"a": true}
	now := t0
	l := New(Config{Rate: 1, Burst: 2, MaxKeys: 3, Busy: func(key string) bool { return busy[key] }})
	take(t, l, "a", now, true)
	for i := range 50 {
		now = now.Add(time.Millisecond)
		take(t, l, fmt.Sprintf("s%d", i), now, true)
		if n := l.Len(); n > 3 {
			t.Fatalf("after s%d: %d keys kept; want at most 3", i, n)
		}
	}
	if _, ok := l.keys["a"]; !ok {
		t.Error("the busy key was forgotten")
	}
	if _, ok := l.keys["s49"]; !ok {
		t.Error("the most recent key was forgotten before older ones")
	}
	// With every key busy, the map grows past its bound rather than forget.
	for _, k := range []string{"s48", "s49"} {
		busy[k] = true
	}
	busy["b"] = true
	take(t, l, "b", now, true)
	if n := l.Len(); n != 4 {
		t.Errorf("with every key busy: %d keys kept; want 4", n)
	}
	clear(busy)
	now = now.Add(10 * time.Second)
	take(t, l, "late", now, true)
	if n := l.Len(); n != 1 {
		t.Errorf("after the buckets refilled: %d keys kept; want 1 (the newcomer)", n)
	}
}

// TestConcurrent: goroutines sharing keys take no more than the bursts
// between them, and the bound holds; run with -race.
func TestConcurrent(t *testing.T) {
	const goroutines, keys, burst = 8, 20, 5
	l := New(Config{Rate: 0, Burst: burst, MaxKeys: 1000})
	var mu sync.Mutex
	allowed := map[string]int{}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range 100 {
				key := fmt.Sprintf("k%d", (g+i)%keys)
				if ok, _ := l.Allow(key, t0); ok {
					mu.Lock()
					allowed[key]++
					mu.Unlock()
				}
				l.Touch(key, t0)
				_ = l.Len()
			}
		})
	}
	wg.Wait()
	if len(allowed) != keys {
		t.Errorf("%d keys allowed anything; want %d", len(allowed), keys)
	}
	for key, n := range allowed {
		if n != burst {
			t.Errorf("key %s allowed %d times; want its burst, %d", key, n, burst)
		}
	}

	// A small bound under contention: never more keys than the bound.
	l = New(Config{Rate: 1, Burst: 1, MaxKeys: 4})
	for g := range goroutines {
		wg.Go(func() {
			for i := range 200 {
				l.Allow(fmt.Sprintf("g%d-%d", g, i), t0.Add(time.Duration(i)*time.Millisecond))
				if n := l.Len(); n > 4 {
					t.Errorf("%d keys kept; want at most 4", n)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkAllow: what a request pays for the bucket of its key (a map
// look-up under a mutex and a reservation), beside its baseline, one bare
// rate.Limiter reservation; 1,000 keys.
func BenchmarkAllow(b *testing.B) {
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("id_%016x", i)
	}
	now := time.Now()
	b.Run("per-key", func(b *testing.B) {
		l := New(Config{Rate: 1e9, Burst: 1 << 30, MaxKeys: 10000})
		i := 0
		for b.Loop() {
			l.Allow(ids[i%len(ids)], now)
			i++
		}
	})
	b.Run("bare-limiter", func(b *testing.B) {
		l := rate.NewLimiter(1e9, 1<<30)
		for b.Loop() {
			r := l.ReserveN(now, 1)
			_ = r.DelayFrom(now)
		}
	})
}
