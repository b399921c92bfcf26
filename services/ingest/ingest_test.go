package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/wkb"
	"google.golang.org/protobuf/proto"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/ingest"
)

func arr(t testing.TB, items ...map[string]any) []byte {
	t.Helper()
	return mustJSON(t, items)
}

func with(m map[string]any, kv ...any) map[string]any {
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(m, k)
			continue
		}
		m[k] = kv[i+1]
	}
	return m
}

func point(lon, lat float64) map[string]any {
	return map[string]any{"type": "Point", "coordinates": []float64{lon, lat}}
}

func polygon(ring ...[2]float64) map[string]any {
	cs := make([][]float64, len(ring))
	for i, p := range ring {
		cs[i] = []float64{p[0], p[1]}
	}
	return map[string]any{"type": "Polygon", "coordinates": [][][]float64{cs}}
}

// TestRejections covers every way a request or an item is refused, with the message the sender gets.
func TestRejections(t *testing.T) {
	e := newEnv(t, ingest.Config{MaxBodyBytes: 64 << 10, MaxItems: 50})
	big := bytes.Repeat([]byte(" "), 70<<10)
	big = append(append([]byte("["), big...), ']')
	var many []map[string]any
	for i := range 51 {
		many = append(many, air(fmt.Sprintf("m%d", i), hoanKiem))
	}
	tests := []struct {
		name        string
		kind, token string
		ctype       string
		body        []byte
		wantCode    int
		// wantItem is the status of item 0 (202 answers) and wantReason a part of its reason
		// or, for problems, of the detail or first error.
		wantItem   string
		wantReason string
	}{
		{"bad JSON", "air", tokWard, "application/json", []byte(`[{"id": "a1", "pm25": 3,,}]`), 400, "", "at byte 24: invalid JSON: invalid character ','"},
		{"truncated array", "air", tokWard, "application/json", []byte(`[{"id": "a1"}`), 400, "", "unexpected end of JSON"},
		{"not JSON at all", "air", tokWard, "application/json", []byte(`id=a1&pm25=3`), 400, "", "starts with 'i'"},
		{"empty array", "air", tokWard, "application/json", []byte(`[]`), 400, "", "no item"},
		{"empty body", "air", tokWard, "application/json", nil, 400, "", "no item"},
		{"item not an object", "air", tokWard, "application/json", []byte(`[42]`), 202, "rejected", "item is a JSON number; want a JSON object"},
		{"missing token", "air", "", "application/json", arr(t, air("a1", hoanKiem)), 401, "", "Authorization: Bearer"},
		{"wrong token", "air", "nope", "application/json", arr(t, air("a1", hoanKiem)), 401, "", "not that of an enabled source"},
		{"identity key", "air", "iocid_abc", "application/json", arr(t, air("a1", hoanKiem)), 403, "", "identity key"},
		{"unknown kind", "sewage", tokWard, "application/json", arr(t, air("a1", hoanKiem)), 404, "", `kind "sewage" is not taken here`},
		{"unsupported media type", "air", tokWard, "application/xml", []byte(`<a/>`), 415, "", "application/xml"},
		{"body too large", "air", tokWard, "application/json", big, 413, "", "at most 65536"},
		{"too many items", "air", tokWard, "application/json", arr(t, many...), 413, "", "more than 50 items"},
		{"missing id", "air", tokWard, "", arr(t, with(air("a1", hoanKiem), "id", nil)), 202, "rejected", "id: missing field"},
		{"missing dateObserved", "air", tokWard, "", arr(t, with(air("a1", hoanKiem), "dateObserved", nil)), 202, "rejected", "dateObserved: missing field"},
		{"missing location", "air", tokWard, "", arr(t, with(air("a1", hoanKiem), "location", nil)), 202, "rejected", "location: missing field"},
		{"bad time", "air", tokWard, "", arr(t, with(air("a1", hoanKiem), "dateObserved", "yesterday")), 202, "rejected", `dateObserved: "yesterday" is not an RFC 3339 time`},
		{"future time", "air", tokWard, "", arr(t, with(air("a1", hoanKiem), "dateObserved", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))), 202, "rejected", "in the future"},
		{"wrong type", "air", tokWard, "", arr(t, with(air("a1", hoanKiem), "type", "TrafficFlowObserved")), 202, "rejected", `type: type "TrafficFlowObserved" does not belong on this feed; want AirQualityObserved`},
		{"wrong geometry type air", "air", tokWard, "", arr(t, with(air("a1", hoanKiem), "location", traffic("x", hoanKiem)["location"])), 202, "rejected", "location.type: geometry type LineString is not allowed here; want Point"},
		{"wrong geometry type traffic", "traffic", tokWard, "", arr(t, with(traffic("t1", hoanKiem), "location", point(hoanKiem[0], hoanKiem[1]))), 202, "rejected", "location.type: geometry type Point is not allowed here; want LineString"},
		{"one-point line", "traffic", tokWard, "", arr(t, with(traffic("t1", hoanKiem), "location", map[string]any{"type": "LineString", "coordinates": [][]float64{{hoanKiem[0], hoanKiem[1]}}})), 202, "rejected", "a LineString needs at least 2 points, got 1"},
		{"longitude out of range", "air", tokWard, "", arr(t, with(air("a1", hoanKiem), "location", point(205.85, 21.02))), 202, "rejected", "location.coordinates: longitude 205.85 is outside [-180, 180]"},
		{"swapped coordinates", "air", tokWard, "", arr(t, with(air("a1", hoanKiem), "location", point(hoanKiem[1], hoanKiem[0]))), 202, "rejected", "coordinates look like [lat, lon]; GeoJSON wants [lon, lat]"},
		{"non-numeric pm25", "air", tokWard, "", arr(t, with(air("a1", hoanKiem), "pm25", "35.5")), 202, "rejected", "pm25: want a number, got a JSON string"},
		{"negative concentration", "air", tokWard, "", arr(t, with(air("a1", hoanKiem), "no2", -4.0)), 202, "rejected", "no2: no2 -4 is negative"},
		{"non-boolean congested", "traffic", tokWard, "", arr(t, with(traffic("t1", hoanKiem), "congested", "yes")), 202, "rejected", "congested: want true or false"},
		{"point outside the unit", "air", tokWard, "", arr(t, air("a1", cauGiay)), 403, "", "outside source unit 00070 (Hoàn Kiếm)"},
		{"Spain for a Hà Nội ward", "air", tokWard, "", arr(t, fixture(t, "AirQualityObserved.example.json")), 403, "", "location [-3.712247222222222, 40.423852777777775] is outside source unit 00070 (Hoàn Kiếm)"},
		{"Spain with the dev token", "air", tokDev, "", arr(t, fixture(t, "AirQualityObserved.example.json")), 202, "rejected", "is in no known administrative unit"},
		{"another unit's token", "air", tokHCMC, "", arr(t, air("a1", hoanKiem)), 403, "", "outside source unit 79 (Hồ Chí Minh)"},
		{"one item outside among good ones", "air", tokWard, "", arr(t, air("a2", cauGiay), air("a1", hoanKiem)), 202, "rejected", "outside source unit 00070"},
		{"segment leaves the province", "traffic", tokProvince, "", arr(t, with(traffic("t1", hoanKiem), "location", map[string]any{"type": "LineString",
			"coordinates": [][]float64{{105.85, 21.03}, {105.86, 21.03}, {105.0, 21.5}}})), 202, "rejected", "location.coordinates[2]: vertex [105, 21.5] is outside province 01 (Hà Nội)"},
		{"unclosed ring", "alert", tokWard, "", arr(t, with(fixture(t, "Alert.example.json"), "location", polygon([2]float64{105.85, 21.02}, [2]float64{105.86, 21.02}, [2]float64{105.86, 21.03}, [2]float64{105.85, 21.03}))), 202, "rejected", "location.coordinates[0]: ring is not closed"},
		{"self-intersecting ring", "alert", tokWard, "", arr(t, with(fixture(t, "Alert.example.json"), "location", polygon([2]float64{105.85, 21.02}, [2]float64{105.86, 21.03}, [2]float64{105.86, 21.02}, [2]float64{105.85, 21.03}, [2]float64{105.85, 21.02}))), 202, "rejected", "location.coordinates[0]: ring intersects itself"},
		{"alert area outside the unit", "alert", tokWard, "", arr(t, moveTo(fixture(t, "Alert.example-agriAlert.json"), cauGiay), air("x", hoanKiem)), 202, "rejected", "the alert's area does not intersect source unit 00070"},
		{"alert bad severity", "alert", tokWard, "", arr(t, with(moveTo(fixture(t, "Alert.example.json"), hoanKiem), "severity", "apocalyptic")), 202, "rejected", `severity: "apocalyptic" is not one of informational`},
		{"CAP alert bad msgType", "alert", tokWard, "", arr(t, with(capAlert("c1", hoanKiem), "msgType", "Shout")), 202, "rejected", `msgType: "Shout" is not one of Alert, Update`},
		{"CAP alert missing sent", "alert", tokWard, "", arr(t, with(capAlert("c1", hoanKiem), "sent", nil)), 202, "rejected", "sent: missing field"},
		{"an observation past the last event day", "air", tokWard, "", arr(t, with(air("a1", hoanKiem), "dateObserved", "9999-12-31T20:00:00Z")), 202, "rejected", "an event may be dated up to 9999-12-30T23:59:59Z"},
		{"member named with a dot", "air", tokWard, "", arr(t, with(air("a1", hoanKiem), "PM2.5", "high")), 202, "rejected", "PM2.5: want a number"},
	}
	pointers := map[string]string{ // the pointer of the result, where a case pins it
		"longitude out of range":      "/0/location/coordinates",
		"segment leaves the province": "/0/location/coordinates/2",
		"member named with a dot":     "/0/PM2.5",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(t, tt.kind, tt.token, tt.ctype, tt.body)
			if r.code != tt.wantCode {
				t.Fatalf("got HTTP %d; want %d: %s", r.code, tt.wantCode, r.raw)
			}
			if r.code == 202 {
				if len(r.resp.Results) == 0 {
					t.Fatalf("got no results: %s", r.raw)
				}
				got := r.resp.Results[0]
				if got.Status != tt.wantItem || !strings.Contains(got.Reason, tt.wantReason) {
					t.Fatalf("got %s %q; want %s containing %q", got.Status, got.Reason, tt.wantItem, tt.wantReason)
				}
				if got.Pointer == "" || got.Index != 0 {
					t.Errorf("got pointer %q index %d; want a pointer to item 0", got.Pointer, got.Index)
				}
				if want, ok := pointers[tt.name]; ok && got.Pointer != want {
					t.Errorf("got pointer %q; want %q", got.Pointer, want)
				}
				return
			}
			p := r.problem
			if p.Status != tt.wantCode || p.Type == "" || p.Title == "" || p.Instance != "/v1/feeds/"+tt.kind {
				t.Errorf("got problem %+v; want status %d with type, title and instance", p, tt.wantCode)
			}
			text := p.Detail
			if len(p.Errors) > 0 {
				text += " | " + p.Errors[0].Reason
			}
			if !strings.Contains(text, tt.wantReason) {
				t.Errorf("got %q; want it to contain %q", text, tt.wantReason)
			}
			if r.code == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("got WWW-Authenticate %q; want Bearer", r.header.Get("WWW-Authenticate"))
			}
			if r.code == 403 && tt.name != "identity key" && (len(p.Errors) == 0 || !strings.HasPrefix(p.Errors[0].Pointer, "/0/location")) {
				t.Errorf("got errors %+v; want item 0 pointing at its location", p.Errors)
			}
		})
	}
}

func capAlert(id string, p [2]float64) map[string]any {
	d := 0.002
	return map[string]any{
		"identifier": id, "sender": "ioc@hoankiem.hanoi.gov.vn", "sent": "2025-07-01T08:00:00+07:00",
		"status": "Actual", "msgType": "Alert", "scope": "Public",
		"info": []any{map[string]any{"language": "vi-VN", "category": []string{"Met"}, "event": "Ngập lụt",
			"urgency": "Immediate", "severity": "Severe", "certainty": "Observed", "headline": "Ngập sâu phố Hàng Bài",
			"description": "Nước ngập 40 cm", "expires": "2025-07-01T12:00:00+07:00"}},
		"area": []any{map[string]any{"areaDesc": "Phố Hàng Bài", "geometry": polygon(
			[2]float64{p[0] - d, p[1] - d}, [2]float64{p[0] + d, p[1] - d}, [2]float64{p[0] + d, p[1] + d},
			[2]float64{p[0] - d, p[1] + d}, [2]float64{p[0] - d, p[1] - d})}},
	}
}

func TestNDJSONOneBadLine(t *testing.T) {
	e := newEnv(t, ingest.Config{})
	body := string(mustJSON(t, air("n1", hoanKiem))) + "\n" +
		`{"id": "n2", "pm25": 3,` + "\n\n" +
		string(mustJSON(t, air("n3", hoanKiem))) + "\n"
	for _, ct := range []string{"application/x-ndjson", "", "application/json"} {
		t.Run("content-type "+ct, func(t *testing.T) {
			r := e.post(t, "air", tokWard, ct, []byte(body))
			if r.code != 202 {
				t.Fatalf("got HTTP %d; want 202: %s", r.code, r.raw)
			}
			want := []struct {
				status string
				line   int
			}{{"accepted", 1}, {"rejected", 2}, {"accepted", 4}}
			if len(r.resp.Results) != len(want) {
				t.Fatalf("got %d results; want %d: %s", len(r.resp.Results), len(want), r.raw)
			}
			for i, w := range want {
				got := r.resp.Results[i]
				st := w.status
				if ct != "application/x-ndjson" && st == "accepted" {
					st = "duplicate" // the second run sends the same items again
				}
				if got.Status != st || got.Line != w.line || got.Index != i {
					t.Errorf("result %d: got %s line %d index %d; want %s line %d index %d", i, got.Status, got.Line, got.Index, st, w.line, i)
				}
			}
			if got := r.resp.Results[1].Reason; !strings.HasPrefix(got, "line 2: invalid JSON") {
				t.Errorf("got reason %q; want it to start with %q", got, "line 2: invalid JSON")
			}
		})
	}
}

// TestEndToEnd posts the FIWARE examples, moved to Hà Nội, and reads them back from FEEDS.
func TestEndToEnd(t *testing.T) {
	e := newEnv(t, ingest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := e.js.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, kind, token, ctype string
		body                     []byte
		wantUnit, wantEvent      string
		wantEntity, wantType     string
		check                    func(t *testing.T, data []byte)
	}{
		{"air FIWARE example", "air", tokWard, "application/json",
			arr(t, moveTo(fixture(t, "AirQualityObserved.example.json"), hoanKiem)),
			"00070", "Madrid-AmbientObserved-28079004-2016-03-15T11:00:00@2016-03-15T11:00:00Z", "28079004-Pza.deEspanya", ce.ObservedType("air"),
			func(t *testing.T, data []byte) {
				var m iocv1.AirQualityObserved
				if err := proto.Unmarshal(data, &m); err != nil {
					t.Fatal(err)
				}
				if m.GetCo() != 500 || m.GetSo2() != 11 || m.GetNox() != 139 || m.GetRelativeHumidity() != 0.54 || m.Other["airQualityIndex"] != 65 {
					t.Errorf("got %v; want co 500, so2 11, nox 139, RH 0.54, other airQualityIndex 65", &m)
				}
				if m.Origin.GetSourceId() != "hk" || m.Origin.GetUnit() != "00070" || m.Origin.GetProvince() != "01" || m.Origin.GetReceivedAt() == nil {
					t.Errorf("got origin %v; want hk, 00070, 01, received_at", m.Origin)
				}
				g, err := wkb.Unmarshal(m.Location.GetWkb())
				if err != nil {
					t.Fatal(err)
				}
				if c := g.(*geom.Point).Coords(); c[0] != hoanKiem[0] || c[1] != hoanKiem[1] {
					t.Errorf("got point %v; want %v", c, hoanKiem)
				}
			}},
		{"traffic FIWARE example, by the province's source", "traffic", tokProvince, "application/geo+json",
			featureCollection(t, moveTo(fixture(t, "TrafficFlowObserved.example.json"), [2]float64{105.8200, 21.0250})),
			"", "TrafficFlowObserved-Valladolid-osm-60821110@2016-12-07T11:15:00Z", "TrafficFlowObserved-Valladolid-osm-60821110", ce.ObservedType("traffic"),
			func(t *testing.T, data []byte) {
				var m iocv1.TrafficObserved
				if err := proto.Unmarshal(data, &m); err != nil {
					t.Fatal(err)
				}
				if m.GetIntensity() != 197 || m.GetOccupancy() != 0.76 || m.GetLaneId() != 1 || m.GetLaneDirection() != "forward" ||
					m.ObservedFrom.AsTime() != time.Date(2016, 12, 7, 11, 10, 0, 0, time.UTC) {
					t.Errorf("got %v; want intensity 197, occupancy 0.76, lane 1 forward, from 11:10", &m)
				}
			}},
		{"FIWARE Alert, dev token", "alert", tokDev, "",
			arr(t, moveTo(fixture(t, "Alert.example.json"), hoanKiem)),
			"00070", "Alert:1", "Alert:1", ce.AlertType,
			func(t *testing.T, data []byte) {
				var m iocv1.Alert
				if err := proto.Unmarshal(data, &m); err != nil {
					t.Fatal(err)
				}
				in := m.Info[0]
				if m.Status != "Actual" || m.MsgType != "Alert" || in.Severity != "Severe" || in.Category[0] != "Transport" ||
					in.Event != "trafficJam" || in.Expires.AsTime() != time.Date(2017, 1, 2, 10, 25, 55, 0, time.UTC) || m.Origin.GetSourceId() != "dev" {
					t.Errorf("got %v; want Actual Alert, Severe, Transport, trafficJam, expires 10:25:55, source dev", &m)
				}
			}},
		{"CAP JSON alert", "alert", tokWard, "application/json", mustJSON(t, capAlert("HK-2025-0001", hoanKiem)),
			"00070", "HK-2025-0001", "HK-2025-0001", ce.AlertType,
			func(t *testing.T, data []byte) {
				var m iocv1.Alert
				if err := proto.Unmarshal(data, &m); err != nil {
					t.Fatal(err)
				}
				if len(m.Info) != 1 || len(m.Info[0].Area) != 1 || m.Info[0].Area[0].Geometry == nil || m.Info[0].Language != "vi-VN" {
					t.Errorf("got %v; want one vi-VN info with the top-level area", &m)
				}
			}},
	}
	// An alert's message id names its sender too (CAP: an identifier is
	// unique per sender only).
	senders := map[string]string{
		"FIWARE Alert, dev token": ",https://account.lab.fiware.org/users/8",
		"CAP JSON alert":          ",ioc@hoankiem.hanoi.gov.vn",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(t, tt.kind, tt.token, tt.ctype, tt.body)
			if r.code != 202 || r.resp.Accepted != 1 {
				t.Fatalf("got HTTP %d, %d accepted; want 202 with 1: %s", r.code, r.resp.Accepted, r.raw)
			}
			res := r.resp.Results[0]
			if tt.wantUnit != "" && res.Unit != tt.wantUnit {
				t.Errorf("got unit %q; want %q", res.Unit, tt.wantUnit)
			}
			prov := "01"
			if res.Subject != subjects.Feed(prov, res.Unit, tt.kind) || res.EventID != tt.wantEvent {
				t.Errorf("got subject %q, event %q; want %q, %q", res.Subject, res.EventID, subjects.Feed(prov, res.Unit, tt.kind), tt.wantEvent)
			}
			msg, err := stream.GetLastMsgForSubject(ctx, res.Subject)
			if err != nil {
				t.Fatalf("reading %s from FEEDS: %v", res.Subject, err)
			}
			h := msg.Header
			src := map[string]string{"air": "hk", "traffic": "hn", "alert": ""}[tt.kind]
			switch tt.token {
			case tokDev:
				src = "dev"
			case tokWard:
				src = "hk"
			}
			for k, want := range map[string]string{
				ce.HeaderID: tt.wantEvent, ce.HeaderSource: ce.SourceURN(prov, res.Unit), ce.HeaderType: tt.wantType,
				ce.HeaderSubject: tt.wantEntity, ce.HeaderContentType: ce.ContentTypeProtobuf, ce.HeaderSpecVersion: "1.0",
				"Nats-Msg-Id": e.msgID(t, src+"/"+tt.kind+"/"+tt.wantEvent+senders[tt.name]), ce.HeaderFeedSource: src,
			} {
				if got := h.Get(k); got != want {
					t.Errorf("header %s: got %q; want %q", k, got, want)
				}
			}
			tt.check(t, msg.Data)

			again := e.post(t, tt.kind, tt.token, tt.ctype, tt.body)
			if again.code != 202 || again.resp.Duplicates != 1 || again.resp.Results[0].Status != "duplicate" {
				t.Fatalf("second POST: got HTTP %d %s; want 202 with 1 duplicate", again.code, again.raw)
			}
		})
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(tests)) {
		t.Errorf("FEEDS holds %d messages; want %d (duplicates dropped)", info.State.Msgs, len(tests))
	}
}

func featureCollection(t testing.TB, items ...map[string]any) []byte {
	t.Helper()
	fs := make([]any, len(items))
	for i, it := range items {
		props := map[string]any{}
		for k, v := range it {
			if k != "location" {
				props[k] = v
			}
		}
		fs[i] = map[string]any{"type": "Feature", "geometry": it["location"], "properties": props}
	}
	return mustJSON(t, map[string]any{"features": fs, "type": "FeatureCollection"})
}

func TestNATSUnavailable(t *testing.T) {
	e := newEnv(t, ingest.Config{PublishTimeout: 2 * time.Second})
	e.natsEnv.srv.Shutdown()
	r := e.post(t, "air", tokWard, "", arr(t, air("u1", hoanKiem)))
	if r.code != 503 {
		t.Fatalf("got HTTP %d; want 503: %s", r.code, r.raw)
	}
	if len(r.problem.Errors) != 1 || !strings.Contains(r.problem.Errors[0].Reason, "not published") {
		t.Errorf("got errors %+v; want item 0 not published", r.problem.Errors)
	}
}

func TestSingleObjectAndFeature(t *testing.T) {
	e := newEnv(t, ingest.Config{})
	feature := mustJSON(t, map[string]any{"type": "Feature", "id": "f1", "geometry": point(hoanKiem[0], hoanKiem[1]),
		"properties": map[string]any{"type": "AirQualityObserved", "dateObserved": "2025-07-01T08:00:00", "pm25": 12.0}})
	for _, tt := range []struct {
		name string
		body []byte
		want string
	}{
		{"object", mustJSON(t, air("s1", hoanKiem)), "s1@2025-07-01T01:00:00Z"},
		{"feature, time without zone", feature, "f1@2025-07-01T08:00:00Z"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(t, "air", tokWard, "application/json", tt.body)
			if r.code != 202 || len(r.resp.Results) != 1 || r.resp.Results[0].EventID != tt.want {
				t.Fatalf("got HTTP %d %s; want 202 with event %s", r.code, r.raw, tt.want)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	ne := startNATS(t)
	reg := prometheus.NewRegistry()
	svc, err := ingest.New(t.Context(), ingest.Config{}, ingest.Deps{JS: ne.js, Units: testUnits(t), Sources: testSources(), Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	// A second service on the same registry shares the collectors.
	if _, err := ingest.New(t.Context(), ingest.Config{}, ingest.Deps{JS: ne.js, Metrics: reg}); err != nil {
		t.Fatalf("second New on one registry: %v", err)
	}
	mux := http.NewServeMux()
	svc.Register(mux)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	postTo(t, hs.URL, "air", tokWard, "", arr(t, air("m1", hoanKiem), air("m2", cauGiay), air("m1", hoanKiem)))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	requests := uint64(0)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "iochub_ingest_items_total":
				var kind, status string
				for _, l := range m.GetLabel() {
					switch l.GetName() {
					case "kind":
						kind = l.GetValue()
					case "status":
						status = l.GetValue()
					}
				}
				got[kind+"/"+status] = m.GetCounter().GetValue()
			case "iochub_ingest_request_duration_seconds":
				requests += m.GetHistogram().GetSampleCount()
			}
		}
	}
	want := map[string]float64{"air/accepted": 1, "air/rejected": 1, "air/duplicate": 1}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("items %s: got %v; want %v (all: %v)", k, got[k], v, got)
		}
	}
	if requests != 1 {
		t.Errorf("request latency samples: got %d; want 1", requests)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := ingest.New(t.Context(), ingest.Config{}, ingest.Deps{}); err == nil {
		t.Errorf("New without JS: got nil error; want one")
	}
	if _, err := ingest.New(t.Context(), ingest.Config{MaxItems: -1}, ingest.Deps{}); err == nil {
		t.Errorf("New with MaxItems -1: got nil error; want one")
	}
}

var _ = json.Valid

// TestAlertOfAnotherSenderIsNotADuplicate: CAP makes an identifier unique
// per sender only, so a second sender's alert under a stored identifier is
// another message: accepted (the aggregator dead-letters it with its
// reason: one sender per alert id), not answered "duplicate" as if it were
// stored. The same sender's alert again is a duplicate, and an alert without
// a sender is the source's own (it is stored with the source as sender).
func TestAlertOfAnotherSenderIsNotADuplicate(t *testing.T) {
	e := newEnv(t, ingest.Config{})
	alert := func(id, sender string) []byte {
		a := capAlert(id, hoanKiem)
		if sender == "" {
			delete(a, "sender")
		} else {
			a["sender"] = sender
		}
		return mustJSON(t, a)
	}
	xml := func(id, sender string) []byte {
		return fmt.Appendf(nil, `<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>%s</identifier><sender>%s</sender>
<sent>2025-07-01T08:00:00+07:00</sent><status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
<info><category>Met</category><event>Ngập</event><urgency>Immediate</urgency><severity>Severe</severity><certainty>Observed</certainty>
<area><areaDesc>Hồ Gươm</areaDesc><circle>%v,%v 0.2</circle></area></info></alert>`, id, sender, hoanKiem[1], hoanKiem[0])
	}
	for i, c := range []struct {
		id, sender, want string
		asXML            bool
	}{
		{"HK-2025-0777", "ioc@hoankiem.hanoi.gov.vn", "accepted", false},
		{"HK-2025-0777", "warning@nchmf.gov.vn", "accepted", false},
		{"HK-2025-0777", "warning@nchmf.gov.vn", "duplicate", false},
		{"HK-2025-0777", "ioc@hoankiem.hanoi.gov.vn", "duplicate", false},
		{"HK-2025-0778", "", "accepted", false},
		{"HK-2025-0778", "hk", "duplicate", false}, // the source's id: the sender an alert without one gets
		// CAP XML alike, and one alert is one message in either format.
		{"HK-2025-0779", "ioc@hoankiem.hanoi.gov.vn", "accepted", true},
		{"HK-2025-0779", "warning@nchmf.gov.vn", "accepted", true},
		{"HK-2025-0779", "warning@nchmf.gov.vn", "duplicate", false},
	} {
		body, ctype := alert(c.id, c.sender), "application/json"
		if c.asXML {
			body, ctype = xml(c.id, c.sender), "application/cap+xml"
		}
		r := e.post(t, "alert", tokWard, ctype, body)
		if r.code != 202 || len(r.resp.Results) != 1 || r.resp.Results[0].Status != c.want {
			t.Errorf("POST %d (%s from %q, XML %t): HTTP %d %s; want 202 %s", i+1, c.id, c.sender, c.asXML, r.code, r.raw, c.want)
		}
	}
}
