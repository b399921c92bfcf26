package gateway

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/iochub/iochub/internal/auth"

	"golang.org/x/time/rate"
)

// openLimiter bounds how fast each identity opens live views and event
// streams, together: a token bucket per identity (Config.OpenRate,
// Config.OpenBurst). The counts per identity (MaxClientsPerIdentity,
// MaxStreamsPerIdentity) bound what it holds open; this bounds what it costs
// to open them: a live view of a filter not seen since the last tick has its
// snapshot built (tens of ms of CPU for a province), an event stream its
// consumer created on NATS. Without it, an identity closing and reopening
// views with a new bbox each time spends the gateway's CPU as fast as it
// can send requests.
type openLimiter struct {
	rate  rate.Limit
	burst int
	max   int // identities with a bucket kept; full buckets are forgotten first

	mu      sync.Mutex
	buckets map[string]*openBucket
}

type openBucket struct {
	lim  *rate.Limiter
	last time.Time
}

// newOpenLimiter returns the limiter of cfg (after defaults); nil when
// OpenRate is negative (no limit).
func newOpenLimiter(cfg Config) *openLimiter {
	if cfg.OpenRate < 0 {
		return nil
	}
	return &openLimiter{rate: rate.Limit(cfg.OpenRate), burst: cfg.OpenBurst, max: 10000, buckets: map[string]*openBucket{}}
}

// allow takes one opening of id at now from its bucket; when the bucket is
// empty it takes nothing and returns how long until one is there.
func (l *openLimiter) allow(id string, now time.Time) (ok bool, retry time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[id]
	if b == nil {
		if len(l.buckets) >= l.max {
			l.forget(now)
		}
		b = &openBucket{lim: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[id] = b
	}
	b.last = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); !r.OK() || d > 0 {
		r.CancelAt(now)
		if !r.OK() { // a burst of 0, or a rate of 0: never
			d = time.Duration(math.MaxInt64)
		}
		return false, d
	}
	return true, 0
}

// forget drops the buckets a new one would equal (full); if none is, the
// least recently used. Called with mu held when the map is full.
func (l *openLimiter) forget(now time.Time) {
	var oldest string
	var oldestAt time.Time
	for id, b := range l.buckets {
		if b.lim.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, id)
			continue
		}
		if oldest == "" || b.last.Before(oldestAt) {
			oldest, oldestAt = id, b.last
		}
	}
	if len(l.buckets) >= l.max && oldest != "" {
		delete(l.buckets, oldest)
	}
}

// retryAfter is d in whole seconds for a Retry-After header: at least 1, at
// most an hour (a bucket that never refills is not worth a longer wait).
func retryAfter(d time.Duration) int {
	return int(min(3600, max(1, math.Ceil(d.Seconds()))))
}

// allowOpen takes one opening of a live view or event stream (endpoint:
// "live", "streams") from who's bucket, or answers 429 with Retry-After and
// returns false.
func (g *Gateway) allowOpen(w http.ResponseWriter, r *http.Request, who auth.Principal, endpoint string) bool {
	ok, d := g.opens.allow(who.ID, time.Now())
	if ok {
		return true
	}
	g.m.opensLimited.WithLabelValues(endpoint).Inc()
	secs := retryAfter(d)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeProblem(w, r, http.StatusTooManyRequests, fmt.Sprintf(
		"identity %s opens live views and event streams faster than %g per second (bursts of %d); retry in %d s",
		who.ID, float64(g.opens.rate), g.opens.burst, secs))
	return false
}
