package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/iochub/iochub/services/gateway/pgread"
)

// GET /v1/replay?province=NN&at=T[&layers=a,b] answers the province as the
// wall showed it at T, from stored history (docs/api.md, "Replay"): a
// document shaped like the live snapshot frame, {"type":"replay",
// "province":P,"at":T,"entities":[Feature...],"rollups":[R...]}, holding per
// station or segment its latest observation observed at or before T (and
// less than two hours before it), the alerts active at T, and the 1h
// roll-ups of the window holding T.

// Replay bounds.
const (
	// MaxReplayAge is how far back a replay may go.
	MaxReplayAge = 24 * time.Hour
	// MaxReplayRows is the most rows of each layer (and of the roll-ups) a replay holds.
	MaxReplayRows = 20000
)

// replayLayers are the layers a replay can show.
var replayLayers = []string{"air", "alert", "traffic", "water", "weather"}

type replayParams struct {
	Province string
	At       time.Time
	Layers   []string
}

func parseReplayQuery(q url.Values, now time.Time) (replayParams, error) {
	var p replayParams
	prov, err := parseProvince(q)
	if err != nil {
		return p, err
	}
	p.Province = prov
	vs := q["at"]
	switch {
	case len(vs) == 0:
		return p, fmt.Errorf("parameter at: missing; give an RFC 3339 time within the last 24 hours: %w", ErrBadParam)
	case len(vs) > 1:
		return p, fmt.Errorf("parameter at: given %d times; give it once: %w", len(vs), ErrBadParam)
	case len(vs[0]) > maxParamLen:
		return p, fmt.Errorf("parameter at: longer than %d bytes: %w", maxParamLen, ErrBadParam)
	}
	s := strings.ReplaceAll(strings.TrimSpace(vs[0]), " ", "+") // an unescaped + of an offset arrives as a space
	if p.At, err = time.Parse(time.RFC3339Nano, s); err != nil {
		return p, fmt.Errorf("parameter at: %q is not an RFC 3339 time (2025-08-01T00:00:00+07:00): %w", truncate(s, 40), ErrBadParam)
	}
	switch {
	case p.At.After(now):
		return p, fmt.Errorf("parameter at: %s is in the future; replay shows the past (open /v1/live for now): %w", s, ErrBadParam)
	case p.At.Before(now.Add(-MaxReplayAge)):
		return p, fmt.Errorf("parameter at: %s is more than 24 hours ago; replay covers the last 24 hours: %w", s, ErrBadParam)
	}
	p.Layers = slices.Clone(replayLayers)
	if vs, ok := q["layers"]; ok {
		if len(vs) != 1 || vs[0] == "" || len(vs[0]) > maxParamLen {
			return p, fmt.Errorf("parameter layers: give it once, comma-separated layers among %s: %w", strings.Join(replayLayers, ","), ErrBadParam)
		}
		p.Layers = []string{}
		for _, l := range strings.Split(vs[0], ",") {
			if !slices.Contains(replayLayers, l) {
				return p, fmt.Errorf("parameter layers: unknown layer %q; a replay shows %s: %w", truncate(l, 32), strings.Join(replayLayers, ","), ErrBadParam)
			}
			if !slices.Contains(p.Layers, l) {
				p.Layers = append(p.Layers, l)
			}
		}
		slices.Sort(p.Layers)
	}
	return p, nil
}

func (g *Gateway) serveReplay(w http.ResponseWriter, r *http.Request) {
	who, ok := g.authenticate(w, r)
	if !ok {
		return
	}
	p, err := parseReplayQuery(r.URL.Query(), time.Now())
	if err != nil {
		writeProblem(w, r, http.StatusBadRequest, err.Error())
		return
	}
	tree, ok := g.readableProvince(w, r, who, p.Province, "read province "+p.Province)
	if !ok {
		return
	}
	// A principal of some kinds sees only those layers: none given means
	// its kinds; a layer outside them is refused.
	if len(who.Kinds) > 0 {
		if _, given := r.URL.Query()["layers"]; !given {
			p.Layers = slices.DeleteFunc(p.Layers, func(l string) bool { return !who.MayReadKind(l) })
		}
		for _, l := range p.Layers {
			if !who.MayReadKind(l) {
				forbid(w, r, who, "read layer "+l+" (this key reads the kinds "+strings.Join(who.Kinds, ",")+")")
				return
			}
		}
	}
	if g.readPool == nil {
		writeProblem(w, r, http.StatusServiceUnavailable, "this gateway has no database; replay is not available here")
		return
	}
	q := pgread.ReplayQuery{Province: p.Province, At: p.At, Layers: p.Layers, Limit: MaxReplayRows}
	if len(who.Kinds) > 0 {
		q.RollupLayers = who.Kinds // the roll-ups of its kinds only
	}
	if units := scopeUnits(tree, who, p.Province); units != nil {
		q.Units = units.codes()
	}
	res, err := pgread.New(g.readPool).Replay(r.Context(), q)
	if err != nil {
		g.readFailed(w, r, err, "querying replay", "province", p.Province, "at", p.At)
		return
	}
	var buf bytes.Buffer
	prov, _ := json.Marshal(p.Province) // a string always marshals
	fmt.Fprintf(&buf, `{"type":"replay","province":%s,"at":"%s","entities":[`, prov, p.At.UTC().Format(time.RFC3339Nano))
	n := 0
	for _, f := range res.Entities {
		if n > 0 {
			buf.WriteByte(',')
		}
		buf.Write(f)
		n++
	}
	g.appendAlertFeatures(&buf, n, who, tree, res.Alerts)
	buf.WriteString(`],"rollups":[`)
	for i, rb := range res.Rollups {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(rb)
	}
	buf.WriteString("]}")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(buf.Bytes())
}
