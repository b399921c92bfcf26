package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/iochub/iochub/internal/testenv"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// TestAlertsOneBadArea: an alert whose stored area PostGIS cannot write as
// GeoJSON (a nested GeometryCollection, as an earlier version stored before
// migration 00008 and its CHECK) made GET /v1/alerts answer 503 for every
// alert of the province. The list now answers 200 with every alert, that one
// without geometry, and GET /v1/alerts/{id} shows it without geometry too.
func TestAlertsOneBadArea(t *testing.T) {
	db := testenv.PostGIS(t)
	ctx := context.Background()
	// The form CHECK of migration 00008 refuses such an area now; drop it to
	// store one as an old version could have.
	if _, err := db.Pool.Exec(ctx, `ALTER TABLE alert DROP CONSTRAINT IF EXISTS alert_area_form`); err != nil {
		t.Fatal(err)
	}
	areas := map[string]string{
		"src/good":  "MULTIPOLYGON(((105.8 21,105.9 21,105.9 21.1,105.8 21)))",
		"src/point": "MULTIPOINT((105.85 21.03))",
		"src/bad":   "GEOMETRYCOLLECTION(GEOMETRYCOLLECTION(POLYGON((105.8 21,105.9 21,105.9 21.1,105.8 21))))",
		"src/none":  "",
	}
	for id, wkt := range areas {
		body, err := proto.Marshal(&iocv1.Alert{Id: id[4:], Identifier: id[4:], Sender: "kttv", Status: "Actual", MsgType: "Alert",
			Info: []*iocv1.AlertInfo{{Event: "Lũ " + id}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Pool.Exec(ctx, `INSERT INTO alert (id, source_id, event_id, identifier, sender, sent, status, msg_type,
			area, state, province, unit_code, received_at, body)
			VALUES ($1, 'src', $2, $2, 'kttv', now(), 'Actual', 'Alert', ST_GeomFromText(NULLIF($3, ''), 4326), 'active', '01', '01', now(), $4)`,
			id, id[4:], wkt, body); err != nil {
			t.Fatalf("inserting %s: %v", id, err)
		}
	}
	g, err := New(Config{}, Deps{JS: testenv.NATS(t).JS, Pool: db.Pool, Metrics: prometheus.NewRegistry(), Auth: testAuth(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	srv := serveGateway(t, g, withTestToken)

	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	code, body := get("/v1/alerts?province=01")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/alerts?province=01 = %d %s; want 200", code, body)
	}
	var fc struct {
		Features []struct {
			Geometry   json.RawMessage `json:"geometry"`
			Properties struct {
				EntityID string `json:"entityId"`
			} `json:"properties"`
		} `json:"features"`
	}
	if err := json.Unmarshal(body, &fc); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	types := map[string]string{}
	for _, f := range fc.Features {
		var gt struct {
			Type string `json:"type"`
		}
		if string(f.Geometry) != "null" {
			if err := json.Unmarshal(f.Geometry, &gt); err != nil {
				t.Fatalf("geometry of %s: %v", f.Properties.EntityID, err)
			}
		}
		types[f.Properties.EntityID] = gt.Type
	}
	want := map[string]string{"src/good": "Polygon", "src/point": "Point", "src/bad": "", "src/none": ""}
	if len(types) != len(want) {
		t.Errorf("listed %v; want %v", types, want)
	}
	for id, w := range want {
		if got, ok := types[id]; !ok || got != w {
			t.Errorf("alert %s listed %v with geometry type %q; want listed with %q (\"\" is null)", id, ok, got, w)
		}
	}

	code, body = get("/v1/alerts/" + AlertID("src/bad"))
	var doc struct {
		EntityID string          `json:"entityId"`
		Geometry json.RawMessage `json:"geometry"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &doc) != nil || doc.EntityID != "src/bad" || string(doc.Geometry) != "null" {
		t.Errorf("GET the bad alert = %d %s; want 200 with geometry null", code, body)
	}
}

// TestAlertsShowHubExpiry: an alert whose message names no expiry and that
// the hub gave its default one (expires_default, migration 00041) shows
// that expiry as hubExpires in GET /v1/alerts and GET /v1/alerts/{id}, and
// as expiresDefault in the OGC collection; one that names its own shows
// none, and its message (CAP) is untouched either way.
func TestAlertsShowHubExpiry(t *testing.T) {
	db := testenv.PostGIS(t)
	ctx := context.Background()
	for _, a := range []struct {
		id      string
		byHub   bool
		expires string
	}{{"src/hub", true, "2026-12-02T00:00:00Z"}, {"src/own", false, "2026-12-03T00:00:00Z"}} {
		body, err := proto.Marshal(&iocv1.Alert{Id: a.id[4:], Identifier: a.id[4:], Sender: "kttv", Status: "Actual", MsgType: "Alert",
			Info: []*iocv1.AlertInfo{{Event: "Lũ"}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Pool.Exec(ctx, `INSERT INTO alert (id, source_id, event_id, identifier, sender, sent, status, msg_type,
			expires, expires_default, state, province, unit_code, received_at, body)
			VALUES ($1, 'src', $2, $2, 'kttv', '2026-12-01T00:00:00Z', 'Actual', 'Alert', $3, $4, 'active', '01', '01', now(), $5)`,
			a.id, a.id[4:], a.expires, a.byHub, body); err != nil {
			t.Fatalf("inserting %s: %v", a.id, err)
		}
	}
	g, err := New(Config{}, Deps{JS: testenv.NATS(t).JS, Pool: db.Pool, Metrics: prometheus.NewRegistry(), Auth: testAuth(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	srv := serveGateway(t, g, withTestToken)
	get := func(path string, v any) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, v) != nil {
			t.Fatalf("GET %s = %d %s; want 200 with JSON", path, resp.StatusCode, b)
		}
	}
	want := map[string]string{"src/hub": "2026-12-02T00:00:00Z", "src/own": ""}

	var fc struct {
		Features []struct {
			Properties struct {
				EntityID string `json:"entityId"`
				Alert    struct {
					HubExpires string `json:"hubExpires"`
				} `json:"alert"`
			} `json:"properties"`
		} `json:"features"`
	}
	get("/v1/alerts?province=01", &fc)
	if len(fc.Features) != len(want) {
		t.Errorf("listed %d alerts; want %d", len(fc.Features), len(want))
	}
	for _, f := range fc.Features {
		if got := f.Properties.Alert.HubExpires; got != want[f.Properties.EntityID] {
			t.Errorf("GET /v1/alerts: %s hubExpires %q; want %q", f.Properties.EntityID, got, want[f.Properties.EntityID])
		}
	}
	for id, w := range want {
		var doc struct {
			HubExpires string `json:"hubExpires"`
			Info       []struct {
				Expires string `json:"expires"`
			} `json:"info"`
		}
		get("/v1/alerts/"+AlertID(id), &doc)
		if doc.HubExpires != w || len(doc.Info) != 1 || doc.Info[0].Expires != "" {
			t.Errorf("GET /v1/alerts/{%s}: hubExpires %q, info %v; want %q and the message's info without expires", id, doc.HubExpires, doc.Info, w)
		}
	}

	var items struct {
		Features []struct {
			Properties struct {
				EntityID       string `json:"entityId"`
				ExpiresDefault bool   `json:"expiresDefault"`
			} `json:"properties"`
		} `json:"features"`
	}
	get("/ogc/collections/alerts/items", &items)
	if len(items.Features) != len(want) {
		t.Errorf("OGC alerts: %d items; want %d", len(items.Features), len(want))
	}
	for _, f := range items.Features {
		if f.Properties.ExpiresDefault != (want[f.Properties.EntityID] != "") {
			t.Errorf("OGC alerts: %s expiresDefault %v; want %v", f.Properties.EntityID, f.Properties.ExpiresDefault, want[f.Properties.EntityID] != "")
		}
	}
}
