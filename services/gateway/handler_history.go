package gateway

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/iochub/iochub/services/gateway/pgread"
)

// GET /v1/history?entity=ID|unit=CODE&layer=L&from=T&to=T&points=N answers
// at most N points over [from, to): each the start of a bucket, the number
// of observations it summarises and the min, mean and max of the layer's
// values there (docs/api.md, "History"). An entity (station or segment) is
// read from its raw rows; a unit from the raw rows of the unit and the units
// inside it for short ranges (bucket under a minute, range up to a day), else
// from its roll-ups of the longest window that fits a bucket.

// History bounds.
const (
	// DefaultHistoryPoints is the points of a request without points=.
	DefaultHistoryPoints = 500
	// MaxHistoryPoints is the most points one request may ask for.
	MaxHistoryPoints = 10000
	// MaxHistoryRangeUnit is the longest range of a unit's history (roll-ups of 1d).
	MaxHistoryRangeUnit = 10 * 366 * 24 * time.Hour
	// MaxHistoryRangeEntity is the longest range of a station's or segment's
	// history: it is read from raw rows only.
	MaxHistoryRangeEntity = 366 * 24 * time.Hour
	// MaxHistoryRawUnitRange is the longest range a unit's history reads from raw rows.
	MaxHistoryRawUnitRange = 24 * time.Hour
	// DefaultHistoryRange is the range of a request without from=.
	DefaultHistoryRange = 24 * time.Hour
)

// historyWindows are the roll-up windows, longest first.
var historyWindows = []struct {
	name string
	d    time.Duration
}{{"1d", 24 * time.Hour}, {"1h", time.Hour}, {"15m", 15 * time.Minute}, {"1m", time.Minute}}

// windowGrid is a start of every roll-up window: 00:00 in Vietnam (UTC+7),
// where the 1d windows start; the shorter ones are aligned on UTC, and so on it.
var windowGrid = time.Date(2000, 1, 1, 0, 0, 0, 0, time.FixedZone("ICT", 7*3600))

// historyParams are the validated parameters of /v1/history.
type historyParams struct {
	Entity, Unit string
	Layer        pgread.HistoryLayer
	From, To     time.Time
	Points       int
	CSV          bool
	// RollupsOnly reads a unit from roll-ups whatever the range: a custom
	// group, whose members are not its children in the tree (not a parameter).
	RollupsOnly bool
}

func parseHistoryQuery(q url.Values, now time.Time) (historyParams, error) {
	var p historyParams
	one := func(name string) (string, error) {
		vs := q[name]
		switch {
		case len(vs) > 1:
			return "", fmt.Errorf("parameter %s: given %d times; give it once: %w", name, len(vs), ErrBadParam)
		case len(vs) == 0:
			return "", nil
		case len(vs[0]) > maxParamLen:
			return "", fmt.Errorf("parameter %s: longer than %d bytes: %w", name, maxParamLen, ErrBadParam)
		}
		v := strings.TrimSpace(vs[0])
		if name == "from" || name == "to" {
			v = strings.ReplaceAll(v, " ", "+") // an unescaped + of an offset arrives as a space
		}
		return v, nil
	}
	var err error
	if p.Entity, err = one("entity"); err != nil {
		return p, err
	}
	if p.Unit, err = one("unit"); err != nil {
		return p, err
	}
	switch {
	case p.Entity == "" && p.Unit == "":
		return p, fmt.Errorf("parameter entity or unit: give one (a station or segment id, or a unit code): %w", ErrBadParam)
	case p.Entity != "" && p.Unit != "":
		return p, fmt.Errorf("parameter entity and unit: give one of them, not both: %w", ErrBadParam)
	}
	layer, err := one("layer")
	if err != nil {
		return p, err
	}
	l, ok := pgread.HistoryLayers[layer]
	if !ok {
		return p, fmt.Errorf("parameter layer: %q is not one of air, water, weather, traffic: %w", truncate(layer, 32), ErrBadParam)
	}
	p.Layer = l
	p.To = now
	if s, err := one("to"); err != nil {
		return p, err
	} else if s != "" {
		if p.To, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return p, fmt.Errorf("parameter to: %q is not an RFC 3339 time (2025-08-01T00:00:00+07:00): %w", truncate(s, 40), ErrBadParam)
		}
	}
	p.From = p.To.Add(-DefaultHistoryRange)
	if s, err := one("from"); err != nil {
		return p, err
	} else if s != "" {
		if p.From, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return p, fmt.Errorf("parameter from: %q is not an RFC 3339 time (2025-08-01T00:00:00+07:00): %w", truncate(s, 40), ErrBadParam)
		}
	}
	if !p.From.Before(p.To) {
		return p, fmt.Errorf("parameter from: %s is not before to (%s): %w", p.From.Format(time.RFC3339), p.To.Format(time.RFC3339), ErrBadParam)
	}
	maxRange, what := MaxHistoryRangeUnit, "a unit"
	if p.Entity != "" {
		maxRange, what = MaxHistoryRangeEntity, "a station or segment (raw rows)"
	}
	if p.To.Sub(p.From) > maxRange {
		return p, fmt.Errorf("parameter from: the range from %s to %s is longer than the %d days allowed for %s: %w",
			p.From.Format(time.RFC3339), p.To.Format(time.RFC3339), int(maxRange.Hours()/24), what, ErrBadParam)
	}
	p.Points = DefaultHistoryPoints
	if s, err := one("points"); err != nil {
		return p, err
	} else if s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxHistoryPoints {
			return p, fmt.Errorf("parameter points: %q is not a whole number from 1 to %d: %w", truncate(s, 20), MaxHistoryPoints, ErrBadParam)
		}
		p.Points = n
	}
	return p, nil
}

// historyPlan is where a history is read from and how it is bucketed.
type historyPlan struct {
	// Window is the roll-up window read, "" for raw rows.
	Window string
	// Origin is the first bucket's start: from for raw rows, from floored
	// to a window start for roll-ups.
	Origin time.Time
	Bucket time.Duration
}

// source names the plan's source in answers: raw or rollup:<window>.
func (h historyPlan) source() string {
	if h.Window == "" {
		return "raw"
	}
	return "rollup:" + h.Window
}

// planHistory chooses the source and the bucket width so that [from, to)
// makes at most points buckets. Raw rows: the width is the range over
// points, rounded up to a second. Roll-ups: the longest window no longer
// than that width (at least 1m), the width rounded up to a multiple of it
// and the origin floored to a window start, so each window falls in one bucket.
func planHistory(p historyParams) historyPlan {
	span := p.To.Sub(p.From)
	n := time.Duration(p.Points)
	raw := historyPlan{Origin: p.From, Bucket: ceilTo((span+n-1)/n, time.Second)}
	if p.Entity != "" || (!p.RollupsOnly && raw.Bucket < time.Minute && span <= MaxHistoryRawUnitRange) {
		return raw
	}
	w := historyWindows[len(historyWindows)-1]
	for _, c := range historyWindows {
		if c.d <= raw.Bucket {
			w = c
			break
		}
	}
	origin := p.From.Add(-floorMod(p.From.Sub(windowGrid), w.d))
	span = p.To.Sub(origin)
	bucket := ceilTo((span+n-1)/n, w.d)
	return historyPlan{Window: w.name, Origin: origin, Bucket: bucket}
}

// ceilTo rounds d up to a multiple of unit.
func ceilTo(d, unit time.Duration) time.Duration {
	return (d + unit - 1) / unit * unit
}

// floorMod is d mod m in [0, m).
func floorMod(d, m time.Duration) time.Duration {
	r := d % m
	if r < 0 {
		r += m
	}
	return r
}

func (g *Gateway) serveHistory(w http.ResponseWriter, r *http.Request) {
	who, ok := g.authenticate(w, r)
	if !ok {
		return
	}
	p, err := parseHistoryQuery(r.URL.Query(), time.Now())
	if err != nil {
		writeProblem(w, r, http.StatusBadRequest, err.Error())
		return
	}
	p.CSV = acceptsCSV(r)
	if !readsKind(w, r, who, p.Layer.Name) {
		return
	}
	if g.readPool == nil {
		writeProblem(w, r, http.StatusServiceUnavailable, "this gateway has no database; history is not available here")
		return
	}
	tree, ok := g.hierarchy(w, r)
	if !ok {
		return
	}
	store := pgread.New(g.readPool)
	if p.Unit != "" {
		p.RollupsOnly = tree.nodes[p.Unit].Level == "custom"
	}
	plan := planHistory(p)
	q := pgread.HistoryQuery{Layer: p.Layer, Entity: p.Entity, From: plan.Origin, To: p.To, Bucket: plan.Bucket, Window: plan.Window}
	if p.Entity != "" {
		prov, unit, found, err := store.HistoryEntity(r.Context(), p.Layer.Name, p.Entity)
		if err != nil {
			g.readFailed(w, r, err, "looking up the entity of a history", "entity", p.Entity)
			return
		}
		// Out of scope looks like absent: ids are not probed.
		if !found || (!who.CanRead(prov) && !who.CanReadUnit(tree, unit)) {
			writeProblem(w, r, http.StatusNotFound, fmt.Sprintf("parameter entity: no %s %s has the id %q", p.Layer.Name, entityNoun(p.Layer.Name), truncate(p.Entity, 128)))
			return
		}
		// Of the entity's rows, those in who's scope: the id may have rows
		// elsewhere (a station moved; another source sent the same id).
		q.Scope = readScope(who, tree)
	} else {
		if !tree.exists(p.Unit) {
			writeProblem(w, r, http.StatusNotFound, fmt.Sprintf("parameter unit: no current unit has the code %q", truncate(p.Unit, 64)))
			return
		}
		if !who.CanReadUnit(tree, p.Unit) {
			forbid(w, r, who, "read the history of unit "+p.Unit)
			return
		}
		if plan.Window == "" {
			q.Units = tree.closure([]string{p.Unit}).codes()
		} else {
			q.Unit = p.Unit
		}
	}
	points, values, err := store.History(r.Context(), q)
	if err != nil {
		g.readFailed(w, r, err, "querying history", "layer", p.Layer.Name)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Iochub-History-Source", plan.source())
	w.Header().Set("Vary", "Accept")
	if p.CSV {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		_, _ = w.Write(historyCSV(points, values))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(historyJSON(p, plan, points, values))
}

func entityNoun(layer string) string {
	if layer == "traffic" {
		return "segment"
	}
	return "station"
}

// acceptsCSV reports whether the request prefers text/csv (named in Accept
// before any JSON type).
func acceptsCSV(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		switch strings.ToLower(strings.TrimSpace(mt)) {
		case "text/csv":
			return true
		case "application/json", "*/*", "application/*":
			return false
		}
	}
	return false
}

// historyJSON writes the answer by hand: up to 10 000 points of up to 22 figures.
func historyJSON(p historyParams, plan historyPlan, points []pgread.HistoryPoint, values []pgread.HistoryValue) []byte {
	var b bytes.Buffer
	b.Grow(256 + len(points)*64*(1+len(values)))
	b.WriteString(`{"layer":`)
	b.WriteString(strconv.Quote(p.Layer.Name))
	if p.Entity != "" {
		b.WriteString(`,"entity":`)
		b.Write(jsonString(p.Entity))
	} else {
		b.WriteString(`,"unit":`)
		b.Write(jsonString(p.Unit))
	}
	fmt.Fprintf(&b, `,"from":%q,"to":%q,"points":%d,"bucketSeconds":%d,"source":%q,"values":{`,
		plan.Origin.UTC().Format(time.RFC3339), p.To.UTC().Format(time.RFC3339Nano), p.Points, int64(plan.Bucket/time.Second), plan.source())
	for i, v := range values {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:[", v.Name)
		for j, s := range v.Stats {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%q", s)
		}
		b.WriteByte(']')
	}
	b.WriteString(`},"items":[`)
	var num []byte
	for i, pt := range points {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"t":"`)
		b.WriteString(pt.T.UTC().Format(time.RFC3339))
		b.WriteString(`","count":`)
		b.WriteString(strconv.FormatInt(pt.Count, 10))
		k := 0
		for _, v := range values {
			b.WriteString(`,"`)
			b.WriteString(v.Name)
			b.WriteString(`":{`)
			for j, s := range v.Stats {
				if j > 0 {
					b.WriteByte(',')
				}
				b.WriteByte('"')
				b.WriteString(string(s))
				b.WriteString(`":`)
				if f := pt.Figures[k]; f == nil || math.IsNaN(*f) || math.IsInf(*f, 0) {
					b.WriteString("null")
				} else {
					num = strconv.AppendFloat(num[:0], *f, 'g', -1, 64)
					b.Write(num)
				}
				k++
			}
			b.WriteByte('}')
		}
		b.WriteByte('}')
	}
	b.WriteString("]}\n")
	return b.Bytes()
}

func jsonString(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

// historyCSV is the points as CSV: t, count, then <value>_<stat> per
// figure; an absent figure is an empty field.
func historyCSV(points []pgread.HistoryPoint, values []pgread.HistoryValue) []byte {
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	head := []string{"t", "count"}
	for _, v := range values {
		for _, s := range v.Stats {
			head = append(head, v.Name+"_"+string(s))
		}
	}
	_ = cw.Write(head)
	rec := make([]string, len(head))
	for _, pt := range points {
		rec[0], rec[1] = pt.T.UTC().Format(time.RFC3339), strconv.FormatInt(pt.Count, 10)
		for i, f := range pt.Figures {
			rec[2+i] = ""
			if f != nil && !math.IsNaN(*f) && !math.IsInf(*f, 0) {
				rec[2+i] = strconv.FormatFloat(*f, 'g', -1, 64)
			}
		}
		_ = cw.Write(rec)
	}
	cw.Flush()
	return b.Bytes()
}
