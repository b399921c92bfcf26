package gateway

import (
	"bytes"
	"time"
)

// The national view (Config.Level = national, docs/edge.md): the national
// hub's ROLLUPS sources each province hub's own roll-ups
// (ioc.rollup.<p>.<p>.<layer>.<window>) beside VN's, and /v1/live?unit=VN
// carries them all, so a national wall colours the 34 provinces. A province
// hub that is down or cut off sends nothing, so its roll-ups only grow old:
// while the newest roll-up of a province (its updatedAt, stamped by the
// province's aggregator) is older than ProvinceStaleAfter, every roll-up of
// that province is sent with "hubStale": true (the last property); when a
// newer one arrives (sourcing resumed), they are sent again without it.
// When a province turns stale or fresh, all its roll-ups are sent again.
//
// A province without any observation for ProvinceStaleAfter looks the same
// from here as one cut off: both are stale at the national level.

// hubStaleMark is spliced before the closing brace of the roll-up of a
// stale province.
var hubStaleMark = []byte(`,"hubStale":true}`)

// provinceLink is what a national view knows of one province hub.
type provinceLink struct {
	newest time.Time // the newest updatedAt of its roll-ups
	stale  bool
}

// nationalRollupProvince is the province hub a roll-up filed under province
// for unit comes from at the national level: the province itself for its
// own roll-ups (a province code files them under itself); "" for any other
// (VN's, a custom group's, which are filed under their own code too, a
// finer unit's).
func nationalRollupProvince(province, unit string) string {
	if province != unit {
		return ""
	}
	if !isProvinceCode(province) {
		return ""
	}
	return province
}

// linkCheckInterval is how often a national view looks for provinces
// turned stale: a quarter of the threshold, at most a second.
func linkCheckInterval(staleAfter time.Duration) time.Duration {
	return max(min(staleAfter/4, time.Second), 10*time.Millisecond)
}

// framed is e with its json (its base, marked hubStale when stale) and its frame.
func (e rollupEntry) framed(stale bool) rollupEntry {
	e.json = e.base
	if stale && bytes.HasSuffix(e.base, []byte("}")) {
		e.json = append(append(make([]byte, 0, len(e.base)+len(hubStaleMark)), e.base[:len(e.base)-1]...), hubStaleMark...)
	}
	e.frame = textFrame(append(append([]byte(`{"type":"rollup","rollup":`), e.json...), '}'))
	return e
}

// provinceStaleLocked reports whether the province hub of a roll-up
// (rollupEntry.province; "" for none) is stale.
func (h *hub) provinceStaleLocked(province string) bool {
	l := h.provinces[province]
	return province != "" && l != nil && l.stale
}

// markedRollup is e with its json and frame, marked when its province is stale.
func (h *hub) markedRollup(e rollupEntry) rollupEntry {
	return e.framed(h.provinceStaleLocked(e.province))
}

// seenProvinceLocked records a roll-up of province updated at, and turns
// the province fresh when it makes it so.
func (h *hub) seenProvinceLocked(province string, at time.Time) {
	l := h.provinces[province]
	if l == nil {
		l = &provinceLink{}
		h.provinces[province] = l
	}
	if at.After(l.newest) {
		l.newest = at
	}
	h.setProvinceStaleLocked(province, l, time.Since(l.newest) > h.g.cfg.ProvinceStaleAfter)
}

// checkProvincesLocked turns stale the provinces whose newest roll-up is
// older than ProvinceStaleAfter at now.
func (h *hub) checkProvincesLocked(now time.Time) {
	if h.stopped {
		return
	}
	for p, l := range h.provinces {
		h.setProvinceStaleLocked(p, l, now.Sub(l.newest) > h.g.cfg.ProvinceStaleAfter)
	}
}

// setProvinceStaleLocked sets the staleness of province and, when it
// changes, stages every roll-up of the province again, marked or not.
func (h *hub) setProvinceStaleLocked(province string, l *provinceLink, stale bool) {
	if l.stale == stale {
		return
	}
	l.stale = stale
	if stale {
		h.log.Warn("province hub stale: no roll-up for longer than the threshold", "from", province, "newest", l.newest, "after", h.g.cfg.ProvinceStaleAfter)
	} else {
		h.log.Info("province hub fresh again", "from", province, "newest", l.newest)
	}
	if stale {
		h.g.m.provincesStale.Inc()
	} else {
		h.g.m.provincesStale.Dec()
	}
	for key, e := range h.rollups {
		if _, ok := h.stagedRollups[key]; !ok && e.province == province {
			h.stageRollupLocked(key, h.markedRollup(e))
		}
	}
	for key, e := range h.stagedRollups {
		if e.province == province {
			h.stagedRollups[key] = h.markedRollup(e)
		}
	}
	h.nudgeLocked()
}

// stageRollupLocked makes e the roll-up of key to send at the next tick.
func (h *hub) stageRollupLocked(key string, e rollupEntry) {
	if _, ok := h.stagedRollups[key]; ok {
		h.g.m.framesConflate.Inc()
	} else {
		h.stagedRollupsOrder = append(h.stagedRollupsOrder, key)
	}
	h.stagedRollups[key] = e
}
