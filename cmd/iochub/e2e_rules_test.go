package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/iochub/iochub/internal/alertrule"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
	"github.com/iochub/iochub/services/aggregator/postgis"
	"github.com/iochub/iochub/services/aggregator/rules"
)

// ruleFeature is what the rules tests read of a live feature.
type ruleFeature struct {
	ID       string `json:"id"`
	Geometry *struct {
		Type string `json:"type"`
	} `json:"geometry"`
	Properties struct {
		Layer       string `json:"layer"`
		EntityID    string `json:"entityId"`
		Observation *struct {
			ID string `json:"id"`
		} `json:"observation"`
		Alert *struct {
			Identifier string   `json:"identifier"`
			MsgType    string   `json:"msgType"`
			State      string   `json:"state"`
			RuleID     string   `json:"ruleId"`
			Units      []string `json:"units"`
			Info       []struct {
				Language string   `json:"language"`
				Category []string `json:"category"`
				Severity string   `json:"severity"`
				Headline string   `json:"headline"`
			} `json:"info"`
		} `json:"alert"`
	} `json:"properties"`
}

// liveLog keeps every feature a live socket receives, so that a test can
// wait for one without losing the frames read while waiting for another.
type liveLog struct {
	mu    sync.Mutex
	feats []ruleFeature
	err   error
}

func watchLive(t *testing.T, ws *websocket.Conn) *liveLog {
	l := &liveLog{}
	go func() {
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				l.mu.Lock()
				l.err = err
				l.mu.Unlock()
				return
			}
			var f liveFrame
			if err := json.Unmarshal(msg, &f); err != nil {
				l.mu.Lock()
				l.err = fmt.Errorf("live frame is not JSON: %w: %s", err, msg)
				l.mu.Unlock()
				return
			}
			for _, raw := range append(f.Entities, f.Entity) {
				if len(raw) == 0 {
					continue
				}
				var ft ruleFeature
				if err := json.Unmarshal(raw, &ft); err != nil {
					l.mu.Lock()
					l.err = fmt.Errorf("entity is not a feature: %w: %s", err, raw)
					l.mu.Unlock()
					return
				}
				l.mu.Lock()
				l.feats = append(l.feats, ft)
				l.mu.Unlock()
			}
		}
	}()
	return l
}

// wait returns the first feature received that satisfies ok, waiting up to timeout.
func (l *liveLog) wait(t *testing.T, what string, timeout time.Duration, ok func(ruleFeature) bool) ruleFeature {
	t.Helper()
	var found ruleFeature
	seen := 0
	testkit.Eventually(t, timeout, what+" on the live view", func() (bool, string) {
		l.mu.Lock()
		feats, err := l.feats[seen:], l.err
		seen = len(l.feats)
		l.mu.Unlock()
		for _, f := range feats {
			if ok(f) {
				found = f
				return true, ""
			}
		}
		if err != nil {
			t.Fatalf("waiting for %s on the live view: %v", what, err)
		}
		return false, fmt.Sprintf("%d features, none matching", seen)
	})
	return found
}

// observed matches the state of entity with observation id.
func observed(entity, id string) func(ruleFeature) bool {
	return func(f ruleFeature) bool {
		return f.Properties.EntityID == entity && f.Properties.Observation != nil && f.Properties.Observation.ID == id
	}
}

// alertOf matches the live alert entity rules/<identifier> in state.
func alertOf(identifier, state string) func(ruleFeature) bool {
	return func(f ruleFeature) bool {
		return f.Properties.Layer == "alert" && f.Properties.EntityID == alertrule.SourceID+"/"+identifier &&
			f.Properties.Alert != nil && f.Properties.Alert.State == state
	}
}

// ruleRequest sends an operator request and returns the status and body.
func ruleRequest(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Iochub-Actor", "e2e-operator")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// putRuleAPI puts a rule through the gateway and waits until the aggregator
// has applied it (GET answers its version) and the engine has loaded it
// (inForce rules in force).
func putRuleAPI(t *testing.T, base, id, body string, version, inForce int) {
	t.Helper()
	code, raw := ruleRequest(t, "PUT", base+"/v1/rules/"+id, devToken, body)
	if code != http.StatusAccepted {
		t.Fatalf("PUT /v1/rules/%s = %d %s; want 202", id, code, raw)
	}
	testkit.Eventually(t, 20*time.Second, fmt.Sprintf("rule %s version %d applied", id, version), func() (bool, string) {
		code, raw := ruleRequest(t, "GET", base+"/v1/rules/"+id, devToken, "")
		var got struct {
			Version int `json:"version"`
		}
		return code == http.StatusOK && json.Unmarshal([]byte(raw), &got) == nil && got.Version == version,
			fmt.Sprintf("GET = %d %.200s", code, raw)
	})
	waitInForce(t, base, inForce)
}

// waitInForce waits until the engine reports n rules in force on /metrics.
func waitInForce(t *testing.T, base string, n int) {
	t.Helper()
	want := fmt.Sprintf("\niochub_rules_in_force %d\n", n)
	testkit.Eventually(t, 20*time.Second, fmt.Sprintf("%d rules in force", n), func() (bool, string) {
		code, raw := ruleRequest(t, "GET", base+"/metrics", devToken, "")
		return code == http.StatusOK && strings.Contains(raw, want), fmt.Sprintf("GET /metrics = %d", code)
	})
}

// send posts one item of kind about entity and waits until its state is on
// the live view, so that the rules engine sees every observation (STATE keeps
// only the newest of each entity: items stored in one batch would be seen as one).
func send(t *testing.T, live *liveLog, base, token, kind, entity string, item map[string]any) {
	t.Helper()
	code, res, raw := post(t, base+"/v1/feeds/"+kind, token, []any{item})
	if code != http.StatusAccepted || res.Accepted != 1 {
		t.Fatalf("POST /v1/feeds/%s = %d %s; want 202 with 1 accepted", kind, code, raw)
	}
	event := fmt.Sprint(item["id"]) + "@" + fmt.Sprint(item["dateObserved"])
	live.wait(t, "the state of "+entity+" observed by "+event, 30*time.Second, observed(entity, event))
}

// TestEndToEndRules drives each kind of rule from feeds to an alert on the
// live view (with its rule id) and back to cancelled, on real NATS and
// PostGIS, with the rules managed through the gateway's operator API.
func TestEndToEndRules(t *testing.T) {
	db, token, h := hoanKiemHub(t)
	ctx := context.Background()
	live := watchLive(t, dialLive(t, h.url, "01"))
	// Observation times an hour and more in the past: rules measure durations on them.
	base := time.Now().Add(-6 * time.Hour).Truncate(time.Hour)
	stamp := func(d time.Duration) string { return base.Add(d).UTC().Format(time.RFC3339) }

	t.Run("api", func(t *testing.T) {
		code, raw := ruleRequest(t, "PUT", h.url+"/v1/rules/bad", devToken,
			`{"province":"01","kind":"congestion","params":{},"for":"-5m","severity":"Minor"}`)
		if code != http.StatusBadRequest || !strings.Contains(raw, `"field":"params.maxSpeed"`) ||
			!strings.Contains(raw, `for: \"-5m\" is negative`) {
			t.Errorf("invalid rule: got %d %s; want 400 naming params.maxSpeed and for", code, raw)
		}
		code, raw = ruleRequest(t, "PUT", h.url+"/v1/rules/x", "wrong-token", `{}`)
		if code != http.StatusUnauthorized {
			t.Errorf("wrong token: got %d %s; want 401", code, raw)
		}
		code, raw = ruleRequest(t, "DELETE", h.url+"/v1/rules/none", devToken, "")
		if code != http.StatusNotFound {
			t.Errorf("DELETE of a missing rule: got %d %s; want 404", code, raw)
		}
		code, raw = ruleRequest(t, "GET", h.url+"/v1/rules?province=1", devToken, "")
		if code != http.StatusBadRequest {
			t.Errorf("GET with a bad province: got %d %s; want 400", code, raw)
		}
	})

	t.Run("congestion", func(t *testing.T) {
		putRuleAPI(t, h.url, "hk-jam", `{"province":"01","kind":"congestion","params":{"maxSpeed":15},"for":"10m","severity":"Severe"}`, 1, 1)
		const segment = "urn:ngsi-ld:RoadSegment:HN-TrangTien"
		item := func(min int, speed float64) map[string]any {
			return map[string]any{
				"id": fmt.Sprintf("tf-%d", min), "type": "TrafficFlowObserved", "refRoadSegment": segment, "name": "Tràng Tiền",
				"location":     map[string]any{"type": "LineString", "coordinates": [][]float64{{105.8535, 21.0245}, {105.8555, 21.0250}}},
				"dateObserved": stamp(time.Duration(min) * time.Minute), "averageVehicleSpeed": speed, "intensity": 300,
			}
		}
		// Slow for 10 minutes of observation time: raised by the 10th.
		for _, min := range []int{0, 5} {
			send(t, live, h.url, token, "traffic", segment, item(min, 8))
		}
		send(t, live, h.url, token, "traffic", segment, item(10, 12))
		ident := rules.Identifier("hk-jam", segment, base)
		f := live.wait(t, "the congestion alert", 30*time.Second, alertOf(ident, "active"))
		a := f.Properties.Alert
		if a.RuleID != "hk-jam" || a.MsgType != "Alert" || len(a.Info) != 2 || a.Info[0].Language != "vi-VN" ||
			a.Info[1].Category[0] != "Transport" || a.Info[1].Severity != "Severe" {
			t.Errorf("alert: %+v; want rule hk-jam, Transport, Severe, vi and en", a)
		}
		// Each info block (vi, en) carries the area; the live view shows the areas collected.
		if f.Geometry == nil || f.Geometry.Type != "Polygon" && f.Geometry.Type != "MultiPolygon" || !contains(a.Units, "00070") {
			t.Errorf("alert geometry %v, units %v; want a polygon around the segment touching its units", f.Geometry, a.Units)
		}
		// The speed recovers: the alert is cancelled.
		send(t, live, h.url, token, "traffic", segment, item(12, 40))
		f = live.wait(t, "the cancelled congestion alert", 30*time.Second, alertOf(ident, "cancelled"))
		if f.Properties.Alert.RuleID != "hk-jam" {
			t.Errorf("cancelled alert's rule = %q; want hk-jam", f.Properties.Alert.RuleID)
		}
		var state, src string
		if err := db.Pool.QueryRow(ctx, `SELECT state, source_id FROM alert WHERE identifier = $1`, ident).Scan(&state, &src); err != nil || state != "cancelled" || src != "rules" {
			t.Errorf("stored alert: %q from %q, %v; want cancelled from rules", state, src, err)
		}
	})

	t.Run("water_level", func(t *testing.T) {
		putRuleAPI(t, h.url, "hk-flood", `{"province":"01","kind":"water_level","params":{"minAlarm":2},"severity":"Extreme"}`, 1, 2)
		const station = "urn:ngsi-ld:PointOfInterest:HN-HoanKiem-lake"
		item := func(min int, level float64) map[string]any {
			return map[string]any{
				"id": fmt.Sprintf("wl-%d", min), "type": "WaterQualityObserved", "refPointOfInterest": station,
				"location":     map[string]any{"type": "Point", "coordinates": []float64{105.8522, 21.0288}},
				"dateObserved": stamp(time.Duration(min) * time.Minute), "waterLevel": level,
				"alarmLevel1": 1.0, "alarmLevel2": 2.0, "alarmLevel3": 3.0,
			}
		}
		send(t, live, h.url, token, "water", station, item(0, 1.5))
		send(t, live, h.url, token, "water", station, item(5, 2.4))
		ident := rules.Identifier("hk-flood", station, base.Add(5*time.Minute))
		f := live.wait(t, "the water level alert", 30*time.Second, alertOf(ident, "active"))
		if a := f.Properties.Alert; a.RuleID != "hk-flood" || a.Info[1].Category[0] != "Met" || a.Info[1].Severity != "Extreme" {
			t.Errorf("alert: %+v; want rule hk-flood, Met, Extreme", a)
		}
		if f.Geometry == nil || f.Geometry.Type != "Point" && f.Geometry.Type != "MultiPoint" && f.Geometry.Type != "GeometryCollection" {
			t.Errorf("alert geometry %v; want the station's Point", f.Geometry)
		}
		send(t, live, h.url, token, "water", station, item(20, 0.8))
		live.wait(t, "the cancelled water level alert", 30*time.Second, alertOf(ident, "cancelled"))
	})

	t.Run("aqi_band", func(t *testing.T) {
		putRuleAPI(t, h.url, "hk-smog", `{"province":"01","kind":"aqi_band","params":{"minBand":4},"for":"1h","severity":"Moderate"}`, 1, 3)
		const station = "urn:ngsi-ld:PointOfInterest:HN-HK-air"
		item := func(hour int, pm25 float64) map[string]any {
			it := airItem(t, fmt.Sprintf("aq-%d", hour), station, 105.8522, 21.0288, base.Add(time.Duration(hour)*time.Hour))
			it["pm25"] = pm25
			return it
		}
		// PM2.5 at 200 µg/m³ every hour: NowCast needs two hours, then the band
		// (5, Rất xấu) must hold for an hour of observation time.
		for hour := 0; hour <= 3; hour++ {
			send(t, live, h.url, token, "air", station, item(hour, 200))
		}
		f := live.wait(t, "the air quality alert", 30*time.Second, func(f ruleFeature) bool {
			return f.Properties.Layer == "alert" && f.Properties.Alert != nil && f.Properties.Alert.RuleID == "hk-smog" &&
				f.Properties.Alert.MsgType == "Alert" && f.Properties.Alert.State == "active"
		})
		if a := f.Properties.Alert; a.Info[1].Category[0] != "Env" || !strings.HasPrefix(a.Identifier, "rule:hk-smog:"+station+":") {
			t.Errorf("alert: %+v; want Env and identifier rule:hk-smog:<station>:…", a)
		}
		// Clean air again: the NowCast falls below band 4 within two hours.
		for hour := 4; hour <= 6; hour++ {
			send(t, live, h.url, token, "air", station, item(hour, 5))
		}
		live.wait(t, "the cancelled air quality alert", 30*time.Second, alertOf(f.Properties.Alert.Identifier, "cancelled"))
	})

	t.Run("history and delete", func(t *testing.T) {
		putRuleAPI(t, h.url, "hk-jam", `{"province":"01","kind":"congestion","params":{"maxSpeed":20},"for":"15m","severity":"Minor"}`, 2, 3)
		code, raw := ruleRequest(t, "DELETE", h.url+"/v1/rules/hk-jam", devToken, "")
		if code != http.StatusAccepted {
			t.Fatalf("DELETE = %d %s; want 202", code, raw)
		}
		testkit.Eventually(t, 20*time.Second, "the rule deleted", func() (bool, string) {
			code, _ := ruleRequest(t, "GET", h.url+"/v1/rules/hk-jam", devToken, "")
			return code == http.StatusNotFound, fmt.Sprintf("GET = %d", code)
		})
		waitInForce(t, h.url, 2)
		code, raw = ruleRequest(t, "GET", h.url+"/v1/rules/hk-jam/history", devToken, "")
		var hist struct {
			Versions []struct {
				Actor   string          `json:"actor"`
				Version int             `json:"version"`
				Before  json.RawMessage `json:"before"`
				After   json.RawMessage `json:"after"`
			} `json:"versions"`
		}
		if code != http.StatusOK || json.Unmarshal([]byte(raw), &hist) != nil || len(hist.Versions) != 3 {
			t.Fatalf("history = %d %s; want 3 versions", code, raw)
		}
		v := hist.Versions
		if string(v[0].Before) != "null" || v[0].Version != 1 || v[0].Actor != "dev as e2e-operator" ||
			!bytes.Contains(v[1].Before, []byte(`"maxSpeed":15`)) || !bytes.Contains(v[1].After, []byte(`"maxSpeed":20`)) || v[1].Version != 2 ||
			!bytes.Contains(v[2].Before, []byte(`"version":2`)) || string(v[2].After) != "null" {
			t.Errorf("history: %s", raw)
		}
		code, raw = ruleRequest(t, "GET", h.url+"/v1/rules?province=01", devToken, "")
		var list struct {
			Rules []struct {
				ID string `json:"id"`
			} `json:"rules"`
		}
		if code != http.StatusOK || json.Unmarshal([]byte(raw), &list) != nil || len(list.Rules) != 2 ||
			list.Rules[0].ID != "hk-flood" || list.Rules[1].ID != "hk-smog" {
			t.Errorf("GET /v1/rules?province=01 = %d %s; want hk-flood and hk-smog", code, raw)
		}
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// metric returns the value of the series named exactly series on /metrics, 0 when absent.
func metric(t *testing.T, base, series string) float64 {
	t.Helper()
	code, raw := ruleRequest(t, "GET", base+"/metrics", devToken, "")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", code)
	}
	for _, line := range strings.Split(raw, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("metric %s: %q: %v", series, line, err)
			}
			return f
		}
	}
	return 0
}

// TestEndToEndRulesRestart stops every role while a rule's alert is raised
// and starts them again: the engine finds the alert in the alert table, does
// not raise it twice on the redelivered state, and cancels it on recovery.
func TestEndToEndRulesRestart(t *testing.T) {
	n := testenv.NATS(t)
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	token, err := postgis.AddSource(ctx, db.Pool, postgis.Source{ID: "hn-hoankiem", Name: "Hoàn Kiếm IOC", UnitCode: "00070"})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Minute)
	const segment = "seg-restart"
	item := func(min int, speed float64) map[string]any {
		return map[string]any{
			"id": fmt.Sprintf("tf-%d", min), "type": "TrafficFlowObserved", "refRoadSegment": segment,
			"location":     map[string]any{"type": "LineString", "coordinates": [][]float64{{105.8535, 21.0245}, {105.8555, 21.0250}}},
			"dateObserved": base.Add(time.Duration(min) * time.Minute).UTC().Format(time.RFC3339), "averageVehicleSpeed": speed,
		}
	}
	ident := rules.Identifier("jam", segment, base)

	h1 := startHub(t, "all", n, db)
	live := watchLive(t, dialLive(t, h1.url, "01"))
	putRuleAPI(t, h1.url, "jam", `{"province":"01","kind":"congestion","params":{"maxSpeed":15},"for":"0s","severity":"Minor"}`, 1, 1)
	send(t, live, h1.url, token, "traffic", segment, item(0, 5))
	live.wait(t, "the congestion alert", 30*time.Second, alertOf(ident, "active"))
	if err := h1.roles.Stop(); err != nil {
		t.Fatal(err)
	}

	h2 := startHub(t, "all", n, db)
	live = watchLive(t, dialLive(t, h2.url, "01"))
	// The segment's last state, still congested, is evaluated again after the restart ...
	testkit.Eventually(t, 20*time.Second, "the restarted engine to evaluate a state", func() (bool, string) {
		n := metric(t, h2.url, "iochub_rules_states_total")
		return n >= 1, fmt.Sprintf("%v states", n)
	})
	// ... and the recovery cancels the alert raised before the restart.
	send(t, live, h2.url, token, "traffic", segment, item(5, 50))
	live.wait(t, "the cancelled congestion alert", 30*time.Second, alertOf(ident, "cancelled"))
	if got := metric(t, h2.url, `iochub_rules_alerts_total{action="raise"}`); got != 0 {
		t.Errorf("the restarted engine raised %v alerts; want 0", got)
	}
	var raised int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM alert WHERE source_id = 'rules' AND msg_type = 'Alert'`).Scan(&raised); err != nil || raised != 1 {
		t.Errorf("alerts raised by rules in the table: %d, %v; want 1", raised, err)
	}
}
