package units

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/geojson"

	"github.com/iochub/iochub/internal/feedcheck"
	"github.com/iochub/iochub/internal/geomcheck"
)

// ValidLevel reports whether l is one of the Level constants.
func ValidLevel(l string) bool {
	switch l {
	case LevelNational, LevelProvince, LevelDistrict, LevelCommune, LevelCustom:
		return true
	}
	return false
}

// unitFeature is one GeoJSON Feature of a units file.
type unitFeature struct {
	Type       string            `json:"type"`
	Geometry   *geojson.Geometry `json:"geometry"`
	Properties struct {
		Code       *string `json:"code"`
		Name       string  `json:"name"`
		NameEn     string  `json:"nameEn"`
		FullName   string  `json:"fullName"`
		FullNameEn string  `json:"fullNameEn"`
	} `json:"properties"`
}

// Record is one checked feature of a units file.
type Record struct {
	// Index of the feature in the file's features array.
	Index int
	// Code, Level and Parent (empty when to be found) of the unit.
	Code, Level, Parent string
	// Names from the properties name, nameEn, fullName, fullNameEn.
	Name, NameEn, FullName, FullNameEn string
	// Boundary in lon/lat; a Polygon is promoted to a MultiPolygon.
	Boundary *geom.MultiPolygon
}

// ReadOptions say what the features of a units file are.
type ReadOptions struct {
	// Level of every unit in the file; empty means by the length of the code:
	// 2 digits a province, 5 a commune.
	Level string
	// Parent code of every unit in the file; empty leaves Record.Parent
	// empty (the importer then finds the parent of a commune).
	Parent string
}

// Reader decodes a GeoJSON FeatureCollection of units one feature at a time,
// so a large file never sits whole in memory. It checks what can be checked
// without a database: the shape of the file, a code per feature, unique codes,
// Polygon or MultiPolygon boundaries with closed rings in longitude and
// latitude. Both the database import (internal/schema.ImportUnits) and
// FromGeoJSON read units files with it.
type Reader struct {
	dec   *json.Decoder
	in    *budgetReader
	opts  ReadOptions
	seen  map[string]int
	state int // 0 before the features array, 1 inside it, 2 after it
	read  int
	err   error
}

// Bounds of a units file, beyond its size (the gateway takes maps of at
// most natsx.UnitImportMaxBytes). A value is decoded whole, so one feature
// (or any other member of the FeatureCollection) is bounded in bytes before
// it is decoded: the memory of a read is a few times MaxFeatureBytes, not
// the file's size. The real maps hold 34–126 features of at most 11,680
// vertices (../shared/data/boundaries); a commune map of the whole country
// before 2025 held some 10,600.
const (
	// MaxFeatureBytes bounds the JSON text of one feature.
	MaxFeatureBytes = 32 << 20
	// MaxFeatureVertices bounds the positions of one unit's boundary.
	MaxFeatureVertices = 1_000_000
	// MaxFeatures bounds the features of one file.
	MaxFeatures = 100_000
)

// NewReader reads units from r.
func NewReader(r io.Reader, opts ReadOptions) *Reader {
	in := &budgetReader{r: r, limit: MaxFeatureBytes}
	return &Reader{dec: json.NewDecoder(in), in: in, opts: opts, seen: map[string]int{}}
}

// errValueTooLarge is what budgetReader returns past its limit.
var errValueTooLarge = errors.New("too large")

// budgetReader reads from r until limit bytes were read in all, then fails
// with errValueTooLarge.
type budgetReader struct {
	r           io.Reader
	read, limit int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.read >= b.limit {
		return 0, errValueTooLarge
	}
	p = p[:min(int64(len(p)), b.limit-b.read)]
	n, err := b.r.Read(p)
	b.read += int64(n)
	return n, err
}

// arm lets the decoder read MaxFeatureBytes beyond where it stands (it may
// hold some of them already): the next token or value may be that long.
func (u *Reader) arm() { u.in.limit = u.dec.InputOffset() + MaxFeatureBytes }

// decode decodes the next value into v; what names it in errors.
func (u *Reader) decode(v any, what string) error {
	u.arm()
	if err := u.dec.Decode(v); err != nil {
		return u.jsonErr(what, err)
	}
	return nil
}

// token reads the next token; what names it in errors.
func (u *Reader) token(what string) (json.Token, error) {
	u.arm()
	tok, err := u.dec.Token()
	if err != nil {
		return nil, u.jsonErr(what, err)
	}
	return tok, nil
}

// Next returns the next feature, io.EOF after the last one, or an error
// wrapping ErrInvalidUnits that names the feature. After an error it returns
// the same error again.
func (u *Reader) Next() (Record, error) {
	if u.err != nil {
		return Record{}, u.err
	}
	rec, err := u.next()
	if err != nil {
		u.err = err
	}
	return rec, err
}

// Read is the number of features returned so far.
func (u *Reader) Read() int { return u.read }

func (u *Reader) next() (Record, error) {
	if u.state == 0 {
		if err := u.openFeatures(); err != nil {
			return Record{}, err
		}
	}
	if u.state == 2 {
		return Record{}, io.EOF
	}
	if !u.dec.More() {
		if _, err := u.token("reading the end of features"); err != nil { // the closing ]
			return Record{}, err
		}
		u.state = 2
		if err := u.finish(); err != nil {
			return Record{}, err
		}
		if u.read == 0 {
			return Record{}, fmt.Errorf("the FeatureCollection has no features: %w", ErrInvalidUnits)
		}
		return Record{}, io.EOF
	}
	if u.read == MaxFeatures {
		return Record{}, fmt.Errorf("features: more than %d: %w", MaxFeatures, ErrInvalidUnits)
	}
	var f unitFeature
	if err := u.decode(&f, fmt.Sprintf("features[%d]", u.read)); err != nil {
		return Record{}, err
	}
	rec, err := u.record(u.read, &f)
	if err != nil {
		return Record{}, err
	}
	u.read++
	return rec, nil
}

// openFeatures reads the top-level object up to the opening [ of "features".
func (u *Reader) openFeatures() error {
	tok, err := u.token("reading the FeatureCollection")
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("want a GeoJSON FeatureCollection object, got %v: %w", tok, ErrInvalidUnits)
	}
	for u.dec.More() {
		tok, err := u.token("reading the FeatureCollection")
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		switch key {
		case "type":
			var typ string
			if err := u.decode(&typ, "reading type"); err != nil {
				return err
			}
			if typ != "FeatureCollection" {
				return fmt.Errorf("type is %q; want FeatureCollection: %w", typ, ErrInvalidUnits)
			}
		case "features":
			tok, err := u.token("reading features")
			if err != nil {
				return err
			}
			if d, ok := tok.(json.Delim); !ok || d != '[' {
				return fmt.Errorf("features is not an array: %w", ErrInvalidUnits)
			}
			u.state = 1
			return nil
		default:
			var skip json.RawMessage
			if err := u.decode(&skip, "reading "+key); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("the FeatureCollection has no features array: %w", ErrInvalidUnits)
}

// finish reads what follows the features array, checking the object is well formed.
func (u *Reader) finish() error {
	for u.dec.More() {
		tok, err := u.token("reading the FeatureCollection")
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := u.decode(&v, "reading "+key); err != nil {
			return err
		}
		if key == "type" && string(v) != `"FeatureCollection"` {
			return fmt.Errorf("type is %s; want FeatureCollection: %w", v, ErrInvalidUnits)
		}
	}
	if _, err := u.token("reading the end of the FeatureCollection"); err != nil { // the closing }
		return err
	}
	return nil
}

// maxNameBytes bounds a unit's code and each of its names.
const maxNameBytes = 512

// record checks one feature.
func (u *Reader) record(i int, f *unitFeature) (Record, error) {
	bad := func(code, format string, args ...any) error {
		where := fmt.Sprintf("features[%d]", i)
		if code != "" {
			where += " (code " + code + ")"
		}
		return fmt.Errorf("%s: %s: %w", where, fmt.Sprintf(format, args...), ErrInvalidUnits)
	}
	if f.Type != "Feature" {
		return Record{}, bad("", "type is %q; want Feature", f.Type)
	}
	if f.Properties.Code == nil || strings.TrimSpace(*f.Properties.Code) == "" {
		return Record{}, bad("", "properties.code is missing")
	}
	code := *f.Properties.Code
	if strings.ContainsAny(code, " \t\r\n") {
		return Record{}, bad(code, "the code contains white space")
	}
	if prev, dup := u.seen[code]; dup {
		return Record{}, bad(code, "the code is already used by features[%d]", prev)
	}
	u.seen[code] = i
	level := u.opts.Level
	if level != "" && !ValidLevel(level) {
		return Record{}, bad(code, "level %q is not one of national, province, district, commune, custom", level)
	}
	if level == "" {
		switch len(code) {
		case 2:
			level = LevelProvince
		case 5:
			level = LevelCommune
		default:
			return Record{}, bad(code, "cannot tell the level from a code of %d characters (2 = province, 5 = commune); set the level", len(code))
		}
	}
	if f.Geometry == nil {
		return Record{}, bad(code, "the geometry is missing")
	}
	g, err := f.Geometry.Decode()
	if err != nil {
		return Record{}, bad(code, "decoding the %s geometry: %v", f.Geometry.Type, err)
	}
	var mp *geom.MultiPolygon
	switch g := g.(type) {
	case *geom.MultiPolygon:
		mp = g
	case *geom.Polygon:
		mp = geom.NewMultiPolygon(g.Layout())
		if err := mp.Push(g); err != nil {
			return Record{}, bad(code, "promoting the Polygon: %v", err)
		}
	default:
		return Record{}, bad(code, "the geometry is a %s; want Polygon or MultiPolygon", f.Geometry.Type)
	}
	if mp.Empty() {
		return Record{}, bad(code, "the geometry is empty")
	}
	if n := len(mp.FlatCoords()) / mp.Stride(); n > MaxFeatureVertices {
		return Record{}, bad(code, "the boundary has %d positions; at most %d", n, MaxFeatureVertices)
	}
	if err := checkRings(mp); err != nil {
		return Record{}, bad(code, "%v", err)
	}
	if err := checkLonLat(mp); err != nil {
		return Record{}, bad(code, "%v", err)
	}
	p := f.Properties
	for _, t := range [...]struct{ name, v string }{{"code", code}, {"name", p.Name}, {"nameEn", p.NameEn}, {"fullName", p.FullName}, {"fullNameEn", p.FullNameEn}} {
		if err := feedcheck.Text("properties."+t.name, t.v, maxNameBytes); err != nil {
			return Record{}, bad(code, "%v", err)
		}
	}
	return Record{
		Index: i, Code: code, Level: level, Parent: u.opts.Parent,
		Name: p.Name, NameEn: p.NameEn, FullName: p.FullName, FullNameEn: p.FullNameEn,
		Boundary: mp,
	}, nil
}

// checkRings applies geomcheck's ring rule (the one the aggregator applies
// to every geometry it stores): rings too short or not closed, which PostGIS
// would refuse with an error naming no feature.
func checkRings(g *geom.MultiPolygon) error {
	for i := range g.NumPolygons() {
		if err := geomcheck.PolygonRings(g.Polygon(i)); err != nil {
			var re *geomcheck.RingError
			if errors.As(err, &re) {
				return fmt.Errorf("polygon %d ring %d: %s", i, re.Ring, re.Reason)
			}
			return fmt.Errorf("polygon %d: %w", i, err)
		}
	}
	return nil
}

// checkLonLat rejects coordinates that cannot be WGS 84 longitude and latitude
// (a projected file, or latitude and longitude swapped beyond range).
func checkLonLat(g *geom.MultiPolygon) error {
	flat, stride := g.FlatCoords(), g.Stride()
	for i := 0; i+1 < len(flat); i += stride {
		lon, lat := flat[i], flat[i+1]
		if geomcheck.Coord(lon, lat) != nil {
			return fmt.Errorf("coordinate [%v, %v] is not a longitude and latitude in degrees (RFC 7946 wants WGS 84)", lon, lat)
		}
	}
	return nil
}

// jsonErr says what was being read and where the JSON went wrong.
func (u *Reader) jsonErr(what string, err error) error {
	dec := u.dec
	if errors.Is(err, errValueTooLarge) {
		return fmt.Errorf("%s: a value longer than %d bytes (near byte %d): %w", what, MaxFeatureBytes, dec.InputOffset(), ErrInvalidUnits)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s: the file ends early: %w", what, ErrInvalidUnits)
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Errorf("%s: not valid JSON at byte %d: %w: %w", what, syn.Offset, syn, ErrInvalidUnits)
	}
	return fmt.Errorf("%s: %w (near byte %d): %w", what, err, dec.InputOffset(), ErrInvalidUnits)
}
