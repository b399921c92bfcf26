package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// hub is one province's live state: an ordered consumer on STATE that delivers
// the last message of every subject of the province, then each new one. It
// keeps every entity's Feature bytes (the snapshot) and, every LiveTick, fans
// the changes out to its clients by group (fanout.go). It never waits on a
// client: the consumers only stage changes, and a tick only logs frames and
// wakes writers.
type hub struct {
	g        *Gateway
	province string
	// rollupsOnly marks the hub of a national unit or custom group
	// (/v1/live?unit=): its province is the unit's code, the token of its
	// roll-ups' subjects; it consumes ROLLUPS only.
	rollupsOnly bool
	// national marks the view of VN at a national hub (national.go): it
	// carries every province's own roll-ups and their staleness.
	national bool
	log      *slog.Logger
	messages prometheus.Counter
	bad      prometheus.Counter

	ready     chan struct{} // closed once the snapshot is complete
	readyOnce sync.Once
	done      chan struct{} // closed when the hub stops
	// rollupsReady is closed once the last roll-ups are loaded (hub_rollup.go).
	rollupsReady chan struct{}
	rollupsOnce  sync.Once

	mu       sync.Mutex
	entities map[string]entity // by "<layer>/<entityId>", as last sent (flushed)
	clients  map[*client]struct{}
	groups   map[string]*group     // by groupKey
	snaps    map[string][]byte     // snapshot frames by layer filter, valid until the next tick
	builds   map[string]*snapBuild // snapshot frames being built outside the lock, by layer filter
	// beforeBuild, set by tests, runs in add while a snapshot is built
	// outside the lock.
	beforeBuild func()
	rollups     map[string]rollupEntry // by "rollup:<unit>/<layer>/<window>", as last sent
	// seq counts the ticks that sent something. staged and stagedRollups are
	// the changes since the last one, newest per key, in arrival order.
	seq                uint64
	staged             map[string]entity
	stagedOrder        []string
	stagedRollups      map[string]rollupEntry
	stagedRollupsOrder []string
	// staleAlerts are the active stale-source alerts (by entity key) and
	// the "<source>/<unit>" each is about; staleCount counts them per pair (stale.go).
	staleAlerts map[string]string
	staleCount  map[string]int
	// provinces are the province hubs whose roll-ups a national view
	// received, by code (national.go).
	provinces map[string]*provinceLink
	// lastFlush is when flushLocked last sent something; flushDue says a
	// flush is scheduled (nudgeLocked).
	lastFlush time.Time
	flushDue  bool
	stopped   bool
	err       error // why the hub stopped; nil after Close
}

// entity is the stored Feature of one entity, with the bounding box of its
// geometry (computed once, when the Feature was encoded) for bbox filters.
type entity struct {
	layer   string
	json    []byte
	box     bbox
	located bool     // box is set: the Feature has a geometry
	units   []string // the entity's unit and an alert's units, for unit scopes
	// pair is "<source>/<unit>" of the entity's latest event; base its
	// Feature as encoded, which json is with "stale": true while the pair is
	// stale (stale.go).
	pair string
	base []byte
	// flat is json cut for the compact snapshot (snapshot_compact.go), made
	// when a compact snapshot first needs it; stale once json is other bytes.
	flat *flatFeature
}

func newHub(g *Gateway, province string) *hub {
	return &hub{
		g:        g,
		province: province,
		log:      g.log.With("province", province),
		messages: g.m.hubMessages.WithLabelValues(province),
		bad:      g.m.hubBadMessages.WithLabelValues(province),
		ready:    make(chan struct{}),
		done:     make(chan struct{}),
		entities: make(map[string]entity),
		clients:  make(map[*client]struct{}),
		groups:   make(map[string]*group),
		snaps:    make(map[string][]byte),
		builds:   make(map[string]*snapBuild),
		rollups:  make(map[string]rollupEntry),

		staged:        make(map[string]entity),
		stagedRollups: make(map[string]rollupEntry),

		staleAlerts:  make(map[string]string),
		staleCount:   make(map[string]int),
		provinces:    make(map[string]*provinceLink),
		rollupsReady: make(chan struct{}),
	}
}

// run consumes STATE, and ROLLUPS beside it (runRollups), and sends the
// changes every tick (tick), until ctx ends (nil) or a consumer fails (the error).
func (h *hub) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ticking := make(chan struct{})
	go func() {
		defer close(ticking)
		h.tick(ctx)
	}()
	defer func() { <-ticking }()
	if h.rollupsOnly {
		h.markReady() // no states
		return h.runRollups(ctx)
	}
	rollupsErr := make(chan error, 1)
	go func() {
		err := h.runRollups(ctx)
		if err != nil {
			cancel() // a failed ROLLUPS consumer stops the hub like a failed STATE one
		}
		rollupsErr <- err
	}()
	err := h.runState(ctx)
	cancel()
	if rerr := <-rollupsErr; err == nil {
		err = rerr
	}
	return err
}

// tick sends the staged changes every LiveTick and pings every client every
// PingInterval, until ctx ends.
func (h *hub) tick(ctx context.Context) {
	t := time.NewTicker(h.g.cfg.LiveTick)
	defer t.Stop()
	ping := time.NewTicker(h.g.cfg.PingInterval)
	defer ping.Stop()
	var links <-chan time.Time // national.go
	if h.national {
		lt := time.NewTicker(linkCheckInterval(h.g.cfg.ProvinceStaleAfter))
		defer lt.Stop()
		links = lt.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-links:
			h.mu.Lock()
			h.checkProvincesLocked(time.Now())
			h.mu.Unlock()
		case <-t.C:
			h.mu.Lock()
			h.flushLocked()
			h.mu.Unlock()
		case <-ping.C:
			h.mu.Lock()
			for c := range h.clients {
				c.ping()
			}
			h.mu.Unlock()
		}
	}
}

// runState consumes STATE until ctx ends (nil) or the consumer fails (the error).
func (h *hub) runState(ctx context.Context) error {
	cons, err := h.g.deps.JS.OrderedConsumer(ctx, subjects.StreamState, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subjects.StateProvince(h.province)},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
		// Reset (recreate the consumer after a lost heartbeat or a reconnect) at
		// most this often in a row before the hub gives up and its clients get 4000.
		MaxResetAttempts: h.g.cfg.ResetAttempts,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("creating STATE consumer for province %s: %w", h.province, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("consuming STATE for province %s: %w", h.province, err)
	}
	defer it.Stop()
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		h.markReady() // nothing stored for this province yet
	}
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("consuming STATE for province %s: %w", h.province, err)
		}
		h.handle(msg)
	}
}

// markReady sends what is staged, so that the first snapshot holds it, and
// lets the clients waiting for the snapshot in.
func (h *hub) markReady() {
	select {
	case <-h.ready:
		return
	default:
	}
	h.mu.Lock()
	h.flushLocked()
	h.mu.Unlock()
	h.readyOnce.Do(func() { close(h.ready) })
}

// handle decodes and encodes one STATE message once and stages its Feature.
func (h *hub) handle(msg jetstream.Msg) {
	h.messages.Inc()
	if meta, err := msg.Metadata(); err == nil && meta.NumPending == 0 {
		defer h.markReady()
	}
	var st iocv1.EntityState
	if err := proto.Unmarshal(msg.Data(), &st); err != nil {
		h.bad.Inc()
		h.log.Warn("skipping undecodable state", "subject", msg.Subject(), "err", err)
		return
	}
	h.handleState(&st, msg.Subject())
}

// handleState encodes one decoded state of subject and publishes it.
func (h *hub) handleState(st *iocv1.EntityState, subject string) {
	f, err := encodeFeature(st, subject)
	if err != nil {
		h.bad.Inc()
		h.log.Warn("skipping state", "subject", subject, "err", err)
		return
	}
	if f.geomErr != nil {
		h.log.Warn("state geometry unreadable; sending null", "entity", f.key, "err", f.geomErr)
	}
	f.pair = sourcePair(st)
	f.stalePair, f.staleActive = staleAlertPair(st)
	h.publish(f)
}

// publish stages f, to be sent at the next tick (flushLocked), with the
// stale mark its pair calls for; when f turns a pair stale or fresh, it
// stages that pair's entities again, marked or not.
func (h *hub) publish(f feature) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return
	}
	var turned string // the pair whose staleness f changes
	if f.stalePair != "" {
		was := h.isStaleLocked(f.stalePair)
		_, had := h.staleAlerts[f.key]
		switch {
		case f.staleActive && !had:
			h.staleAlerts[f.key] = f.stalePair
			h.staleCount[f.stalePair]++
		case !f.staleActive && had:
			delete(h.staleAlerts, f.key)
			if h.staleCount[f.stalePair]--; h.staleCount[f.stalePair] <= 0 {
				delete(h.staleCount, f.stalePair)
			}
		}
		if h.isStaleLocked(f.stalePair) != was {
			turned = f.stalePair
		}
	}
	e := entity{layer: f.layer, json: f.json, box: f.box, located: f.located, units: f.units, pair: f.pair, base: f.json}
	if e.pair != "" && h.isStaleLocked(e.pair) {
		e.json = markStale(e.base)
	}
	h.stageLocked(f.key, e)
	defer h.nudgeLocked()
	if turned == "" {
		return
	}
	// Send the entities of the pair again, marked or not.
	stale := h.isStaleLocked(turned)
	restage := func(key string, e entity) {
		if e.pair != turned {
			return
		}
		e.json, e.flat = e.base, nil // the cut was of the other bytes
		if stale {
			e.json = markStale(e.base)
		}
		h.stageLocked(key, e)
	}
	for key, e := range h.entities {
		if _, ok := h.staged[key]; !ok {
			restage(key, e)
		}
	}
	for key, e := range h.staged {
		restage(key, e)
	}
}

// isStaleLocked reports whether pair has an active stale-source alert.
func (h *hub) isStaleLocked(pair string) bool { return h.staleCount[pair] > 0 }

// stageLocked makes e the state of key to send at the next tick; it replaces
// a state of key staged since the last one (conflated: never sent).
func (h *hub) stageLocked(key string, e entity) {
	if _, ok := h.staged[key]; ok {
		h.g.m.framesConflate.Inc()
	} else {
		h.stagedOrder = append(h.stagedOrder, key)
	}
	h.staged[key] = e
}

// flushGapPerClient is how much the shortest time between two sends of a
// hub grows with each client: a send costs a write per client, so a hub of
// many clients sends less often (more changes per write), up to LiveTick,
// while a wall or two get each change at once.
const flushGapPerClient = 20 * time.Microsecond

// nudgeLocked sends the staged changes now when the last send is at least
// the hub's gap ago (LiveTick at most, flushGapPerClient a client), and
// otherwise makes sure a send is due when the gap is over: a quiet
// province's change leaves at once, a busy one's leave together. The tick
// sends whatever is left, as before.
func (h *hub) nudgeLocked() {
	if len(h.clients) == 0 {
		return // nothing to send to: the tick (or markReady before clients join) stores the changes
	}
	gap := min(h.g.cfg.LiveTick, time.Duration(len(h.clients))*flushGapPerClient)
	since := time.Since(h.lastFlush)
	if since >= gap {
		h.flushLocked()
		return
	}
	if h.flushDue {
		return
	}
	h.flushDue = true
	time.AfterFunc(gap-since, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.flushDue = false
		h.flushLocked()
	})
}

// flushLocked sends what was staged since the last tick: it stores each
// entity's new state, builds its state frame once and logs it for every
// group that sees it. A group that saw the entity's previous state but not
// this one (it moved out of the group's bbox, or lost its geometry) gets a
// remove frame instead, also built once. What a client holds is thus always
// what it sees of the stored states, so no per-client set of entities is
// needed. Then it wakes the clients of the groups that got something, and
// closes with CloseTooSlow a client whose writer has not taken the previous
// tick while more than SendQueue entities wait for it.
func (h *hub) flushLocked() {
	if h.stopped || len(h.stagedOrder)+len(h.stagedRollupsOrder) == 0 {
		return
	}
	h.seq++
	seq := h.seq
	h.lastFlush = time.Now()
	for _, key := range h.stagedOrder {
		e := h.staged[key]
		old, had := h.entities[key]
		h.entities[key] = e
		var frame, remove []byte // built once, when a group first needs them
		for _, g := range h.groups {
			switch {
			case g.params.sees(e):
				if frame == nil {
					frame = textFrame(stateFrame(e.json))
				}
				g.add(seq, key, frame)
			case had && g.params.sees(old):
				if remove == nil {
					remove = textFrame(removeFrame(key))
				}
				g.add(seq, key, remove)
			}
		}
	}
	for _, key := range h.stagedRollupsOrder {
		e := h.stagedRollups[key]
		h.rollups[key] = e
		for _, g := range h.groups {
			if g.params.wantsRollup(e) {
				g.add(seq, key, e.frame)
			}
		}
	}
	clear(h.staged)
	clear(h.stagedOrder)
	h.stagedOrder = h.stagedOrder[:0]
	clear(h.stagedRollups)
	clear(h.stagedRollupsOrder)
	h.stagedRollupsOrder = h.stagedRollupsOrder[:0]
	clear(h.snaps)
	for _, g := range h.groups {
		if g.top != seq {
			continue
		}
		g.compact()
		for c := range g.clients {
			if c.seq < g.prev && g.overflows(c.seq, seq, h.g.cfg.SendQueue) {
				c.closeWith(CloseTooSlow, "too slow: send queue overflow")
				h.removeLocked(c)
				continue
			}
			c.wake()
		}
	}
}

// add registers c with the snapshot (and roll-ups) as its first frames. The
// entities the snapshot shows are taken under the same lock as a tick, and
// c joins its group in it, so no state can slip between the snapshot and
// the deltas; a snapshot not cached for c's filter is then built outside
// the lock (sorting and copying a province's Features takes tens of ms,
// which every other client, the STATE consumer and the ticks would wait
// for), once for the clients of one filter joining meanwhile (a wall
// reconnecting en masse), c's writer taking nothing until it is in place.
// The caller wakes c.
func (h *hub) add(c *client) error {
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		if h.err != nil {
			return fmt.Errorf("joining province %s: %w", h.province, ErrHubFailed)
		}
		return fmt.Errorf("joining province %s: %w", h.province, ErrClosed)
	}
	var (
		b  *snapBuild
		es []snapEntity
	)
	if !h.rollupsOnly {
		var frame []byte
		if frame, b, es = h.snapshotStartLocked(c.params); b == nil {
			c.first = append(c.first, frame)
		} else {
			c.building = true
		}
	}
	h.pushRollupsLocked(c)
	h.joinLocked(c)
	h.g.writers.Add(1)
	h.mu.Unlock()
	if b == nil {
		return nil
	}
	if es != nil { // c's to build, for every client of its filter joining meanwhile
		if h.beforeBuild != nil {
			h.beforeBuild()
		}
		frame, cut := h.buildSnapshot(c.params, es)
		b.frame = frame
		h.mu.Lock()
		h.snapshotDoneLocked(c.params, b, cut)
		h.mu.Unlock()
		close(b.done)
	} else {
		<-b.done // another client's build, of the same entities
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c.first = slices.Insert(c.first, 0, b.frame)
	c.building = false
	return nil
}

// joinLocked puts c in the group of its params, as of the last tick.
func (h *hub) joinLocked(c *client) {
	key := groupKey(c.params)
	g, ok := h.groups[key]
	if !ok {
		g = newGroup(key, c.params)
		h.groups[key] = g
	}
	g.clients[c] = struct{}{}
	c.grp, c.seq = g, h.seq
	h.clients[c] = struct{}{}
}

// takeLocked appends to dst what c's writer is to write now: its first
// frames, then the newest frame of every entity its group logged since c
// last took; it returns the frames counted in it.
func (h *hub) takeLocked(c *client, dst [][]byte) (out [][]byte, frames, conflated int) {
	if c.building { // its snapshot first: the deltas wait in the group's log
		return dst, 0, 0
	}
	dst = append(dst, c.first...)
	frames = len(c.first)
	clear(c.first)
	c.first = c.first[:0]
	if g := c.grp; g != nil && c.seq < g.top {
		cu := g.since(c.seq, h.seq, c.params.Batch)
		if cu.frames > 0 {
			dst = append(dst, cu.buf)
		}
		frames += cu.frames
		conflated = cu.conflated
	}
	c.seq = h.seq
	return dst, frames, conflated
}

// snapEntity is what a snapshot needs of an entity, taken under the hub's
// lock: the bytes are never changed in place (an update stores new ones).
type snapEntity struct {
	key  string
	json []byte
	flat *flatFeature
}

// snapBuild is a snapshot frame being built outside the hub's lock from the
// entities as of tick seq; done is closed once frame is set.
type snapBuild struct {
	seq   uint64
	done  chan struct{}
	frame []byte
}

// snapshotStartLocked returns the snapshot frame for p's layers and bbox when
// it is cached (until the next change); else the build of it under way for
// another client since the last tick; else a new build, with the entities p
// sees to build it from (buildSnapshot) outside the lock.
func (h *hub) snapshotStartLocked(p liveParams) ([]byte, *snapBuild, []snapEntity) {
	k := snapKey(p)
	if frame, ok := h.snaps[k]; ok {
		return frame, nil, nil
	}
	if b, ok := h.builds[k]; ok && b.seq == h.seq {
		return nil, b, nil
	}
	es := make([]snapEntity, 0, len(h.entities))
	for key, e := range h.entities {
		if p.sees(e) {
			es = append(es, snapEntity{key, e.json, e.flat})
		}
	}
	b := &snapBuild{seq: h.seq, done: make(chan struct{})}
	h.builds[k] = b
	return nil, b, es
}

// snapKey is the cache key of p's snapshot frame: its filter and form.
func snapKey(p liveParams) string {
	if p.Compact {
		return p.filterKey() + "|compact"
	}
	return p.filterKey()
}

// buildSnapshot makes the snapshot frame of es (in key order), without the
// hub's lock: from the stored Feature bytes or, compact, from each entity's
// cut, made here for those without one (returned in cut, to be kept).
func (h *hub) buildSnapshot(p liveParams, es []snapEntity) (frame []byte, cut map[string]*flatFeature) {
	slices.SortFunc(es, func(a, b snapEntity) int { return strings.Compare(a.key, b.key) })
	if p.Compact {
		frame, cut = h.compactSnapshot(es)
	}
	if frame == nil {
		fs := make([][]byte, len(es))
		for i, e := range es {
			fs[i] = e.json
		}
		frame = textFrame(snapshotFrame(h.province, fs))
	}
	return frame, cut
}

// snapshotDoneLocked ends build b of p's snapshot: it keeps its frame for
// the next client of p's filter when no tick came since, and the compact
// cuts made for it on the entities still holding the bytes cut.
func (h *hub) snapshotDoneLocked(p liveParams, b *snapBuild, cut map[string]*flatFeature) {
	k := snapKey(p)
	if h.builds[k] == b {
		delete(h.builds, k)
	}
	if h.seq == b.seq {
		h.snaps[k] = b.frame
	}
	for key, ff := range cut {
		if e, ok := h.entities[key]; ok && ff.of(e.json) {
			e.flat = ff
			h.entities[key] = e
		}
	}
}

// compactSnapshot is the compact snapshot frame of es, each entity cut once
// (entity.flat) and kept until it changes: the cuts made here are returned
// for snapshotDoneLocked to keep. The frame is nil if one cannot be cut
// (never for the gateway's own encoding: the caller then sends the
// Features).
func (h *hub) compactSnapshot(es []snapEntity) ([]byte, map[string]*flatFeature) {
	fs := make([]*flatFeature, len(es))
	var cut flattener
	var made map[string]*flatFeature
	for i, e := range es {
		if !e.flat.of(e.json) {
			ff, err := cut.flatten(e.json)
			if err != nil {
				h.log.Warn("compact snapshot: sending Features", "entity", e.key, "err", err)
				return nil, made
			}
			if made == nil {
				made = make(map[string]*flatFeature)
			}
			made[e.key] = &ff
			fs[i] = &ff
			continue
		}
		fs[i] = e.flat
	}
	return textFrame(compactSnapshotFrame(h.province, fs)), made
}

func (h *hub) remove(c *client) {
	h.mu.Lock()
	h.removeLocked(c)
	h.mu.Unlock()
}

// removeLocked forgets c, and its group when it was the last one in it.
func (h *hub) removeLocked(c *client) {
	delete(h.clients, c)
	if g := c.grp; g != nil {
		delete(g.clients, c)
		if len(g.clients) == 0 && h.groups[g.key] == g {
			delete(h.groups, g.key)
		}
		c.grp = nil
	}
}

// stop ends the hub: clients get CloseStreamFailure when err is set, else CloseGoingAway.
func (h *hub) stop(err error) {
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return
	}
	h.stopped, h.err = true, err
	code, text := CloseGoingAway, "server shutting down"
	if err != nil {
		code, text = CloseStreamFailure, "live stream failed; reconnect"
	}
	for c := range h.clients {
		c.closeWith(code, text)
		c.grp = nil
	}
	for _, l := range h.provinces {
		if l.stale {
			h.g.m.provincesStale.Dec()
		}
	}
	clear(h.clients)
	clear(h.groups)
	h.mu.Unlock()
	close(h.done)
}
