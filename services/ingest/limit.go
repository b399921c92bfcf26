package ingest

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/iochub/iochub/internal/keyrate"
)

// Limits bound what one source, and all sources together, may ask of the
// ingest at once. The zero value of each field takes the default it names.
type Limits struct {
	// SourceConcurrency is the most requests of one source in flight at once;
	// 0 means 4, a negative value turns the limit off.
	SourceConcurrency int
	// SourceRate is the requests per second one source may sustain (a token
	// bucket); 0 means 50, a negative value turns the limit off.
	SourceRate float64
	// SourceBurst is the size of a source's bucket; 0 means twice SourceRate
	// (at least 1).
	SourceBurst int
	// MaxConcurrent is the most ingest requests in flight for the whole
	// service; 0 means 64, a negative value turns the cap off.
	MaxConcurrent int
	// MaxSources bounds the sources whose token bucket is kept in memory; a
	// source with a request in flight is never forgotten, one with a full
	// bucket first. 0 means 10000 or twice MaxConcurrent, whichever is more.
	MaxSources int
	// BodyTimeout bounds the time to receive a request's body, from the moment
	// the request is admitted; a slower body gets 408. 0 means 30s, a negative
	// value turns the deadline off.
	BodyTimeout time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.SourceConcurrency == 0 {
		l.SourceConcurrency = 4
	}
	if l.SourceRate == 0 {
		l.SourceRate = 50
	}
	if l.SourceBurst == 0 {
		l.SourceBurst = max(1, int(math.Ceil(2*l.SourceRate)))
	}
	if l.MaxConcurrent == 0 {
		l.MaxConcurrent = 64
	}
	if l.MaxSources == 0 {
		l.MaxSources = max(10000, 2*l.MaxConcurrent)
	}
	if l.BodyTimeout == 0 {
		l.BodyTimeout = 30 * time.Second
	}
	return l
}

// Validate reports limits that cannot work.
func (l Limits) Validate() error {
	switch {
	case math.IsNaN(l.SourceRate) || math.IsInf(l.SourceRate, 0):
		return fmt.Errorf("SourceRate %v is not a number of requests per second: %w", l.SourceRate, ErrConfig)
	case l.SourceBurst < 0:
		return fmt.Errorf("SourceBurst %d is negative: %w", l.SourceBurst, ErrConfig)
	case l.MaxSources < 0:
		return fmt.Errorf("MaxSources %d is negative: %w", l.MaxSources, ErrConfig)
	}
	d := l.withDefaults()
	if d.MaxConcurrent > 0 && d.MaxSources <= d.MaxConcurrent {
		return fmt.Errorf("MaxSources %d must exceed MaxConcurrent %d, so that a source can always be forgotten: %w",
			d.MaxSources, d.MaxConcurrent, ErrConfig)
	}
	return nil
}

// limiter admits requests under Limits: a semaphore for all sources, and
// for each a count of its requests in flight and a token bucket (keyrate).
type limiter struct {
	cfg    Limits
	global chan struct{} // a semaphore; nil without a global cap
	now    func() time.Time
	// refused counts requests refused, by reason.
	refused *prometheus.CounterVec
	rates   *keyrate.Limiter // nil without a rate limit

	mu      sync.Mutex
	sources map[string]*sourceState // the sources with requests in flight, no others
}

type sourceState struct {
	inflight int
}

func newLimiter(cfg Limits, now func() time.Time, reg prometheus.Registerer) (*limiter, error) {
	cfg = cfg.withDefaults()
	l := &limiter{cfg: cfg, now: now, sources: map[string]*sourceState{},
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iochub_ingest_limited_total",
			Help: "Ingest requests refused by a limit: source_concurrency, source_rate (429) or global_concurrency (503).",
		}, []string{"reason"})}
	if cfg.SourceRate > 0 {
		// A source in flight keeps its bucket: forgotten, it would come back
		// full. Busy runs inside rates.Allow, which acquire calls with mu
		// held, so it may read sources.
		l.rates = keyrate.New(keyrate.Config{Rate: rate.Limit(cfg.SourceRate), Burst: cfg.SourceBurst, MaxKeys: cfg.MaxSources,
			Busy: func(source string) bool { return l.sources[source] != nil }})
	}
	if cfg.MaxConcurrent > 0 {
		l.global = make(chan struct{}, cfg.MaxConcurrent)
	}
	if reg != nil {
		var err error
		if l.refused, err = register(reg, l.refused); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// refusal is why a request was not admitted.
type refusal struct {
	status     int
	slug       string
	title      string
	detail     string
	retryAfter time.Duration
	reason     string // metric label
}

// acquire admits one request of source, or says why not. release must be
// called once the admitted request is done.
func (l *limiter) acquire(source string) (release func(), ref *refusal) {
	if l.global != nil {
		select {
		case l.global <- struct{}{}:
		default:
			return nil, &refusal{status: http.StatusServiceUnavailable, slug: "overloaded", title: "Ingest overloaded",
				detail:     fmt.Sprintf("the ingest is answering %d requests already; retry shortly", l.cfg.MaxConcurrent),
				retryAfter: time.Second, reason: "global_concurrency"}
		}
	}
	releaseGlobal := func() {
		if l.global != nil {
			<-l.global
		}
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.sources[source]
	if l.cfg.SourceConcurrency > 0 && st != nil && st.inflight >= l.cfg.SourceConcurrency {
		releaseGlobal()
		return nil, &refusal{status: http.StatusTooManyRequests, slug: "too-many-requests", title: "Too many requests in flight",
			detail: fmt.Sprintf("source %s has %d requests in flight; at most %d are taken at once: wait for an answer before sending more",
				source, st.inflight, l.cfg.SourceConcurrency),
			retryAfter: time.Second, reason: "source_concurrency"}
	}
	if ok, wait := l.rates.Allow(source, now); !ok {
		releaseGlobal()
		return nil, &refusal{status: http.StatusTooManyRequests, slug: "too-many-requests", title: "Request rate too high",
			detail: fmt.Sprintf("source %s sends more than %g requests per second (bursts of %d); slow down, or send more items per request",
				source, l.cfg.SourceRate, l.cfg.SourceBurst),
			retryAfter: wait, reason: "source_rate"}
	}
	if st == nil {
		st = &sourceState{}
		l.sources[source] = st
	}
	st.inflight++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			if st.inflight--; st.inflight == 0 {
				delete(l.sources, source)
			}
			// The bucket's key was seen until now: the least recently seen
			// is forgotten first.
			l.rates.Touch(source, l.now())
			l.mu.Unlock()
			releaseGlobal()
		})
	}, nil
}

// admit applies the limits to a request of source: it either answers the
// request (429 or 503 with Retry-After) and returns a nil release with the
// status written, or admits it, starts the body deadline, and returns the
// release to defer.
func (s *Service) admit(w http.ResponseWriter, r *http.Request, source string) (release func(), status int) {
	release, ref := s.lim.acquire(source)
	if ref != nil {
		s.lim.refused.WithLabelValues(ref.reason).Inc()
		secs := max(1, int(math.Ceil(ref.retryAfter.Seconds())))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		return nil, writeProblem(w, r, ref.status, ref.slug, ref.title, ref.detail, nil)
	}
	// Only a request with a body: for one without, net/http already reads
	// ahead on the connection, and a deadline would end that read (and
	// cancel the request) while the handler still works.
	if d := s.lim.cfg.BodyTimeout; d > 0 && r.Body != nil && r.Body != http.NoBody {
		// The deadline is per request, not the server's ReadTimeout, which
		// would also cut WebSockets; an error means the writer cannot set
		// one (a test recorder), and there is no connection to protect.
		if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(d)); err == nil {
			r.Body = &deadlineBody{ReadCloser: r.Body}
		}
	}
	return release, 0
}

// deadlineBody remembers that reading the body ran past its deadline, however
// the decoders wrap the error.
type deadlineBody struct {
	io.ReadCloser
	timedOut bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && isTimeout(err) {
		b.timedOut = true
	}
	return n, err
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// bodyTimedOut answers 408 when reading r's body ran past Limits.BodyTimeout.
func (s *Service) bodyTimedOut(w http.ResponseWriter, r *http.Request) (int, bool) {
	b, ok := r.Body.(*deadlineBody)
	if !ok || !b.timedOut {
		return 0, false
	}
	// The rest of the body is still on the way: the connection cannot carry
	// another request.
	w.Header().Set("Connection", "close")
	return writeProblem(w, r, http.StatusRequestTimeout, "body-timeout", "Body too slow",
		fmt.Sprintf("the body did not arrive within %s; send it faster, or in smaller batches", s.lim.cfg.BodyTimeout), nil), true
}
