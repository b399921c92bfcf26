package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/gateway/pgread"
)

// contactMarker is the reporter's contact stored with every test report; it
// must never appear in an answer of the OGC API.
const contactMarker = "0912-345-678 reporter@example.vn"

// seedOGC stores two provinces (01 around Hà Nội, 79 around Hồ Chí Minh
// City) with one ward each, stations, segments, alerts, reports and
// roll-ups in both.
func seedOGC(t testing.TB, ctx context.Context, db *testenv.DBEnv) {
	t.Helper()
	stmts := []string{
		`INSERT INTO admin_unit (code, level, parent_code, name_vi, boundary, valid_from) VALUES
		 ('01', 'province', NULL, 'Hà Nội', ST_Multi(ST_MakeEnvelope(105.3, 20.5, 106.0, 21.4, 4326)), '2025-07-01'),
		 ('00070', 'commune', '01', 'Hoàn Kiếm', ST_Multi(ST_MakeEnvelope(105.84, 21.01, 105.86, 21.04, 4326)), '2025-07-01'),
		 ('79', 'province', NULL, 'Hồ Chí Minh', ST_Multi(ST_MakeEnvelope(106.3, 10.3, 107.0, 11.2, 4326)), '2025-07-01'),
		 ('26734', 'commune', '79', 'Bến Nghé', ST_Multi(ST_MakeEnvelope(106.69, 10.77, 106.71, 10.79, 4326)), '2025-07-01')`,
		// An older version of ward 00070 with another name: the map of 2024.
		`INSERT INTO admin_unit (code, level, parent_code, name_vi, boundary, valid_from, valid_to) VALUES
		 ('00070', 'commune', '01', 'Hoàn Kiếm cũ', ST_Multi(ST_MakeEnvelope(105.84, 21.01, 105.86, 21.04, 4326)), '2020-01-01', '2025-07-01')`,
		`INSERT INTO sensor (kind, id, name, province, unit_code, source_id, location, last_event_id, last_observed_at, last_values)
		 SELECT 'air', 'hn-' || i, 'Trạm ' || i, '01', CASE WHEN i % 2 = 0 THEN '00070' ELSE '01' END, 'src',
		        ST_SetSRID(ST_MakePoint(105.84 + i * 0.001, 21.02), 4326), 'e' || i, '2026-12-01T00:00:00Z'::timestamptz + i * interval '1 minute',
		        jsonb_build_object('pm25', 10 + i, 'aqi', jsonb_build_object('hourly', 40 + i, 'band', 1))
		 FROM generate_series(1, 12) i`,
		`INSERT INTO sensor (kind, id, name, province, unit_code, source_id, location, last_event_id, last_observed_at, last_values)
		 VALUES ('water', 'hcm-1', 'Trạm nước', '79', '26734', 'src', ST_SetSRID(ST_MakePoint(106.7, 10.78), 4326), 'w1', '2026-12-01T00:00:00Z', '{"waterLevel": 1.2}'),
		        ('weather', 'hn-w', 'Khí tượng', '01', '01', 'src', ST_SetSRID(ST_MakePoint(105.5, 21.2), 4326), 'm1', '2026-12-01T00:00:00Z', '{"temperature": 20}')`,
		`INSERT INTO road_segment (id, name, province, unit_code, source_id, geom, last_event_id, last_observed_at, last_values)
		 VALUES ('seg-hn', 'Tràng Tiền', '01', '00070', 'src', ST_GeomFromText('LINESTRING(105.85 21.02, 105.855 21.025)', 4326), 's1', '2026-12-01T00:00:00Z', '{"averageVehicleSpeed": 20, "congested": true}'),
		        ('seg-hcm', 'Lê Lợi', '79', '26734', 'src', ST_GeomFromText('LINESTRING(106.70 10.775, 106.705 10.776)', 4326), 's2', '2026-12-01T00:00:00Z', '{"averageVehicleSpeed": 30, "congested": false}')`,
		`INSERT INTO alert (id, source_id, event_id, identifier, sender, sent, status, msg_type, info, area, state, province, unit_code, received_at)
		 VALUES ('kttv/hn-1', 'kttv', 'a1', 'hn-1', 'kttv', '2026-12-01T00:00:00Z', 'Actual', 'Alert', '[{"event": "Lũ", "severity": "Severe"}]',
		         ST_Multi(ST_MakeEnvelope(105.8, 21.0, 105.9, 21.1, 4326)), 'active', '01', '01', now()),
		        ('kttv/hn-2', 'kttv', 'a2', 'hn-2', 'kttv', '2026-11-01T00:00:00Z', 'Actual', 'Alert', '[{"event": "Bão"}]',
		         ST_Multi(ST_MakeEnvelope(105.8, 21.0, 105.9, 21.1, 4326)), 'expired', '01', '01', now()),
		        ('kttv/hcm-1', 'kttv', 'a3', 'hcm-1', 'kttv', '2026-12-01T00:00:00Z', 'Actual', 'Alert', '[{"event": "Triều cường"}]',
		         ST_Multi(ST_MakeEnvelope(106.6, 10.7, 106.8, 10.9, 4326)), 'active', '79', '79', now())`,
		`INSERT INTO report (id, source_id, event_id, province, unit_code, category, point, text, contact_enc, reported_at, received_at, sla_deadline)
		 VALUES ('app/r1', 'app', 'r1', '01', '00070', 'flooding', ST_SetSRID(ST_MakePoint(105.85, 21.03), 4326), 'Ngập phố', convert_to('` + contactMarker + `', 'UTF8'),
		         '2026-12-01T00:00:00Z', now(), now() + interval '4 hours'),
		        ('app/r2', 'app', 'r2', '79', '26734', 'traffic', ST_SetSRID(ST_MakePoint(106.7, 10.78), 4326), 'Kẹt xe', convert_to('` + contactMarker + `', 'UTF8'),
		         '2026-12-01T00:00:00Z', now(), now() + interval '4 hours')`,
		`INSERT INTO rollup (unit_code, layer, win, window_start, province, n, aqi_n, aqi_sum, aqi_max)
		 VALUES ('00070', 'air', '1h', '2026-12-01T00:00:00Z', '01', 6, 6, 300, 60),
		        ('01', 'air', '1h', '2026-12-01T00:00:00Z', '01', 12, 12, 600, 60),
		        ('26734', 'air', '1h', '2026-12-01T00:00:00Z', '79', 1, 1, 80, 80),
		        ('00070', 'air', '1h', '2026-12-01T01:00:00Z', '01', 3, 3, 90, 30)`,
		`INSERT INTO rollup (unit_code, layer, win, window_start, province, activated4_n, activated2_n, ended2_n)
		 VALUES ('01', 'alert', '1d', '2026-11-30T17:00:00Z', '01', 2, 1, 1)`,
	}
	for _, s := range stmts {
		if _, err := db.Pool.Exec(ctx, s); err != nil {
			t.Fatalf("seeding: %v\n%s", err, s)
		}
	}
}

// ogcServer is a gateway over httptest with the test admin token and three
// viewer identities: one of province 01, one of province 79, one of ward
// 26734 (in 79).
type ogcServer struct {
	URL                      string
	prov01, prov79, ward2673 string
}

func newOGCServer(t testing.TB, db *testenv.DBEnv) ogcServer {
	t.Helper()
	tok01, sum01 := auth.NewToken()
	tok79, sum79 := auth.NewToken()
	tokW, sumW := auth.NewToken()
	l := &fakeLoader{list: []auth.Identity{
		{ID: "id_00000000000000b1", Name: "hn", Role: auth.RoleViewer, Scopes: []string{"01"}, TokenSHA256: sum01},
		{ID: "id_00000000000000b3", Name: "hcm", Role: auth.RoleViewer, Scopes: []string{"79"}, TokenSHA256: sum79},
		{ID: "id_00000000000000b2", Name: "ward", Role: auth.RoleViewer, Scopes: []string{"26734"}, TokenSHA256: sumW},
	}}
	a := testAuth(t, l)
	if err := a.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	g, err := New(Config{}, Deps{JS: testenv.NATS(t).JS, Pool: db.Pool, Metrics: prometheus.NewRegistry(), Auth: a})
	if err != nil {
		t.Fatal(err)
	}
	srv := serveGateway(t, g, withTestToken, ValidURL) // as the hub's server wraps it
	return ogcServer{URL: srv.URL, prov01: tok01, prov79: tok79, ward2673: tokW}
}

// get fetches path (or an absolute URL) as token ("" for the test admin).
func (s ogcServer) get(t testing.TB, path, token string) (int, http.Header, []byte) {
	t.Helper()
	u := path
	if !strings.HasPrefix(u, "http") {
		u = s.URL + path
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

type ogcFC struct {
	Type     string `json:"type"`
	Features []struct {
		ID         string          `json:"id"`
		Geometry   json.RawMessage `json:"geometry"`
		Properties map[string]any  `json:"properties"`
	} `json:"features"`
	NumberReturned int    `json:"numberReturned"`
	NumberMatched  *int   `json:"numberMatched"`
	TimeStamp      string `json:"timeStamp"`
	Links          []struct {
		Rel, Type, Href string
	} `json:"links"`
}

func (fc ogcFC) link(rel string) string {
	for _, l := range fc.Links {
		if l.Rel == rel {
			return l.Href
		}
	}
	return ""
}

func (fc ogcFC) ids() []string {
	out := make([]string, 0, len(fc.Features))
	for _, f := range fc.Features {
		out = append(out, f.ID)
	}
	return out
}

func (s ogcServer) items(t testing.TB, path, token string) ogcFC {
	t.Helper()
	code, hdr, body := s.get(t, path, token)
	if code != http.StatusOK {
		t.Fatalf("GET %s = %d %s; want 200", path, code, body)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/geo+json" {
		t.Errorf("GET %s: Content-Type %q; want application/geo+json", path, ct)
	}
	var fc ogcFC
	if err := json.Unmarshal(body, &fc); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
	if fc.Type != "FeatureCollection" || fc.NumberReturned != len(fc.Features) || fc.link("self") == "" || fc.TimeStamp == "" {
		t.Errorf("GET %s: type %q, numberReturned %d of %d features, self %q, timeStamp %q", path, fc.Type, fc.NumberReturned, len(fc.Features), fc.link("self"), fc.TimeStamp)
	}
	return fc
}

func TestOGCDocuments(t *testing.T) {
	db := testenv.PostGIS(t)
	s := newOGCServer(t, db)
	for _, tc := range []struct {
		path, ct string
		want     int
	}{
		{"/ogc", "application/json", 200},
		{"/ogc/conformance", "application/json", 200},
		{"/ogc/collections", "application/json", 200},
		{"/ogc/collections/stations", "application/json", 200},
		{"/ogc/collections/stations/queryables", "application/schema+json", 200},
		{"/ogc/collections/nope", "application/problem+json", 404},
		{"/ogc/collections/nope/items", "application/problem+json", 404},
		{"/ogc?f=html", "application/problem+json", 406},
		{"/ogc/collections?f=json", "application/json", 200},
		{"/ogc/collections?sort=x", "application/problem+json", 400},
		{"/ogc/collections/stations/items", "application/geo+json", 200},
		{"/ogc/collections/stations/items?f=json", "application/json", 200},
		{"/ogc/collections/stations/items?f=xml", "application/problem+json", 406},
	} {
		code, hdr, body := s.get(t, tc.path, "")
		if code != tc.want || hdr.Get("Content-Type") != tc.ct {
			t.Errorf("GET %s = %d %s; want %d %s\n%s", tc.path, code, hdr.Get("Content-Type"), tc.want, tc.ct, body)
		}
	}
	_, _, body := s.get(t, "/ogc", "")
	for _, rel := range []string{`"service-desc"`, `"conformance"`, `"data"`, `/ogc/api`} {
		if !strings.Contains(string(body), rel) {
			t.Errorf("landing page lacks %s: %s", rel, body)
		}
	}
	_, _, body = s.get(t, "/ogc/conformance", "")
	for _, c := range []string{"conf/core", "conf/geojson", "conf/oas30", "conf/filter", "cql2-text"} {
		if !strings.Contains(string(body), c) {
			t.Errorf("conformance lacks %s: %s", c, body)
		}
	}
	_, _, body = s.get(t, "/ogc/collections", "")
	var cs struct {
		Collections []struct{ ID string } `json:"collections"`
	}
	if err := json.Unmarshal(body, &cs); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cs.Collections {
		ids = append(ids, c.ID)
	}
	if want := []string{"units", "stations", "segments", "alerts", "reports", "rollups"}; !slices.Equal(ids, want) {
		t.Errorf("collections %v; want %v", ids, want)
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/ogc/api", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/api" {
		t.Errorf("GET /ogc/api = %d to %q; want 303 to /api", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, _, _ := s.get(t, "/ogc/collections/stations/items", "iocid_nope"); code != http.StatusUnauthorized {
		t.Errorf("items with an unknown token = %d; want 401", code)
	}
}

func TestOGCItems(t *testing.T) {
	db := testenv.PostGIS(t)
	seedOGC(t, context.Background(), db)
	s := newOGCServer(t, db)

	counts := map[string]int{"units": 4, "stations": 14, "segments": 2, "alerts": 3, "reports": 2}
	for c, want := range counts {
		fc := s.items(t, "/ogc/collections/"+c+"/items?limit=100", "")
		if len(fc.Features) != want || fc.NumberMatched == nil || *fc.NumberMatched != want {
			t.Errorf("%s: %d features, numberMatched %v; want %d", c, len(fc.Features), fc.NumberMatched, want)
		}
		for _, f := range fc.Features {
			if string(f.Geometry) == "null" || f.ID == "" {
				t.Errorf("%s: feature %q without geometry or id", c, f.ID)
			}
		}
	}
	// Units: the map of 2024 has the old name; level and parent filter.
	fc := s.items(t, "/ogc/collections/units/items?datetime=2024-06-01T00:00:00Z", "")
	if len(fc.Features) != 1 || fc.Features[0].Properties["name"] != "Hoàn Kiếm cũ" {
		t.Errorf("units of 2024: %+v; want the old ward only", fc.Features)
	}
	fc = s.items(t, "/ogc/collections/units/items?level=commune&parent=79", "")
	if !slices.Equal(fc.ids(), []string{"26734"}) {
		t.Errorf("communes of 79: %v", fc.ids())
	}
	// RFC 7946: counter-clockwise outer ring, lon first.
	fc = s.items(t, "/ogc/collections/units/items?code=01", "")
	var mp struct {
		Type        string
		Coordinates [][][][2]float64
	}
	if err := json.Unmarshal(fc.Features[0].Geometry, &mp); err != nil {
		t.Fatal(err)
	}
	ring := mp.Coordinates[0][0]
	area := 0.0
	for i := 0; i+1 < len(ring); i++ {
		area += ring[i][0]*ring[i+1][1] - ring[i+1][0]*ring[i][1]
	}
	if mp.Type != "MultiPolygon" || area <= 0 || ring[0][0] < 100 {
		t.Errorf("province 01 geometry %s: type %s, signed area %g; want a counter-clockwise MultiPolygon in lon,lat", fc.Features[0].Geometry, mp.Type, area)
	}
	// Stations: property filters, bbox, datetime, CQL2.
	fc = s.items(t, "/ogc/collections/stations/items?unit=00070&layer=air&limit=100", "")
	if len(fc.Features) != 6 {
		t.Errorf("air stations of 00070: %d; want 6", len(fc.Features))
	}
	fc = s.items(t, "/ogc/collections/stations/items?bbox=106.6,10.7,106.8,10.9&bbox-crs="+url.QueryEscape(crs84), "")
	if !slices.Equal(fc.ids(), []string{"water:hcm-1"}) {
		t.Errorf("stations in the HCMC box: %v", fc.ids())
	}
	fc = s.items(t, "/ogc/collections/stations/items?datetime=2026-12-01T00:05:00Z/..&layer=air&limit=100", "")
	if len(fc.Features) != 8 {
		t.Errorf("air stations observed since 00:05: %d; want 8 (hn-5…hn-12)", len(fc.Features))
	}
	fc = s.items(t, "/ogc/collections/stations/items?datetime=../2026-12-01T00:00:00Z&limit=100", "")
	if len(fc.Features) != 2 {
		t.Errorf("stations observed by 00:00: %d; want 2 (water, weather)", len(fc.Features))
	}
	filter := url.QueryEscape("aqi >= 50 AND NOT layer <> 'air' AND S_INTERSECTS(geometry, POLYGON((105.8 21, 105.9 21, 105.9 21.1, 105.8 21.1, 105.8 21)))")
	fc = s.items(t, "/ogc/collections/stations/items?limit=100&filter-lang=cql2-text&filter="+filter, "")
	if len(fc.Features) != 3 {
		t.Errorf("CQL2 aqi >= 50 in the box: %v; want hn-10, hn-11, hn-12", fc.ids())
	}
	filter = url.QueryEscape("T_INTERSECTS(sent, INTERVAL('2026-11-15T00:00:00Z', '..')) AND state IN ('active')")
	fc = s.items(t, "/ogc/collections/alerts/items?filter="+filter, "")
	if len(fc.Features) != 2 || fc.Features[0].ID != AlertID("kttv/hcm-1") {
		t.Errorf("active alerts since Nov 15: %v", fc.ids())
	}
	fc = s.items(t, "/ogc/collections/alerts/items?state=expired", "")
	if !slices.Equal(fc.ids(), []string{AlertID("kttv/hn-2")}) {
		t.Errorf("expired alerts: %v", fc.ids())
	}
	// Roll-ups: window 1h at an instant; the window holding it.
	fc = s.items(t, "/ogc/collections/rollups/items?window=1h&datetime=2026-12-01T00:30:00Z&layer=air", "")
	if len(fc.Features) != 3 {
		t.Errorf("1h roll-ups at 00:30: %v; want 3 units", fc.ids())
	}
	for _, f := range fc.Features {
		if f.Properties["unit"] == "00070" && f.Properties["aqiMean"] != 50.0 {
			t.Errorf("roll-up of 00070: aqiMean %v; want 50", f.Properties["aqiMean"])
		}
	}
	fc = s.items(t, "/ogc/collections/rollups/items?datetime=2026-12-01T00:00:00Z/2026-12-01T02:00:00Z&unit=00070", "")
	if len(fc.Features) != 2 {
		t.Errorf("roll-ups of 00070 in two hours: %v; want 2", fc.ids())
	}
	// The alert layer's changes by CAP severity.
	al := s.items(t, "/ogc/collections/rollups/items?window=1d&datetime=2026-12-01T00:30:00Z&layer=alert", "")
	if len(al.Features) != 1 {
		t.Fatalf("1d alert roll-ups: %v; want the one of 01", al.ids())
	}
	act, _ := al.Features[0].Properties["activated"].(map[string]any)
	end, _ := al.Features[0].Properties["ended"].(map[string]any)
	if act["Extreme"] != 2.0 || act["Moderate"] != 1.0 || act["Minor"] != 0.0 || end["Moderate"] != 1.0 {
		t.Errorf("alert roll-up of 01: activated %v, ended %v; want Extreme 2, Moderate 1 activated, Moderate 1 ended", act, end)
	}
	// One item, by the id the list gave.
	code, hdr, body := s.get(t, "/ogc/collections/rollups/items/"+fc.Features[1].ID, "")
	if code != 200 || hdr.Get("Content-Type") != "application/geo+json" || !strings.Contains(string(body), `"windowStart"`) {
		t.Errorf("GET roll-up %s = %d %s", fc.Features[1].ID, code, body)
	}
	for _, path := range []string{"/ogc/collections/stations/items/air:hn-3", "/ogc/collections/alerts/items/" + AlertID("kttv/hn-1"),
		"/ogc/collections/units/items/00070", "/ogc/collections/segments/items/seg-hn", "/ogc/collections/reports/items/" + AlertID("app/r1")} {
		if code, _, body := s.get(t, path, ""); code != 200 || !strings.Contains(string(body), `"type":"Feature"`) {
			t.Errorf("GET %s = %d %s", path, code, body)
		}
	}
	if code, _, _ := s.get(t, "/ogc/collections/stations/items/air:nope", ""); code != 404 {
		t.Errorf("GET an absent station = %d; want 404", code)
	}
	// Simplification keeps the geometry valid.
	fc = s.items(t, "/ogc/collections/units/items?zoom=3", "")
	if len(fc.Features) != 4 {
		t.Errorf("units at zoom 3: %d", len(fc.Features))
	}
}

func TestOGCItemsBadParams(t *testing.T) {
	db := testenv.PostGIS(t)
	s := newOGCServer(t, db)
	for _, tc := range []struct {
		query, names string
		want         int
	}{
		{"bbox=1,2,3", "bbox", 400},
		{"bbox=1,2,x,4", "bbox", 400},
		{"bbox=10,2,3,4", "bbox", 400},
		{"bbox=1,2,3,4&bbox-crs=" + url.QueryEscape("http://www.opengis.net/def/crs/EPSG/0/3857"), "bbox-crs", 400},
		{"datetime=yesterday", "datetime", 400},
		{"datetime=2026-02-01/2026-01-01", "datetime", 400},
		{"limit=0", "limit", 400},
		{"limit=10001", "limit", 400},
		{"limit=abc", "limit", 400},
		{"colour=red", "colour", 400},
		{"aqi=high", "aqi", 400},
		{"cursor=xyz", "cursor", 400},
		{"filter=" + url.QueryEscape("nope = 1"), "filter", 400},
		{"filter=" + url.QueryEscape("unit = "), "filter", 400},
		{"filter-lang=cql2-json&filter=x", "filter-lang", 400},
		{"zoom=99", "zoom", 400},
		{"zoom=3&max-allowable-offset=0.1", "zoom", 400},
		{"f=html", "f", 406},
	} {
		code, hdr, body := s.get(t, "/ogc/collections/stations/items?"+tc.query, "")
		var p struct{ Detail string }
		_ = json.Unmarshal(body, &p)
		if code != tc.want || hdr.Get("Content-Type") != "application/problem+json" || !strings.Contains(p.Detail, tc.names) {
			t.Errorf("?%s = %d %s; want %d naming %s", tc.query, code, body, tc.want, tc.names)
		}
	}
	if code, _, body := s.get(t, "/ogc/collections/units/items?datetime=2024-01-01/2025-01-01", ""); code != 400 {
		t.Errorf("units with an interval = %d %s; want 400", code, body)
	}
	// Text the database would refuse is a 400 naming it, never a 503 that
	// tells the client to retry: in the URL (refused before any handler),
	// or decoded from an id or a cursor (refused by the database).
	for _, tc := range []struct{ path, names string }{
		{"/ogc/collections/stations/items?name=%00", "parameter name holds a NUL"},
		{"/ogc/collections/stations/items?name=%FF", "parameter name is not UTF-8"},
		{"/ogc/collections/stations/items?filter=" + url.QueryEscape("name = '\x00'"), "parameter filter holds a NUL"},
		{"/ogc/collections/units/items/%FF", "path is not UTF-8"},
		{"/ogc/collections/alerts/items/AA", "a value of the request was refused"}, // base64 of a NUL
		{"/ogc/collections/rollups/items?cursor=" + encodeCursor("a", []string{"not-a-time", "01", "air"}), "a value of the request was refused"},
	} {
		code, _, body := s.get(t, tc.path, "")
		var p struct{ Detail string }
		_ = json.Unmarshal(body, &p)
		if code != 400 || !strings.Contains(p.Detail, tc.names) {
			t.Errorf("%s = %d %s; want 400 saying %q", tc.path, code, body, tc.names)
		}
	}
	// Of several bad parameters, the answer names the same one every time
	// (the first by name), not whichever a map gave first.
	for _, tc := range []struct{ path, first string }{
		{"/ogc/collections/stations/items?zeta=1&colour=red&aqi=high", "parameter aqi:"},
		{"/ogc/collections?zeta=1&beta=2&gamma=3", "parameter beta:"},
	} {
		for range 20 {
			code, _, body := s.get(t, tc.path, "")
			var p struct{ Detail string }
			_ = json.Unmarshal(body, &p)
			if code != 400 || !strings.HasPrefix(p.Detail, tc.first) {
				t.Fatalf("%s = %d %q; want 400 beginning %q", tc.path, code, p.Detail, tc.first)
			}
		}
	}
}

// TestOGCLikeEscape: a LIKE pattern ending in the escape character, which
// PostgreSQL refuses (SQLSTATE 22025), is the client's 400, never a 503
// telling it to retry: a literal pattern is refused by the CQL2 parser,
// naming where it is; a pattern taken from a property is refused by the
// database, and named so.
func TestOGCLikeEscape(t *testing.T) {
	db := testenv.PostGIS(t)
	ctx := context.Background()
	seedOGC(t, ctx, db)
	if _, err := db.Pool.Exec(ctx, `UPDATE sensor SET name = '%\' WHERE kind = 'air' AND id = 'hn-1'`); err != nil {
		t.Fatal(err)
	}
	s := newOGCServer(t, db)
	for _, tc := range []struct{ filter, says string }{
		{`name LIKE '%\'`, `parameter filter: LIKE pattern '%\' at 10 ends in the escape character`},
		{`name NOT LIKE 'a\\\'`, `parameter filter: LIKE pattern 'a\\\' at 14 ends in the escape character`},
		{`'x' LIKE name`, "a value of the request was refused: LIKE pattern must not end with escape character (SQLSTATE 22025)"},
	} {
		code, _, body := s.get(t, "/ogc/collections/stations/items?filter="+url.QueryEscape(tc.filter), "")
		var p struct{ Detail string }
		_ = json.Unmarshal(body, &p)
		if code != http.StatusBadRequest || !strings.Contains(p.Detail, tc.says) {
			t.Errorf("filter=%s = %d %q; want 400 saying %q", tc.filter, code, p.Detail, tc.says)
		}
	}
	// An escaped backslash is a pattern like any other.
	fc := s.items(t, "/ogc/collections/stations/items?filter="+url.QueryEscape(`name LIKE '%\\'`), "")
	if !slices.Equal(fc.ids(), []string{"air:hn-1"}) {
		t.Errorf(`name LIKE '%%\\': %v; want air:hn-1`, fc.ids())
	}
}

// TestOGCScope: a viewer of province 01 sees 01's items only, and a viewer
// of ward 26734 (in 79) the ward's only; items of others are 404 by id.
func TestOGCScope(t *testing.T) {
	db := testenv.PostGIS(t)
	seedOGC(t, context.Background(), db)
	s := newOGCServer(t, db)
	for _, c := range []string{"units", "stations", "segments", "alerts", "reports"} {
		fc := s.items(t, "/ogc/collections/"+c+"/items?limit=100", s.prov01)
		if len(fc.Features) == 0 {
			t.Errorf("%s: a viewer of 01 sees nothing", c)
		}
		for _, f := range fc.Features {
			prov, _ := f.Properties["province"].(string)
			if c == "units" {
				if f.ID != "01" && f.ID != "00070" {
					t.Errorf("units: a viewer of 01 sees %s", f.ID)
				}
			} else if prov != "01" {
				t.Errorf("%s: a viewer of 01 sees %s of province %q", c, f.ID, prov)
			}
		}
		fc = s.items(t, "/ogc/collections/"+c+"/items?limit=100", s.ward2673)
		for _, f := range fc.Features {
			unit, _ := f.Properties["unit"].(string)
			if c == "units" {
				unit = f.ID
			}
			if unit != "26734" {
				t.Errorf("%s: a viewer of ward 26734 sees %s of unit %q", c, f.ID, unit)
			}
		}
	}
	fc := s.items(t, "/ogc/collections/rollups/items?datetime=2026-12-01T00:30:00Z", s.prov01)
	if len(fc.Features) != 2 {
		t.Errorf("roll-ups of 01: %v; want 01 and 00070", fc.ids())
	}
	for _, path := range []string{"/ogc/collections/stations/items/water:hcm-1", "/ogc/collections/alerts/items/" + AlertID("kttv/hcm-1"),
		"/ogc/collections/units/items/79", "/ogc/collections/reports/items/" + AlertID("app/r2")} {
		if code, _, _ := s.get(t, path, s.prov01); code != http.StatusNotFound {
			t.Errorf("a viewer of 01 GET %s = %d; want 404", path, code)
		}
	}
	if code, _, _ := s.get(t, "/ogc/collections/stations/items/air:hn-1", s.prov01); code != 200 {
		t.Errorf("a viewer of 01 GET its own station = %d; want 200", code)
	}
}

// TestOGCAlertsReachingProvince: an alert placed in province 01 whose area
// reaches 79 (alert_unit holds 79) is seen by a viewer of 79, in the
// collection and by its item URL, as on /v1/alerts; an alert reaching
// neither 79 nor its units is not.
func TestOGCAlertsReachingProvince(t *testing.T) {
	db := testenv.PostGIS(t)
	ctx := context.Background()
	seedOGC(t, ctx, db)
	if _, err := db.Pool.Exec(ctx, `INSERT INTO alert_unit (alert_id, unit_code) VALUES
		('kttv/hn-1', '01'), ('kttv/hn-1', '79'), ('kttv/hn-2', '01'), ('kttv/hcm-1', '79')`); err != nil {
		t.Fatal(err)
	}
	s := newOGCServer(t, db)
	fc := s.items(t, "/ogc/collections/alerts/items?limit=100", s.prov79)
	want := []string{AlertID("kttv/hcm-1"), AlertID("kttv/hn-1")}
	got := fc.ids()
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("alerts a viewer of 79 sees: %v; want %v (hcm-1, and hn-1 which reaches 79)", got, want)
	}
	if code, _, body := s.get(t, "/ogc/collections/alerts/items/"+AlertID("kttv/hn-1"), s.prov79); code != http.StatusOK {
		t.Errorf("a viewer of 79 GET the alert of 01 reaching 79 = %d %s; want 200", code, body)
	}
	if code, _, _ := s.get(t, "/ogc/collections/alerts/items/"+AlertID("kttv/hn-2"), s.prov79); code != http.StatusNotFound {
		t.Errorf("a viewer of 79 GET an alert of 01 only = %d; want 404", code)
	}
}

// TestOGCRollupsOpenInterval: datetime= an interval open at both ends
// selects the roll-ups of every window, not the window holding now (which no
// datetime= selects).
func TestOGCRollupsOpenInterval(t *testing.T) {
	db := testenv.PostGIS(t)
	seedOGC(t, context.Background(), db)
	s := newOGCServer(t, db)
	for _, dt := range []string{"../..", "/", "../", "/.."} {
		fc := s.items(t, "/ogc/collections/rollups/items?limit=100&datetime="+url.QueryEscape(dt), "")
		if len(fc.Features) != 4 || fc.NumberMatched == nil || *fc.NumberMatched != 4 {
			t.Errorf("datetime=%s: %v; want the 4 roll-ups of 1h in every window", dt, fc.ids())
		}
	}
}

// TestOGCRollupsPagingPinsNow: without datetime=, roll-ups are those of the
// window holding now, and the next and prev links carry that instant as
// datetime=, so that later pages read the same window though now has moved
// on. A datetime= the client gave is kept as it is.
func TestOGCRollupsPagingPinsNow(t *testing.T) {
	db := testenv.PostGIS(t)
	ctx := context.Background()
	seedOGC(t, ctx, db)
	// Three roll-ups in this hour's window and three in the next, so that
	// whichever holds now when the request comes has three.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO rollup (unit_code, layer, win, window_start, province, n)
		SELECT u, 'air', '1h', date_trunc('hour', now()) + h * interval '1 hour', p, 1
		FROM (VALUES ('01', '01'), ('00070', '01'), ('26734', '79')) units(u, p), generate_series(0, 1) h`); err != nil {
		t.Fatal(err)
	}
	s := newOGCServer(t, db)
	before := time.Now().UTC().Truncate(time.Second)
	first := s.items(t, "/ogc/collections/rollups/items?limit=1", "")
	after := time.Now().UTC()
	if len(first.Features) != 1 || first.NumberMatched == nil || *first.NumberMatched != 3 {
		t.Fatalf("first page: %v; want 1 of the 3 roll-ups of the window holding now, numberMatched 3", first.ids())
	}
	datetime := func(href string) string {
		t.Helper()
		u, err := url.Parse(href)
		if err != nil {
			t.Fatalf("link %q: %v", href, err)
		}
		return u.Query().Get("datetime")
	}
	if dt := datetime(first.link("self")); dt != "" {
		t.Errorf("self link %q carries datetime %q; want the request as it came", first.link("self"), dt)
	}
	pinned := datetime(first.link("next"))
	at, err := time.Parse(time.RFC3339, pinned)
	if err != nil || at.Before(before) || at.After(after) {
		t.Fatalf("next link %q: datetime %q; want the instant the first page was read (%s to %s)", first.link("next"), pinned, before, after)
	}
	second := s.items(t, first.link("next"), "")
	if len(second.Features) != 1 || second.ids()[0] == first.ids()[0] ||
		second.Features[0].Properties["windowStart"] != first.Features[0].Properties["windowStart"] {
		t.Errorf("second page: %v %v; want another roll-up of the window of %v", second.ids(), second.Features[0].Properties["windowStart"], first.Features[0].Properties["windowStart"])
	}
	for _, rel := range []string{"next", "prev"} {
		if dt := datetime(second.link(rel)); dt != pinned {
			t.Errorf("second page's %s link %q: datetime %q; want %q", rel, second.link(rel), dt, pinned)
		}
	}
	given := s.items(t, "/ogc/collections/rollups/items?limit=1&datetime=2026-12-01T00:30:00Z", "")
	if dt := datetime(given.link("next")); dt != "2026-12-01T00:30:00Z" {
		t.Errorf("next link of a request with datetime: datetime %q; want the client's 2026-12-01T00:30:00Z", dt)
	}
}

// TestOGCReportsNeverShowContact: the reporter's contact never leaves the
// database: no answer holds it, and no SQL of the collection names its column.
func TestOGCReportsNeverShowContact(t *testing.T) {
	db := testenv.PostGIS(t)
	seedOGC(t, context.Background(), db)
	s := newOGCServer(t, db)
	var bodies []string
	for _, path := range []string{"/ogc/collections/reports/items?limit=100", "/ogc/collections/reports/items/" + AlertID("app/r1"),
		"/ogc/collections/reports/items?filter=" + url.QueryEscape("category = 'flooding'"), "/ogc/collections/reports/queryables"} {
		code, _, body := s.get(t, path, "")
		if code != 200 {
			t.Fatalf("GET %s = %d %s", path, code, body)
		}
		bodies = append(bodies, string(body))
	}
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM report WHERE convert_from(contact_enc, 'UTF8') = $1`, contactMarker).Scan(&n); err != nil || n != 2 {
		t.Fatalf("the stored contacts: %d, %v; want 2 (the test must store them)", n, err)
	}
	for _, b := range bodies {
		for _, bad := range []string{contactMarker, "0912", "reporter@", "contact"} {
			if strings.Contains(b, bad) {
				t.Errorf("an answer holds %q: %s", bad, b)
			}
		}
	}
	c := pgread.CollectionByID("reports")
	for _, sql := range []string{c.From, c.Where, c.FeatureID, c.Properties, c.Scope, c.Geometry, c.Time} {
		if strings.Contains(sql, "contact") {
			t.Errorf("the reports SQL names the contact: %s", sql)
		}
	}
	for name, q := range c.Queryables {
		if strings.Contains(q.SQL, "contact") || strings.Contains(strings.ToLower(name), "contact") {
			t.Errorf("queryable %s names the contact", name)
		}
	}
	if code, _, _ := s.get(t, "/ogc/collections/reports/items?filter="+url.QueryEscape("contact_enc IS NOT NULL"), ""); code != 400 {
		t.Errorf("a filter on the contact = %d; want 400", code)
	}
}

// TestOGCPaging walks every station in pages of 3 by next links while new
// stations are inserted before and after the cursor: no station is seen
// twice, every station present from the start is seen, and prev goes back
// to the page before.
func TestOGCPaging(t *testing.T) {
	db := testenv.PostGIS(t)
	ctx := context.Background()
	seedOGC(t, ctx, db)
	s := newOGCServer(t, db)
	fc := s.items(t, "/ogc/collections/stations/items?limit=3", "")
	if fc.NumberMatched == nil || *fc.NumberMatched != 14 || fc.link("prev") != "" {
		t.Fatalf("first page: numberMatched %v, prev %q; want 14 and none", fc.NumberMatched, fc.link("prev"))
	}
	seen := map[string]int{}
	var pages []ogcFC
	for i := 0; ; i++ {
		pages = append(pages, fc)
		for _, id := range fc.ids() {
			seen[id]++
		}
		if i == 1 {
			// Inserted before the cursor (air:a…) and after it (weather:zz…).
			if _, err := db.Pool.Exec(ctx, `INSERT INTO sensor (kind, id, province, unit_code, source_id, location, last_event_id, last_observed_at)
				VALUES ('air', 'a-new', '01', '01', 'src', ST_SetSRID(ST_MakePoint(105.5, 21), 4326), 'n', now()),
				       ('weather', 'zz-new', '01', '01', 'src', ST_SetSRID(ST_MakePoint(105.5, 21), 4326), 'n', now())`); err != nil {
				t.Fatal(err)
			}
		}
		next := fc.link("next")
		if next == "" {
			break
		}
		if i > 20 {
			t.Fatal("more than 20 pages of 3")
		}
		fc = s.items(t, next, "")
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("station %s seen %d times", id, n)
		}
	}
	if len(seen) != 15 || seen["weather:zz-new"] != 1 || seen["air:a-new"] != 0 {
		t.Errorf("seen %d stations: %v; want the 14 and weather:zz-new", len(seen), seen)
	}
	prev := s.items(t, pages[2].link("prev"), "")
	if !slices.Equal(prev.ids(), pages[1].ids()) || prev.link("next") == "" {
		t.Errorf("prev of page 3: %v; want page 2 %v", prev.ids(), pages[1].ids())
	}
	first := s.items(t, pages[1].link("prev"), "")
	if !slices.Equal(first.ids(), pages[0].ids()) {
		t.Errorf("prev of page 2: %v; want page 1 %v", first.ids(), pages[0].ids())
	}
	if first.link("prev") == "" {
		t.Error("prev of page 2 has no prev link though air:a-new, inserted since, is before it")
	}
}

// TestOGCStatementTimeout: each items query runs under its statement_timeout
// in a read-only transaction. A collection whose properties sleep 2s is cut
// at the 100ms limit with PostgreSQL's query_canceled, before the page begins.
func TestOGCStatementTimeout(t *testing.T) {
	db := testenv.PostGIS(t)
	ctx := context.Background()
	seedOGC(t, ctx, db)
	slow := *pgread.CollectionByID("segments")
	slow.Properties = `json_build_object('slept', pg_sleep(2))`
	sink := &oneFeature{}
	_, err := pgread.New(db.Pool).Features(ctx, pgread.FeatureQuery{C: &slow, Scope: pgread.Scope{All: true}, Limit: 10}, 100*time.Millisecond, sink)
	if !isQueryCanceled(err) || errors.Is(err, pgread.ErrBegun) {
		t.Errorf("a 2s query under a 100ms limit: %v; want query_canceled before the page began", err)
	}
	// The transaction is read-only: a write in it fails.
	writer := *pgread.CollectionByID("segments")
	writer.Properties = `json_build_object('n', (SELECT nextval('admin_unit_id_seq')))`
	_, err = pgread.New(db.Pool).Features(ctx, pgread.FeatureQuery{C: &writer, Scope: pgread.Scope{All: true}, Limit: 10}, time.Second, &oneFeature{})
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "25006" { // read_only_sql_transaction
		t.Errorf("a write in the items transaction: %v; want 25006 read_only_sql_transaction", err)
	}
}

// TestOGCUnitPastVersionByID: a past version a datetime= listing gives has
// an id of its own ("<code>@<start>"), by which its item URL answers that
// version; the code alone answers the current one (OGC API – Features, Part
// 1: every feature listed can be fetched at /items/{featureId}).
func TestOGCUnitPastVersionByID(t *testing.T) {
	db := testenv.PostGIS(t)
	seedOGC(t, context.Background(), db)
	s := newOGCServer(t, db)
	fc := s.items(t, "/ogc/collections/units/items?datetime=2024-01-01T00:00:00Z&code=00070", "")
	if len(fc.Features) != 1 || fc.Features[0].ID != "00070@2020-01-01T00:00:00Z" {
		t.Fatalf("the 2024 map's 00070: ids %v; want 00070@2020-01-01T00:00:00Z", fc.ids())
	}
	code, _, body := s.get(t, "/ogc/collections/units/items/"+fc.Features[0].ID, "")
	if code != http.StatusOK || !strings.Contains(string(body), "Hoàn Kiếm cũ") || !strings.Contains(string(body), `"id":"00070@2020-01-01T00:00:00Z"`) {
		t.Errorf("GET the past version by its id = %d %s; want Hoàn Kiếm cũ", code, body)
	}
	code, _, body = s.get(t, "/ogc/collections/units/items/00070", "")
	if code != http.StatusOK || strings.Contains(string(body), "cũ") || !strings.Contains(string(body), `"id":"00070"`) {
		t.Errorf("GET 00070 = %d %s; want the current Hoàn Kiếm", code, body)
	}
	for _, bad := range []string{"00070@", "00070@2020-01-01", "00070@1999-01-01T00:00:00Z"} {
		if code, _, body := s.get(t, "/ogc/collections/units/items/"+bad, ""); code != http.StatusNotFound {
			t.Errorf("GET units/items/%s = %d %s; want 404", bad, code, body)
		}
	}
}

// TestOGCPagingLinkTypes: the next link of an f=json page is of the type
// it answers (application/json), that of a GeoJSON page GeoJSON.
func TestOGCPagingLinkTypes(t *testing.T) {
	db := testenv.PostGIS(t)
	seedOGC(t, context.Background(), db)
	s := newOGCServer(t, db)
	for f, want := range map[string]string{"": "application/geo+json", "&f=json": "application/json"} {
		code, _, body := s.get(t, "/ogc/collections/units/items?limit=1"+f, "")
		var fc ogcFC
		if code != http.StatusOK || json.Unmarshal(body, &fc) != nil {
			t.Fatalf("GET units?limit=1%s = %d %s", f, code, body)
		}
		got := ""
		for _, l := range fc.Links {
			if l.Rel == "next" {
				got = l.Type
			}
		}
		if got != want {
			t.Errorf("units?limit=1%s: next link of type %q; want %q", f, got, want)
		}
	}
}
