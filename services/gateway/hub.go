package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// hub is one province's live state: an ordered consumer on STATE that delivers
// the last message of every subject of the province, then each new one. It
// keeps every entity's Feature bytes (the snapshot) and fans each change out
// to its clients' queues. It never waits on a client: pushing to a client is
// a map write under the client's own short lock.
type hub struct {
	g        *Gateway
	province string
	// rollupsOnly marks the hub of a national unit or custom group
	// (/v1/live?unit=): its province is the unit's code, the token of its
	// roll-ups' subjects; it consumes ROLLUPS only.
	rollupsOnly bool
	log         *slog.Logger
	messages    prometheus.Counter
	bad         prometheus.Counter

	ready     chan struct{} // closed once the snapshot is complete
	readyOnce sync.Once
	done      chan struct{} // closed when the hub stops
	// rollupsReady is closed once the last roll-ups are loaded (hub_rollup.go).
	rollupsReady chan struct{}
	rollupsOnce  sync.Once

	mu       sync.Mutex
	entities map[string]entity // by "<layer>/<entityId>"
	clients  map[*client]struct{}
	snaps    map[string][]byte      // snapshot frames by layer filter, valid until the next change
	rollups  map[string]rollupEntry // by "rollup:<unit>/<layer>/<window>"
	// staleAlerts are the active stale-source alerts (by entity key) and
	// the "<source>/<unit>" each is about; staleCount counts them per pair (stale.go).
	staleAlerts map[string]string
	staleCount  map[string]int
	stopped     bool
	err         error // why the hub stopped; nil after Close
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
		snaps:    make(map[string][]byte),
		rollups:  make(map[string]rollupEntry),

		staleAlerts:  make(map[string]string),
		staleCount:   make(map[string]int),
		rollupsReady: make(chan struct{}),
	}
}

// run consumes STATE, and ROLLUPS beside it (runRollups), until ctx ends
// (nil) or a consumer fails (the error).
func (h *hub) run(ctx context.Context) error {
	if h.rollupsOnly {
		h.markReady() // no states
		return h.runRollups(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
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

func (h *hub) markReady() { h.readyOnce.Do(func() { close(h.ready) }) }

// handle encodes one STATE message once and hands the same frame to every client that wants its layer.
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

// publish stores f and fans its state frame, built once, out to the clients
// that see it. A client that saw the entity's previous state but not this one
// (it moved out of the client's bbox, or lost its geometry) gets a remove
// frame instead, also built once. What a client holds is thus always what it
// sees of the stored states, so no per-client set of entities is needed.
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
	h.fanoutLocked(f.key, e)
	if turned == "" {
		return
	}
	// Send the entities of the pair again, marked or not.
	stale := h.isStaleLocked(turned)
	for key, e := range h.entities {
		if e.pair != turned {
			continue
		}
		e.json = e.base
		if stale {
			e.json = markStale(e.base)
		}
		h.fanoutLocked(key, e)
	}
}

// isStaleLocked reports whether pair has an active stale-source alert.
func (h *hub) isStaleLocked(pair string) bool { return h.staleCount[pair] > 0 }

// fanoutLocked stores e under key and queues its state frame, built once, to
// the clients that see it (a remove to those that saw it and no longer do).
func (h *hub) fanoutLocked(key string, e entity) {
	frame := textFrame(stateFrame(e.json))
	var remove []byte
	old, had := h.entities[key]
	h.entities[key] = e
	clear(h.snaps)
	for c := range h.clients {
		var out []byte
		switch {
		case c.params.sees(e):
			out = frame
		case had && c.params.sees(old):
			if remove == nil {
				remove = textFrame(removeFrame(key))
			}
			out = remove
		default:
			continue
		}
		// Same key as the state frames: a remove replaces an unsent state and
		// a later state replaces an unsent remove, so the last word wins.
		if !c.push(key, out) {
			delete(h.clients, c)
		}
	}
}

// add registers c and queues its snapshot first, under the same lock as
// publish, so no state can slip between the snapshot and the deltas.
func (h *hub) add(c *client) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		if h.err != nil {
			return fmt.Errorf("joining province %s: %w", h.province, ErrHubFailed)
		}
		return fmt.Errorf("joining province %s: %w", h.province, ErrClosed)
	}
	if !h.rollupsOnly {
		c.push(snapshotKey, h.snapshotLocked(c.params))
	}
	h.pushRollupsLocked(c)
	h.clients[c] = struct{}{}
	h.g.writers.Add(1)
	return nil
}

// snapshotKey is the queue key of the snapshot frame; no entity key is empty.
const snapshotKey = ""

// snapshotLocked is the snapshot frame for p's layers and bbox, built from the
// stored Feature bytes and cached per filter until the next change.
func (h *hub) snapshotLocked(p liveParams) []byte {
	k := p.filterKey()
	if frame, ok := h.snaps[k]; ok {
		return frame
	}
	keys := make([]string, 0, len(h.entities))
	for key, e := range h.entities {
		if p.sees(e) {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	fs := make([][]byte, len(keys))
	for i, key := range keys {
		fs[i] = h.entities[key].json
	}
	frame := textFrame(snapshotFrame(h.province, fs))
	h.snaps[k] = frame
	return frame
}

func (h *hub) remove(c *client) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
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
	}
	clear(h.clients)
	h.mu.Unlock()
	close(h.done)
}
