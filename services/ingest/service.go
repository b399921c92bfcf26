// Package ingest is where a lower-level IOC's payload becomes an event: the
// HTTP intake POST /v1/feeds/{kind} authenticates the source, reads the body
// (JSON array, single object, NDJSON or GeoJSON FeatureCollection), validates
// every item (FIWARE smart-data-models keyValues, or CAP-shaped JSON for
// alerts), places it in its administrative unit and publishes it to the FEEDS
// stream on ioc.feed.<province>.<unit>.<kind>, answering one result per item.
package ingest

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/ops"
	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/seal"
	"github.com/iochub/iochub/internal/units"
)

// Config configures the ingest; the zero value of each field takes the default it names.
// RegisterFlags (flags.go) puts every field but DevToken and SealKey on the command line.
//
// The ingest needs PostGIS read-only (Deps.Pool): it resolves each source's
// token to its registered unit, and each item's position to the unit that
// contains it, from the tables the aggregator and the CLI maintain; it never
// writes there.
type Config struct {
	// MaxBodyBytes is the largest body accepted; 0 means 8 MiB.
	MaxBodyBytes int64
	// MaxItems is the most items in one request; 0 means 10000.
	MaxItems int
	// DevToken, if set, is a bearer token accepted for every unit (source id
	// "dev"): an item's unit is then the smallest unit containing it, and an
	// item in no known unit is rejected. Never set it in production.
	DevToken string
	// PublishTimeout bounds the wait for JetStream acks of one request; 0 means 10s.
	PublishTimeout time.Duration
	// MaxFuture is how far ahead of the hub's clock an observation may be
	// dated; 0 means 10 minutes, a negative value turns the check off.
	MaxFuture time.Duration
	// MaxAge is how far behind the hub's clock an observation may be dated;
	// 0 means no limit but the fixed floor every time has (2000-01-01,
	// feedcheck.MinTime), which the store holds. Set it to refuse late
	// backfills.
	MaxAge time.Duration
	// RefreshEvery is how often units and sources are re-read from PostGIS; 0 means 30s.
	RefreshEvery time.Duration
	// MaxPending bounds the async publishes in flight for the whole service; 0 means 4096.
	MaxPending int
	// SealKey is the hub key (32 bytes) that seals a citizen reporter's
	// contact; empty means reports that carry a contact are rejected.
	SealKey []byte
	// Limits bound the requests per source and in total (limit.go).
	Limits Limits
	// AlertScope is where a source bound to a unit may send alert areas:
	// AlertScopeProvince (the default, also for "") or AlertScopeUnit.
	AlertScope string
	// RejectionSummaryEvery is how often the counts of rejected items per
	// source and reason are published for the aggregator (rejections.go);
	// 0 means 30s, negative never.
	RejectionSummaryEvery time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 8 << 20
	}
	if c.MaxItems == 0 {
		c.MaxItems = 10000
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 10 * time.Second
	}
	if c.MaxFuture == 0 {
		c.MaxFuture = 10 * time.Minute
	}
	if c.RefreshEvery == 0 {
		c.RefreshEvery = 30 * time.Second
	}
	if c.MaxPending == 0 {
		c.MaxPending = 4096
	}
	if c.RejectionSummaryEvery == 0 {
		c.RejectionSummaryEvery = 30 * time.Second
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.MaxBodyBytes < 0:
		return fmt.Errorf("MaxBodyBytes %d is negative: %w", c.MaxBodyBytes, ErrConfig)
	case c.MaxItems < 0:
		return fmt.Errorf("MaxItems %d is negative: %w", c.MaxItems, ErrConfig)
	case c.PublishTimeout < 0:
		return fmt.Errorf("PublishTimeout %s is negative: %w", c.PublishTimeout, ErrConfig)
	case c.MaxAge < 0:
		return fmt.Errorf("MaxAge %s is negative: %w", c.MaxAge, ErrConfig)
	case c.RefreshEvery < 0:
		return fmt.Errorf("RefreshEvery %s is negative: %w", c.RefreshEvery, ErrConfig)
	case c.AlertScope != "" && c.AlertScope != AlertScopeProvince && c.AlertScope != AlertScopeUnit:
		return fmt.Errorf("AlertScope %q is neither %q nor %q: %w", c.AlertScope, AlertScopeProvince, AlertScopeUnit, ErrConfig)
	case c.MaxPending < 0:
		return fmt.Errorf("MaxPending %d is negative: %w", c.MaxPending, ErrConfig)
	case len(c.SealKey) != 0 && len(c.SealKey) != seal.KeySize:
		return fmt.Errorf("SealKey is %d bytes; want %d: %w", len(c.SealKey), seal.KeySize, ErrConfig)
	}
	return c.Limits.Validate()
}

// Source is a registered feed source, bound to one unit.
type Source struct {
	ID          string
	Unit        string
	TokenSHA256 [32]byte
}

// SourceWithToken is a Source whose token hash is that of token (tests, the simulator).
func SourceWithToken(id, unit, token string) Source {
	return Source{ID: id, Unit: unit, TokenSHA256: sha256.Sum256([]byte(token))}
}

// Deps are the ingest's collaborators.
type Deps struct {
	// JS is used for its connection; the ingest publishes through its own
	// JetStream context on it, with a bounded async window. Required.
	JS jetstream.JetStream
	// Pool is read for units and sources; nil means use Units and Sources as given.
	Pool *pgxpool.Pool
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Metrics registers the ingest's metrics; nil means not registered.
	Metrics prometheus.Registerer
	// Units and Sources are the fixed catalogue when Pool is nil.
	Units   []units.Unit
	Sources []Source
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// catalog is what requests read: swapped whole on refresh.
type catalog struct {
	ix      *units.Index    // the current units
	tl      *units.Timeline // every version, for the map valid at an item's time
	mapped  map[*units.Index]bool
	sources map[[32]byte]Source
	// unitsSig is the signature of admin_unit the timeline was built from
	// (schema.UnitVersionsSignature); zero when built from Deps.Units.
	unitsSig schema.UnitsSignature
}

// indexAt is the index an item of time t is resolved on: the units valid at
// t, so that an event is attributed to the unit of its time (a point of Hà
// Giang on 2025-06-01 to the old province 02, on 2025-08-01 to 08). The
// current units serve instead when no map with provinces was valid at t, or
// when the unit the source is bound to (bound, "" for none) had no version
// then: a source keeps sending its backlog after its unit changed.
func (c *catalog) indexAt(t time.Time, bound string) *units.Index {
	ix := c.tl.At(t)
	if ix == c.ix || !c.mapped[ix] {
		return c.ix
	}
	if bound != "" {
		if _, ok := ix.Get(bound); !ok {
			return c.ix
		}
	}
	return ix
}

// Service is the HTTP intake of feeds.
type Service struct {
	cfg     Config
	js      jetstream.JetStream
	acks    *ackRouter
	pool    *pgxpool.Pool
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics
	cat     atomic.Pointer[catalog]
	devHash [32]byte
	sealer  *seal.Sealer // nil without Config.SealKey
	lim     *limiter
	rejects *rejections
	// msgIDs keys the message ids on FEEDS (ce.MsgIDKey).
	msgIDs *ce.MsgIDKey
}

// New builds the service. With a Pool the catalogue is empty until Refresh
// or Run loads it. It reads the key of the message ids on FEEDS from the
// JetStream of Deps.JS, creating it the first time (natsx.FeedMsgIDKey),
// until ctx ends.
func New(ctx context.Context, cfg Config, d Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if d.JS == nil {
		return nil, fmt.Errorf("building ingest: Deps.JS is nil: %w", ErrConfig)
	}
	acks := newAckRouter()
	js, err := jetstream.New(d.JS.Conn(),
		jetstream.WithPublishAsyncMaxPending(cfg.MaxPending),
		jetstream.WithPublishAsyncTimeout(cfg.PublishTimeout),
		jetstream.WithPublishAsyncAckHandler(acks.onAck),
		jetstream.WithPublishAsyncErrHandler(acks.onErr))
	if err != nil {
		return nil, fmt.Errorf("building ingest publisher: %w", err)
	}
	msgIDs, err := natsx.FeedMsgIDKey(ctx, d.JS)
	if err != nil {
		return nil, fmt.Errorf("building ingest: %w", err)
	}
	s := &Service{cfg: cfg, js: js, acks: acks, pool: d.Pool, log: d.Logger, now: d.Now, msgIDs: msgIDs}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.rejects = newRejections(time.Now())
	if s.metrics, err = newMetrics(d.Metrics); err != nil {
		return nil, err
	}
	if s.lim, err = newLimiter(cfg.Limits, time.Now, d.Metrics); err != nil {
		return nil, err
	}
	if cfg.DevToken != "" {
		s.devHash = sha256.Sum256([]byte(cfg.DevToken))
	}
	if len(cfg.SealKey) > 0 {
		if s.sealer, err = seal.New(cfg.SealKey); err != nil {
			return nil, fmt.Errorf("building ingest: %w", err)
		}
	}
	if d.Pool == nil {
		s.setCatalog(d.Units, d.Sources)
	}
	return s, nil
}

func (s *Service) setCatalog(us []units.Unit, srcs []Source) {
	s.storeCatalog(newUnitsCatalog(us, schema.UnitsSignature{}), srcs)
}

// newUnitsCatalog is a catalogue of the unit versions us (signature sig),
// without sources.
func newUnitsCatalog(us []units.Unit, sig schema.UnitsSignature) *catalog {
	tl := units.NewTimeline(us)
	c := &catalog{ix: tl.Current(), tl: tl, mapped: map[*units.Index]bool{}, unitsSig: sig}
	for _, ix := range tl.Periods() {
		c.mapped[ix] = len(ix.Codes(units.LevelProvince)) > 0
	}
	return c
}

// storeCatalog makes the units of u, with the sources srcs, the catalogue.
func (s *Service) storeCatalog(u *catalog, srcs []Source) {
	c := &catalog{ix: u.ix, tl: u.tl, mapped: u.mapped, unitsSig: u.unitsSig, sources: make(map[[32]byte]Source, len(srcs))}
	for _, src := range srcs {
		c.sources[src.TokenSHA256] = src
	}
	s.cat.Store(c)
}

// Refresh re-reads units and sources from PostGIS (a no-op without a Pool).
func (s *Service) Refresh(ctx context.Context) error {
	if s.pool == nil {
		return nil
	}
	// The units are read and indexed again only when admin_unit changed:
	// every version's boundary, every RefreshEvery, is megabytes to read and
	// index for a map that changes a few times a year.
	sig, err := schema.UnitVersionsSignature(ctx, s.pool)
	if err != nil {
		return fmt.Errorf("refreshing units: %w", err)
	}
	u := s.cat.Load()
	if u == nil || u.unitsSig != sig {
		us, err := schema.LoadUnitVersions(ctx, s.pool)
		if err != nil {
			return fmt.Errorf("refreshing units: %w", err)
		}
		u = newUnitsCatalog(us, sig)
		s.log.Debug("units read again", "versions", len(us))
	}
	rows, err := schema.LoadSources(ctx, s.pool)
	if err != nil {
		return fmt.Errorf("refreshing sources: %w", err)
	}
	srcs := make([]Source, 0, len(rows))
	for _, r := range rows {
		if len(r.TokenSHA256) != sha256.Size {
			s.log.Warn("source token hash has the wrong length", "source", r.ID, "bytes", len(r.TokenSHA256))
			continue
		}
		src := Source{ID: r.ID, Unit: r.Unit}
		copy(src.TokenSHA256[:], r.TokenSHA256)
		srcs = append(srcs, src)
	}
	s.storeCatalog(u, srcs)
	s.log.Debug("catalog refreshed", "sources", len(srcs))
	return nil
}

// Run refreshes units and sources every Config.RefreshEvery and publishes
// the rejection summaries (rejections.go) until ctx ends.
// A failed refresh keeps the previous catalogue and is retried at the next tick.
func (s *Service) Run(ctx context.Context) error {
	done := make(chan struct{})
	go func() { defer close(done); s.runRejections(ctx) }()
	defer func() { <-done }()
	if s.pool == nil {
		<-ctx.Done()
		return nil
	}
	return ops.Every(ctx, s.cfg.RefreshEvery, s.Refresh, func(err error) {
		s.log.Warn("refreshing units and sources failed; keeping the previous ones", "err", err, "every", s.cfg.RefreshEvery)
	})
}

// authenticate maps a bearer token to its principal.
func (s *Service) authenticate(c *catalog, token string) (principal, bool) {
	h := sha256.Sum256([]byte(token))
	if s.cfg.DevToken != "" && subtle.ConstantTimeCompare(h[:], s.devHash[:]) == 1 {
		return principal{sourceID: "dev"}, true
	}
	src, ok := c.sources[h]
	if !ok {
		return principal{}, false
	}
	return principal{sourceID: src.ID, unit: src.Unit}, true
}

type metrics struct {
	items   *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iochub_ingest_items_total",
			Help: "Feed items by kind and result (accepted, duplicate, rejected, failed).",
		}, []string{"kind", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "iochub_ingest_request_duration_seconds",
			Help:    "Time to answer POST /v1/feeds/{kind}, by kind and HTTP status.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 10),
		}, []string{"kind", "code"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.items, err = register(reg, m.items); err != nil {
		return nil, err
	}
	if m.latency, err = register(reg, m.latency); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or reuses the collector already registered under its name.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("registering ingest metrics: %w", err)
	}
	return c, nil
}
