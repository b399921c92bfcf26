package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/aggregator/postgis"
	"github.com/iochub/iochub/services/gateway"
)

// The wards of Hà Nội the unit-scope matrix uses: a viewer and an operator
// are scoped to wardIn; wardOut is another ward of the same province.
const (
	wardIn  = "00070" // Hoàn Kiếm
	wardOut = "00004" // Ba Đình
)

// pointIn is a point inside unit code, from PostGIS.
func pointIn(t *testing.T, db *testenv.DBEnv, code string) (lon, lat float64) {
	t.Helper()
	err := db.Pool.QueryRow(context.Background(), `SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(boundary) AS p
		FROM admin_unit WHERE code = $1 AND valid_to IS NULL) s`, code).Scan(&lon, &lat)
	if err != nil {
		t.Fatalf("a point inside %s: %v", code, err)
	}
	return lon, lat
}

// liveEntities follows a live view: every entity it holds, by Feature id,
// with its properties; removes delete.
type liveEntities struct {
	ws      *websocket.Conn
	held    map[string]map[string]any
	removed []string
}

func dialAs(t *testing.T, base, query string, c cred) *liveEntities {
	t.Helper()
	h := http.Header{"Authorization": {"Bearer " + c.token}}
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/v1/live?"+query, h)
	if err != nil {
		t.Fatalf("dialing live %s as %s: %v", query, c.name, err)
	}
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	return &liveEntities{ws: ws, held: map[string]map[string]any{}}
}

// until reads frames until cond holds for what is held, or fails after timeout.
func (lv *liveEntities) until(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	_ = lv.ws.SetReadDeadline(time.Now().Add(timeout))
	for !cond() {
		_, msg, err := lv.ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s: %v; holding %v", what, err, slices.Sorted(maps.Keys(lv.held)))
		}
		var f struct {
			Type     string            `json:"type"`
			ID       string            `json:"id"`
			Entities []json.RawMessage `json:"entities"`
			Entity   json.RawMessage   `json:"entity"`
		}
		if err := json.Unmarshal(msg, &f); err != nil {
			t.Fatalf("live frame is not JSON: %v: %s", err, msg)
		}
		if f.Type == "remove" {
			delete(lv.held, f.ID)
			lv.removed = append(lv.removed, f.ID)
			continue
		}
		for _, raw := range append(f.Entities, f.Entity) {
			if len(raw) == 0 {
				continue
			}
			var ft struct {
				ID         string         `json:"id"`
				Properties map[string]any `json:"properties"`
			}
			if err := json.Unmarshal(raw, &ft); err != nil {
				t.Fatalf("entity is not a feature: %v: %s", err, raw)
			}
			lv.held[ft.ID] = ft.Properties
		}
	}
}

// holds reports whether the view holds an entity of layer in unit (for an
// alert: touching unit).
func (lv *liveEntities) holds(layer, unit string) string {
	for id, p := range lv.held {
		if p["layer"] != layer {
			continue
		}
		if p["unit"] == unit {
			return id
		}
		if a, ok := p["alert"].(map[string]any); ok {
			for _, u := range a["units"].([]any) {
				if u == unit {
					return id
				}
			}
		}
	}
	return ""
}

// TestAccessControlMatrixUnitScopes extends the isolation matrix to
// identities scoped to one ward of Hà Nội (real NATS, real PostGIS): they
// see their ward's entities on the live view and not another ward's, read
// alerts, reports and units of their ward only, are refused province 79, and
// an operator acts on reports of its ward only.
func TestAccessControlMatrixUnitScopes(t *testing.T) {
	n := testenv.NATS(t)
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()

	_, wardViewerTok := mustIdentity(t, db, "viewer of Hoàn Kiếm", auth.RoleViewer, wardIn)
	_, wardOperatorTok := mustIdentity(t, db, "operator of Hoàn Kiếm", auth.RoleOperator, wardIn)
	_, wardAdminTok := mustIdentity(t, db, "admin of Hoàn Kiếm", auth.RoleAdmin, wardIn)
	_, admin01Tok := mustIdentity(t, db, "admin of Hà Nội", auth.RoleAdmin, "01")
	src01, err := postgis.AddSource(ctx, db.Pool, postgis.Source{ID: "src01", UnitCode: "01"})
	if err != nil {
		t.Fatal(err)
	}
	h := startHubTB(t, "all", n, db, func(c *config) { c.Auth.IdentityRefresh = 200 * time.Millisecond })

	inLon, inLat := pointIn(t, db, wardIn)
	outLon, outLat := pointIn(t, db, wardOut)
	now := time.Now().UTC().Truncate(time.Second)
	report := func(id string, lon, lat float64) map[string]any {
		return map[string]any{"id": id, "type": "FieldReport", "category": "flooding", "dateReported": now.Format(time.RFC3339),
			"location": map[string]any{"type": "Point", "coordinates": []float64{lon, lat}}, "description": "Ngập"}
	}
	items := []any{
		report("r-in", inLon, inLat), report("r-out", outLon, outLat),
		airItem(t, "urn:ngsi-ld:AirQualityObserved:IN-1", "ST-IN", inLon, inLat, now),
		airItem(t, "urn:ngsi-ld:AirQualityObserved:OUT-1", "ST-OUT", outLon, outLat, now),
	}
	for _, it := range items {
		if code, res, raw := post(t, h.url+"/v1/feeds/"+map[bool]string{true: "report", false: "air"}[it.(map[string]any)["type"] == "FieldReport"],
			src01, []any{it}); code != http.StatusAccepted || res.Accepted != 1 || res.Results[0].Unit == "" {
			t.Fatalf("POST %v = %d %s", it.(map[string]any)["id"], code, raw)
		}
	}
	// An alert over a tiny square in the other ward only.
	d := 0.0005
	square := fmt.Sprintf("<polygon>%[2]f,%[1]f %[2]f,%[3]f %[4]f,%[3]f %[4]f,%[1]f %[2]f,%[1]f</polygon>", outLon-d, outLat-d, outLon+d, outLat+d)
	if code, res, raw := postCAP(t, h.url, src01, scAlert(t, "a-out", "Alert", "", now, now.Add(2*time.Hour), square)); code != http.StatusAccepted || res.Accepted != 1 {
		t.Fatalf("POST alert = %d %s", code, raw)
	}
	// An alert over both wards.
	both := fmt.Sprintf("<polygon>%[2]f,%[1]f %[2]f,%[3]f %[4]f,%[3]f %[4]f,%[1]f %[2]f,%[1]f</polygon>",
		min(inLon, outLon)-d, min(inLat, outLat)-d, max(inLon, outLon)+d, max(inLat, outLat)+d)
	if code, res, raw := postCAP(t, h.url, src01, scAlert(t, "a-both", "Alert", "", now, now.Add(2*time.Hour), both)); code != http.StatusAccepted || res.Accepted != 1 {
		t.Fatalf("POST alert = %d %s", code, raw)
	}
	if code, _, raw := call(t, cred{name: "dev", token: devToken}, "PUT", h.url+"/v1/rules/r01",
		`{"province":"01","kind":"congestion","params":{"maxSpeed":15},"for":"10m","severity":"Severe"}`, nil); code != http.StatusAccepted {
		t.Fatalf("PUT rule r01 = %d %s", code, raw)
	}
	waitRows(t, db, `SELECT count(*) FROM alert_rule`, 1)
	waitRows(t, db, `SELECT count(*) FROM report`, 2)
	waitRows(t, db, `SELECT count(*) FROM alert`, 2)
	waitRows(t, db, fmt.Sprintf(`SELECT count(*) FROM report WHERE unit_code IN ('%s', '%s')`, wardIn, wardOut), 2)
	var alertOut, alertBoth string
	if err := db.Pool.QueryRow(ctx, `SELECT (SELECT id FROM alert WHERE id LIKE '%a-out'), (SELECT id FROM alert WHERE id LIKE '%a-both')`).Scan(&alertOut, &alertBoth); err != nil {
		t.Fatalf("the alerts: %v", err)
	}
	var outTouchesIn bool
	if err := db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM alert_unit WHERE alert_id = $1 AND unit_code = $2)`, alertOut, wardIn).Scan(&outTouchesIn); err != nil || outTouchesIn {
		t.Fatalf("the other ward's alert touches %s (%v): the square is too large", wardIn, err)
	}
	alertOut, alertBoth = gateway.AlertID(alertOut), gateway.AlertID(alertBoth)

	viewer := cred{name: "viewer " + wardIn, token: wardViewerTok}
	operator := cred{name: "operator " + wardIn, token: wardOperatorTok}
	wardAdmin := cred{name: "admin " + wardIn, token: wardAdminTok}
	admin01 := cred{name: "admin 01", token: admin01Tok}
	rIn, rOut := "/v1/reports/"+url.PathEscape("src01/r-in"), "/v1/reports/"+url.PathEscape("src01/r-out")
	ident := func(role string, scopes ...string) string {
		b, _ := json.Marshal(map[string]any{"name": "made by the unit matrix", "role": role, "scopes": scopes})
		return string(b)
	}
	type cell struct {
		who                cred
		method, path, body string
		want               int
	}
	var cells []cell
	for _, who := range []cred{viewer, operator} {
		cells = append(cells,
			cell{who, "GET", "/v1/units?province=01", "", 200},
			cell{who, "GET", "/v1/alerts?province=01", "", 200},
			cell{who, "GET", "/v1/alerts", "", 200},
			cell{who, "GET", "/v1/rules?province=01", "", 200},
			cell{who, "GET", "/v1/units?province=79", "", 403},
			cell{who, "GET", "/v1/alerts?province=79", "", 403},
			cell{who, "GET", "/v1/rules?province=79", "", 403},
			cell{who, "GET", "/v1/alerts/" + alertBoth, "", 200},
			cell{who, "GET", "/v1/alerts/" + alertOut, "", 404},
			cell{who, "GET", "/v1/rules/r01", "", 200}, // rules are province-wide
			cell{who, "GET", "/v1/rules/r01/history", "", 200},
			cell{who, "GET", rIn, "", 200},
			cell{who, "GET", rOut, "", 404},
			cell{who, "PUT", "/v1/rules/n01", `{"province":"01","kind":"congestion","params":{"maxSpeed":10},"for":"5m","severity":"Minor"}`, 403},
		)
	}
	cells = append(cells,
		cell{viewer, "POST", rIn + "/status", `{"status":"in_progress"}`, 403},
		cell{operator, "POST", rIn + "/status", `{"status":"in_progress"}`, 202},
		cell{operator, "POST", rOut + "/status", `{"status":"in_progress"}`, 404}, // another ward of its province: not its to read
		cell{wardAdmin, "DELETE", "/v1/rules/r01", "", 403},                       // changing a rule needs admin of the province
		cell{operator, "GET", "/v1/deadletters", "", 200},
		cell{operator, "GET", "/v1/deadletters?province=79", "", 403},
		// Identities: unit scopes are granted within what the admin holds.
		cell{admin01, "POST", "/v1/admin/identities", ident("viewer", wardOut), 201},
		cell{admin01, "POST", "/v1/admin/identities", ident("viewer", "99999"), 400}, // no such unit
		cell{wardAdmin, "POST", "/v1/admin/identities", ident("viewer", wardIn), 201},
		cell{wardAdmin, "GET", "/metrics", "", 403},
		cell{wardAdmin, "POST", "/v1/admin/identities", ident("viewer", wardOut), 403},
		cell{wardAdmin, "POST", "/v1/admin/identities", ident("viewer", "01"), 403},
	)
	for _, c := range cells {
		t.Run(cellLabel(c.who.name, c.method+" "+c.path+" "+c.body), func(t *testing.T) {
			code, hdr, body := call(t, c.who, c.method, h.url+c.path, c.body, nil)
			if code != c.want {
				t.Fatalf("got %d %s; want %d", code, body, c.want)
			}
			if code >= 400 && hdr.Get("Content-Type") != "application/problem+json" {
				t.Errorf("a %d answer of type %q; want application/problem+json", code, hdr.Get("Content-Type"))
			}
		})
	}

	t.Run("lists hold the ward's things only", func(t *testing.T) {
		var fc struct {
			Features []struct {
				ID string `json:"id"`
			} `json:"features"`
		}
		_, _, body := call(t, viewer, "GET", h.url+"/v1/alerts", "", nil)
		if err := json.Unmarshal([]byte(body), &fc); err != nil {
			t.Fatal(err)
		}
		if len(fc.Features) != 1 || fc.Features[0].ID != alertBoth {
			t.Errorf("the ward viewer lists alerts %v; want only %s", fc.Features, alertBoth)
		}
		_, _, body = call(t, cred{name: "dev", token: devToken}, "GET", h.url+"/v1/alerts?province=01", "", nil)
		if err := json.Unmarshal([]byte(body), &fc); err != nil || len(fc.Features) != 2 {
			t.Errorf("the dev token lists %s; want both alerts", body)
		}
		_, _, body = call(t, viewer, "GET", h.url+"/v1/units?province=01", "", nil)
		if err := json.Unmarshal([]byte(body), &fc); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, f := range fc.Features {
			ids = append(ids, f.ID)
		}
		if !slices.Equal(ids, []string{"01", wardIn}) {
			t.Errorf("the ward viewer's units of 01 are %v; want the province's outline and its ward", ids)
		}
	})

	t.Run("live view", func(t *testing.T) {
		if got := dialStatus(t, h.url, "province=79", viewer, ""); got != 403 {
			t.Errorf("ward viewer on province 79: %d; want 403", got)
		}
		// The dev token sees both wards: the data is there.
		dev := dialAs(t, h.url, "province=01", cred{name: "dev", token: devToken})
		dev.until(t, "both wards on the dev view", 15*time.Second, func() bool {
			return dev.holds("air", wardIn) != "" && dev.holds("air", wardOut) != "" && dev.holds("report", wardIn) != "" &&
				dev.holds("report", wardOut) != "" && dev.holds("alert", wardOut) != "" && len(dev.held) == 6
		})
		for _, who := range []cred{viewer, operator} {
			lv := dialAs(t, h.url, "province=01", who)
			lv.until(t, "the ward's entities", 15*time.Second, func() bool {
				return lv.holds("air", wardIn) != "" && lv.holds("report", wardIn) != "" && lv.holds("alert", wardIn) != ""
			})
			if len(lv.held) != 3 {
				t.Errorf("%s holds %v; want the ward's air station, report and alert only", who.name, slices.Sorted(maps.Keys(lv.held)))
			}
			for id, p := range lv.held {
				if p["layer"] != "alert" && p["unit"] != wardIn {
					t.Errorf("%s sees %s of unit %v", who.name, id, p["unit"])
				}
			}
		}
		// The ward's station moves into the other ward: the ward viewer gets a remove.
		lv := dialAs(t, h.url, "province=01", viewer)
		lv.until(t, "the ward's station", 15*time.Second, func() bool { return lv.holds("air", wardIn) != "" })
		station := lv.holds("air", wardIn)
		moved := airItem(t, "urn:ngsi-ld:AirQualityObserved:IN-2", "ST-IN", outLon, outLat, now.Add(time.Minute))
		if code, _, raw := post(t, h.url+"/v1/feeds/air", src01, []any{moved}); code != http.StatusAccepted {
			t.Fatalf("POST moved station = %d %s", code, raw)
		}
		lv.until(t, "the remove of the moved station", 15*time.Second, func() bool { return slices.Contains(lv.removed, station) })
		dev.until(t, "the moved station on the dev view", 15*time.Second, func() bool {
			p := dev.held[station]
			return p != nil && p["unit"] == wardOut
		})
	})
}
