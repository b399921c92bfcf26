package gateway

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/routes"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/services/gateway/cql2"
	"github.com/iochub/iochub/services/gateway/pgread"
)

// OGC API – Features (Part 1 Core, GeoJSON, OpenAPI 3.0 classes; Part 3
// filter with CQL2 text) under /ogc: docs/api.md "OGC API – Features". The
// collections and their SQL are in pgread/features.go, the filter language
// in cql2. Every route authenticates like the rest of the gateway; items are
// limited in SQL to the principal's provinces and units.

// ogcBase is where the OGC API is mounted (the root is the wall screen).
const ogcBase = "/ogc"

// Limits of the items of a collection.
const (
	ogcDefaultLimit = 10
	ogcMaxLimit     = 10000
	// ogcMaxZoom bounds zoom=; ogcMaxOffset max-allowable-offset= (degrees).
	ogcMaxZoom   = 30
	ogcMaxOffset = 1.0
)

// CRS84 is the only CRS of the API (lon, lat in WGS 84).
const crs84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"

// conformance are the conformance classes the API implements. The API
// description is OpenAPI 3.1 (docs/openapi.yaml); the oas30 class is
// declared because OGC has no 3.1 class yet.
var conformance = []string{
	"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
	"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
	"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
	"http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
	"http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
	"http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
	"http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
	"http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
	"http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
	"http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
	"http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
}

// registerOGC adds the OGC API – Features routes to mux.
func (g *Gateway) registerOGC(mux routes.Mux) {
	mux.HandleFunc("GET "+ogcBase, g.serveOGCLanding)
	mux.HandleFunc("GET "+ogcBase+"/conformance", g.serveOGCConformance)
	mux.HandleFunc("GET "+ogcBase+"/api", g.serveOGCAPI)
	mux.HandleFunc("GET "+ogcBase+"/collections", g.serveOGCCollections)
	mux.HandleFunc("GET "+ogcBase+"/collections/{id}", g.serveOGCCollection)
	mux.HandleFunc("GET "+ogcBase+"/collections/{id}/queryables", g.serveOGCQueryables)
	mux.HandleFunc("GET "+ogcBase+"/collections/{id}/items", g.serveOGCItems)
	mux.HandleFunc("GET "+ogcBase+"/collections/{id}/items/{featureId}", g.serveOGCItem)
}

// ogcLink is a link of the OGC API documents.
type ogcLink struct {
	Rel   string `json:"rel"`
	Type  string `json:"type,omitempty"`
	Title string `json:"title,omitempty"`
	Href  string `json:"href"`
}

// ogcRoot is the absolute URL of /ogc as the client reached it.
func ogcRoot(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host + ogcBase
}

// ogcStart authenticates the request and checks f= (json only; 406 else)
// and, when allowed is not nil, that every parameter is one of allowed
// (400 naming the first other). It answers itself when it returns false.
func (g *Gateway) ogcStart(w http.ResponseWriter, r *http.Request, allowed []string) (auth.Principal, bool) {
	who, ok := g.authenticate(w, r)
	if !ok {
		return who, false
	}
	q := r.URL.Query()
	if f, ok := q["f"]; ok && (len(f) != 1 || (f[0] != "json" && f[0] != "geojson")) {
		writeProblem(w, r, http.StatusNotAcceptable, fmt.Sprintf("parameter f: %q is not a format of this API; it answers f=json (GeoJSON for items) only", truncate(strings.Join(f, ","), 40)))
		return who, false
	}
	if allowed != nil {
		for _, name := range slices.Sorted(maps.Keys(q)) { // the same parameter named every time
			if name != "f" && !slices.Contains(allowed, name) {
				writeProblem(w, r, http.StatusBadRequest, fmt.Sprintf("parameter %s: unknown here; this resource takes %s", truncate(name, 64), strings.Join(append([]string{"f"}, allowed...), ", ")))
				return who, false
			}
		}
	}
	return who, true
}

func writeOGCJSON(w http.ResponseWriter, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}

func (g *Gateway) serveOGCLanding(w http.ResponseWriter, r *http.Request) {
	if _, ok := g.ogcStart(w, r, []string{}); !ok {
		return
	}
	root := ogcRoot(r)
	writeOGCJSON(w, "application/json", map[string]any{
		"title":       "iochub",
		"description": "OGC API – Features of an iochub hub: administrative units, stations, road segments, alerts, citizen reports and roll-ups, read from PostGIS.",
		"links": []ogcLink{
			{Rel: "self", Type: "application/json", Title: "this document", Href: root},
			{Rel: "service-desc", Type: "application/vnd.oai.openapi;version=3.1", Title: "the API description (OpenAPI 3.1, YAML)", Href: root + "/api"},
			{Rel: "conformance", Type: "application/json", Title: "conformance classes", Href: root + "/conformance"},
			{Rel: "data", Type: "application/json", Title: "collections", Href: root + "/collections"},
		},
	})
}

func (g *Gateway) serveOGCConformance(w http.ResponseWriter, r *http.Request) {
	if _, ok := g.ogcStart(w, r, []string{}); !ok {
		return
	}
	writeOGCJSON(w, "application/json", map[string]any{"conformsTo": conformance})
}

// serveOGCAPI sends the client to the hub's OpenAPI document at /api.
func (g *Gateway) serveOGCAPI(w http.ResponseWriter, r *http.Request) {
	if _, ok := g.ogcStart(w, r, []string{}); !ok {
		return
	}
	http.Redirect(w, r, "/api", http.StatusSeeOther)
}

type ogcExtent struct {
	Spatial struct {
		BBox [][4]float64 `json:"bbox"`
		CRS  string       `json:"crs"`
	} `json:"spatial"`
}

type ogcCollection struct {
	ID          string    `json:"id"`
	Title       string    `json:"title"`
	Description string    `json:"description"`
	ItemType    string    `json:"itemType"`
	CRS         []string  `json:"crs"`
	StorageCRS  string    `json:"storageCrs"`
	Extent      ogcExtent `json:"extent"`
	Links       []ogcLink `json:"links"`
}

func collectionDoc(root string, c *pgread.Collection) ogcCollection {
	d := ogcCollection{ID: c.ID, Title: c.Title, Description: c.Description, ItemType: "feature", CRS: []string{crs84}, StorageCRS: crs84}
	d.Extent.Spatial.BBox = [][4]float64{{-180, -90, 180, 90}}
	d.Extent.Spatial.CRS = crs84
	href := root + "/collections/" + c.ID
	d.Links = []ogcLink{
		{Rel: "self", Type: "application/json", Title: c.Title, Href: href},
		{Rel: "items", Type: "application/geo+json", Title: c.Title + " (items)", Href: href + "/items"},
		{Rel: "http://www.opengis.net/def/rel/ogc/1.0/queryables", Type: "application/schema+json", Title: "queryables", Href: href + "/queryables"},
	}
	return d
}

func (g *Gateway) serveOGCCollections(w http.ResponseWriter, r *http.Request) {
	if _, ok := g.ogcStart(w, r, []string{}); !ok {
		return
	}
	root := ogcRoot(r)
	cs := make([]ogcCollection, 0, len(pgread.Collections))
	for _, c := range pgread.Collections {
		cs = append(cs, collectionDoc(root, c))
	}
	writeOGCJSON(w, "application/json", map[string]any{
		"links":       []ogcLink{{Rel: "self", Type: "application/json", Href: root + "/collections"}},
		"collections": cs,
	})
}

// ogcCollection returns the collection of the path's {id} or answers 404.
func ogcCollectionOf(w http.ResponseWriter, r *http.Request) (*pgread.Collection, bool) {
	c := pgread.CollectionByID(r.PathValue("id"))
	if c == nil {
		ids := make([]string, 0, len(pgread.Collections))
		for _, c := range pgread.Collections {
			ids = append(ids, c.ID)
		}
		writeProblem(w, r, http.StatusNotFound, fmt.Sprintf("collection %q: no such collection; there are %s", truncate(r.PathValue("id"), 64), strings.Join(ids, ", ")))
		return nil, false
	}
	return c, true
}

// ogcReadsKinds answers 403 and reports false when who, a key of some kinds
// (auth.Principal.Kinds), may not read collection c: alerts need the kind
// alert, reports report, segments traffic; stations and roll-ups mix kinds
// in one collection, so they are refused to a key of some kinds rather than
// shown whole (it follows its kinds on /v1/live or /v1/streams instead).
func ogcReadsKinds(w http.ResponseWriter, r *http.Request, who auth.Principal, c *pgread.Collection) bool {
	if len(who.Kinds) == 0 {
		return true
	}
	switch c.ID {
	case "units":
		return true
	case "alerts":
		return readsKind(w, r, who, subjects.KindAlert)
	case "reports":
		return readsKind(w, r, who, subjects.KindReport)
	case "segments":
		return readsKind(w, r, who, subjects.KindTraffic)
	}
	forbid(w, r, who, "read the collection "+c.ID+", which mixes kinds (this key reads the kinds "+strings.Join(who.Kinds, ",")+")")
	return false
}

func (g *Gateway) serveOGCCollection(w http.ResponseWriter, r *http.Request) {
	if _, ok := g.ogcStart(w, r, []string{}); !ok {
		return
	}
	c, ok := ogcCollectionOf(w, r)
	if !ok {
		return
	}
	writeOGCJSON(w, "application/json", collectionDoc(ogcRoot(r), c))
}

func (g *Gateway) serveOGCQueryables(w http.ResponseWriter, r *http.Request) {
	if _, ok := g.ogcStart(w, r, []string{}); !ok {
		return
	}
	c, ok := ogcCollectionOf(w, r)
	if !ok {
		return
	}
	props := map[string]any{}
	for name, p := range c.Queryables {
		switch p.Type {
		case cql2.String:
			props[name] = map[string]string{"type": "string"}
		case cql2.Number:
			props[name] = map[string]string{"type": "number"}
		case cql2.Bool:
			props[name] = map[string]string{"type": "boolean"}
		case cql2.Time:
			props[name] = map[string]string{"type": "string", "format": "date-time"}
		case cql2.Geometry:
			props[name] = map[string]string{"format": "geometry-any"}
		}
	}
	writeOGCJSON(w, "application/schema+json", map[string]any{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"$id":                  ogcRoot(r) + "/collections/" + c.ID + "/queryables",
		"type":                 "object",
		"title":                c.Title,
		"properties":           props,
		"additionalProperties": false,
	})
}

// ogcScope is what who may read, as SQL limits: every province of its
// province scopes and every unit within its unit scopes (for the units
// collection, every unit within any of its scopes). false when who reads
// nothing (403 answered).
func ogcScope(w http.ResponseWriter, r *http.Request, who auth.Principal, tree *unitTree, c *pgread.Collection) (pgread.Scope, bool) {
	reads := false
	for _, s := range who.Scopes {
		if who.CanReadUnit(tree, s) {
			reads = true
		}
	}
	if !reads {
		forbid(w, r, who, "read the OGC API")
		return pgread.Scope{}, false
	}
	sc := readScope(who, tree)
	if c.ID == "units" && !sc.All {
		sc.Units = tree.closure(who.Scopes).codes()
	}
	return sc, true
}

// readScope is what who may read of rows that name their province and unit,
// as SQL limits: every province of its province scopes and every unit within
// its unit scopes.
func readScope(who auth.Principal, tree *unitTree) pgread.Scope {
	if who.AllProvinces() {
		return pgread.Scope{All: true}
	}
	sc := pgread.Scope{Provinces: []string{}, Units: []string{}}
	var unitRoots []string
	for _, s := range who.Scopes {
		if p, ok := tree.province(s); (ok && p == s) || !tree.exists(s) {
			sc.Provinces = append(sc.Provinces, s)
		} else {
			unitRoots = append(unitRoots, s)
		}
	}
	if len(unitRoots) > 0 {
		sc.Units = tree.closure(unitRoots).codes()
	}
	return sc
}

// itemsParams are the parameters every items request takes (besides the
// collection's queryables, and window= of rollups).
var itemsParams = []string{"bbox", "bbox-crs", "crs", "datetime", "limit", "cursor", "filter", "filter-lang", "filter-crs", "zoom", "max-allowable-offset"}

// cursor is the opaque cursor= of next and prev links: the key of the last
// (After) or first (Before) feature of the page it came from, base64url of
// JSON. It holds keys, not offsets, so a page stays right when rows are
// added before it.
type cursor struct {
	Dir  string   `json:"d"` // "a": after Key; "b": before Key
	Keys []string `json:"k"`
}

func encodeCursor(dir string, keys []string) string {
	b, _ := json.Marshal(cursor{Dir: dir, Keys: keys})
	return base64.RawURLEncoding.EncodeToString(b)
}

// parseItemsQuery validates an items request's parameters into fq.
func parseItemsQuery(c *pgread.Collection, q url.Values) (pgread.FeatureQuery, error) {
	fq := pgread.FeatureQuery{C: c, Limit: ogcDefaultLimit, Count: true}
	one := func(name string) (string, bool, error) {
		vs, ok := q[name]
		if !ok {
			return "", false, nil
		}
		if len(vs) != 1 {
			return "", false, fmt.Errorf("parameter %s: give it once: %w", name, ErrBadParam)
		}
		max := maxParamLen
		if name == "filter" {
			max = cql2.MaxLen
		}
		if len(vs[0]) > max {
			return "", false, fmt.Errorf("parameter %s: longer than %d bytes: %w", name, max, ErrBadParam)
		}
		return vs[0], true, nil
	}
	for _, name := range slices.Sorted(maps.Keys(q)) { // the same parameter named every time
		if name == "f" || slices.Contains(itemsParams, name) || (c.TimeMode == pgread.TimeWindow && name == "window") {
			continue
		}
		p, ok := c.Queryables[name]
		if !ok || p.Type == cql2.Geometry || p.Type == cql2.Time {
			names := make([]string, 0, len(c.Queryables))
			for n, p := range c.Queryables {
				if p.Type != cql2.Geometry && p.Type != cql2.Time {
					names = append(names, n)
				}
			}
			slices.Sort(names)
			return fq, fmt.Errorf("parameter %s: %s has no such property; filter by one of %s, or use %s: %w",
				truncate(name, 64), c.ID, strings.Join(names, ", "), strings.Join(itemsParams, ", "), ErrBadParam)
		}
		v, _, err := one(name)
		if err != nil {
			return fq, err
		}
		if fq.Equals == nil {
			fq.Equals = map[string]any{}
		}
		switch p.Type {
		case cql2.Number:
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return fq, fmt.Errorf("parameter %s: %q is not a number: %w", name, v, ErrBadParam)
			}
			fq.Equals[name] = f
		case cql2.Bool:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fq, fmt.Errorf("parameter %s: %q is not true or false: %w", name, v, ErrBadParam)
			}
			fq.Equals[name] = b
		default:
			fq.Equals[name] = v
		}
	}
	if v, ok, err := one("limit"); err != nil {
		return fq, err
	} else if ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > ogcMaxLimit {
			return fq, fmt.Errorf("parameter limit: %q is not a whole number from 1 to %d: %w", v, ogcMaxLimit, ErrBadParam)
		}
		fq.Limit = n
	}
	for _, name := range []string{"bbox-crs", "crs", "filter-crs"} {
		if v, ok, err := one(name); err != nil {
			return fq, err
		} else if ok && v != crs84 && v != "[OGC:CRS84]" && v != "OGC:CRS84" {
			return fq, fmt.Errorf("parameter %s: %q is not supported; the only CRS is %s (lon, lat): %w", name, v, crs84, ErrBadParam)
		}
	}
	if v, ok, err := one("bbox"); err != nil {
		return fq, err
	} else if ok {
		parts := strings.Split(v, ",")
		if len(parts) != 4 {
			return fq, fmt.Errorf("parameter bbox: %q is not minLon,minLat,maxLon,maxLat (4 numbers): %w", v, ErrBadParam)
		}
		var box [4]float64
		for i, s := range parts {
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return fq, fmt.Errorf("parameter bbox: %q is not a number: %w", s, ErrBadParam)
			}
			box[i] = f
		}
		if box[0] < -180 || box[2] > 180 || box[1] < -90 || box[3] > 90 || box[0] > box[2] || box[1] > box[3] {
			return fq, fmt.Errorf("parameter bbox: %q is not minLon,minLat,maxLon,maxLat within [-180,180]×[-90,90] (crossing the antimeridian is not supported): %w", v, ErrBadParam)
		}
		fq.BBox = &box
	}
	if v, ok, err := one("datetime"); err != nil {
		return fq, err
	} else if ok {
		if c.TimeMode == pgread.TimeNone {
			return fq, fmt.Errorf("parameter datetime: collection %s has no time: %w", c.ID, ErrBadParam)
		}
		if err := parseDatetime(v, &fq); err != nil {
			return fq, err
		}
		if c.TimeMode == pgread.TimeValidity && fq.At == nil {
			return fq, fmt.Errorf("parameter datetime: %s takes an instant (the map valid then), not an interval: %w", c.ID, ErrBadParam)
		}
	}
	if c.TimeMode == pgread.TimeWindow {
		fq.Window = "1h"
		if v, ok, err := one("window"); err != nil {
			return fq, err
		} else if ok {
			if _, known := pgread.RollupWindows[v]; !known {
				return fq, fmt.Errorf("parameter window: %q is not 1m, 15m, 1h or 1d: %w", v, ErrBadParam)
			}
			fq.Window = v
		}
	}
	zoom, hasZoom, err := one("zoom")
	if err != nil {
		return fq, err
	}
	offset, hasOffset, err := one("max-allowable-offset")
	if err != nil {
		return fq, err
	}
	switch {
	case hasZoom && hasOffset:
		return fq, fmt.Errorf("parameter zoom: give zoom or max-allowable-offset, not both: %w", ErrBadParam)
	case hasZoom:
		z, err := strconv.Atoi(zoom)
		if err != nil || z < 0 || z > ogcMaxZoom {
			return fq, fmt.Errorf("parameter zoom: %q is not a whole number from 0 to %d: %w", zoom, ogcMaxZoom, ErrBadParam)
		}
		// Half a 256-pixel tile's pixel at that zoom, in degrees of longitude.
		fq.Simplify = 360 / (256 * math.Pow(2, float64(z))) / 2
	case hasOffset:
		f, err := strconv.ParseFloat(offset, 64)
		if err != nil || math.IsNaN(f) || f < 0 || f > ogcMaxOffset {
			return fq, fmt.Errorf("parameter max-allowable-offset: %q is not a number of degrees from 0 to %g: %w", offset, ogcMaxOffset, ErrBadParam)
		}
		fq.Simplify = f
	}
	if v, ok, err := one("filter-lang"); err != nil {
		return fq, err
	} else if ok && v != "cql2-text" {
		return fq, fmt.Errorf("parameter filter-lang: %q is not supported; use cql2-text: %w", v, ErrBadParam)
	}
	if v, ok, err := one("filter"); err != nil {
		return fq, err
	} else if ok {
		e, err := cql2.Parse(v)
		if err != nil {
			return fq, fmt.Errorf("parameter filter: %w: %w", err, ErrBadParam)
		}
		// Translate once here so that an unknown property or a type error is a 400.
		if _, err := e.SQL(c.Queryables, discardBinder{}); err != nil {
			return fq, fmt.Errorf("parameter filter: %w: %w", err, ErrBadParam)
		}
		fq.Filter = e
	}
	if v, ok, err := one("cursor"); err != nil {
		return fq, err
	} else if ok {
		var cur cursor
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err == nil {
			err = json.Unmarshal(b, &cur)
		}
		if err != nil || len(cur.Keys) != len(c.Keys) || (cur.Dir != "a" && cur.Dir != "b") {
			return fq, fmt.Errorf("parameter cursor: not a cursor of %s; take it from a next or prev link: %w", c.ID, ErrBadParam)
		}
		if cur.Dir == "a" {
			fq.After = cur.Keys
		} else {
			fq.Before = cur.Keys
		}
		fq.Count = false // counted on the first page only
	}
	return fq, nil
}

type discardBinder struct{}

func (discardBinder) Bind(any) string { return "$0" }

// parseDatetime reads an instant, or an interval "a/b" whose ends may be
// open ("" or ".."), each RFC 3339 or a date (UTC midnight).
func parseDatetime(v string, fq *pgread.FeatureQuery) error {
	at := func(s string) (*time.Time, error) {
		if s == "" || s == ".." {
			return nil, nil
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			if t, err = time.Parse(time.DateOnly, s); err != nil {
				return nil, fmt.Errorf("parameter datetime: %q is not an RFC 3339 date-time, a date or '..': %w", s, ErrBadParam)
			}
		}
		return &t, nil
	}
	from, to, isInterval := strings.Cut(v, "/")
	if !isInterval {
		t, err := at(v)
		if err != nil {
			return err
		}
		if t == nil {
			return fmt.Errorf("parameter datetime: %q is not an instant or an interval: %w", v, ErrBadParam)
		}
		fq.At = t
		return nil
	}
	a, err := at(from)
	if err != nil {
		return err
	}
	b, err := at(to)
	if err != nil {
		return err
	}
	if a != nil && b != nil && b.Before(*a) {
		return fmt.Errorf("parameter datetime: %q ends before it starts: %w", v, ErrBadParam)
	}
	fq.From, fq.To, fq.Interval = a, b, true // both nil: "../..", any time
	return nil
}

// itemsSink streams a FeatureCollection to the response.
type itemsSink struct {
	w   http.ResponseWriter
	ct  string // Content-Type
	bw  *bufio.Writer
	n   int
	idb []byte
}

func (s *itemsSink) Begin() error {
	s.w.Header().Set("Content-Type", s.ct)
	s.w.Header().Set("Cache-Control", "no-cache")
	s.bw = bufio.NewWriterSize(s.w, 32<<10)
	_, err := s.bw.WriteString(`{"type":"FeatureCollection","features":[`)
	return err
}

func (s *itemsSink) Feature(id, geometry, properties []byte) error {
	if s.n > 0 {
		_ = s.bw.WriteByte(',')
	}
	s.n++
	_, _ = s.bw.WriteString(`{"type":"Feature","id":`)
	s.idb = appendJSONString(s.idb[:0], id)
	_, _ = s.bw.Write(s.idb)
	_, _ = s.bw.WriteString(`,"geometry":`)
	if geometry == nil {
		_, _ = s.bw.WriteString("null")
	} else {
		_, _ = s.bw.Write(geometry)
	}
	_, _ = s.bw.WriteString(`,"properties":`)
	_, err := s.bw.Write(properties)
	_ = s.bw.WriteByte('}')
	return err
}

// appendJSONString appends s as a JSON string.
func appendJSONString(dst, s []byte) []byte {
	b, _ := json.Marshal(string(s))
	return append(dst, b...)
}

// withParam is u's query with name set to value (removed when value is "").
func withParam(u *url.URL, root string, name, value string) string {
	q := u.Query()
	if value == "" {
		q.Del(name)
	} else {
		q.Set(name, value)
	}
	s := root + strings.TrimPrefix(u.Path, ogcBase)
	if e := q.Encode(); e != "" {
		s += "?" + e
	}
	return s
}

// ogcScoped limits fq to what who may read of c; false when it answered
// (no database here, or a refusal).
func (g *Gateway) ogcScoped(w http.ResponseWriter, r *http.Request, who auth.Principal, c *pgread.Collection, fq *pgread.FeatureQuery) bool {
	if g.readPool == nil {
		writeProblem(w, r, http.StatusServiceUnavailable, "this gateway has no database; the OGC API is not available here")
		return false
	}
	tree, ok := g.hierarchy(w, r)
	if !ok {
		return false
	}
	fq.Scope, ok = ogcScope(w, r, who, tree, c)
	return ok
}

func (g *Gateway) serveOGCItems(w http.ResponseWriter, r *http.Request) {
	who, ok := g.ogcStart(w, r, nil)
	if !ok {
		return
	}
	c, ok := ogcCollectionOf(w, r)
	if !ok || !ogcReadsKinds(w, r, who, c) {
		return
	}
	fq, err := parseItemsQuery(c, r.URL.Query())
	if err != nil {
		writeProblem(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if !g.ogcScoped(w, r, who, c, &fq) {
		return
	}
	paging := pinNow(r.URL, &fq)
	// GeoJSON is JSON: f=json asks for the same body as application/json.
	sink := &itemsSink{w: w, ct: "application/geo+json"}
	if r.URL.Query().Get("f") == "json" {
		sink.ct = "application/json"
	}
	// The page is written as it is read: the write deadline frees the read
	// pool's connection from a client that does not read (FeaturesWriteTimeout).
	rc := http.NewResponseController(w)
	if err := rc.SetWriteDeadline(time.Now().Add(g.cfg.FeaturesWriteTimeout)); err == nil {
		defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	}
	page, err := pgread.New(g.readPool).Features(r.Context(), fq, g.cfg.FeaturesTimeout, sink)
	if err != nil {
		g.ogcQueryFailed(w, r, c, err)
		return
	}
	root := ogcRoot(r)
	bw := sink.bw
	fmt.Fprintf(bw, `],"numberReturned":%d`, page.Returned)
	if page.MatchedKnown {
		fmt.Fprintf(bw, `,"numberMatched":%d`, page.Matched)
	}
	fmt.Fprintf(bw, `,"timeStamp":%q,"links":`, time.Now().UTC().Format(time.RFC3339))
	links := []ogcLink{
		{Rel: "self", Type: sink.ct, Title: "this page", Href: withParam(r.URL, root, "cursor", r.URL.Query().Get("cursor"))},
		{Rel: "alternate", Type: alternate(sink.ct), Title: "this page as " + alternate(sink.ct), Href: withParam(r.URL, root, "f", alternateF(sink.ct))},
		{Rel: "collection", Type: "application/json", Title: c.Title, Href: root + "/collections/" + c.ID},
	}
	hasNext := page.More && fq.Before == nil || fq.Before != nil && page.Returned > 0
	hasPrev := fq.Before != nil && page.More || fq.After != nil && page.Returned > 0
	if hasNext && page.Last != nil {
		links = append(links, ogcLink{Rel: "next", Type: sink.ct, Title: "next page", Href: withParam(paging, root, "cursor", encodeCursor("a", page.Last))})
	}
	if hasPrev && page.First != nil {
		links = append(links, ogcLink{Rel: "prev", Type: sink.ct, Title: "previous page", Href: withParam(paging, root, "cursor", encodeCursor("b", page.First))})
	}
	lb, _ := json.Marshal(links)
	_, _ = bw.Write(lb)
	_, _ = bw.WriteString("}\n")
	if err := bw.Flush(); err != nil {
		g.log.Debug("writing OGC items", "collection", c.ID, "err", err)
	}
}

// pinNow resolves "now" for a roll-up request without datetime= (the
// window holding now) and returns the URL its next and prev links are made
// from, carrying that instant as datetime=: "now" moves between pages, and
// a window boundary passing mid-paging would switch the later pages to the
// next window. Other requests page from u itself.
func pinNow(u *url.URL, fq *pgread.FeatureQuery) *url.URL {
	if fq.C.TimeMode != pgread.TimeWindow || fq.At != nil || fq.Interval {
		return u
	}
	// Whole seconds for a short link: windows start on whole minutes, so the
	// window holding the instant is the same.
	now := time.Now().UTC().Truncate(time.Second)
	fq.At = &now
	pinned := *u
	q := u.Query()
	q.Set("datetime", now.Format(time.RFC3339))
	pinned.RawQuery = q.Encode()
	return &pinned
}

// ogcQueryFailed answers a failed query: 503 (or 400 for a query the
// database refused as malformed) before the page began; after, the
// response is cut (the client sees truncated JSON, never a wrong page).
func (g *Gateway) ogcQueryFailed(w http.ResponseWriter, r *http.Request, c *pgread.Collection, err error) {
	if errors.Is(err, pgread.ErrBegun) {
		g.log.Warn("OGC items cut short", "collection", c.ID, "err", err)
		panic(http.ErrAbortHandler)
	}
	if r.Context().Err() != nil {
		return
	}
	if refusedValue(w, r, err) {
		g.log.Warn("the database refused a value of an OGC query", "collection", c.ID, "err", err)
		return
	}
	g.log.Error("querying OGC items", "collection", c.ID, "err", err)
	if isQueryCanceled(err) {
		writeProblem(w, r, http.StatusServiceUnavailable, fmt.Sprintf("the query on %s ran past its %s limit; narrow it (bbox, datetime, filter) or lower limit", c.ID, g.cfg.FeaturesTimeout))
		return
	}
	writeProblem(w, r, http.StatusServiceUnavailable, "the database is unavailable; retry later")
}

// oneFeature keeps the one feature of an item request.
type oneFeature struct {
	buf   []byte
	found bool
}

func (o *oneFeature) Begin() error { return nil }

func (o *oneFeature) Feature(id, geometry, properties []byte) error {
	o.found = true
	o.buf = append(o.buf, `{"type":"Feature","id":`...)
	o.buf = appendJSONString(o.buf, id)
	o.buf = append(o.buf, `,"geometry":`...)
	if geometry == nil {
		o.buf = append(o.buf, "null"...)
	} else {
		o.buf = append(o.buf, geometry...)
	}
	o.buf = append(o.buf, `,"properties":`...)
	o.buf = append(o.buf, properties...)
	return nil
}

func (g *Gateway) serveOGCItem(w http.ResponseWriter, r *http.Request) {
	who, ok := g.ogcStart(w, r, []string{"zoom", "max-allowable-offset", "crs"})
	if !ok {
		return
	}
	c, ok := ogcCollectionOf(w, r)
	if !ok || !ogcReadsKinds(w, r, who, c) {
		return
	}
	fid := r.PathValue("featureId")
	keys, window, ok := c.ParseID(fid)
	if !ok {
		writeProblem(w, r, http.StatusNotFound, fmt.Sprintf("featureId %q: %s has no such feature", truncate(fid, 64), c.ID))
		return
	}
	fq, err := parseItemsQuery(c, r.URL.Query())
	if err != nil {
		writeProblem(w, r, http.StatusBadRequest, err.Error())
		return
	}
	fq.IDKeys, fq.Limit, fq.Count = keys, 1, false
	if window != "" {
		fq.Window = window
	}
	if c.TimeMode == pgread.TimeValidity {
		fq.At, fq.Window = nil, "" // the current version, or the past one the id names
		if at := pgread.UnitVersionAt(window); !at.IsZero() {
			fq.At = &at
		}
	}
	if !g.ogcScoped(w, r, who, c, &fq) {
		return
	}
	one := &oneFeature{}
	if _, err := pgread.New(g.readPool).Features(r.Context(), fq, g.cfg.FeaturesTimeout, one); err != nil {
		// Nothing is written before the whole feature is read: always a problem document.
		if r.Context().Err() == nil && !refusedValue(w, r, err) {
			g.log.Error("querying an OGC item", "collection", c.ID, "err", err)
			writeProblem(w, r, http.StatusServiceUnavailable, "the database is unavailable; retry later")
		}
		return
	}
	if !one.found { // out of scope looks like absent: ids are not probed
		writeProblem(w, r, http.StatusNotFound, fmt.Sprintf("featureId %q: %s has no such feature", truncate(fid, 64), c.ID))
		return
	}
	root := ogcRoot(r)
	links := []ogcLink{
		{Rel: "self", Type: "application/geo+json", Href: root + "/collections/" + c.ID + "/items/" + url.PathEscape(fid)},
		{Rel: "collection", Type: "application/json", Href: root + "/collections/" + c.ID},
	}
	lb, _ := json.Marshal(links)
	one.buf = append(one.buf, `,"links":`...)
	one.buf = append(one.buf, lb...)
	one.buf = append(one.buf, "}\n"...)
	w.Header().Set("Content-Type", "application/geo+json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(one.buf)
}

// isQueryCanceled reports whether err is PostgreSQL's query_canceled
// (57014): the statement ran past its statement_timeout.
func isQueryCanceled(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "57014"
}

// alternate is the other media type of an items page.
func alternate(ct string) string {
	if ct == "application/json" {
		return "application/geo+json"
	}
	return "application/json"
}

// alternateF is the f= of the alternate ("" for GeoJSON, the default).
func alternateF(ct string) string {
	if ct == "application/json" {
		return ""
	}
	return "json"
}
