package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/services/gateway/pgread"
)

// GET /v1/sources?province=NN lists the freshness of the feed sources of a
// province, per source and unit: last event, expected interval, events per
// minute, duplicates, rejections with their top reasons and whether the
// source is stale. It needs the operator role in the province (an operator
// scoped to units sees the rows of those units only) and every kind: a
// source's figures are not kept per kind (one source may send several, and
// its rejections' reasons name their fields), so a key of some kinds only
// may not read them.

// sourcesList is the answer of GET /v1/sources.
type sourcesList struct {
	Province string       `json:"province"`
	Items    []sourceJSON `json:"items"`
}

type sourceJSON struct {
	Source   string `json:"source"`
	Unit     string `json:"unit"`
	Province string `json:"province"`
	// LastEventAt is the newest event time received; LastSeenAt when the hub
	// last stored an event of the pair (its own clock).
	LastEventAt string `json:"lastEventAt"`
	LastSeenAt  string `json:"lastSeenAt"`
	FirstSeenAt string `json:"firstSeenAt"`
	// IntervalSeconds is the expected interval: configured on the source
	// (intervalConfigured) or the median of the recent gaps; null while unknown.
	IntervalSeconds    *float64 `json:"intervalSeconds"`
	IntervalConfigured bool     `json:"intervalConfigured"`
	Events             int64    `json:"events"`
	// EventsPerMinute is the events of the last 15 minutes per minute
	// (schema.SourceRate); EventsPerMinuteOverall is events over the time
	// from the first to the last arrival (at least a minute).
	EventsPerMinute        float64 `json:"eventsPerMinute"`
	EventsPerMinuteOverall float64 `json:"eventsPerMinuteOverall"`
	Duplicates             int64   `json:"duplicates"`
	// Rejected counts the source's items the ingest rejected (all its
	// units); RejectedShare is rejected / (rejected + the source's events
	// in all its units).
	Rejected      int64                `json:"rejected"`
	RejectedShare float64              `json:"rejectedShare"`
	TopReasons    []pgread.ReasonCount `json:"topReasons"`
	// Stale is true while the stale alert of the pair is raised; StaleSince
	// when it was; StaleAt when the pair becomes stale if nothing arrives.
	Stale      bool    `json:"stale"`
	StaleSince *string `json:"staleSince,omitempty"`
	StaleAt    *string `json:"staleAt,omitempty"`
}

func (g *Gateway) serveSources(w http.ResponseWriter, r *http.Request) {
	who, ok := g.authenticate(w, r)
	if !ok {
		return
	}
	if who.Role != auth.RoleOperator && !who.IsAdmin() {
		forbid(w, r, who, "read the sources' freshness (operator role needed)")
		return
	}
	if len(who.Kinds) > 0 {
		forbid(w, r, who, "read the sources' freshness, which spans every kind (this key reads the kinds "+strings.Join(who.Kinds, ",")+")")
		return
	}
	prov, err := parseProvince(r.URL.Query())
	if err != nil {
		writeProblem(w, r, http.StatusBadRequest, err.Error())
		return
	}
	tree, ok := g.readableProvince(w, r, who, prov, "read the sources of province "+prov)
	if !ok {
		return
	}
	if g.readPool == nil {
		writeProblem(w, r, http.StatusServiceUnavailable, "this gateway has no database; sources are not available here")
		return
	}
	now := time.Now()
	// A caller of some units gets its units' rows, the page cut after.
	var units []string
	if set := scopeUnits(tree, who, prov); set != nil {
		units = set.codes()
	}
	rows, err := pgread.New(g.readPool).Sources(r.Context(), prov, units)
	if err != nil {
		g.readFailed(w, r, err, "querying sources", "province", prov)
		return
	}
	out := sourcesList{Province: prov, Items: []sourceJSON{}}
	for _, x := range rows {
		if !who.CanReadUnit(tree, x.Unit) {
			continue
		}
		out.Items = append(out.Items, sourceItem(x, now))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}

func sourceItem(x pgread.SourceRow, now time.Time) sourceJSON {
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	it := sourceJSON{Source: x.SourceID, Unit: x.Unit, Province: x.Province,
		LastEventAt: ts(x.LastEvent), LastSeenAt: ts(x.LastSeen), FirstSeenAt: ts(x.FirstSeen),
		IntervalConfigured: x.Configured, Events: x.Events, Duplicates: x.Duplicates,
		Rejected: x.Rejected, TopReasons: x.Reasons, Stale: x.StaleSince != nil}
	if it.TopReasons == nil {
		it.TopReasons = []pgread.ReasonCount{}
	}
	if x.Interval > 0 {
		iv := x.Interval
		it.IntervalSeconds = &iv
	}
	minutes := max(x.LastSeen.Sub(x.FirstSeen).Minutes(), 1)
	it.EventsPerMinuteOverall = float64(x.Events) / minutes
	it.EventsPerMinute = schema.SourceRate(x.RateStart, x.RateCur, x.RatePrev, now)
	if total := x.Rejected + x.SourceEvents; total > 0 {
		it.RejectedShare = float64(x.Rejected) / float64(total)
	}
	if x.StaleSince != nil {
		s := ts(*x.StaleSince)
		it.StaleSince = &s
	}
	if x.StaleAt != nil {
		s := ts(*x.StaleAt)
		it.StaleAt = &s
	}
	return it
}
