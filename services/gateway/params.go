package gateway

import (
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/kind"
)

// liveParams are the validated query parameters of /v1/live.
type liveParams struct {
	Province string
	// Unit, instead of Province, opens a view of the roll-ups of the
	// national unit (VN) or of a custom group: no states, Rollups required.
	Unit string
	// Layers is the set of layers the client wants; nil means every layer.
	Layers []string
	// BBox, when set, limits the client to entities whose bounding box
	// intersects it; entities without a geometry are then left out. nil means
	// the whole province.
	BBox *bbox
	// Units, when set, limits the client to entities whose units (their unit,
	// or an alert's units) are among these: the units of a principal scoped to
	// units inside the province (not a parameter: set after authentication).
	Units unitSet
	// Rollups are the windows (1m, 15m, 1h, 1d) whose roll-ups the client
	// wants, of its layers; nil means none.
	Rollups []string
	// Batch (batch=1) asks for each send's updates (state, remove and
	// rollup frames) in one frame {"type":"batch","frames":[...]} instead of
	// one frame each (fanout.go); the snapshot and rollups frames are unchanged.
	Batch bool
	// Compact (snapshot=compact) asks for the snapshot frame in its compact
	// form (snapshot_compact.go): the same Features, each member name once
	// per shape. The other frames are unchanged.
	Compact bool
	// Principal is who opened the view (not a parameter: set after authentication).
	Principal auth.Principal
}

// wants reports whether a client with these params receives states of layer.
func (p liveParams) wants(layer string) bool {
	return p.Layers == nil || slices.Contains(p.Layers, layer)
}

// sees reports whether a client with these params has e in its view: its
// layer is wanted, with a bbox its geometry's box intersects it, and with
// units one of its units is among them.
func (p liveParams) sees(e entity) bool {
	if !p.wants(e.layer) {
		return false
	}
	if p.Units != nil && !p.Units.meets(e.units) {
		return false
	}
	return p.BBox == nil || (e.located && p.BBox.intersects(e.box))
}

// filterKey identifies the layer and bbox filter, for caching snapshots per filter.
func (p liveParams) filterKey() string {
	k := strings.Join(p.Layers, ",")
	if p.BBox != nil {
		k += "|" + p.BBox.String()
	}
	if p.Units != nil {
		k += "|units:" + p.Units.key()
	}
	return k
}

// maxParamLen bounds any single parameter value we look at.
const maxParamLen = 256

// parseLiveQuery validates ?province=NN[&layers=a,b][&bbox=minLon,minLat,maxLon,maxLat][&rollups=1m,1h][&batch=1][&snapshot=compact].
// Unknown parameters are ignored so later ones (resume) do not break older gateways.
func parseLiveQuery(q url.Values) (liveParams, error) {
	var p liveParams
	if vs, ok := q["unit"]; ok {
		if len(vs) != 1 || vs[0] == "" || len(vs[0]) > maxParamLen {
			return p, fmt.Errorf("parameter unit: give it once, the code of the national unit VN or of a custom group: %w", ErrBadParam)
		}
		if _, ok := q["province"]; ok {
			return p, fmt.Errorf("parameter unit: give either province or unit, not both: %w", ErrBadParam)
		}
		if _, ok := q["bbox"]; ok {
			return p, fmt.Errorf("parameter bbox: a view by unit carries roll-ups only; bbox applies to province=: %w", ErrBadParam)
		}
		if _, ok := q["rollups"]; !ok {
			return p, fmt.Errorf("parameter rollups: missing; a view by unit carries roll-ups only: give windows among %s: %w",
				strings.Join(rollupWindows, ","), ErrBadParam)
		}
		p.Unit = vs[0]
	} else {
		prov, err := parseProvince(q)
		if err != nil {
			return p, err
		}
		p.Province = prov
	}
	if vs, ok := q["layers"]; ok {
		if len(vs) != 1 {
			return p, fmt.Errorf("parameter layers: given %d times; give it once, comma-separated: %w", len(vs), ErrBadParam)
		}
		v := vs[0]
		if len(v) > maxParamLen {
			return p, fmt.Errorf("parameter layers: longer than %d bytes: %w", maxParamLen, ErrBadParam)
		}
		if v == "" {
			return p, fmt.Errorf("parameter layers: empty; omit it for every layer or list some of %s: %w",
				strings.Join(kind.Default.All(), ","), ErrBadParam)
		}
		p.Layers = []string{}
		for _, l := range strings.Split(v, ",") {
			if !kind.Default.Known(l) {
				return p, fmt.Errorf("parameter layers: unknown layer %q; known layers are %s: %w",
					l, strings.Join(kind.Default.All(), ","), ErrBadParam)
			}
			if !slices.Contains(p.Layers, l) {
				p.Layers = append(p.Layers, l)
			}
		}
		slices.Sort(p.Layers)
	}
	if vs, ok := q["rollups"]; ok {
		if len(vs) != 1 || len(vs[0]) > maxParamLen || vs[0] == "" {
			return p, fmt.Errorf("parameter rollups: give it once, comma-separated windows among %s: %w", strings.Join(rollupWindows, ","), ErrBadParam)
		}
		p.Rollups = []string{}
		for _, w := range strings.Split(vs[0], ",") {
			if !slices.Contains(rollupWindows, w) {
				return p, fmt.Errorf("parameter rollups: unknown window %q; windows are %s: %w", w, strings.Join(rollupWindows, ","), ErrBadParam)
			}
			if !slices.Contains(p.Rollups, w) {
				p.Rollups = append(p.Rollups, w)
			}
		}
		slices.Sort(p.Rollups)
	}
	if vs, ok := q["bbox"]; ok {
		if len(vs) != 1 {
			return p, fmt.Errorf("parameter bbox: given %d times; give it once as minLon,minLat,maxLon,maxLat: %w", len(vs), ErrBadParam)
		}
		if len(vs[0]) > maxParamLen {
			return p, fmt.Errorf("parameter bbox: longer than %d bytes: %w", maxParamLen, ErrBadParam)
		}
		b, err := parseBBox(vs[0])
		if err != nil {
			return p, err
		}
		p.BBox = &b
	}
	if vs, ok := q["batch"]; ok {
		if len(vs) != 1 || (vs[0] != "0" && vs[0] != "1") {
			return p, fmt.Errorf("parameter batch: give it once, 1 (updates in one batch frame per send) or 0: %w", ErrBadParam)
		}
		p.Batch = vs[0] == "1"
	}
	if vs, ok := q["snapshot"]; ok {
		if len(vs) != 1 || (vs[0] != "compact" && vs[0] != "features") {
			return p, fmt.Errorf("parameter snapshot: give it once, compact (member names once per shape) or features: %w", ErrBadParam)
		}
		p.Compact = vs[0] == "compact"
	}
	return p, nil
}

// parseProvince reads the required province parameter: a two-digit GSO code such as "01".
func parseProvince(q url.Values) (string, error) {
	vs, ok := q["province"]
	if !ok || len(vs) == 0 {
		return "", fmt.Errorf("parameter province: missing; give a two-digit province code such as province=01: %w", ErrBadParam)
	}
	if len(vs) != 1 {
		return "", fmt.Errorf("parameter province: given %d times; give it once: %w", len(vs), ErrBadParam)
	}
	v := vs[0]
	if !isProvinceCode(v) {
		if len(v) > 16 {
			v = v[:16] + "…"
		}
		return "", fmt.Errorf("parameter province: %q is not a two-digit province code such as 01: %w", v, ErrBadParam)
	}
	return v, nil
}

// isProvinceCode reports whether v is a two-digit province code such as 01.
func isProvinceCode(v string) bool {
	return len(v) == 2 && v[0] >= '0' && v[0] <= '9' && v[1] >= '0' && v[1] <= '9'
}

// maxSimplify is the largest simplification tolerance /v1/units accepts, in degrees (~11 km).
const maxSimplify = 0.1

// unitsParams are the validated query parameters of /v1/units.
type unitsParams struct {
	Province string
	// Simplify is the ST_SimplifyPreserveTopology tolerance in degrees; 0 means none.
	Simplify float64
	// At asks for the map valid at that time; zero means the current map.
	At time.Time
}

func parseUnitsQuery(q url.Values) (unitsParams, error) {
	var p unitsParams
	prov, err := parseProvince(q)
	if vs := q["province"]; len(vs) == 1 && vs[0] == nationalCode {
		// The national unit and its provinces: the map of a national wall.
		prov, err = nationalCode, nil
	}
	if err != nil {
		return p, err
	}
	p.Province = prov
	if vs, ok := q["simplify"]; ok {
		if len(vs) != 1 || len(vs[0]) > 32 {
			return p, fmt.Errorf("parameter simplify: give one number of degrees between 0 and %g: %w", maxSimplify, ErrBadParam)
		}
		s, err := strconv.ParseFloat(vs[0], 64)
		if err != nil || math.IsNaN(s) || s < 0 || s > maxSimplify {
			return p, fmt.Errorf("parameter simplify: %q is not a number of degrees between 0 and %g: %w", vs[0], maxSimplify, ErrBadParam)
		}
		p.Simplify = s
	}
	if vs, ok := q["at"]; ok {
		if len(vs) != 1 || len(vs[0]) > 64 {
			return p, fmt.Errorf("parameter at: give one time, RFC 3339 (2025-06-01T00:00:00+07:00) or YYYY-MM-DD: %w", ErrBadParam)
		}
		t, err := parseQueryTime(vs[0])
		if err != nil {
			return p, fmt.Errorf("parameter at: %w: %w", err, ErrBadParam)
		}
		p.At = t
	}
	if p.Province == nationalCode && !p.At.IsZero() {
		return p, fmt.Errorf("parameter at: the national map is today's only (province=VN without at): %w", ErrBadParam)
	}
	return p, nil
}
