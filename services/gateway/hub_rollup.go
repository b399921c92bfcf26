package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/subjects"
)

// rollupWindows are the windows a live client may ask roll-ups of.
var rollupWindows = []string{"1m", "15m", "1h", "1d"}

// maxRollupBytes bounds the body of a ROLLUPS message the hub keeps.
const maxRollupBytes = 4096

// rollupEntry is the last roll-up of one unit, layer and window.
type rollupEntry struct {
	unit, layer, window string
	start               time.Time
	// updated is the roll-up's updatedAt: of two copies of one window, the
	// earlier was read before the later was written.
	updated time.Time
	frame   []byte // {"type":"rollup","rollup":R}
	json    []byte // R
	// province is the province hub the roll-up comes from, at the national
	// level (its own roll-ups); base is R as received, which json is with
	// "hubStale": true while that province is stale (national.go).
	province string
	base     []byte
}

// wantsRollup reports whether a client with these params receives the
// roll-ups of e: it asked for e's window and layer, and with units, e's unit
// is among them.
func (p liveParams) wantsRollup(e rollupEntry) bool {
	if !slices.Contains(p.Rollups, e.window) || !p.wants(e.layer) {
		return false
	}
	return p.Units == nil || p.Units.has(e.unit)
}

// runRollups consumes ROLLUPS for the province until ctx ends (nil) or the
// consumer fails (the error): the last roll-up of every subject, then each
// new one.
func (h *hub) runRollups(ctx context.Context) error {
	filter := subjects.RollupProvince(h.province)
	if h.national {
		filter = subjects.RollupsAll // VN's and the provinces' own: all a national hub sources (national.go)
	}
	cons, err := h.g.deps.JS.OrderedConsumer(ctx, subjects.StreamRollups, jetstream.OrderedConsumerConfig{
		FilterSubjects:   []string{filter},
		DeliverPolicy:    jetstream.DeliverLastPerSubjectPolicy,
		MaxResetAttempts: h.g.cfg.ResetAttempts,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("creating ROLLUPS consumer for province %s: %w", h.province, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("consuming ROLLUPS for province %s: %w", h.province, err)
	}
	defer it.Stop()
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		h.markRollupsReady()
	}
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("consuming ROLLUPS for province %s: %w", h.province, err)
		}
		h.handleRollup(msg.Subject(), msg.Data())
		if meta, err := msg.Metadata(); err == nil && meta.NumPending == 0 {
			h.markRollupsReady()
		}
	}
}

// markRollupsReady sends what is staged, so that the first roll-ups frame
// holds it, and lets the clients waiting for the roll-ups in.
func (h *hub) markRollupsReady() {
	select {
	case <-h.rollupsReady:
		return
	default:
	}
	h.mu.Lock()
	h.flushLocked()
	h.mu.Unlock()
	h.rollupsOnce.Do(func() { close(h.rollupsReady) })
}

// handleRollup stages the roll-up of subject, to be kept and sent to the
// clients that asked for it at the next tick. A roll-up of an earlier window
// than the one kept or staged (a late correction), or of the same window
// updated earlier (a copy another aggregator read before a newer write and
// published after it), replaces nothing.
func (h *hub) handleRollup(subject string, data []byte) {
	h.messages.Inc()
	province, unit, layer, window, err := subjects.ParseRollup(subject)
	from := ""
	if err == nil && h.national {
		if from = nationalRollupProvince(province, unit); from == "" && province != h.province {
			return // a finer unit's: not in the national view
		}
	}
	var head struct {
		WindowStart time.Time `json:"windowStart"`
		UpdatedAt   time.Time `json:"updatedAt"`
	}
	if err == nil && len(data) > maxRollupBytes {
		err = fmt.Errorf("roll-up of %d bytes; at most %d kept", len(data), maxRollupBytes)
	}
	if err == nil {
		err = json.Unmarshal(data, &head)
	}
	if err != nil {
		h.bad.Inc()
		h.log.Warn("skipping roll-up", "subject", subject, "err", err)
		return
	}
	// The frame is built outside the lock; only a national view's roll-up
	// of a stale province hub is built again, marked, under it.
	e := rollupEntry{unit: unit, layer: layer, window: window, start: head.WindowStart, updated: head.UpdatedAt, province: from, base: data}.framed(false)
	key := "rollup:" + unit + "/" + layer + "/" + window
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return
	}
	if from != "" {
		h.seenProvinceLocked(from, head.UpdatedAt)
	}
	old, ok := h.stagedRollups[key]
	if !ok {
		old, ok = h.rollups[key]
	}
	if ok && (e.start.Before(old.start) || e.start.Equal(old.start) && e.updated.Before(old.updated)) {
		return
	}
	if h.provinceStaleLocked(from) {
		e = e.framed(true)
	}
	h.stageRollupLocked(key, e)
	h.nudgeLocked()
}

// pushRollupsLocked adds to the first frames of a client that asked for roll-ups, the frame
// {"type":"rollups","province":P,"rollups":[R,...]} of the roll-ups it sees,
// sorted by unit, layer and window ({"type":"rollups","unit":U,...} in a
// view by unit).
func (h *hub) pushRollupsLocked(c *client) {
	if len(c.params.Rollups) == 0 {
		return
	}
	keys := make([]string, 0, len(h.rollups))
	for k, e := range h.rollups {
		if c.params.wantsRollup(e) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	p, _ := json.Marshal(h.province) // a string always marshals
	field := `{"type":"rollups","province":`
	if h.rollupsOnly {
		field = `{"type":"rollups","unit":`
	}
	b := append(append([]byte(field), p...), `,"rollups":[`...)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, h.rollups[k].json...)
	}
	b = append(b, "]}"...)
	c.first = append(c.first, textFrame(b))
}
