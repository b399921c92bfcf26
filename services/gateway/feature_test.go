package gateway

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/wkb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

func mustWKB(t testing.TB, g geom.T) *iocv1.Geometry {
	t.Helper()
	b, err := wkb.Marshal(g, binary.LittleEndian)
	if err != nil {
		t.Fatal(err)
	}
	return &iocv1.Geometry{Wkb: b}
}

var t0 = time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)

// airState is an air-quality state of station id in province 01, ward 00070.
func airState(t testing.TB, id string, version int, pm25 float64) *iocv1.EntityState {
	obs := t0.Add(time.Duration(version) * time.Minute)
	return &iocv1.EntityState{
		Layer: subjects.KindAir, EntityId: id, Province: "01", Unit: "00070",
		UpdatedAt: timestamppb.New(obs.Add(time.Second)),
		Latest: &iocv1.EntityState_Air{Air: &iocv1.AirQualityObserved{
			Id: obsID(id, version), EntityId: id, ObservedAt: timestamppb.New(obs),
			Location: mustWKB(t, geom.NewPoint(geom.XY).MustSetCoords(geom.Coord{105.8412345678, 21.0245})),
			Name:     "Trạm " + id, Pm25: proto.Float64(pm25), Pm10: proto.Float64(40),
			Other: map[string]double{"aqi": 87},
		}},
	}
}

type double = float64

func obsID(id string, version int) string {
	return id + "@" + t0.Add(time.Duration(version)*time.Minute).Format(time.RFC3339)
}

func trafficState(t testing.TB, id string, version int) *iocv1.EntityState {
	obs := t0.Add(time.Duration(version) * time.Minute)
	return &iocv1.EntityState{
		Layer: subjects.KindTraffic, EntityId: id, Province: "01", Unit: "00004",
		UpdatedAt: timestamppb.New(obs),
		Latest: &iocv1.EntityState_Traffic{Traffic: &iocv1.TrafficObserved{
			Id: obsID(id, version), EntityId: id, ObservedAt: timestamppb.New(obs),
			Location:  mustWKB(t, geom.NewLineString(geom.XY).MustSetCoords([]geom.Coord{{105.80, 21.00}, {105.81, 21.01}})),
			Intensity: proto.Float64(120), AverageVehicleSpeed: proto.Float64(23.5), Congested: proto.Bool(true),
			LaneId: proto.Int32(2), LaneDirection: "forward",
		}},
	}
}

// cwSquare is a unit square with a clockwise outer ring (as the seed files have them).
func cwSquare(x, y float64) *geom.Polygon {
	return geom.NewPolygon(geom.XY).MustSetCoords([][]geom.Coord{{{x, y}, {x, y + 1}, {x + 1, y + 1}, {x + 1, y}, {x, y}}})
}

func alertState(t testing.TB, id string, areas ...geom.T) *iocv1.EntityState {
	info := &iocv1.AlertInfo{
		Language: "vi-VN", Category: []string{"Met"}, Event: "Mưa lớn", Urgency: "Expected",
		Severity: "Severe", Certainty: "Likely", Headline: "Cảnh báo mưa lớn", Description: "Mưa 100 mm",
		Expires: timestamppb.New(t0.Add(6 * time.Hour)),
	}
	for _, a := range areas {
		info.Area = append(info.Area, &iocv1.AlertArea{AreaDesc: "khu vực", Geometry: mustWKB(t, a)})
	}
	return &iocv1.EntityState{
		Layer: subjects.KindAlert, EntityId: id, Province: "01", Unit: "01",
		UpdatedAt: timestamppb.New(t0), AlertState: "active", Units: []string{"00004", "00070"},
		Latest: &iocv1.EntityState_Alert{Alert: &iocv1.Alert{
			Id: id, Identifier: id, Sender: "kttv@gov.vn", Sent: timestamppb.New(t0), Status: "Actual",
			MsgType: "Alert", Scope: "Public", Info: []*iocv1.AlertInfo{info},
		}},
	}
}

func decodeJSON(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	return m
}

func TestEncodeFeature(t *testing.T) {
	tests := []struct {
		name string
		st   *iocv1.EntityState
		want string // the whole Feature
	}{
		{
			name: "air station",
			st:   airState(t, "st-1", 1, 35.5),
			want: `{"type":"Feature","id":"air/st-1","geometry":{"type":"Point","coordinates":[105.8412346,21.0245]},
				"properties":{"layer":"air","entityId":"st-1","name":"Trạm st-1","province":"01","unit":"00070",
				"updatedAt":"2026-11-21T08:01:01Z","observation":{"id":"st-1@2026-11-21T08:01:00Z","time":"2026-11-21T08:01:00Z",
				"values":{"aqi":87,"pm10":40,"pm25":35.5}}}}`,
		},
		{
			name: "traffic segment",
			st:   trafficState(t, "seg-9", 0),
			want: `{"type":"Feature","id":"traffic/seg-9","geometry":{"type":"LineString","coordinates":[[105.8,21],[105.81,21.01]]},
				"properties":{"layer":"traffic","entityId":"seg-9","name":"","province":"01","unit":"00004",
				"updatedAt":"2026-11-21T08:00:00Z","observation":{"id":"seg-9@2026-11-21T08:00:00Z","time":"2026-11-21T08:00:00Z",
				"values":{"averageVehicleSpeed":23.5,"congested":true,"intensity":120,"laneDirection":"forward","laneId":2}}}}`,
		},
		{
			name: "alert with two polygon areas becomes one counter-clockwise MultiPolygon",
			st:   alertState(t, "cap-1", cwSquare(105, 21), cwSquare(106, 21)),
			want: `{"type":"Feature","id":"alert/cap-1","geometry":{"type":"MultiPolygon","coordinates":[
				[[[105,21],[106,21],[106,22],[105,22],[105,21]]],[[[106,21],[107,21],[107,22],[106,22],[106,21]]]]},
				"properties":{"layer":"alert","entityId":"cap-1","name":"Cảnh báo mưa lớn","province":"01","unit":"01",
				"updatedAt":"2026-11-21T08:00:00Z","observation":{"id":"cap-1","time":"2026-11-21T08:00:00Z"},
				"alert":{"id":"Y2FwLTE","identifier":"cap-1","sender":"kttv@gov.vn","sent":"2026-11-21T08:00:00Z","status":"Actual","msgType":"Alert",
				"scope":"Public","state":"active","units":["00004","00070"],"info":[{"language":"vi-VN","category":["Met"],
				"event":"Mưa lớn","urgency":"Expected","severity":"Severe","certainty":"Likely","headline":"Cảnh báo mưa lớn",
				"description":"Mưa 100 mm","expires":"2026-11-21T14:00:00Z"}],"acked":false}}}`,
		},
		{
			name: "alert with a point and a polygon becomes a GeometryCollection",
			st:   alertState(t, "cap-2", geom.NewPoint(geom.XY).MustSetCoords(geom.Coord{105.5, 21.5}), cwSquare(105, 21)),
			want: `{"type":"Feature","id":"alert/cap-2","geometry":{"type":"GeometryCollection","geometries":[
				{"type":"Point","coordinates":[105.5,21.5]},{"type":"Polygon","coordinates":[[[105,21],[106,21],[106,22],[105,22],[105,21]]]}]},
				"properties":{"layer":"alert","entityId":"cap-2","name":"Cảnh báo mưa lớn","province":"01","unit":"01",
				"updatedAt":"2026-11-21T08:00:00Z","observation":{"id":"cap-2","time":"2026-11-21T08:00:00Z"},
				"alert":{"id":"Y2FwLTI","identifier":"cap-2","sender":"kttv@gov.vn","sent":"2026-11-21T08:00:00Z","status":"Actual","msgType":"Alert",
				"scope":"Public","state":"active","units":["00004","00070"],"info":[{"language":"vi-VN","category":["Met"],
				"event":"Mưa lớn","urgency":"Expected","severity":"Severe","certainty":"Likely","headline":"Cảnh báo mưa lớn",
				"description":"Mưa 100 mm","expires":"2026-11-21T14:00:00Z"}],"acked":false}}}`,
		},
		{
			name: "alert without areas has null geometry",
			st:   alertState(t, "cap-3"),
			want: `{"type":"Feature","id":"alert/cap-3","geometry":null,
				"properties":{"layer":"alert","entityId":"cap-3","name":"Cảnh báo mưa lớn","province":"01","unit":"01",
				"updatedAt":"2026-11-21T08:00:00Z","observation":{"id":"cap-3","time":"2026-11-21T08:00:00Z"},
				"alert":{"id":"Y2FwLTM","identifier":"cap-3","sender":"kttv@gov.vn","sent":"2026-11-21T08:00:00Z","status":"Actual","msgType":"Alert",
				"scope":"Public","state":"active","units":["00004","00070"],"info":[{"language":"vi-VN","category":["Met"],
				"event":"Mưa lớn","urgency":"Expected","severity":"Severe","certainty":"Likely","headline":"Cảnh báo mưa lớn",
				"description":"Mưa 100 mm","expires":"2026-11-21T14:00:00Z"}],"acked":false}}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := encodeFeature(tt.st, "")
			if err != nil {
				t.Fatal(err)
			}
			if f.geomErr != nil {
				t.Fatalf("geometry error: %v", f.geomErr)
			}
			got, want := decodeJSON(t, f.json), decodeJSON(t, []byte(tt.want))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %s\nwant %s", f.json, strings.Join(strings.Fields(tt.want), " "))
			}
			if wantKey := tt.st.Layer + "/" + tt.st.EntityId; f.key != wantKey {
				t.Errorf("key %q; want %q", f.key, wantKey)
			}
		})
	}
}

func TestEncodeFeatureEdges(t *testing.T) {
	t.Run("names from the subject when the body has none", func(t *testing.T) {
		st := airState(t, "x", 0, 1)
		st.Layer, st.EntityId, st.Province = "", "", ""
		f, err := encodeFeature(st, subjects.State("01", "air", "trạm.1"))
		if err != nil {
			t.Fatal(err)
		}
		if f.key != "air/trạm.1" {
			t.Errorf("key %q; want %q", f.key, "air/trạm.1")
		}
		p := decodeJSON(t, f.json)["properties"].(map[string]any)
		if p["province"] != "01" {
			t.Errorf("province %v; want 01", p["province"])
		}
	})
	t.Run("no layer anywhere is an error", func(t *testing.T) {
		if _, err := encodeFeature(&iocv1.EntityState{EntityId: "x"}, "nonsense"); err == nil {
			t.Error("got nil error; want errNoEntity")
		}
	})
	t.Run("NaN values are left out, not sent as invalid JSON", func(t *testing.T) {
		st := airState(t, "x", 0, math.NaN())
		st.GetAir().Other["bad"] = math.Inf(1)
		f, err := encodeFeature(st, "")
		if err != nil {
			t.Fatal(err)
		}
		v := decodeJSON(t, f.json)["properties"].(map[string]any)["observation"].(map[string]any)["values"].(map[string]any)
		if _, ok := v["pm25"]; ok {
			t.Errorf("pm25 present: %v", v)
		}
		if _, ok := v["bad"]; ok {
			t.Errorf("bad present: %v", v)
		}
	})
	t.Run("bad WKB gives null geometry and keeps the state", func(t *testing.T) {
		st := airState(t, "x", 0, 1)
		st.GetAir().Location.Wkb = []byte{1, 2, 3}
		f, err := encodeFeature(st, "")
		if err != nil {
			t.Fatal(err)
		}
		if f.geomErr == nil {
			t.Error("geomErr nil; want an error")
		}
		if g := decodeJSON(t, f.json)["geometry"]; g != nil {
			t.Errorf("geometry %v; want null", g)
		}
	})
	t.Run("polygon holes turn clockwise, outer ring counter-clockwise", func(t *testing.T) {
		// Outer clockwise, hole counter-clockwise: both must flip.
		p := geom.NewPolygon(geom.XY).MustSetCoords([][]geom.Coord{
			{{0, 0}, {0, 10}, {10, 10}, {10, 0}, {0, 0}},
			{{2, 2}, {4, 2}, {4, 4}, {2, 4}, {2, 2}},
		})
		b, err := geometryJSON(p)
		if err != nil {
			t.Fatal(err)
		}
		want := `{"type":"Polygon","coordinates":[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[2,2],[2,4],[4,4],[4,2],[2,2]]]}`
		if string(b) != want {
			t.Errorf("got %s; want %s", b, want)
		}
	})
}

func TestFrames(t *testing.T) {
	a, b := []byte(`{"id":"a"}`), []byte(`{"id":"b"}`)
	if got, want := string(stateFrame(a)), `{"type":"state","entity":{"id":"a"}}`; got != want {
		t.Errorf("state frame %s; want %s", got, want)
	}
	if got, want := string(snapshotFrame("01", [][]byte{a, b})), `{"type":"snapshot","province":"01","entities":[{"id":"a"},{"id":"b"}]}`; got != want {
		t.Errorf("snapshot frame %s; want %s", got, want)
	}
	if got, want := string(snapshotFrame("01", nil)), `{"type":"snapshot","province":"01","entities":[]}`; got != want {
		t.Errorf("empty snapshot frame %s; want %s", got, want)
	}
}

// FuzzEncodeFeature feeds arbitrary STATE bodies (untrusted bytes from the
// stream) through the decoder and encoder: no panic, and every Feature produced
// is valid JSON.
func FuzzEncodeFeature(f *testing.F) {
	for _, st := range []*iocv1.EntityState{
		airState(f, "a", 0, 1), trafficState(f, "t", 0), alertState(f, "c", cwSquare(0, 0)),
		alertState(f, "d", geom.NewPoint(geom.XY).MustSetCoords(geom.Coord{1, 2}), cwSquare(0, 0)),
	} {
		b, err := proto.Marshal(st)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, subjects.State("01", st.Layer, st.EntityId))
	}
	f.Add([]byte{}, "ioc.state.01.air.x")
	f.Fuzz(func(t *testing.T, body []byte, subject string) {
		var st iocv1.EntityState
		if err := proto.Unmarshal(body, &st); err != nil {
			return
		}
		feat, err := encodeFeature(&st, subject)
		if err != nil {
			return
		}
		if !json.Valid(feat.json) {
			t.Fatalf("invalid JSON: %s", feat.json)
		}
		if !json.Valid(stateFrame(feat.json)) {
			t.Fatalf("invalid state frame")
		}
	})
}
