// Package edge owns what an edge node of a lower-level IOC needs apart from
// the ingest it runs: the catalogue of its units and sources that the hub
// exports for it (catalog.go), its NATS server, a leaf node of the hub with
// its own JetStream domain and stream FEEDS (node.go), and the watch that
// counts the items leaving that FEEDS before the hub copied them
// (unsent.go) and keeps that count for the hub to read (status.go).
// docs/edge.md tells the whole story; cmd/iochub/edge.go wires
// it to the ingest.
package edge

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/geojson"

	"github.com/iochub/iochub/internal/geomcheck"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/units"
)

// CatalogFormat names the version of the catalogue file.
const CatalogFormat = "iochub-edge-catalog/1"

// MaxCatalogBytes bounds a catalogue file read by ReadCatalog: a province
// with its wards is a few MiB of boundaries.
const MaxCatalogBytes = 256 << 20

// ErrCatalog is wrapped by every error of a catalogue that cannot be used.
var ErrCatalog = errors.New("invalid edge catalogue")

// ErrUnknownUnit is returned by Export for a unit the hub does not know.
var ErrUnknownUnit = errors.New("no such unit")

// Source is a feed source the edge accepts: bound to its unit or one below,
// known by the SHA-256 of its token (the token itself never leaves the hub).
type Source struct {
	ID          string
	Unit        string
	TokenSHA256 [32]byte
}

// Catalog is what an edge node knows of the hub: the units it may place
// items in (its unit and those below, every version) with their ancestors
// (for the province of an item), and the sources bound to its unit or below.
type Catalog struct {
	// Unit is the edge's unit.
	Unit       string
	ExportedAt time.Time
	Units      []units.Unit
	Sources    []Source
}

// Export builds the catalogue of the edge of unit from the hub's PostGIS:
// every version of unit and of the units below it, the versions of its
// ancestors, and the enabled sources bound to unit or below.
func Export(ctx context.Context, q schema.Querier, unit string, now time.Time) (Catalog, error) {
	if _, err := natsx.EdgeDomain(unit); err != nil {
		return Catalog{}, err
	}
	all, err := schema.LoadUnitVersions(ctx, q)
	if err != nil {
		return Catalog{}, err
	}
	rows, err := schema.LoadSources(ctx, q)
	if err != nil {
		return Catalog{}, err
	}
	below := subtree(all, unit)
	if !below[unit] {
		return Catalog{}, fmt.Errorf("exporting the catalogue of unit %s: %w", unit, ErrUnknownUnit)
	}
	keep := units.ParentsOf(all).Up(unit) // unit and its ancestors, in any version
	for c := range below {
		keep[c] = true
	}
	c := Catalog{Unit: unit, ExportedAt: now.UTC()}
	for _, u := range all {
		if keep[u.Code] {
			c.Units = append(c.Units, u)
		}
	}
	for _, r := range rows {
		if !below[r.Unit] || len(r.TokenSHA256) != 32 {
			continue
		}
		s := Source{ID: r.ID, Unit: r.Unit}
		copy(s.TokenSHA256[:], r.TokenSHA256)
		c.Sources = append(c.Sources, s)
	}
	return c, nil
}

// subtree is the set of unit and the codes below it, in any version: one
// pass to index the children, one walk down from unit (linear in all, in
// whatever order the units come).
func subtree(all []units.Unit, unit string) map[string]bool {
	in := map[string]bool{}
	children := map[string][]string{}
	for _, u := range all {
		if u.Code == unit {
			in[unit] = true
		}
		if u.ParentCode != "" {
			children[u.ParentCode] = append(children[u.ParentCode], u.Code)
		}
	}
	if !in[unit] {
		return in
	}
	todo := slices.Clone(children[unit])
	for len(todo) > 0 {
		c := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if in[c] {
			continue
		}
		in[c] = true
		todo = append(todo, children[c]...)
	}
	return in
}

// SubjectFilters are the only feed subjects an item of the edge of c can
// have, and so the subject filters through which the hub's FEEDS sources the
// edge (natsx.AddEdgeSource): an edge cannot write items of units not its
// own. An edge of a province has one, the province's; any other edge one per
// unit at or below its own and per province that a version of the catalogue
// puts that unit in. They come sorted.
func SubjectFilters(c Catalog) []string {
	levels := map[string]map[string]bool{}
	for _, u := range c.Units {
		if levels[u.Code] == nil {
			levels[u.Code] = map[string]bool{}
		}
		levels[u.Code][u.Level] = true
	}
	if levels[c.Unit][units.LevelProvince] {
		return []string{subjects.FeedProvince(c.Unit)}
	}
	parents := units.ParentsOf(c.Units)
	var out []string
	for code := range subtree(c.Units, c.Unit) {
		for p := range parents.Up(code) {
			if levels[p][units.LevelProvince] {
				out = append(out, subjects.FeedUnit(p, code))
			}
		}
	}
	slices.Sort(out)
	return out
}

// Filters are the SubjectFilters of the edge of unit, from the hub's PostGIS
// (schema.LoadUnitTree: no boundary). It fails with ErrUnknownUnit for a
// unit the hub does not know.
func Filters(ctx context.Context, q schema.Querier, unit string) ([]string, error) {
	all, err := schema.LoadUnitTree(ctx, q)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(all, func(v units.Unit) bool { return v.Code == unit }) {
		return nil, fmt.Errorf("the filters of the edge of unit %s: %w", unit, ErrUnknownUnit)
	}
	return SubjectFilters(Catalog{Unit: unit, Units: all}), nil
}

// Below reports whether code is c.Unit or below it in some version of the catalogue.
func (c Catalog) Below(code string) bool { return subtree(c.Units, c.Unit)[code] }

// wire is the catalogue file: JSON, boundaries as GeoJSON MultiPolygons.
type wire struct {
	Format     string       `json:"format"`
	Unit       string       `json:"unit"`
	ExportedAt time.Time    `json:"exportedAt"`
	Units      []wireUnit   `json:"units"`
	Sources    []wireSource `json:"sources"`
}

type wireUnit struct {
	Code      string            `json:"code"`
	Level     string            `json:"level"`
	Parent    string            `json:"parent,omitempty"`
	NameVI    string            `json:"nameVi,omitempty"`
	NameEN    string            `json:"nameEn,omitempty"`
	ValidFrom *time.Time        `json:"validFrom,omitempty"`
	ValidTo   *time.Time        `json:"validTo,omitempty"`
	Boundary  *geojson.Geometry `json:"boundary,omitempty"`
}

type wireSource struct {
	ID          string `json:"id"`
	Unit        string `json:"unit"`
	TokenSHA256 string `json:"tokenSha256"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Write writes c as its file.
func (c Catalog) Write(w io.Writer) error {
	f := wire{Format: CatalogFormat, Unit: c.Unit, ExportedAt: c.ExportedAt, Units: []wireUnit{}, Sources: []wireSource{}}
	for _, u := range c.Units {
		wu := wireUnit{Code: u.Code, Level: u.Level, Parent: u.ParentCode, NameVI: u.NameVI, NameEN: u.NameEN,
			ValidFrom: timePtr(u.ValidFrom), ValidTo: timePtr(u.ValidTo)}
		if u.Boundary != nil {
			g, err := geojson.Encode(u.Boundary)
			if err != nil {
				return fmt.Errorf("encoding the boundary of %s: %w", u.Code, err)
			}
			wu.Boundary = g
		}
		f.Units = append(f.Units, wu)
	}
	for _, s := range c.Sources {
		f.Sources = append(f.Sources, wireSource{ID: s.ID, Unit: s.Unit, TokenSHA256: hex.EncodeToString(s.TokenSHA256[:])})
	}
	enc := json.NewEncoder(w)
	if err := enc.Encode(f); err != nil {
		return fmt.Errorf("writing the edge catalogue: %w", err)
	}
	return nil
}

// ReadCatalog reads a catalogue file of at most MaxCatalogBytes and checks
// it: its format, every boundary storable, every source's unit at or below
// the edge's unit with a 32-byte token hash. Errors wrap ErrCatalog.
func ReadCatalog(r io.Reader) (Catalog, error) {
	lr := &io.LimitedReader{R: r, N: MaxCatalogBytes + 1}
	var f wire
	dec := json.NewDecoder(lr)
	if err := dec.Decode(&f); err != nil {
		if lr.N <= 0 {
			return Catalog{}, fmt.Errorf("catalogue is larger than %d bytes: %w", MaxCatalogBytes, ErrCatalog)
		}
		return Catalog{}, fmt.Errorf("decoding the catalogue: %w: %w", err, ErrCatalog)
	}
	if f.Format != CatalogFormat {
		return Catalog{}, fmt.Errorf("catalogue format %q; want %q (export it again with iochub edge-export): %w", f.Format, CatalogFormat, ErrCatalog)
	}
	if _, err := natsx.EdgeDomain(f.Unit); err != nil {
		return Catalog{}, fmt.Errorf("catalogue unit: %w: %w", err, ErrCatalog)
	}
	c := Catalog{Unit: f.Unit, ExportedAt: f.ExportedAt}
	for i, wu := range f.Units {
		if wu.Code == "" {
			return Catalog{}, fmt.Errorf("units[%d] has no code: %w", i, ErrCatalog)
		}
		u := units.Unit{Code: wu.Code, Level: wu.Level, ParentCode: wu.Parent, NameVI: wu.NameVI, NameEN: wu.NameEN}
		if wu.ValidFrom != nil {
			u.ValidFrom = *wu.ValidFrom
		}
		if wu.ValidTo != nil {
			u.ValidTo = *wu.ValidTo
		}
		if wu.Boundary != nil {
			mp, err := boundary(wu.Boundary)
			if err != nil {
				return Catalog{}, fmt.Errorf("units[%d] (%s) boundary: %w: %w", i, wu.Code, err, ErrCatalog)
			}
			u.Boundary = mp
		}
		c.Units = append(c.Units, u)
	}
	below := subtree(c.Units, c.Unit)
	if !below[c.Unit] {
		return Catalog{}, fmt.Errorf("catalogue of unit %s does not hold that unit: %w", c.Unit, ErrCatalog)
	}
	seen := map[[32]byte]bool{}
	for i, ws := range f.Sources {
		if ws.ID == "" {
			return Catalog{}, fmt.Errorf("sources[%d] has no id: %w", i, ErrCatalog)
		}
		if !below[ws.Unit] {
			return Catalog{}, fmt.Errorf("sources[%d] (%s) is bound to unit %q, not %s or below it: %w", i, ws.ID, ws.Unit, c.Unit, ErrCatalog)
		}
		h, err := hex.DecodeString(ws.TokenSHA256)
		if err != nil || len(h) != 32 {
			return Catalog{}, fmt.Errorf("sources[%d] (%s) tokenSha256 is not 64 hex digits: %w", i, ws.ID, ErrCatalog)
		}
		s := Source{ID: ws.ID, Unit: ws.Unit}
		copy(s.TokenSHA256[:], h)
		if seen[s.TokenSHA256] {
			return Catalog{}, fmt.Errorf("sources[%d] (%s) repeats another source's token: %w", i, ws.ID, ErrCatalog)
		}
		seen[s.TokenSHA256] = true
		c.Sources = append(c.Sources, s)
	}
	return c, nil
}

// boundary decodes a GeoJSON Polygon or MultiPolygon the store would take.
func boundary(g *geojson.Geometry) (*geom.MultiPolygon, error) {
	t, err := g.Decode()
	if err != nil {
		return nil, err
	}
	var mp *geom.MultiPolygon
	switch v := t.(type) {
	case *geom.MultiPolygon:
		mp = v
	case *geom.Polygon:
		mp = geom.NewMultiPolygon(geom.XY)
		if err := mp.Push(v); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("a %T is not a Polygon or MultiPolygon", t)
	}
	if mp.Layout() != geom.XY {
		return nil, errors.New("coordinates must be lon,lat pairs")
	}
	if err := geomcheck.Storable(mp); err != nil {
		return nil, err
	}
	return mp, nil
}
