// Package keyrate limits how often each key (an identity, a source) may act:
// a token bucket per key, each a golang.org/x/time/rate.Limiter, in a map
// bounded in the keys it remembers. The gateway limits with it how fast an
// identity opens live views and event streams; the ingest, how fast a source
// sends requests.
//
// The map must be bounded, or anyone who can invent keys (sources, tokens)
// grows it without end; but forgetting a key hands it a full bucket when it
// comes back. So a full map forgets first every bucket that is full (a fresh
// one would equal it: forgetting it changes nothing), and only if none is,
// the least recently seen key; never a key its caller says is busy (the
// ingest's sources with requests in flight, whose state must outlive them).
package keyrate

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Config is what a Limiter allows each key, and how many keys it remembers.
type Config struct {
	// Rate is the tokens a key's bucket gains per second; 0 means the
	// bucket never refills.
	Rate rate.Limit
	// Burst is the size of a key's bucket: what a key may do at once. 0
	// means nothing, ever.
	Burst int
	// MaxKeys is the most keys remembered (more only while all of them are
	// busy); less than 1 means 1.
	MaxKeys int
	// Busy, when set, says that key must not be forgotten. It is called by
	// Allow with the Limiter's lock held, so it must not call the Limiter.
	Busy func(key string) bool
}

// Limiter holds a token bucket per key. A nil Limiter allows everything. It
// is safe for concurrent use.
type Limiter struct {
	cfg Config

	mu   sync.Mutex
	keys map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time // when the key was last seen: the least recently seen is forgotten first
}

// New returns a Limiter of cfg.
func New(cfg Config) *Limiter {
	cfg.MaxKeys = max(1, cfg.MaxKeys)
	return &Limiter{cfg: cfg, keys: map[string]*bucket{}}
}

// Allow takes one token of key at now. When the bucket has none it takes
// nothing (a refused request does not delay the next) and returns how long
// until one is there: rate.InfDuration if never (a burst or a rate of 0).
func (l *Limiter) Allow(key string, now time.Time) (ok bool, wait time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.keys[key]
	if b == nil {
		if len(l.keys) >= l.cfg.MaxKeys {
			l.forget(now)
		}
		b = &bucket{lim: rate.NewLimiter(l.cfg.Rate, l.cfg.Burst)}
		l.keys[key] = b
	}
	b.last = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 { // rate.InfDuration when not OK
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Touch marks key as seen at now without taking a token, e.g. when a
// request that took one ends; a key not remembered stays so.
func (l *Limiter) Touch(key string, now time.Time) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.keys[key]; b != nil {
		b.last = now
	}
}

// Len is the number of keys remembered.
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// forget drops the buckets of keys not busy that a new one would equal
// (full); if none is, the least recently seen key not busy. Called with mu
// held when the map is full.
func (l *Limiter) forget(now time.Time) {
	var oldest string
	var oldestAt time.Time
	found := false
	for key, b := range l.keys {
		if l.cfg.Busy != nil && l.cfg.Busy(key) {
			continue
		}
		if b.lim.TokensAt(now) >= float64(l.cfg.Burst) {
			delete(l.keys, key)
			continue
		}
		if !found || b.last.Before(oldestAt) {
			oldest, oldestAt, found = key, b.last, true
		}
	}
	if len(l.keys) >= l.cfg.MaxKeys && found {
		delete(l.keys, oldest)
	}
}
