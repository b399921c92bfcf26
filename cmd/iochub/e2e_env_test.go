package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// liveView reads the live WebSocket and keeps the latest Feature of every
// entity it has seen, so that entities that came in one frame are not lost.
type liveView struct {
	ws     *websocket.Conn
	latest map[string][2]map[string]any // entity id → properties, geometry
}

func newLiveView(t *testing.T, base, province string) *liveView {
	return &liveView{ws: dialLive(t, base, province), latest: map[string][2]map[string]any{}}
}

// wait reads frames until the entity's Feature satisfies ok, and returns its
// properties and geometry as generic JSON.
func (lv *liveView) wait(t *testing.T, entityID string, timeout time.Duration, ok func(map[string]any) bool) (map[string]any, map[string]any) {
	t.Helper()
	if f, seen := lv.latest[entityID]; seen && ok(f[0]) {
		return f[0], f[1]
	}
	_ = lv.ws.SetReadDeadline(time.Now().Add(timeout))
	for {
		_, msg, err := lv.ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s on the live view: %v; last seen %v", entityID, err, lv.latest[entityID][0])
		}
		var f liveFrame
		if err := json.Unmarshal(msg, &f); err != nil {
			t.Fatalf("live frame is not JSON: %v: %s", err, msg)
		}
		for _, raw := range append(f.Entities, f.Entity) {
			if len(raw) == 0 {
				continue
			}
			var ft struct {
				Geometry   map[string]any `json:"geometry"`
				Properties map[string]any `json:"properties"`
			}
			if err := json.Unmarshal(raw, &ft); err != nil {
				t.Fatalf("entity is not a feature: %v: %s", err, raw)
			}
			id, _ := ft.Properties["entityId"].(string)
			lv.latest[id] = [2]map[string]any{ft.Properties, ft.Geometry}
		}
		if f, seen := lv.latest[entityID]; seen && ok(f[0]) {
			return f[0], f[1]
		}
	}
}

func any1(map[string]any) bool { return true }

func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }

// stationItem is an AirQualityObserved of PM2.5 and PM10 only at a Hoàn Kiếm station.
func stationItem(station string, at time.Time, pm25, pm10 float64) map[string]any {
	return map[string]any{
		"id": station + "-" + at.UTC().Format("20060102T1504"), "type": "AirQualityObserved", "refDevice": station,
		"dateObserved": at.UTC().Format(time.RFC3339), "location": map[string]any{"type": "Point", "coordinates": []float64{105.8522, 21.0288}},
		"pm25": pm25, "pm10": pm10, "name": "Trạm Hoàn Kiếm",
	}
}

// TestEndToEndAQI feeds 14 hours of PM observations with gaps through the
// whole pipeline (POST → FEEDS → aggregator → PostGIS and STATE → live view)
// and checks the VN_AQI on the live view and in the database: 50 µg/m³ of
// PM2.5 is AQI 100 (band 2, Trung bình) by the NowCast whatever hours are
// missing, as long as 2 of the latest 3 are there; when they are not, the
// state says why.
func TestEndToEndAQI(t *testing.T) {
	n := testenv.NATS(t)
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	token, err := postgis.AddSource(ctx, db.Pool, postgis.Source{ID: "hk-air", Name: "Hoàn Kiếm air", UnitCode: "00070"})
	if err != nil {
		t.Fatal(err)
	}
	h := startHub(t, "all", n, db)
	live := newLiveView(t, h.url, "01")
	const station = "urn:ngsi-ld:Device:HK-AQ-1"
	base := time.Now().UTC().Truncate(time.Hour).Add(-14 * time.Hour)
	at := func(hour int) time.Time { return base.Add(time.Duration(hour)*time.Hour + 20*time.Minute) }

	// Hours 0..10 with hour 5 missing; PM10 100 µg/m³ is a sub-index of 75.
	var items []any
	for hour := range 11 {
		if hour != 5 {
			items = append(items, stationItem(station, at(hour), 50, 100))
		}
	}
	if code, res, raw := post(t, h.url+"/v1/feeds/air", token, items); code != http.StatusAccepted || res.Accepted != len(items) {
		t.Fatalf("POST = %d %s; want 202 with %d accepted", code, raw, len(items))
	}
	props, _ := live.wait(t, station, 30*time.Second, func(p map[string]any) bool {
		return obj(p["observation"])["time"] == at(10).Format(time.RFC3339)
	})
	x := obj(props["aqi"])
	if x["hourly"] != 100.0 || x["band"] != 2.0 || x["bandVi"] != "Trung bình" || x["bandEn"] != "Moderate" || x["color"] != "#FFFF00" ||
		x["dominant"] != "pm25" || x["hour"] != at(10).Truncate(time.Hour).Format(time.RFC3339) || x["reason"] != nil {
		t.Errorf("live aqi after hours 0..10 = %v; want hourly 100, band 2 Trung bình #FFFF00, pm25, hour %s, no reason", x, at(10).Truncate(time.Hour).Format(time.RFC3339))
	}
	if sub := obj(x["subIndices"]); sub["pm25"] != 100.0 || sub["pm10"] != 75.0 {
		t.Errorf("live sub-indices = %v; want pm25 100, pm10 75", sub)
	}

	// Hours 11 and 12 missing, hour 13 present: 1 of the latest 3.
	if code, res, raw := post(t, h.url+"/v1/feeds/air", token, []any{stationItem(station, at(13), 50, 100)}); code != http.StatusAccepted || res.Accepted != 1 {
		t.Fatalf("POST = %d %s; want 202 with 1 accepted", code, raw)
	}
	props, _ = live.wait(t, station, 30*time.Second, func(p map[string]any) bool {
		return obj(p["observation"])["time"] == at(13).Format(time.RFC3339)
	})
	x = obj(props["aqi"])
	reason, _ := x["reason"].(string)
	if x["hourly"] != nil || x["band"] != nil || !strings.Contains(reason, "AQI could not be computed") ||
		!strings.Contains(reason, "PM2.5: NowCast needs at least 2 of the latest 3 hourly values (have 1)") {
		t.Errorf("live aqi after a 2-hour gap = %v; want no hourly AQI and the NowCast's reason", x)
	}

	type row struct {
		aqi, band *int
		dom       *string
	}
	var got []row
	rows, err := db.Pool.Query(ctx, `SELECT aqi, aqi_band, aqi_dominant FROM air_observation WHERE station_id = $1 ORDER BY observed_at`, station)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.aqi, &r.band, &r.dom); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if len(got) != 11 {
		t.Fatalf("got %d stored rows; want 11", len(got))
	}
	// Hour 0 alone cannot be rated (1 of the latest 3); hours 1..10 can; hour 13 cannot.
	for i, r := range got {
		rated := i > 0 && i < 10
		if rated != (r.aqi != nil) || (rated && (*r.aqi != 100 || *r.band != 2 || *r.dom != "pm25")) {
			t.Errorf("row %d: got aqi %v band %v dominant %v; want rated %v at 100, 2, pm25", i, deref(r.aqi), deref(r.band), deref(r.dom), rated)
		}
	}
	var lastReason string
	if err := db.Pool.QueryRow(ctx, `SELECT last_values->'aqi'->>'reason' FROM sensor WHERE kind = 'air' AND id = $1`, station).Scan(&lastReason); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(lastReason, "NowCast needs at least 2") {
		t.Errorf("sensor.last_values.aqi.reason = %q; want the NowCast's reason", lastReason)
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// fiwareExample reads a FIWARE example from testdata and moves its Point to (lon, lat).
func fiwareExample(t *testing.T, name string, lon, lat float64, at time.Time) map[string]any {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var item map[string]any
	if err := json.Unmarshal(b, &item); err != nil {
		t.Fatal(err)
	}
	item["location"] = map[string]any{"type": "Point", "coordinates": []float64{lon, lat}}
	item["dateObserved"] = at.UTC().Format(time.RFC3339)
	return item
}

// TestEndToEndWaterWeather posts the FIWARE WaterQualityObserved and
// WeatherObserved examples, moved to Hà Nội, and a flood-watch observation
// above alarm level II, and reads them on the live view and in the database.
func TestEndToEndWaterWeather(t *testing.T) {
	n := testenv.NATS(t)
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	token, err := postgis.AddSource(ctx, db.Pool, postgis.Source{ID: "hk-env", Name: "Hoàn Kiếm environment", UnitCode: "00070"})
	if err != nil {
		t.Fatal(err)
	}
	h := startHub(t, "all", n, db)
	live := newLiveView(t, h.url, "01")
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	lon, lat := 105.8522, 21.0288 // by Hoàn Kiếm lake, in ward 00070

	water := fiwareExample(t, "WaterQualityObserved.example.json", lon, lat, at)
	flood := map[string]any{"id": "hn-long-bien-level", "type": "WaterQualityObserved", "refDevice": "hn-long-bien",
		"name": "Trạm thủy văn Long Biên", "dateObserved": at.UTC().Format(time.RFC3339),
		"location": map[string]any{"type": "Point", "coordinates": []float64{lon - 0.001, lat}}, "waterLevel": 10.8,
		"alarmLevels": []float64{9.5, 10.5, 11.5}, "flow": 5230.0}
	if code, res, raw := post(t, h.url+"/v1/feeds/water", token, []any{water, flood}); code != http.StatusAccepted || res.Accepted != 2 {
		t.Fatalf("POST water = %d %s; want 202 with 2 accepted", code, raw)
	}
	weather := fiwareExample(t, "WeatherObserved.example.json", lon, lat, at)
	if code, res, raw := post(t, h.url+"/v1/feeds/weather", token, []any{weather}); code != http.StatusAccepted || res.Accepted != 1 {
		t.Fatalf("POST weather = %d %s; want 202 with 1 accepted", code, raw)
	}

	wq, g := live.wait(t, "waterqualityobserved:Sevilla:D1", 30*time.Second, any1)
	if v := obj(obj(wq["observation"])["values"]); wq["layer"] != "water" || wq["unit"] != "00070" || wq["waterAlarm"] != 0.0 ||
		v["pH"] != 7.4 || v["temperature"] != 24.4 || v["flow"] != 127.53 || v["sulphate"] != 143.3 || v["NO3"] != 0.01 {
		t.Errorf("live WaterQualityObserved = %v; want layer water, unit 00070, waterAlarm 0, pH 7.4, 24.4 °C, flow 127.53, sulphate, NO3", wq)
	}
	if c, _ := g["coordinates"].([]any); g["type"] != "Point" || len(c) != 2 || c[0] != lon || c[1] != lat {
		t.Errorf("live water geometry = %v; want Point [%v %v]", g, lon, lat)
	}
	fl, _ := live.wait(t, "hn-long-bien", 30*time.Second, any1)
	if v := obj(obj(fl["observation"])["values"]); fl["waterAlarm"] != 2.0 || v["waterLevel"] != 10.8 || v["alarmLevel2"] != 10.5 || fl["name"] != "Trạm thủy văn Long Biên" {
		t.Errorf("live flood watch = %v; want waterAlarm 2 at 10.8 m, alarm II 10.5, its name", fl)
	}
	wx, _ := live.wait(t, "device-0A3478", 30*time.Second, any1)
	if v := obj(obj(wx["observation"])["values"]); wx["layer"] != "weather" || v["temperature"] != 3.3 || v["atmosphericPressure"] != 938.9 ||
		v["relativeHumidity"] != 1.0 || v["windDirection"] != 135.0 || v["precipitation"] != 0.0 || v["illuminance"] != 1000.0 {
		t.Errorf("live WeatherObserved = %v; want layer weather, 3.3 °C, 938.9 hPa, RH 1, wind from 135, precipitation 0, illuminance 1000", wx)
	}
	var alarm, sensors int
	if err := db.Pool.QueryRow(ctx, `SELECT water_alarm FROM water_observation WHERE station_id = 'hn-long-bien'`).Scan(&alarm); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM sensor WHERE kind IN ('water', 'weather') AND unit_code = '00070'`).Scan(&sensors); err != nil {
		t.Fatal(err)
	}
	if alarm != 2 || sensors != 3 {
		t.Errorf("stored water alarm %d, sensors %d; want 2 and 3", alarm, sensors)
	}
}
