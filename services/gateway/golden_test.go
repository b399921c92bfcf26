package gateway

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twpayne/go-geom"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testkit"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

var update = flag.Bool("update", false, "rewrite testdata/live/*.golden.json")

// goldenStates is one state per layer, as the aggregator publishes them on
// STATE, with every part of its Feature filled in: an air station with its
// AQI, a congested road segment, a water station at alarm II, a weather
// station, an active alert and an open report. The web's mock server
// (web/test/mock-server.mjs) builds its frames from the golden files these
// make, so the wall screen is tested against the gateway's wire format.
func goldenStates(t testing.TB) []*iocv1.EntityState {
	at := time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC)
	ts := timestamppb.New
	pt := func(lon, lat float64) *iocv1.Geometry {
		return mustWKB(t, geom.NewPoint(geom.XY).MustSetCoords(geom.Coord{lon, lat}))
	}
	return []*iocv1.EntityState{
		{Layer: subjects.KindAir, EntityId: "hn-air-01", Province: "01", Unit: "00004", UpdatedAt: ts(at.Add(2 * time.Second)),
			Latest: &iocv1.EntityState_Air{Air: &iocv1.AirQualityObserved{
				Id: "hn-air-01@2026-07-01T08:00:00Z", EntityId: "hn-air-01", ObservedAt: ts(at), Location: pt(105.8342, 21.0278),
				Name: "Trạm Hoàn Kiếm", Pm25: proto.Float64(56.5), Pm10: proto.Float64(80), No2: proto.Float64(21.5),
				Temperature: proto.Float64(27.3), RelativeHumidity: proto.Float64(78),
			}},
			Aqi: &iocv1.AirQualityIndex{Hourly: proto.Int32(152), Dominant: "pm25", Band: 4, BandVi: "Kém", BandEn: "Unhealthy",
				Color: "#FF0000", Hour: ts(at), Daily: proto.Int32(120), SubIndices: map[string]float64{"pm25": 152, "pm10": 65, "no2": 11}},
		},
		{Layer: subjects.KindTraffic, EntityId: "hn-seg-01", Province: "01", Unit: "00070", UpdatedAt: ts(at.Add(time.Second)),
			Latest: &iocv1.EntityState_Traffic{Traffic: &iocv1.TrafficObserved{
				Id: "hn-seg-01@2026-07-01T08:00:00Z", EntityId: "hn-seg-01", ObservedAt: ts(at), Name: "Đường Láng",
				Location:  mustWKB(t, geom.NewLineString(geom.XY).MustSetCoords([]geom.Coord{{105.8101, 21.0201}, {105.8152, 21.0233}, {105.8203, 21.0264}})),
				Intensity: proto.Float64(1240), AverageVehicleSpeed: proto.Float64(12.5), Occupancy: proto.Float64(0.6), Congested: proto.Bool(true),
				LaneId: proto.Int32(1), LaneDirection: "forward",
			}},
		},
		{Layer: subjects.KindWater, EntityId: "hn-hydro-01", Province: "01", Unit: "00004", UpdatedAt: ts(at.Add(time.Second)), WaterAlarm: 2,
			Latest: &iocv1.EntityState_Water{Water: &iocv1.WaterObserved{
				Id: "hn-hydro-01@2026-07-01T08:00:00Z", EntityId: "hn-hydro-01", ObservedAt: ts(at), Name: "Trạm thủy văn Long Biên",
				Location: pt(105.8631, 21.0431), WaterLevel: proto.Float64(10.8), AlarmLevel_1: proto.Float64(9.5), AlarmLevel_2: proto.Float64(10.5),
				AlarmLevel_3: proto.Float64(11.5), Ph: proto.Float64(7.2), DissolvedOxygen: proto.Float64(6),
			}},
		},
		{Layer: subjects.KindWeather, EntityId: "hn-wx-01", Province: "01", Unit: "00070", UpdatedAt: ts(at.Add(time.Second)),
			Latest: &iocv1.EntityState_Weather{Weather: &iocv1.WeatherObserved{
				Id: "hn-wx-01@2026-07-01T08:00:00Z", EntityId: "hn-wx-01", ObservedAt: ts(at), Name: "Trạm khí tượng Láng",
				Location: pt(105.8058, 21.0186), Temperature: proto.Float64(31.5), RelativeHumidity: proto.Float64(0.8),
				Precipitation: proto.Float64(2.5), WindSpeed: proto.Float64(3.2), WindDirection: proto.Float64(135), AtmosphericPressure: proto.Float64(1008),
			}},
		},
		{Layer: subjects.KindAlert, EntityId: "kttv-2026-0701-01", Province: "01", Unit: "01", UpdatedAt: ts(at), AlertState: "active",
			Units: []string{"00004", "00070"}, AlertAck: &iocv1.AlertAck{By: "op-hn-01 as Nguyễn Văn A", At: ts(at.Add(2 * time.Minute))},
			Latest: &iocv1.EntityState_Alert{Alert: &iocv1.Alert{
				Id: "kttv-2026-0701-01", Identifier: "kttv-2026-0701-01", Sender: "kttv@example.vn", Sent: ts(at), Status: "Actual",
				MsgType: "Alert", Scope: "Public",
				Info: []*iocv1.AlertInfo{
					{Language: "vi-VN", Category: []string{"Met"}, Event: "Mưa lớn", Urgency: "Expected", Severity: "Severe", Certainty: "Likely",
						Headline: "Cảnh báo mưa lớn tại Hoàn Kiếm", Description: "Mưa 100 mm trong 6 giờ tới", Expires: ts(at.Add(6 * time.Hour)),
						Area: []*iocv1.AlertArea{{AreaDesc: "Hoàn Kiếm", Geometry: mustWKB(t, geom.NewPolygon(geom.XY).MustSetCoords([][]geom.Coord{
							{{105.84, 21.02}, {105.86, 21.02}, {105.86, 21.04}, {105.84, 21.04}, {105.84, 21.02}}}))}}},
					{Language: "en-US", Category: []string{"Met"}, Event: "Heavy rain", Urgency: "Expected", Severity: "Severe", Certainty: "Likely",
						Headline: "Heavy rain warning in Hoan Kiem", Description: "100 mm of rain in the next 6 hours", Expires: ts(at.Add(6 * time.Hour))},
				},
			}},
		},
		{Layer: subjects.KindReport, EntityId: "rp-01", Province: "01", Unit: "00070", UpdatedAt: ts(at.Add(time.Minute)),
			Latest: &iocv1.EntityState_Report{Report: &iocv1.Report{
				Id: "rp-01@2026-07-01T08:00:00Z", EntityId: "rp-01", ObservedAt: ts(at), Location: pt(105.8123, 21.0211),
				Category: "flooding", Text: "Ngập sâu 30 cm trước số 12 Đường Láng", Media: []string{"https://media.example.vn/rp-01.jpg"},
				Status: "assigned", Assignee: "team-dong-da", SlaDeadline: ts(at.Add(4 * time.Hour)),
			}},
		},
	}
}

// TestLiveGolden pins the live view's wire format: the snapshot frame with
// one Feature per layer (and its compact form, snapshot=compact), the state frame of each, and the remove frame. The
// files hold the frames indented; the wire carries them compact, with the
// same members in the same order. go test -run TestLiveGolden -update
// rewrites them after a deliberate change of the contract (docs/api.md and
// the web follow).
func TestLiveGolden(t *testing.T) {
	var fs [][]byte
	for _, st := range goldenStates(t) {
		f, err := encodeFeature(st, subjects.State(st.GetProvince(), st.GetLayer(), st.GetEntityId()))
		if err != nil {
			t.Fatalf("encoding %s: %v", st.GetLayer(), err)
		}
		if f.geomErr != nil {
			t.Fatalf("encoding %s: geometry: %v", st.GetLayer(), f.geomErr)
		}
		fs = append(fs, f.json)
		checkGolden(t, "state_"+st.GetLayer(), stateFrame(f.json))
	}
	checkGolden(t, "snapshot", snapshotFrame("01", fs))
	checkGolden(t, "snapshot_compact", compactSnapshotFrame("01", flatAll(t, fs)))
	checkGolden(t, "remove", removeFrame("air/hn-air-01"))
}

// checkGolden compares the frame, indented, with testdata/live/<name>.golden.json.
func checkGolden(t *testing.T, name string, frame []byte) {
	t.Helper()
	if !json.Valid(frame) {
		t.Fatalf("%s: the frame is not valid JSON: %s", name, frame)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, frame, "", "  "); err != nil {
		t.Fatalf("%s: indenting: %v", name, err)
	}
	buf.WriteByte('\n')
	path := filepath.Join("testdata", "live", name+".golden.json")
	testkit.Golden(t, path, buf.Bytes(), *update)
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The file, compacted, is the wire's bytes.
	var compact bytes.Buffer
	if err := json.Compact(&compact, want); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !bytes.Equal(compact.Bytes(), frame) {
		t.Errorf("%s compacted is not the frame on the wire:\n got %s\nwant %s", path, frame, compact.Bytes())
	}
}
