package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/testenv"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

const (
	replayViewer79      = "iocid_replay-viewer-79"
	replayTrafficViewer = "iocid_replay-traffic-01" // a key of the kind traffic only
)

type replayDoc struct {
	Type     string `json:"type"`
	Province string `json:"province"`
	At       string `json:"at"`
	Entities []struct {
		ID         string `json:"id"`
		Properties struct {
			Layer       string `json:"layer"`
			Unit        string `json:"unit"`
			Observation struct {
				Time   time.Time          `json:"time"`
				Values map[string]float64 `json:"values"`
			} `json:"observation"`
		} `json:"properties"`
	} `json:"entities"`
	Rollups []struct {
		Unit        string    `json:"unit"`
		Layer       string    `json:"layer"`
		Window      string    `json:"window"`
		WindowStart time.Time `json:"windowStart"`
		AQIMax      *int      `json:"aqiMax"`
	} `json:"rollups"`
}

// TestReplay: GET /v1/replay shows each station at its latest stored
// observation at or before at (none older than two hours), the alerts active
// at at, and the 1h roll-ups of the window holding at; a viewer of another
// province is refused and at older than 24 hours is a 400 naming at.
func TestReplay(t *testing.T) {
	db := testenv.PostGIS(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	t1, t2 := now.Add(-6*time.Hour), now.Add(-time.Hour)
	if _, err := db.Pool.Exec(ctx, `
CREATE TABLE air_observation_test PARTITION OF air_observation DEFAULT;
CREATE TABLE traffic_observation_test PARTITION OF traffic_observation DEFAULT`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `
INSERT INTO air_observation (source_id, event_id, observed_at, received_at, station_id, province, unit_code, location, pm25, aqi)
VALUES ('s', 'a1', $1::timestamptz - interval '10 minutes', $1, 'st-a', '01', '00070', ST_Point(105.85, 21.03, 4326), 10, 20),
       ('s', 'a2', $1::timestamptz + interval '10 minutes', $1, 'st-a', '01', '00070', ST_Point(105.85, 21.03, 4326), 99, 99),
       ('s', 'a3', $2::timestamptz - interval '10 minutes', $2, 'st-a', '01', '00070', ST_Point(105.85, 21.03, 4326), 50, 140),
       ('s', 'b1', $1::timestamptz - interval '30 minutes', $1, 'st-b', '01', '00070', ST_Point(105.86, 21.04, 4326), 7, 15),
       ('s', 'b0', $1::timestamptz - interval '3 hours', $1, 'st-b0', '01', '00070', ST_Point(105.86, 21.04, 4326), 7, 15),
       ('s', 'h1', $1::timestamptz - interval '5 minutes', $1, 'st-hcm', '79', '79', ST_Point(106.7, 10.8, 4326), 1, 1)`, t1, t2); err != nil {
		t.Fatal(err)
	}
	// The current rows the aggregator keeps beside every observation (the
	// replay enumerates a province's stations and segments from them).
	if _, err := db.Pool.Exec(ctx, `
INSERT INTO sensor (kind, id, province, unit_code, source_id, last_event_id, last_observed_at)
VALUES ('air', 'st-a', '01', '00070', 's', 'a3', $2), ('air', 'st-b', '01', '00070', 's', 'b1', $1),
       ('air', 'st-b0', '01', '00070', 's', 'b0', $1), ('air', 'st-hcm', '79', '79', 's', 'h1', $1)`, t1, t2); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO road_segment (id, province, unit_code, source_id, last_event_id, last_observed_at)
VALUES ('seg-1', '01', '00070', 's', 'g1', $1)`, t2); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `
INSERT INTO traffic_observation (source_id, event_id, observed_at, received_at, segment_id, province, unit_code, geom, average_vehicle_speed)
VALUES ('s', 'g1', $1::timestamptz - interval '1 minute', $1, 'seg-1', '01', '00070',
        ST_GeomFromText('LINESTRING(105.81 21.02,105.82 21.03)', 4326), 23.5)`, t2); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `
INSERT INTO rollup (unit_code, layer, win, window_start, province, n, aqi_n, aqi_sum, aqi_max)
VALUES ('00070', 'air', '1h', date_bin(interval '1 hour', $1::timestamptz, timestamptz '2000-01-01 00:00+00'), '01', 2, 2, 40, 20),
       ('00070', 'air', '1h', date_bin(interval '1 hour', $2::timestamptz, timestamptz '2000-01-01 00:00+00'), '01', 1, 1, 140, 140)`,
		t1, t2); err != nil {
		t.Fatal(err)
	}
	body, err := proto.Marshal(&iocv1.Alert{Id: "flood", Identifier: "flood", Sender: "kttv", Status: "Actual", MsgType: "Alert",
		Info: []*iocv1.AlertInfo{{Event: "Lũ", Headline: "Lũ sông Hồng"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO alert (id, source_id, event_id, identifier, sender, sent, status, msg_type,
		state, province, unit_code, received_at, body, active_from, active_until)
		VALUES ('kttv/flood', 'kttv', 'flood', 'flood', 'kttv', $1::timestamptz - interval '1 hour', 'Actual', 'Alert',
		'expired', '01', '00070', $1, $2, $1::timestamptz - interval '1 hour', $1::timestamptz + interval '1 hour')`, t1, body); err != nil {
		t.Fatal(err)
	}
	a := testAuth(t, &fakeLoader{list: []auth.Identity{
		{ID: "id_00000000000000e1", Name: "viewer of 79", Role: auth.RoleViewer, Scopes: []string{"79"}, TokenSHA256: auth.HashToken(replayViewer79)},
		{ID: "id_00000000000000e2", Name: "traffic app", Role: auth.RoleViewer, Scopes: []string{"01"}, Kinds: []string{"traffic"}, TokenSHA256: auth.HashToken(replayTrafficViewer)},
	}})
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	read, err := schema.OpenRead(ctx, db.URL, schema.ReadOptions{MaxConns: 2, StatementTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(read.Close)
	g, err := New(Config{}, Deps{JS: testenv.NATS(t).JS, Pool: db.Pool, ReadPool: read, Metrics: prometheus.NewRegistry(), Auth: a})
	if err != nil {
		t.Fatal(err)
	}
	srv := serveGateway(t, g, withTestToken)

	get := func(token, query string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/replay?"+query, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	replay := func(at time.Time) (map[string]float64, map[string]bool, replayDoc) {
		t.Helper()
		code, b := get("", "province=01&at="+url.QueryEscape(at.Format(time.RFC3339)))
		if code != http.StatusOK {
			t.Fatalf("replay at %s = %d %s; want 200", at, code, b)
		}
		var d replayDoc
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("decoding %s: %v", b, err)
		}
		if d.Type != "replay" || d.Province != "01" {
			t.Errorf("replay = type %q province %q; want replay of 01", d.Type, d.Province)
		}
		pm := map[string]float64{}
		ids := map[string]bool{}
		for _, e := range d.Entities {
			ids[e.ID] = true
			if e.Properties.Layer == "air" {
				pm[e.ID] = e.Properties.Observation.Values["pm25"]
			}
		}
		return pm, ids, d
	}

	pm, ids, d := replay(t1)
	if len(pm) != 2 || pm["air/st-a"] != 10 || pm["air/st-b"] != 7 {
		t.Errorf("air at T1 = %v; want st-a 10 (its row before T1, not the one after), st-b 7, no st-b0 (3 h old) nor st-hcm (79)", pm)
	}
	if !ids["kttv/flood"] && !ids[AlertID("kttv/flood")] {
		t.Errorf("entities at T1 = %v; want the alert kttv/flood active then", ids)
	}
	if ids["traffic/seg-1"] {
		t.Errorf("entities at T1 hold seg-1, observed only later")
	}
	if len(d.Rollups) != 1 || d.Rollups[0].AQIMax == nil || *d.Rollups[0].AQIMax != 20 || d.Rollups[0].Window != "1h" {
		t.Errorf("roll-ups at T1 = %+v; want the 1h window of T1 (aqiMax 20)", d.Rollups)
	}

	pm, ids, d = replay(t2)
	if len(pm) != 1 || pm["air/st-a"] != 50 {
		t.Errorf("air at T2 = %v; want st-a 50 only (st-b's row is over 2 h old)", pm)
	}
	if ids["kttv/flood"] || ids[AlertID("kttv/flood")] {
		t.Errorf("entities at T2 hold the alert that ended before")
	}
	if !ids["traffic/seg-1"] {
		t.Errorf("entities at T2 = %v; want traffic/seg-1", ids)
	}
	if len(d.Rollups) != 1 || d.Rollups[0].AQIMax == nil || *d.Rollups[0].AQIMax != 140 {
		t.Errorf("roll-ups at T2 = %+v; want the 1h window of T2 (aqiMax 140)", d.Rollups)
	}

	code, b := get("", "province=01&at="+url.QueryEscape(t2.Format(time.RFC3339))+"&layers=traffic")
	if code != http.StatusOK || json.Unmarshal(b, &d) != nil || len(d.Entities) != 1 {
		t.Errorf("layers=traffic = %d %s; want seg-1 only", code, b)
	}
	// A key of the kind traffic gets traffic's entities and no air roll-up.
	code, b = get(replayTrafficViewer, "province=01&at="+url.QueryEscape(t2.Format(time.RFC3339)))
	d = replayDoc{}
	if code != http.StatusOK || json.Unmarshal(b, &d) != nil || len(d.Entities) != 1 || len(d.Rollups) != 0 {
		t.Errorf("traffic key = %d %s; want seg-1 and no roll-up of air", code, b)
	}
	if code, b := get(replayViewer79, "province=01&at="+url.QueryEscape(t2.Format(time.RFC3339))); code != http.StatusForbidden {
		t.Errorf("viewer of 79 replaying 01 = %d %s; want 403", code, b)
	}
	for _, at := range []time.Time{now.Add(-25 * time.Hour), now.Add(time.Hour)} {
		code, b := get("", "province=01&at="+url.QueryEscape(at.Format(time.RFC3339)))
		var p struct {
			Detail string `json:"detail"`
		}
		if code != http.StatusBadRequest || json.Unmarshal(b, &p) != nil || !strings.Contains(p.Detail, "parameter at") {
			t.Errorf("at=%s = %d %s; want 400 naming parameter at", at, code, b)
		}
	}
	if code, b := get("", "province=01"); code != http.StatusBadRequest {
		t.Errorf("without at = %d %s; want 400", code, b)
	}
}
