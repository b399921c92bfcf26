package gateway

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/time/rate"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/keyrate"
)

// maxOpenIdentities is the most identities whose opening bucket the
// gateway remembers (keyrate forgets full buckets first, then the least
// recently used).
const maxOpenIdentities = 10000

// newOpenLimiter bounds how fast each identity opens live views and event
// streams, together: a token bucket per identity (Config.OpenRate,
// Config.OpenBurst). The counts per identity (MaxClientsPerIdentity,
// MaxStreamsPerIdentity) bound what it holds open; this bounds what it costs
// to open them: a live view of a filter not seen since the last tick has its
// snapshot built (tens of ms of CPU for a province), an event stream its
// consumer created on NATS. Without it, an identity closing and reopening
// views with a new bbox each time spends the gateway's CPU as fast as it
// can send requests. It returns nil (no limit) when OpenRate is negative;
// cfg is after defaults.
func newOpenLimiter(cfg Config) *keyrate.Limiter {
	if cfg.OpenRate < 0 {
		return nil
	}
	return keyrate.New(keyrate.Config{Rate: rate.Limit(cfg.OpenRate), Burst: cfg.OpenBurst, MaxKeys: maxOpenIdentities})
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
	ok, d := g.opens.Allow(who.ID, time.Now())
	if ok {
		return true
	}
	g.m.opensLimited.WithLabelValues(endpoint).Inc()
	secs := retryAfter(d)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeProblem(w, r, http.StatusTooManyRequests, fmt.Sprintf(
		"identity %s opens live views and event streams faster than %g per second (bursts of %d); retry in %d s",
		who.ID, g.cfg.OpenRate, g.cfg.OpenBurst, secs))
	return false
}
