package edge_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/edge"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/units"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestExportScopesToUnit: the catalogue of ward 00070 (Hoàn Kiếm) holds the
// ward, its ancestors and the sources bound to it, not the other wards nor
// their sources; it survives its file, and the units it holds place a point
// of the ward in the ward.
func TestExportScopesToUnit(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	for _, s := range []struct{ id, unit, token string }{
		{"hk", "00070", "tok-hk"}, {"bd", "00004", "tok-bd"}, {"hn", "01", "tok-hn"},
	} {
		h := sha256.Sum256([]byte(s.token))
		if _, err := db.Pool.Exec(ctx, `INSERT INTO source (id, unit_code, token_sha256) VALUES ($1, $2, $3)`, s.id, s.unit, h[:]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO source (id, unit_code, token_sha256, disabled_at) VALUES ('hk-off', '00070', $1, now())`,
		[]byte(strings.Repeat("x", 32))); err != nil {
		t.Fatal(err)
	}
	cat, err := edge.Export(ctx, db.Pool, "00070", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]bool{}
	for _, u := range cat.Units {
		codes[u.Code] = true
	}
	if !codes["00070"] || !codes["01"] || codes["00004"] {
		t.Fatalf("catalogue of 00070 holds units %v; want 00070 and its province 01, not ward 00004", codes)
	}
	if len(cat.Sources) != 1 || cat.Sources[0].ID != "hk" || cat.Sources[0].TokenSHA256 != sha256.Sum256([]byte("tok-hk")) {
		t.Fatalf("catalogue sources %+v; want hk alone (enabled, bound to 00070 or below)", cat.Sources)
	}
	var file bytes.Buffer
	if err := cat.Write(&file); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(file.String(), "tok-hk") {
		t.Fatal("the catalogue file holds a token; want its hash only")
	}
	got, err := edge.ReadCatalog(&file)
	if err != nil {
		t.Fatal(err)
	}
	if got.Unit != "00070" || len(got.Units) != len(cat.Units) || len(got.Sources) != 1 || got.Sources[0] != cat.Sources[0] {
		t.Fatalf("catalogue read back: unit %s, %d units, sources %+v; want 00070, %d units, %+v", got.Unit, len(got.Units), got.Sources, len(cat.Units), cat.Sources)
	}
	var lon, lat float64
	if err := db.Pool.QueryRow(ctx, `SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(boundary) AS p FROM admin_unit WHERE code = '00070' AND valid_to IS NULL) s`).Scan(&lon, &lat); err != nil {
		t.Fatal(err)
	}
	ix := units.NewTimeline(got.Units).Current()
	if u, ok := ix.Locate(lon, lat); !ok || u.Code != "00070" {
		t.Fatalf("a point of Hoàn Kiếm located in %+v, %t with the catalogue's units; want 00070", u.Code, ok)
	}
	if _, err := edge.Export(ctx, db.Pool, "99999", time.Now()); !errors.Is(err, edge.ErrUnknownUnit) {
		t.Fatalf("Export of an unknown unit: %v; want ErrUnknownUnit", err)
	}
}

const square = `{"type":"Polygon","coordinates":[[[105,21],[106,21],[106,22],[105,22],[105,21]]]}`

func TestReadCatalogRefuses(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	ok := `{"format":"iochub-edge-catalog/1","unit":"01","units":[{"code":"01","level":"province","boundary":` + square + `},` +
		`{"code":"00070","level":"commune","parent":"01"}],"sources":[{"id":"hk","unit":"00070","tokenSha256":"` + hash + `"}]}`
	if c, err := edge.ReadCatalog(strings.NewReader(ok)); err != nil || len(c.Sources) != 1 || !c.Below("00070") || c.Below("79") {
		t.Fatalf("a good catalogue: %+v, %v", c, err)
	}
	for _, tc := range []struct{ name, file, want string }{
		{"not JSON", `{`, "decoding"},
		{"old format", strings.Replace(ok, "catalog/1", "catalog/0", 1), "format"},
		{"bad unit", strings.Replace(ok, `"unit":"01"`, `"unit":"0.1"`, 1), "catalogue unit"},
		{"unit missing", strings.Replace(ok, `"unit":"01"`, `"unit":"02"`, 1), "does not hold"},
		{"source of another unit", strings.Replace(ok, `"unit":"00070","tokenSha256"`, `"unit":"79","tokenSha256"`, 1), "not 01 or below"},
		{"short hash", strings.Replace(ok, hash, "abcd", 1), "64 hex digits"},
		{"repeated token", strings.Replace(ok, `}]}`, `},{"id":"hk2","unit":"01","tokenSha256":"`+hash+`"}]}`, 1), "repeats"},
		{"open ring", strings.Replace(ok, "[105,22],[105,21]]", "[105,22],[105,21.5]]", 1), "boundary"},
		{"not a polygon", strings.Replace(ok, square, `{"type":"Point","coordinates":[105,21]}`, 1), "not a Polygon"},
		{"latitude out of range", strings.Replace(ok, "[106,22]", "[106,95]", 1), "boundary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := edge.ReadCatalog(strings.NewReader(tc.file))
			if !errors.Is(err, edge.ErrCatalog) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadCatalog: %v; want ErrCatalog saying %q", err, tc.want)
			}
		})
	}
}

// FuzzReadCatalog: any bytes give a catalogue that passed the checks or ErrCatalog, never a panic.
func FuzzReadCatalog(f *testing.F) {
	f.Add([]byte(`{"format":"iochub-edge-catalog/1","unit":"01","units":[{"code":"01","boundary":` + square + `}],"sources":[]}`))
	f.Add([]byte(`{"format":"iochub-edge-catalog/1","unit":"01","units":[{"code":"01","boundary":{"type":"MultiPolygon","coordinates":[[[[1,1]]]]}}]}`))
	f.Add([]byte(`{"units":[{"boundary":{"type":"Polygon","coordinates":[[[1e309,1]]]}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := edge.ReadCatalog(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, edge.ErrCatalog) {
				t.Fatalf("error %v is not ErrCatalog", err)
			}
			return
		}
		for _, s := range c.Sources {
			if !c.Below(s.Unit) {
				t.Fatalf("source %s of unit %s outside the edge's unit %s", s.ID, s.Unit, c.Unit)
			}
		}
		_ = units.NewTimeline(c.Units).Current()
	})
}
