// Package gateway owns iochub's read side towards people: the live WebSocket
// of a province (STATE → memory → socket, snapshot then deltas, conflated per
// entity), the read-only query API (/v1/units, SQL in pgread), and the
// wall-screen app's static files. It never writes the database and imports no
// writer package.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/keyrate"
	"github.com/iochub/iochub/internal/routes"
	"github.com/iochub/iochub/services/gateway/pgread"
)

// Config tunes the gateway. The zero value of each field means its default.
type Config struct {
	// SendQueue is the most distinct entities that may wait to be written to one
	// client whose last write has not finished within a tick; one more and the
	// client is closed with CloseTooSlow (4001). 0 means 4096.
	SendQueue int
	// LiveTick is how often a live hub sends its clients the changes since the
	// last tick: the newest state of each entity, in one write per client. It
	// bounds the delay it adds to a change. 0 means 50ms.
	LiveTick time.Duration
	// WriteTimeout bounds one write to a client (what a tick has for it, a
	// ping, or the close); a client that does not take it in this time is
	// dropped. 0 means 10s.
	WriteTimeout time.Duration
	// PingInterval is how often the gateway pings each client. 0 means 20s.
	PingInterval time.Duration
	// PongWait is how long a client may stay silent (no pong, no frame) before it is
	// closed with ClosePingTimeout (4002); it must exceed PingInterval. 0 means 2.5 × PingInterval.
	PongWait time.Duration
	// MaxClients caps live clients across provinces; more get 503. 0 means no cap.
	MaxClients int
	// AllowedOrigins lists the Origin headers a browser may connect from (and
	// send changes from), e.g. "https://ioc.hanoi.gov.vn"; "*" means any. Empty
	// means the same origin only (the Origin's host is the request's Host).
	// Requests without an Origin (programs, not browsers) are not refused by it.
	AllowedOrigins []string
	// MaxClientsPerIdentity caps the live clients one identity keeps open at
	// once; one more is refused with 429. 0 means 20.
	MaxClientsPerIdentity int
	// SnapshotWait bounds how long a new client waits for its province's hub to
	// load the snapshot; after it the client gets what is loaded so far and the
	// rest as deltas. 0 means 5s.
	SnapshotWait time.Duration
	// ResetAttempts is how many times in a row a hub recreates its STATE consumer
	// (after a lost heartbeat or a NATS reconnect) before it fails and its clients
	// get CloseStreamFailure (4000). 0 means no limit.
	ResetAttempts int
	// Provinces are started by Run before any client asks, so their first client
	// does not wait for the snapshot. Empty means none.
	Provinces []string
	// UnitsTTL is how long /v1/units answers are cached per province. 0 means 1 minute.
	UnitsTTL time.Duration
	// FeaturesTimeout is the statement_timeout of each OGC API – Features
	// query (set in its read-only transaction). 0 means 5s.
	FeaturesTimeout time.Duration
	// FeaturesWriteTimeout bounds the writing of one OGC API – Features page,
	// which is streamed as the database reads it and so holds a connection of
	// the read pool until it is written: a client that reads slowly, or not
	// at all, would otherwise hold it for as long as it likes, and a few
	// such clients every read of the gateway. Past it the page is cut. 0
	// means 30s.
	FeaturesWriteTimeout time.Duration
	// StreamQueue is how many encoded events may wait to be written to one
	// event stream (/v1/streams). 0 means 256.
	StreamQueue int
	// StreamStall is how long an event stream's queue may stay full before
	// the client is cut as too slow (4004, or SSE event overflow). 0 means 5s.
	StreamStall time.Duration
	// StreamFetch bounds the messages each stream's ordered consumer pulls
	// ahead of its client. 0 means 256.
	StreamFetch int
	// ReplayRate is how many replayed events per second (since=seq: or a
	// time, up to the stream's end at subscription) all event streams of this
	// gateway share; live events never wait for it. 0 means 50000; negative
	// means no limit.
	ReplayRate float64
	// ReplayRatePerIdentity is how many of those one identity's streams
	// share, so that one identity replaying on its twenty streams does not
	// take the budget of everyone else's. 0 means a quarter of ReplayRate;
	// negative means no share of its own (only ReplayRate).
	ReplayRatePerIdentity float64
	// MaxStreamsPerIdentity caps the event streams one identity keeps open at
	// once; one more is refused with 429. 0 means 20.
	MaxStreamsPerIdentity int
	// MaxStreams caps the event streams of the whole gateway; one more is
	// refused with 503 and Retry-After. 0 means 10000; negative means no cap.
	MaxStreams int
	// OpenRate is how many live views and event streams, together, one
	// identity may open per second, sustained (a token bucket of OpenBurst);
	// one more is refused with 429 and Retry-After. 0 means 2; negative
	// means no limit.
	OpenRate float64
	// OpenBurst is how many an identity may open at once before OpenRate
	// applies. 0 means MaxClientsPerIdentity + MaxStreamsPerIdentity: all
	// it may hold, e.g. a wall screen's views after a restart.
	OpenBurst int
	// Level is the hub's level: LevelProvince ("" means it) or
	// LevelNational, a hub whose ROLLUPS and STATE source the roll-ups and
	// alerts of province hubs (natsx.AddProvinceSources). At the national
	// level the view of VN (/v1/live?unit=VN) carries every province's own
	// roll-ups beside VN's, each marked "hubStale" while its province's
	// newest roll-up is older than ProvinceStaleAfter (national.go).
	Level string
	// ProvinceStaleAfter is how old a province's newest roll-up may be at
	// the national level before the province is shown stale. 0 means 2 minutes.
	ProvinceStaleAfter time.Duration
}

// The levels of a hub (Config.Level).
const (
	LevelProvince = "province"
	LevelNational = "national"
)

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.SendQueue == 0 {
		c.SendQueue = 4096
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.LiveTick == 0 {
		c.LiveTick = 50 * time.Millisecond
	}
	if c.PingInterval == 0 {
		c.PingInterval = 20 * time.Second
	}
	if c.PongWait == 0 {
		c.PongWait = c.PingInterval * 5 / 2
	}
	if c.SnapshotWait == 0 {
		c.SnapshotWait = 5 * time.Second
	}
	if c.UnitsTTL == 0 {
		c.UnitsTTL = time.Minute
	}
	if c.MaxClientsPerIdentity == 0 {
		c.MaxClientsPerIdentity = 20
	}
	if c.FeaturesTimeout == 0 {
		c.FeaturesTimeout = 5 * time.Second
	}
	if c.FeaturesWriteTimeout == 0 {
		c.FeaturesWriteTimeout = 30 * time.Second
	}
	if c.StreamQueue == 0 {
		c.StreamQueue = 256
	}
	if c.StreamStall == 0 {
		c.StreamStall = 5 * time.Second
	}
	if c.StreamFetch == 0 {
		c.StreamFetch = 256
	}
	if c.ReplayRate == 0 {
		c.ReplayRate = 50000
	}
	if c.ReplayRatePerIdentity == 0 {
		c.ReplayRatePerIdentity = c.ReplayRate / 4
		if c.ReplayRate < 0 {
			c.ReplayRatePerIdentity = -1
		}
	}
	if c.MaxStreamsPerIdentity == 0 {
		c.MaxStreamsPerIdentity = 20
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = 10000
	}
	if c.OpenRate == 0 {
		c.OpenRate = 2
	}
	if c.OpenBurst == 0 {
		c.OpenBurst = c.MaxClientsPerIdentity + c.MaxStreamsPerIdentity
	}
	if c.Level == "" {
		c.Level = LevelProvince
	}
	if c.ProvinceStaleAfter == 0 {
		c.ProvinceStaleAfter = 2 * time.Minute
	}
	return c
}

// Validate reports the first field out of range, after defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.SendQueue < 1:
		return fmt.Errorf("SendQueue %d: must be at least 1: %w", c.SendQueue, ErrBadConfig)
	case c.WriteTimeout < 0, c.LiveTick < 0, c.PingInterval < 0, c.PongWait < 0, c.SnapshotWait < 0, c.UnitsTTL < 0, c.FeaturesTimeout < 0, c.FeaturesWriteTimeout < 0:
		return fmt.Errorf("durations must not be negative: %w", ErrBadConfig)
	case c.PongWait <= c.PingInterval:
		return fmt.Errorf("PongWait %s must exceed PingInterval %s: %w", c.PongWait, c.PingInterval, ErrBadConfig)
	case c.MaxClientsPerIdentity < 0:
		return fmt.Errorf("MaxClientsPerIdentity %d: must not be negative: %w", c.MaxClientsPerIdentity, ErrBadConfig)
	case c.MaxClients < 0:
		return fmt.Errorf("MaxClients %d: must not be negative: %w", c.MaxClients, ErrBadConfig)
	case c.StreamQueue < 1, c.StreamFetch < 1, c.MaxStreamsPerIdentity < 1:
		return fmt.Errorf("StreamQueue %d, StreamFetch %d and MaxStreamsPerIdentity %d: must be at least 1: %w", c.StreamQueue, c.StreamFetch, c.MaxStreamsPerIdentity, ErrBadConfig)
	case c.StreamStall < 0:
		return fmt.Errorf("StreamStall %s: must not be negative: %w", c.StreamStall, ErrBadConfig)
	case c.ResetAttempts < 0:
		return fmt.Errorf("ResetAttempts %d: must not be negative: %w", c.ResetAttempts, ErrBadConfig)
	case c.Level != LevelProvince && c.Level != LevelNational:
		return fmt.Errorf("level %q: want %s or %s: %w", c.Level, LevelProvince, LevelNational, ErrBadConfig)
	case c.ProvinceStaleAfter < 0:
		return fmt.Errorf("ProvinceStaleAfter %s: must not be negative: %w", c.ProvinceStaleAfter, ErrBadConfig)
	case math.IsNaN(c.ReplayRate) || math.IsInf(c.ReplayRate, 0) || math.IsNaN(c.ReplayRatePerIdentity) || math.IsInf(c.ReplayRatePerIdentity, 0):
		return fmt.Errorf("ReplayRate %v and ReplayRatePerIdentity %v must be numbers of events per second: %w", c.ReplayRate, c.ReplayRatePerIdentity, ErrBadConfig)
	case math.IsNaN(c.OpenRate) || math.IsInf(c.OpenRate, 0):
		return fmt.Errorf("OpenRate %v is not a number of openings per second: %w", c.OpenRate, ErrBadConfig)
	case c.OpenBurst < 1:
		return fmt.Errorf("OpenBurst %d: must be at least 1: %w", c.OpenBurst, ErrBadConfig)
	}
	for _, p := range c.Provinces {
		if _, err := parseProvince(map[string][]string{"province": {p}}); err != nil {
			return fmt.Errorf("config Provinces: %w", errors.Join(err, ErrBadConfig))
		}
	}
	return nil
}

// Deps are the gateway's collaborators.
type Deps struct {
	// JS reads stream STATE; required.
	JS jetstream.JetStream
	// Pool is the database the gateway reads (units, identities, alerts,
	// reports, rules…); nil answers 503 there.
	Pool *pgxpool.Pool
	// ReadPool, when set, takes every read of the gateway instead of Pool: a
	// pool of its own (apart from the aggregator's), read-only, with a
	// statement timeout, possibly on a replica (--database-read-url).
	ReadPool *pgxpool.Pool
	// Static is the wall-screen app served at "/" (its root holds index.html); nil serves nothing.
	Static fs.FS
	// Logger; nil discards.
	Logger *slog.Logger
	// Metrics registers the gateway's series; nil registers nowhere.
	Metrics prometheus.Registerer
	// Auth resolves each request's principal; required. The caller runs its
	// refresh loop (Authenticator.Run).
	Auth *auth.Authenticator
}

// Gateway serves /v1/live, /v1/units and the app.
type Gateway struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	m        *metrics
	upgrader websocket.Upgrader
	units    *unitsCache
	provs    *provinceCache // nil without a database
	tree     *treeCache     // nil without a database
	readPool *pgxpool.Pool  // Deps.ReadPool, else Deps.Pool; nil without a database

	perIDMu sync.Mutex
	perID   map[string]int          // live clients per principal id (and event streams, keyed "streams\x00"+id)
	replays map[string]*replayShare // the replay budget of each identity with a replaying stream

	replay *rate.Limiter    // replayed events of every event stream; nil: no limit
	opens  *keyrate.Limiter // live views and event streams opened per identity; nil: no limit
	events *eventCache      // recent stream positions, decoded and encoded once for every client

	ctx    context.Context // lives until Close; hubs run under it
	cancel context.CancelFunc

	mu     sync.Mutex
	hubs   map[string]*hub
	closed bool

	active  atomic.Int64   // clients past the MaxClients check
	streams atomic.Int64   // event streams past the MaxStreams check
	writers sync.WaitGroup // one per client writer goroutine
	hubsWG  sync.WaitGroup
}

// New checks cfg and builds a gateway; call Register, then Run.
func New(cfg Config, deps Deps) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuring gateway: %w", err)
	}
	if deps.JS == nil {
		return nil, fmt.Errorf("configuring gateway: Deps.JS is required: %w", ErrBadConfig)
	}
	if deps.Auth == nil {
		return nil, fmt.Errorf("configuring gateway: Deps.Auth is required (every endpoint checks who asks): %w", ErrBadConfig)
	}
	cfg = cfg.withDefaults()
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(deps.Metrics)
	if err != nil {
		return nil, err
	}
	g := &Gateway{
		cfg:     cfg,
		deps:    deps,
		log:     deps.Logger,
		m:       m,
		hubs:    make(map[string]*hub),
		perID:   make(map[string]int),
		replays: make(map[string]*replayShare),
		events:  newEventCache(),
	}
	g.readPool = deps.ReadPool
	if g.readPool == nil {
		g.readPool = deps.Pool
	}
	if g.readPool != nil {
		g.units = newUnitsCache(pgread.New(g.readPool), cfg.UnitsTTL, time.Now)
		g.provs = &provinceCache{store: pgread.New(g.readPool), ttl: cfg.UnitsTTL, known: map[string]provinceEntry{}}
		g.tree = &treeCache{store: pgread.New(g.readPool), ttl: cfg.UnitsTTL}
	}
	g.opens = newOpenLimiter(cfg)
	if cfg.ReplayRate > 0 {
		g.replay = rate.NewLimiter(rate.Limit(cfg.ReplayRate), replayBurst(cfg.ReplayRate))
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   1024,
		WriteBufferSize:  4096,
		WriteBufferPool:  &sync.Pool{},
		CheckOrigin:      g.checkOrigin,
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			writeProblem(w, r, status, "WebSocket upgrade failed: "+reason.Error())
		},
	}
	return g, nil
}

// Register adds the gateway's routes to mux: the live view, units, sources,
// history (/v1/history), alerts, sessions (/v1/session), OGC API – Features
// (/ogc), the event streams (/v1/streams), the OpenAPI document (/api) and the app.
func (g *Gateway) Register(mux routes.Mux) {
	mux.HandleFunc("GET /v1/live", g.serveLive)
	mux.HandleFunc("GET /v1/units", g.serveUnits)
	mux.HandleFunc("GET /v1/sources", g.serveSources) // handler_sources.go
	mux.HandleFunc("GET /v1/history", g.serveHistory) // handler_history.go
	mux.HandleFunc("GET /v1/replay", g.serveReplay)   // handler_replay.go
	mux.HandleFunc("GET /api", serveOpenAPI)          // handler_openapi.go
	g.registerAlerts(mux)
	g.registerSession(mux)
	g.registerOGC(mux)     // handler_ogc.go
	g.registerStreams(mux) // handler_streams.go
	if g.deps.Static != nil {
		mux.Handle("GET /", staticHandler(g.deps.Static))
	}
}

// Run starts the hubs of Config.Provinces and waits for ctx; then it closes the
// gateway (every client gets 1001) and returns nil.
func (g *Gateway) Run(ctx context.Context) error {
	for _, p := range g.cfg.Provinces {
		if _, err := g.hub(p); err != nil {
			return fmt.Errorf("starting hub: %w", err)
		}
	}
	select {
	case <-ctx.Done():
	case <-g.ctx.Done():
	}
	g.Close()
	return nil
}

// Close sends 1001 to every client (http.Server.Shutdown leaves hijacked
// sockets open), stops the hubs and waits for the writers, each bounded by
// WriteTimeout plus a second. It is safe to call more than once.
func (g *Gateway) Close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		g.writers.Wait()
		return
	}
	g.closed = true
	hubs := make([]*hub, 0, len(g.hubs))
	for _, h := range g.hubs {
		hubs = append(hubs, h)
	}
	g.mu.Unlock()
	for _, h := range hubs {
		h.stop(nil)
	}
	g.cancel()
	g.writers.Wait()
	g.hubsWG.Wait()
}

// hub returns the running hub of province, starting one if needed.
func (g *Gateway) hub(province string) (*hub, error) { return g.startHub(province, false) }

// unitHub returns the running hub of the roll-ups of the national unit or
// custom group code (/v1/live?unit=), starting one if needed.
func (g *Gateway) unitHub(code string) (*hub, error) { return g.startHub(code, true) }

// startHub returns the running hub of province (a unit's code with
// rollupsOnly), starting one if needed.
func (g *Gateway) startHub(province string, rollupsOnly bool) (*hub, error) {
	key := province
	if rollupsOnly {
		key = "unit:" + province // a custom group's code may look like a province's
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, ErrClosed
	}
	if h, ok := g.hubs[key]; ok {
		return h, nil
	}
	h := newHub(g, province)
	h.rollupsOnly = rollupsOnly
	h.national = rollupsOnly && province == nationalCode && g.cfg.Level == LevelNational
	g.hubs[key] = h
	g.m.hubs.Inc()
	g.hubsWG.Add(1)
	go func() {
		defer g.hubsWG.Done()
		err := h.run(g.ctx)
		if err != nil {
			g.log.Error("province hub failed", "province", province, "err", err)
		}
		h.stop(err)
		g.mu.Lock()
		if g.hubs[key] == h {
			delete(g.hubs, key)
			g.m.hubs.Dec()
		}
		g.mu.Unlock()
	}()
	return h, nil
}

func (g *Gateway) checkOrigin(r *http.Request) bool { return g.originAllowed(r) }

// serveLive is GET /v1/live?province=NN[&layers=a,b][&bbox=minLon,minLat,maxLon,maxLat][&rollups=w,...]:
// parameters are checked before the upgrade (400 problem), the client waits
// for the province's snapshot, then gets it as its first frame and every
// change after it. With unit=CODE instead of province (the national unit VN
// or a custom group; live_unit.go) the view carries that unit's roll-ups only.
func (g *Gateway) serveLive(w http.ResponseWriter, r *http.Request) {
	if !g.originAllowed(r) {
		writeProblem(w, r, http.StatusForbidden, fmt.Sprintf("Origin %q may not open the live view of this hub (see --allowed-origins)", truncate(r.Header.Get("Origin"), 100)))
		return
	}
	who, ok := g.authenticate(w, r)
	if !ok {
		return
	}
	p, err := parseLiveQuery(r.URL.Query())
	if err != nil {
		writeProblem(w, r, http.StatusBadRequest, err.Error())
		return
	}
	view := p.Province
	if p.Unit != "" {
		if !g.readableUnitRollups(w, r, who, p.Unit) {
			return
		}
		view = p.Unit
	} else {
		tree, ok := g.readableProvince(w, r, who, p.Province, "read province "+p.Province)
		if !ok {
			return
		}
		// A principal scoped to units inside the province sees only the entities
		// of those units (and the alerts that meet them).
		p.Units = scopeUnits(tree, who, p.Province)
	}
	// A principal of some kinds sees only those layers: none given means
	// its kinds; a layer outside them is refused.
	if len(who.Kinds) > 0 {
		if p.Layers == nil {
			p.Layers = slices.Clone(who.Kinds)
		}
		for _, l := range p.Layers {
			if !who.MayReadKind(l) {
				forbid(w, r, who, "read layer "+l+" (this key reads the kinds "+strings.Join(who.Kinds, ",")+")")
				return
			}
		}
	}
	if g.provs != nil && p.Unit == "" {
		exists, err := g.provs.exists(r.Context(), p.Province)
		switch {
		case err != nil:
			g.log.Error("looking up province", "province", p.Province, "err", err)
			writeProblem(w, r, http.StatusServiceUnavailable, "the units database is unavailable; retry later")
			return
		case !exists:
			writeProblem(w, r, http.StatusNotFound, "no current province has the code "+p.Province)
			return
		}
	}
	if !g.allowOpen(w, r, who, "live") {
		return
	}
	if !g.acquireLive(who.ID) {
		writeProblem(w, r, http.StatusTooManyRequests, fmt.Sprintf("identity %s has %d live views open, the most allowed; close one first", who.ID, g.cfg.MaxClientsPerIdentity))
		return
	}
	p.Principal = who
	if n := g.active.Add(1); g.cfg.MaxClients > 0 && n > int64(g.cfg.MaxClients) {
		g.active.Add(-1)
		g.releaseLive(who.ID)
		w.Header().Set("Retry-After", "5")
		writeProblem(w, r, http.StatusServiceUnavailable, fmt.Sprintf("the gateway serves at most %d live clients; retry later", g.cfg.MaxClients))
		return
	}
	upgraded := false
	defer func() {
		if !upgraded {
			g.active.Add(-1)
			g.releaseLive(who.ID)
		}
	}()
	var h *hub
	if p.Unit != "" {
		h, err = g.unitHub(p.Unit) // a view of a unit has no province's hub
	} else {
		h, err = g.hub(p.Province)
	}
	if err != nil {
		writeProblem(w, r, http.StatusServiceUnavailable, "the gateway is shutting down; retry on another instance")
		return
	}
	t := time.NewTimer(g.cfg.SnapshotWait)
	defer t.Stop()
	timedOut := false
	select {
	case <-h.ready:
	case <-h.done:
		w.Header().Set("Retry-After", "1")
		writeProblem(w, r, http.StatusServiceUnavailable, "the live stream of "+view+" is unavailable; retry")
		return
	case <-t.C:
		g.log.Warn("snapshot not complete in time; client starts with a partial one", "view", view)
		timedOut = true
	case <-r.Context().Done():
		return
	}
	if len(p.Rollups) > 0 && !timedOut {
		select {
		case <-h.rollupsReady:
		case <-h.done:
		case <-t.C:
			g.log.Warn("roll-ups not loaded in time; client starts with a partial set", "view", view)
		case <-r.Context().Done():
			return
		}
	}
	hw := &hijackWriter{ResponseWriter: w}
	conn, err := g.upgrader.Upgrade(hw, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	upgraded = true
	c := newClient(g, h, conn, hw.conn, p)
	if err := h.add(c); err != nil {
		code := CloseInternal
		switch {
		case errors.Is(err, ErrHubFailed):
			code = CloseStreamFailure
		case errors.Is(err, ErrClosed):
			code = CloseGoingAway
		default:
			g.log.Error("joining live client", "view", view, "err", err)
		}
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, "live stream unavailable; reconnect"),
			time.Now().Add(g.cfg.WriteTimeout))
		_ = conn.Close()
		g.active.Add(-1)
		g.releaseLive(who.ID)
		g.m.dropped.WithLabelValues(closeReason(code)).Inc()
		return
	}
	g.m.clients.Inc()
	go c.readLoop()
	c.wake() // the snapshot
}
