package postgis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/geojson"
	"github.com/twpayne/go-geom/encoding/wkb"
)

// ErrInvalidUnits is returned (wrapped, with the feature's index and code)
// when a units file is not a GeoJSON FeatureCollection of polygonal units.
var ErrInvalidUnits = errors.New("invalid units file")

// ErrUnitVersion is returned when an import would start a unit's new version
// at or before the start of its current one.
var ErrUnitVersion = errors.New("unit version conflict")

// Unit levels, as in admin_unit.level.
const (
	LevelNational = "national"
	LevelProvince = "province"
	LevelDistrict = "district"
	LevelCommune  = "commune"
	LevelCustom   = "custom"
)

// DefaultUnitsValidFrom is when the 2025 map took effect: 1 July 2025 in Vietnam.
var DefaultUnitsValidFrom = time.Date(2025, 7, 1, 0, 0, 0, 0, time.FixedZone("ICT", 7*3600))

// ImportOptions steers ImportUnits; every zero value has a default.
type ImportOptions struct {
	// Level of every unit in the file; empty means by the length of the code:
	// 2 digits a province, 5 a commune.
	Level string
	// Parent code of every unit in the file; empty means none for provinces
	// and, for communes, the current province containing the commune.
	Parent string
	// ValidFrom starts the imported versions; zero means DefaultUnitsValidFrom.
	ValidFrom time.Time
	// Progress, if set, is called as features are read with the number read
	// so far and total -1, then once more with done = total when all are read.
	Progress func(done, total int)
}

// ImportResult counts what ImportUnits did.
type ImportResult struct {
	// Read is the number of features in the file.
	Read int
	// Inserted is the number of new versions opened (new or changed units).
	Inserted int
	// Unchanged is the number of units identical to their current version.
	Unchanged int
	// Closed is the number of current versions closed by a change.
	Closed int
	// Repaired lists the codes whose invalid boundary ST_MakeValid repaired.
	Repaired []string
}

// ImportUnits loads a GeoJSON FeatureCollection of administrative units into
// admin_unit, versioning them: a unit identical to its current version (same
// level, parent, names and boundary) is left alone, a changed one has its
// current version closed at opts.ValidFrom and a new one opened. Feature
// properties: code (required), name, nameEn, fullName, fullNameEn.
//
// Features are decoded one at a time and streamed by COPY into a staging
// table; the rest is set-based SQL, all in one transaction, so a bad file
// writes nothing. Errors about the file wrap ErrInvalidUnits and name the
// feature as features[i] with its code.
func ImportUnits(ctx context.Context, pool *pgxpool.Pool, r io.Reader, opts ImportOptions) (ImportResult, error) {
	var res ImportResult
	if opts.Level != "" && !validLevel(opts.Level) {
		return res, fmt.Errorf("importing units: level %q is not one of national, province, district, commune, custom", opts.Level)
	}
	if opts.ValidFrom.IsZero() {
		opts.ValidFrom = DefaultUnitsValidFrom
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("importing units: beginning transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	if _, err := tx.Exec(ctx, sqlUnitStageCreate); err != nil {
		return res, fmt.Errorf("importing units: creating staging table: %w", err)
	}
	src := &unitSource{r: NewUnitReader(r, opts), progress: opts.Progress}
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"unit_stage"}, unitStageColumns, src)
	if src.err != nil {
		return res, fmt.Errorf("importing units: %w", src.err)
	}
	if err != nil {
		return res, fmt.Errorf("importing units: copying features: %w", err)
	}
	if int(n) != src.r.Read() {
		return res, fmt.Errorf("importing units: COPY stored %d of %d features: %w", n, src.r.Read(), ErrShortCopy)
	}
	res.Read = src.r.Read()
	if opts.Progress != nil {
		opts.Progress(res.Read, res.Read)
	}

	if err := unitPrepare(ctx, tx, &res); err != nil {
		return res, fmt.Errorf("importing units: %w", err)
	}
	// Units above communes first, so communes find their current province.
	if err := unitVersion(ctx, tx, opts.ValidFrom, false, &res); err != nil {
		return res, fmt.Errorf("importing units: %w", err)
	}
	var idx int
	var code, parent string
	switch err := tx.QueryRow(ctx, sqlUnitStageUnknownParent).Scan(&idx, &code, &parent); {
	case err == nil:
		return res, fmt.Errorf("importing units: features[%d] (code %s): parent %s is not a current unit: %w",
			idx, code, parent, ErrInvalidUnits)
	case !errors.Is(err, pgx.ErrNoRows):
		return res, fmt.Errorf("importing units: checking parents: %w", err)
	}
	if _, err := tx.Exec(ctx, sqlUnitStageSetParents); err != nil {
		return res, fmt.Errorf("importing units: finding parents of communes: %w", err)
	}
	switch err := tx.QueryRow(ctx, sqlUnitStageOrphan).Scan(&idx, &code); {
	case err == nil:
		return res, fmt.Errorf("importing units: features[%d] (code %s): no current province contains this commune; import the provinces first or set the parent: %w",
			idx, code, ErrInvalidUnits)
	case !errors.Is(err, pgx.ErrNoRows):
		return res, fmt.Errorf("importing units: checking parents: %w", err)
	}
	if err := unitVersion(ctx, tx, opts.ValidFrom, true, &res); err != nil {
		return res, fmt.Errorf("importing units: %w", err)
	}
	if err := tx.QueryRow(ctx, sqlUnitCountUnchanged).Scan(&res.Unchanged); err != nil {
		return res, fmt.Errorf("importing units: counting unchanged units: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("importing units: committing: %w", err)
	}
	return res, nil
}

// unitPrepare builds the staged boundaries and repairs the invalid ones.
func unitPrepare(ctx context.Context, tx pgx.Tx, res *ImportResult) error {
	if _, err := tx.Exec(ctx, sqlUnitStageSetBoundary); err != nil {
		return fmt.Errorf("decoding boundaries: %w", err)
	}
	rows, err := tx.Query(ctx, sqlUnitStageRepair)
	if err != nil {
		return fmt.Errorf("repairing boundaries: %w", err)
	}
	for rows.Next() {
		var idx int
		var code string
		if err := rows.Scan(&idx, &code); err != nil {
			rows.Close()
			return fmt.Errorf("repairing boundaries: %w", err)
		}
		res.Repaired = append(res.Repaired, code)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("repairing boundaries: %w", err)
	}
	slices.Sort(res.Repaired)
	var idx int
	var code string
	switch err := tx.QueryRow(ctx, sqlUnitStageUnrepairable).Scan(&idx, &code); {
	case err == nil:
		return fmt.Errorf("features[%d] (code %s): the boundary is invalid and ST_MakeValid leaves no polygon: %w",
			idx, code, ErrInvalidUnits)
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("checking repaired boundaries: %w", err)
	}
	return nil
}

// unitVersion applies the staged units of one phase: communes or the others.
func unitVersion(ctx context.Context, tx pgx.Tx, validFrom time.Time, communes bool, res *ImportResult) error {
	if _, err := tx.Exec(ctx, sqlUnitMarkUnchanged, communes); err != nil {
		return fmt.Errorf("comparing with current units: %w", err)
	}
	var idx int
	var code string
	var current time.Time
	switch err := tx.QueryRow(ctx, sqlUnitTooOld, validFrom, communes).Scan(&idx, &code, &current); {
	case err == nil:
		return fmt.Errorf("features[%d] (code %s): the current version is valid from %s; a change must start later than that, not at %s: %w",
			idx, code, current.Format(time.RFC3339), validFrom.Format(time.RFC3339), ErrUnitVersion)
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("checking versions: %w", err)
	}
	tag, err := tx.Exec(ctx, sqlUnitClose, validFrom, communes)
	if err != nil {
		return fmt.Errorf("closing changed units: %w", err)
	}
	res.Closed += int(tag.RowsAffected())
	tag, err = tx.Exec(ctx, sqlUnitInsert, validFrom, communes)
	if err != nil {
		return fmt.Errorf("inserting units: %w", err)
	}
	res.Inserted += int(tag.RowsAffected())
	return nil
}

func validLevel(l string) bool {
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

// UnitRecord is one checked feature of a units file.
type UnitRecord struct {
	// Index of the feature in the file's features array.
	Index int
	// Code, Level and Parent (empty when to be found) of the unit.
	Code, Level, Parent string
	// Names from the properties name, nameEn, fullName, fullNameEn.
	Name, NameEn, FullName, FullNameEn string
	// Boundary in lon/lat; a Polygon is promoted to a MultiPolygon.
	Boundary *geom.MultiPolygon
}

// UnitReader decodes a GeoJSON FeatureCollection of units one feature at a
// time, so a large file never sits whole in memory. It checks what can be
// checked without a database; ImportUnits uses it.
type UnitReader struct {
	dec   *json.Decoder
	opts  ImportOptions
	seen  map[string]int
	state int // 0 before the features array, 1 inside it, 2 after it
	read  int
	err   error
}

// NewUnitReader reads units from r; opts.Level and opts.Parent apply as in ImportUnits.
func NewUnitReader(r io.Reader, opts ImportOptions) *UnitReader {
	return &UnitReader{dec: json.NewDecoder(r), opts: opts, seen: map[string]int{}}
}

// Next returns the next feature, io.EOF after the last one, or an error
// wrapping ErrInvalidUnits that names the feature. After an error it returns
// the same error again.
func (u *UnitReader) Next() (UnitRecord, error) {
	if u.err != nil {
		return UnitRecord{}, u.err
	}
	rec, err := u.next()
	if err != nil {
		u.err = err
	}
	return rec, err
}

// Read is the number of features returned so far.
func (u *UnitReader) Read() int { return u.read }

func (u *UnitReader) next() (UnitRecord, error) {
	if u.state == 0 {
		if err := u.openFeatures(); err != nil {
			return UnitRecord{}, err
		}
	}
	if u.state == 2 {
		return UnitRecord{}, io.EOF
	}
	if !u.dec.More() {
		if _, err := u.dec.Token(); err != nil { // the closing ]
			return UnitRecord{}, jsonErr(u.dec, "reading the end of features", err)
		}
		u.state = 2
		if err := u.finish(); err != nil {
			return UnitRecord{}, err
		}
		if u.read == 0 {
			return UnitRecord{}, fmt.Errorf("the FeatureCollection has no features: %w", ErrInvalidUnits)
		}
		return UnitRecord{}, io.EOF
	}
	var f unitFeature
	if err := u.dec.Decode(&f); err != nil {
		return UnitRecord{}, jsonErr(u.dec, fmt.Sprintf("features[%d]", u.read), err)
	}
	rec, err := u.record(u.read, &f)
	if err != nil {
		return UnitRecord{}, err
	}
	u.read++
	return rec, nil
}

// unitSource feeds CopyFrom from a UnitReader. Its err is about the file;
// CopyFrom aborts the COPY when it is set.
type unitSource struct {
	r        *UnitReader
	progress func(done, total int)
	row      []any
	err      error
}

func (s *unitSource) Next() bool {
	rec, err := s.r.Next()
	if errors.Is(err, io.EOF) {
		return false
	}
	if err != nil {
		s.err = err
		return false
	}
	b, err := wkb.Marshal(rec.Boundary, wkb.NDR)
	if err != nil {
		s.err = fmt.Errorf("features[%d] (code %s): encoding the geometry: %w: %w", rec.Index, rec.Code, err, ErrInvalidUnits)
		return false
	}
	var parent any
	if rec.Parent != "" {
		parent = rec.Parent
	}
	s.row = []any{rec.Index, rec.Code, rec.Level, parent, rec.Name, rec.NameEn, rec.FullName, rec.FullNameEn, b}
	if s.progress != nil {
		s.progress(s.r.Read(), -1)
	}
	return true
}

func (s *unitSource) Values() ([]any, error) { return s.row, nil }

func (s *unitSource) Err() error { return s.err }

// openFeatures reads the top-level object up to the opening [ of "features".
func (s *UnitReader) openFeatures() error {
	tok, err := s.dec.Token()
	if err != nil {
		return jsonErr(s.dec, "reading the FeatureCollection", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("want a GeoJSON FeatureCollection object, got %v: %w", tok, ErrInvalidUnits)
	}
	for s.dec.More() {
		tok, err := s.dec.Token()
		if err != nil {
			return jsonErr(s.dec, "reading the FeatureCollection", err)
		}
		key, _ := tok.(string)
		switch key {
		case "type":
			var typ string
			if err := s.dec.Decode(&typ); err != nil {
				return jsonErr(s.dec, "reading type", err)
			}
			if typ != "FeatureCollection" {
				return fmt.Errorf("type is %q; want FeatureCollection: %w", typ, ErrInvalidUnits)
			}
		case "features":
			tok, err := s.dec.Token()
			if err != nil {
				return jsonErr(s.dec, "reading features", err)
			}
			if d, ok := tok.(json.Delim); !ok || d != '[' {
				return fmt.Errorf("features is not an array: %w", ErrInvalidUnits)
			}
			s.state = 1
			return nil
		default:
			var skip json.RawMessage
			if err := s.dec.Decode(&skip); err != nil {
				return jsonErr(s.dec, "reading "+key, err)
			}
		}
	}
	return fmt.Errorf("the FeatureCollection has no features array: %w", ErrInvalidUnits)
}

// finish reads what follows the features array, checking the object is well formed.
func (s *UnitReader) finish() error {
	for s.dec.More() {
		tok, err := s.dec.Token()
		if err != nil {
			return jsonErr(s.dec, "reading the FeatureCollection", err)
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := s.dec.Decode(&v); err != nil {
			return jsonErr(s.dec, "reading "+key, err)
		}
		if key == "type" && string(v) != `"FeatureCollection"` {
			return fmt.Errorf("type is %s; want FeatureCollection: %w", v, ErrInvalidUnits)
		}
	}
	if _, err := s.dec.Token(); err != nil { // the closing }
		return jsonErr(s.dec, "reading the end of the FeatureCollection", err)
	}
	return nil
}

// record checks one feature.
func (s *UnitReader) record(i int, f *unitFeature) (UnitRecord, error) {
	bad := func(code, format string, args ...any) error {
		where := fmt.Sprintf("features[%d]", i)
		if code != "" {
			where += " (code " + code + ")"
		}
		return fmt.Errorf("%s: %s: %w", where, fmt.Sprintf(format, args...), ErrInvalidUnits)
	}
	if f.Type != "Feature" {
		return UnitRecord{}, bad("", "type is %q; want Feature", f.Type)
	}
	if f.Properties.Code == nil || strings.TrimSpace(*f.Properties.Code) == "" {
		return UnitRecord{}, bad("", "properties.code is missing")
	}
	code := *f.Properties.Code
	if strings.ContainsAny(code, " \t\r\n") {
		return UnitRecord{}, bad(code, "the code contains white space")
	}
	if prev, dup := s.seen[code]; dup {
		return UnitRecord{}, bad(code, "the code is already used by features[%d]", prev)
	}
	s.seen[code] = i
	level := s.opts.Level
	if level != "" && !validLevel(level) {
		return UnitRecord{}, bad(code, "level %q is not one of national, province, district, commune, custom", level)
	}
	if level == "" {
		switch len(code) {
		case 2:
			level = LevelProvince
		case 5:
			level = LevelCommune
		default:
			return UnitRecord{}, bad(code, "cannot tell the level from a code of %d characters (2 = province, 5 = commune); set the level", len(code))
		}
	}
	if f.Geometry == nil {
		return UnitRecord{}, bad(code, "the geometry is missing")
	}
	g, err := f.Geometry.Decode()
	if err != nil {
		return UnitRecord{}, bad(code, "decoding the %s geometry: %v", f.Geometry.Type, err)
	}
	var mp *geom.MultiPolygon
	switch g := g.(type) {
	case *geom.MultiPolygon:
		mp = g
	case *geom.Polygon:
		mp = geom.NewMultiPolygon(g.Layout())
		if err := mp.Push(g); err != nil {
			return UnitRecord{}, bad(code, "promoting the Polygon: %v", err)
		}
	default:
		return UnitRecord{}, bad(code, "the geometry is a %s; want Polygon or MultiPolygon", f.Geometry.Type)
	}
	if mp.Empty() {
		return UnitRecord{}, bad(code, "the geometry is empty")
	}
	if err := checkRings(mp); err != nil {
		return UnitRecord{}, bad(code, "%v", err)
	}
	if err := checkLonLat(mp); err != nil {
		return UnitRecord{}, bad(code, "%v", err)
	}
	p := f.Properties
	return UnitRecord{
		Index: i, Code: code, Level: level, Parent: s.opts.Parent,
		Name: p.Name, NameEn: p.NameEn, FullName: p.FullName, FullNameEn: p.FullNameEn,
		Boundary: mp,
	}, nil
}

// checkRings rejects rings that are too short or not closed, which PostGIS
// would refuse with an error naming no feature.
func checkRings(g *geom.MultiPolygon) error {
	for i := range g.NumPolygons() {
		p := g.Polygon(i)
		if p.NumLinearRings() == 0 {
			return fmt.Errorf("polygon %d has no rings", i)
		}
		for j := range p.NumLinearRings() {
			r := p.LinearRing(j)
			n := r.NumCoords()
			if n < 4 {
				return fmt.Errorf("polygon %d ring %d has %d positions; a ring needs at least 4", i, j, n)
			}
			if !r.Coord(0).Equal(r.Layout(), r.Coord(n-1)) {
				return fmt.Errorf("polygon %d ring %d is not closed (its first and last positions differ)", i, j)
			}
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
		if lon < -180 || lon > 180 || lat < -90 || lat > 90 || lon != lon || lat != lat {
			return fmt.Errorf("coordinate [%v, %v] is not a longitude and latitude in degrees (RFC 7946 wants WGS 84)", lon, lat)
		}
	}
	return nil
}

// jsonErr says what was being read and where the JSON went wrong.
func jsonErr(dec *json.Decoder, what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s: the file ends early: %w", what, ErrInvalidUnits)
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Errorf("%s: not valid JSON at byte %d: %w: %w", what, syn.Offset, syn, ErrInvalidUnits)
	}
	return fmt.Errorf("%s: %w (near byte %d): %w", what, err, dec.InputOffset(), ErrInvalidUnits)
}
