package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
	"github.com/iochub/iochub/internal/testkit/rollupcheck"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// square is a GeoJSON Feature of a commune: a small square around (lon, lat).
func squareFeature(code, name string, lon, lat, d float64) string {
	return fmt.Sprintf(`{"type":"Feature","properties":{"code":%q,"name":%q},"geometry":{"type":"Polygon","coordinates":[[[%[3]f,%[4]f],[%[5]f,%[4]f],[%[5]f,%[6]f],[%[3]f,%[6]f],[%[3]f,%[4]f]]]}}`,
		code, name, lon-d, lat-d, lon+d, lat+d)
}

// waitImport polls GET /v1/admin/units/imports/{id} until the import ends.
func waitImport(t *testing.T, c cred, base, location string) natsx.UnitImport {
	t.Helper()
	var rec natsx.UnitImport
	testkit.Eventually(t, 30*time.Second, "the import ends", func() (bool, string) {
		code, _, body := call(t, c, "GET", base+location, "", nil)
		if code != http.StatusOK {
			t.Fatalf("GET %s = %d %s", location, code, body)
		}
		if err := json.Unmarshal([]byte(body), &rec); err != nil {
			t.Fatalf("progress is not JSON: %v: %s", err, body)
		}
		return rec.State == natsx.ImportDone || rec.State == natsx.ImportFailed, body
	})
	return rec
}

// TestUnitsImportThroughHub: an admin of every province uploads a map of two
// communes to a running hub (real NATS, real PostGIS); the import is queued,
// its progress ends done with both written, and /v1/units shows them
// without a restart; a retry with the same Idempotency-Key imports nothing
// again; a malformed file ends failed naming the bad feature; an admin of
// one province is refused 403.
func TestUnitsImportThroughHub(t *testing.T) {
	n := testenv.NATS(t)
	db := testenv.PostGISWithUnits(t)
	_, admin01Tok := mustIdentity(t, db, "admin of Hà Nội", auth.RoleAdmin, "01")
	h := startHubTB(t, "all", n, db, func(c *config) {
		c.Gateway.UnitsTTL = 200 * time.Millisecond
		c.Ingest.RefreshEvery = 200 * time.Millisecond
	})
	dev := cred{name: "dev", token: devToken}
	lon, lat := pointIn(t, db, wardIn)
	body := `{"type":"FeatureCollection","features":[` + squareFeature("99901", "Phường Thử Một", lon, lat, 0.0005) + "," +
		squareFeature("99902", "Phường Thử Hai", lon+0.002, lat, 0.0005) + `]}`

	if code, _, raw := call(t, cred{name: "admin 01", token: admin01Tok}, "POST", h.url+"/v1/admin/units/imports", body, nil); code != http.StatusForbidden {
		t.Errorf("POST as an admin of 01 = %d %s; want 403", code, raw)
	}
	hdr := map[string]string{"Content-Type": "application/geo+json", "Idempotency-Key": "map-1"}
	code, head, raw := call(t, dev, "POST", h.url+"/v1/admin/units/imports?valid_from=2026-01-01T00:00:00+07:00", body, hdr)
	if code != http.StatusAccepted || head.Get("Location") == "" {
		t.Fatalf("POST import = %d %s (Location %q)", code, raw, head.Get("Location"))
	}
	rec := waitImport(t, dev, h.url, head.Get("Location"))
	if rec.State != natsx.ImportDone || rec.Read != 2 || rec.Written != 2 || rec.Error != "" {
		t.Fatalf("import ended %+v; want done, 2 read, 2 written", rec)
	}
	if want := time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 7*3600)); !rec.ValidFrom.Equal(want) {
		t.Errorf("validFrom %s; want %s", rec.ValidFrom, want)
	}
	testkit.Eventually(t, 15*time.Second, "/v1/units?province=01 lists the imported communes", func() (bool, string) {
		code, _, units := call(t, dev, "GET", h.url+"/v1/units?province=01", "", nil)
		return code == http.StatusOK && strings.Contains(units, "Phường Thử Một") && strings.Contains(units, "Phường Thử Hai"),
			fmt.Sprintf("%d, %d bytes", code, len(units))
	})
	observeInImported(t, db, h, lon, lat)

	// A retry with the same key answers the same import and imports nothing again.
	code, head2, raw := call(t, dev, "POST", h.url+"/v1/admin/units/imports", body, hdr)
	if code != http.StatusAccepted || head2.Get("Location") != head.Get("Location") {
		t.Errorf("retried POST = %d %s at %q; want 202 at %q", code, raw, head2.Get("Location"), head.Get("Location"))
	}
	waitRows(t, db, `SELECT count(*) FROM admin_unit WHERE code IN ('99901', '99902')`, 2)
	waitRows(t, db, `SELECT count(*) FROM audit_log WHERE action = 'unit.import'`, 1)

	// The CLI uploads through the hub and follows the progress.
	file := filepath.Join(t.TempDir(), "third.geojson")
	if err := os.WriteFile(file, []byte(`{"type":"FeatureCollection","features":[`+squareFeature("99904", "Phường Thử Bốn", lon, lat-0.002, 0.0005)+`]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runCLI(t, "units", "import", "--via-hub", h.url, "--token", devToken, "--valid-from", "2026-01-01", file)
	if err != nil || !strings.Contains(out, "1 read, 1 new") {
		t.Fatalf("units import --via-hub: %v\n%s\n%s", err, out, errOut)
	}
	waitRows(t, db, `SELECT count(*) FROM admin_unit WHERE code = '99904' AND valid_to IS NULL`, 1)
	if _, _, err := runCLI(t, "units", "import", "--via-hub", h.url, "--token", devToken, "--replace", file, file); err == nil || !strings.Contains(err.Error(), "one FILE") {
		t.Errorf("units import --replace of two files: %v; want refused (each would retire the other's units)", err)
	}
	if _, _, err := runCLI(t, "units", "import", "--via-hub", h.url, "--token", admin01Tok, file); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("units import --via-hub as an admin of 01: %v; want 403", err)
	}

	// A feature without a code: the import fails with the reason, writing nothing.
	bad := `{"type":"FeatureCollection","features":[` + squareFeature("99903", "Phường Thử Ba", lon, lat+0.002, 0.0005) +
		`,{"type":"Feature","properties":{"name":"no code"},"geometry":{"type":"Point","coordinates":[105.8,21]}}]}`
	code, head, raw = call(t, dev, "POST", h.url+"/v1/admin/units/imports", bad, nil)
	if code != http.StatusAccepted {
		t.Fatalf("POST bad import = %d %s", code, raw)
	}
	rec = waitImport(t, dev, h.url, head.Get("Location"))
	if rec.State != natsx.ImportFailed || !strings.Contains(rec.Error, "features[1]") {
		t.Errorf("bad import ended %+v; want failed naming features[1]", rec)
	}
	waitRows(t, db, `SELECT count(*) FROM admin_unit WHERE code = '99903'`, 0)
	// A retired code imported again from its very start: refused at once
	// (the unique key of its past version once made the action retry for ever).
	if _, err := db.Pool.Exec(context.Background(), `UPDATE admin_unit SET valid_to = '2026-02-01' WHERE code = '99902'`); err != nil {
		t.Fatal(err)
	}
	again := `{"type":"FeatureCollection","features":[` + squareFeature("99902", "Phường Thử Hai", lon+0.002, lat, 0.0005) + `]}`
	code, head3, raw := call(t, dev, "POST", h.url+"/v1/admin/units/imports?valid_from=2026-01-01T00:00:00+07:00", again,
		map[string]string{"Idempotency-Key": "map-retired"})
	if code != http.StatusAccepted {
		t.Fatalf("POST import of a retired code = %d %s", code, raw)
	}
	if rec := waitImport(t, dev, h.url, head3.Get("Location")); rec.State != natsx.ImportFailed || !strings.Contains(rec.Error, "a past version is valid from") {
		t.Errorf("import of a retired code from its start ended %+v; want failed naming its past version", rec)
	}
	// A map that takes effect tomorrow is imported tomorrow.
	tomorrow := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	if code, _, raw := call(t, dev, "POST", h.url+"/v1/admin/units/imports?valid_from="+tomorrow, body, nil); code != http.StatusBadRequest || !strings.Contains(raw, "future") {
		t.Errorf("POST import from tomorrow = %d %s; want 400 (in the future)", code, raw)
	}
	if code, _, raw := call(t, dev, "GET", h.url+"/v1/admin/units/imports/nope", "", nil); code != http.StatusNotFound {
		t.Errorf("GET unknown import = %d %s; want 404", code, raw)
	}
	if code, _, raw := call(t, cred{name: "admin 01", token: admin01Tok}, "GET", h.url+head.Get("Location"), "", nil); code != http.StatusForbidden {
		t.Errorf("GET progress as an admin of 01 = %d %s; want 403", code, raw)
	}
}

// observeInImported: an observation at (lon, lat), inside commune 99901 just
// imported inside ward 00070 (which keeps its map), is placed by the running
// hub's ingest in 99901, the smaller of the two, and rolled up by its
// aggregator into 99901 and its province, as plain SQL over the raw rows
// gives (rollupcheck).
func observeInImported(t *testing.T, db *testenv.DBEnv, h *hub, lon, lat float64) {
	t.Helper()
	ctx := context.Background()
	token, err := postgis.AddSource(ctx, db.Pool, postgis.Source{ID: "hn-import", Name: "Hà Nội IOC", UnitCode: "01"})
	if err != nil {
		t.Fatal(err)
	}
	var parent string
	if err := db.Pool.QueryRow(ctx, `SELECT parent_code FROM admin_unit WHERE code = '99901' AND valid_to IS NULL`).Scan(&parent); err != nil {
		t.Fatal(err)
	}
	if parent != "01" {
		t.Fatalf("imported commune 99901 has parent %q; want 01 (the province containing it)", parent)
	}
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	// The ingest re-reads its units and sources every 200 ms here: until it
	// has, the source is unknown, then the point is placed in the ward the
	// commune was cut from (and stored there).
	try, stored := 0, 0
	testkit.Eventually(t, 15*time.Second, "the ingest places the point in the imported commune", func() (bool, string) {
		try++
		item := airItem(t, fmt.Sprintf("urn:ngsi-ld:AirQualityObserved:IMPORT-%d", try), "IMPORT-ST-1", lon, lat, at)
		code, res, raw := post(t, h.url+"/v1/feeds/air", token, []any{item})
		if code == http.StatusUnauthorized { // the source is not read yet either
			return false, raw
		}
		if code != http.StatusAccepted || res.Accepted != 1 || len(res.Results) != 1 {
			t.Fatalf("POST = %d %s; want 1 accepted", code, raw)
		}
		stored++
		return res.Results[0].Unit == "99901", raw
	})
	// Every POST accepted is stored (in the order they were sent), 99901's
	// once; then every roll-up, 99901's province included, equals plain SQL
	// over the raw rows, and the province counts every POST, wherever the
	// ingest placed it. (This database's map has no national unit: its
	// provinces are the roots.)
	waitRows(t, db, `SELECT count(*) FROM air_observation WHERE station_id = 'IMPORT-ST-1'`, stored)
	waitRows(t, db, `SELECT count(*) FROM air_observation WHERE unit_code = '99901'`, 1)
	waitRows(t, db, `SELECT coalesce(sum(n), 0)::int FROM rollup WHERE layer = 'air' AND win = '1h' AND unit_code = '99901'`, 1)
	waitRows(t, db, `SELECT coalesce(sum(n), 0)::int FROM rollup WHERE layer = 'air' AND win = '1h' AND unit_code = '01'`, stored)
	rollupcheck.Check(t, db.Pool)
}
