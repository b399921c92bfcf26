package capconv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/wkb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/cap"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// The CAP examples are internal/cap's fixtures (copies of ../shared/data/cap,
// licences in its testdata/SOURCES.md); cap2geojson_sc.xml is malformed.
const capTestdata = "../cap/testdata"

func examples(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(capTestdata, "*.xml"))
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte)
	for _, f := range files {
		if filepath.Base(f) == "cap2geojson_sc.xml" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	if len(out) < 8 {
		t.Fatalf("found %d CAP examples in %s; want at least 8", len(out), capTestdata)
	}
	return out
}

// TestRoundTripExamples: CAP → proto (through the wire) → CAP gives the same
// alert, and cap.Marshal writes the same bytes for both.
func TestRoundTripExamples(t *testing.T) {
	for name, doc := range examples(t) {
		t.Run(name, func(t *testing.T) {
			alerts, err := cap.Parse(bytes.NewReader(doc))
			if err != nil {
				t.Fatalf("cap.Parse: %v", err)
			}
			for _, orig := range alerts {
				m, err := ToProto(orig)
				if err != nil {
					t.Fatalf("ToProto: %v", err)
				}
				wire, err := proto.Marshal(m)
				if err != nil {
					t.Fatal(err)
				}
				back := &iocv1.Alert{}
				if err := proto.Unmarshal(wire, back); err != nil {
					t.Fatal(err)
				}
				got, err := FromProto(back)
				if err != nil {
					t.Fatalf("FromProto: %v", err)
				}
				if !reflect.DeepEqual(got, orig) {
					t.Errorf("round trip differs:\ngot  %+v\nwant %+v", got, orig)
				}
				want, err := cap.Marshal(orig)
				if err != nil {
					t.Fatalf("cap.Marshal(original): %v", err)
				}
				out, err := cap.Marshal(got)
				if err != nil {
					t.Fatalf("cap.Marshal(round trip): %v", err)
				}
				if !bytes.Equal(out, want) {
					t.Errorf("CAP XML differs:\ngot  %s\nwant %s", out, want)
				}
				if m.GetId() != orig.Identifier {
					t.Errorf("event id %q; want the identifier %q", m.GetId(), orig.Identifier)
				}
				checkAreas(t, orig, m)
			}
		})
	}
}

// checkAreas: each area's geometry is cap.AreaGeometry in WKB, absent and
// marked for an area without a shape, and the CAP text form is kept.
func checkAreas(t *testing.T, a cap.Alert, m *iocv1.Alert) {
	t.Helper()
	for i, in := range a.Infos {
		for j, ar := range in.Areas {
			pa := m.GetInfo()[i].GetArea()[j]
			want := cap.AreaGeometry(ar)
			if want == nil {
				if pa.GetGeometry() != nil || !pa.GetNoGeometry() {
					t.Errorf("info[%d] area[%d]: geometry %v, no_geometry %v; want none, true", i, j, pa.GetGeometry(), pa.GetNoGeometry())
				}
				continue
			}
			if pa.GetNoGeometry() {
				t.Errorf("info[%d] area[%d]: no_geometry set on an area with a shape", i, j)
			}
			got, err := wkb.Unmarshal(pa.GetGeometry().GetWkb())
			if err != nil {
				t.Fatalf("info[%d] area[%d]: %v", i, j, err)
			}
			if !slices.Equal(got.FlatCoords(), want.FlatCoords()) || reflect.TypeOf(got) != reflect.TypeOf(want) {
				t.Errorf("info[%d] area[%d]: geometry %T differs from cap.AreaGeometry %T", i, j, got, want)
			}
			for k, pg := range ar.Polygons {
				if got := pa.GetPolygon()[k].GetCap(); got != pg.String() {
					t.Errorf("info[%d] area[%d] polygon[%d] text %q; want %q", i, j, k, got, pg.String())
				}
			}
			for k, c := range ar.Circles {
				if got := pa.GetCircle()[k].GetCap(); got != c.String() {
					t.Errorf("info[%d] area[%d] circle[%d] text %q; want %q", i, j, k, got, c.String())
				}
			}
		}
	}
}

// TestRoundTripEveryField fills every optional CAP element, which the
// examples do not all use, with offsets of both signs.
func TestRoundTripEveryField(t *testing.T) {
	ict := time.FixedZone("", 7*3600)
	neg := time.FixedZone("", -(9*3600 + 30*60))
	size := int64(1234)
	alt, ceil := 100.5, 2000.0
	ring := cap.Polygon{{Lat: 21.02, Lon: 105.84}, {Lat: 21.04, Lon: 105.84}, {Lat: 21.04, Lon: 105.86}, {Lat: 21.02, Lon: 105.84}}
	orig := cap.Alert{
		Identifier: "HN-2026-0001", Sender: "ioc@hanoi.gov.vn", Sent: time.Date(2026, 11, 21, 8, 0, 0, 0, ict),
		Status: "Exercise", MsgType: "Update", Source: "operator 7", Scope: "Restricted", Restriction: "IOC staff only",
		Codes: []string{"IPAWSv1.0", "X"}, Note: "note & <more>",
		References: "ioc@hanoi.gov.vn,HN-2026-0000,2026-11-21T07:00:00+07:00", Incidents: "inc1 inc2",
		Infos: []cap.Info{{
			Language: "vi-VN", Categories: []string{"Met", "Safety"}, Event: "Ngập lụt",
			ResponseTypes: []string{"Evacuate", "Monitor"}, Urgency: "Immediate", Severity: "Severe", Certainty: "Observed",
			Audience: "cư dân", EventCodes: []cap.NamedValue{{ValueName: "SAME", Value: "FLW"}},
			Effective: time.Date(2026, 11, 21, 8, 0, 0, 0, ict), Onset: time.Date(2026, 11, 20, 15, 30, 0, 0, neg),
			Expires: time.Date(2026, 11, 21, 1, 0, 0, 0, time.FixedZone("", 0)), SenderName: "IOC Hà Nội",
			Headline: "Ngập", Description: "line 1\nline 2", Instruction: "Di chuyển", Web: "https://ioc.hanoi.gov.vn/a/1",
			Contact: "1022", Parameters: []cap.NamedValue{{ValueName: "depth_cm", Value: "40"}, {ValueName: "road", Value: ""}},
			Resources: []cap.Resource{
				{ResourceDesc: "map", MimeType: "image/png", Size: &size, URI: "https://x/y.png", Digest: "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
				{ResourceDesc: "note", MimeType: "text/plain", DerefURI: "aGVsbG8="},
			},
			Areas: []cap.Area{
				{AreaDesc: "Hoàn Kiếm", Polygons: []cap.Polygon{ring}, Circles: []cap.Circle{{Center: cap.Point{Lat: 21.03, Lon: 105.85}, Radius: 2.5}},
					Geocodes: []cap.NamedValue{{ValueName: "GSO", Value: "00070"}}, Altitude: &alt, Ceiling: &ceil},
				{AreaDesc: "Ba Đình", Geocodes: []cap.NamedValue{{ValueName: "GSO", Value: "00004"}}},
				{AreaDesc: "point", Circles: []cap.Circle{{Center: cap.Point{Lat: 21.1, Lon: 105.9}}}},
			},
		}, {Language: "en-US", Categories: []string{"Met"}, Event: "Flood", Urgency: "Unknown", Severity: "Unknown", Certainty: "Unknown"}},
	}
	signed, err := cap.Parse(bytes.NewReader(mustRead(t, "capvalidator_sc_signed_valid.xml")))
	if err != nil {
		t.Fatal(err)
	}
	orig.Signature = signed[0].Signature
	if len(orig.Signature) == 0 {
		t.Fatal("the signed example has no signature")
	}
	m, err := ToProto(orig)
	if err != nil {
		t.Fatal(err)
	}
	wire, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	back := &iocv1.Alert{}
	if err := proto.Unmarshal(wire, back); err != nil {
		t.Fatal(err)
	}
	got, err := FromProto(back)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, orig) {
		t.Errorf("round trip differs:\ngot  %+v\nwant %+v", got, orig)
	}
	if back.GetSentOffsetSeconds() != 7*3600 || back.GetInfo()[0].GetOnsetOffsetSeconds() != -(9*3600+30*60) {
		t.Errorf("offsets %d, %d; want 25200, -34200", back.GetSentOffsetSeconds(), back.GetInfo()[0].GetOnsetOffsetSeconds())
	}
	if back.GetInfo()[0].GetArea()[2].GetNoGeometry() != true {
		t.Error("an area with only a circle of radius 0 has no shape; want no_geometry")
	}
	// And through the XML: what cap.Marshal writes parses back to the same alert.
	doc, err := cap.Marshal(got)
	if err != nil {
		t.Fatalf("cap.Marshal: %v", err)
	}
	again, err := cap.Parse(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("cap.Parse: %v\n%s", err, doc)
	}
	if !reflect.DeepEqual(again[0], orig) {
		t.Errorf("XML round trip differs:\ngot  %+v\nwant %+v", again[0], orig)
	}
	checkAreas(t, orig, m)
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(capTestdata, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustWKB(t *testing.T, g geom.T) []byte {
	t.Helper()
	b, err := wkb.Marshal(g, binary.LittleEndian)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFromProtoOtherForms: alerts that came as JSON have a geometry but no
// CAP shapes; FromProto writes them as CAP polygons and circles.
func TestFromProtoOtherForms(t *testing.T) {
	poly := geom.NewPolygonFlat(geom.XY, []float64{105.84, 21.02, 105.86, 21.02, 105.86, 21.04, 105.84, 21.02,
		105.845, 21.025, 105.85, 21.025, 105.85, 21.03, 105.845, 21.025}, []int{8, 16})
	multi := geom.NewMultiPolygon(geom.XY)
	if err := multi.Push(poly); err != nil {
		t.Fatal(err)
	}
	if err := multi.Push(geom.NewPolygonFlat(geom.XY, []float64{106, 21, 106.1, 21, 106.1, 21.1, 106, 21}, []int{8})); err != nil {
		t.Fatal(err)
	}
	outer := cap.Polygon{{Lat: 21.02, Lon: 105.84}, {Lat: 21.02, Lon: 105.86}, {Lat: 21.04, Lon: 105.86}, {Lat: 21.02, Lon: 105.84}}
	second := cap.Polygon{{Lat: 21, Lon: 106}, {Lat: 21, Lon: 106.1}, {Lat: 21.1, Lon: 106.1}, {Lat: 21, Lon: 106}}
	for _, tc := range []struct {
		name     string
		g        geom.T
		polygons []cap.Polygon
		circles  []cap.Circle
	}{
		{"polygon without its hole", poly, []cap.Polygon{outer}, nil},
		{"multipolygon", multi, []cap.Polygon{outer, second}, nil},
		{"point", geom.NewPointFlat(geom.XY, []float64{105.85, 21.03}), nil, []cap.Circle{{Center: cap.Point{Lat: 21.03, Lon: 105.85}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &iocv1.Alert{Identifier: "a", Sent: timestamppb.New(time.Date(2026, 1, 1, 0, 0, 0, 5e8, time.UTC)),
				Info: []*iocv1.AlertInfo{{Area: []*iocv1.AlertArea{{AreaDesc: "x", Geometry: &iocv1.Geometry{Wkb: mustWKB(t, tc.g)}}}}}}
			a, err := FromProto(m)
			if err != nil {
				t.Fatal(err)
			}
			ar := a.Infos[0].Areas[0]
			if !reflect.DeepEqual(ar.Polygons, tc.polygons) || !reflect.DeepEqual(ar.Circles, tc.circles) {
				t.Errorf("got polygons %v circles %v; want %v %v", ar.Polygons, ar.Circles, tc.polygons, tc.circles)
			}
			if _, off := a.Sent.Zone(); off != 0 || a.Sent.Nanosecond() != 0 {
				t.Errorf("sent %v; want UTC offset, whole seconds", a.Sent)
			}
		})
	}
}

func TestFromProtoRejects(t *testing.T) {
	line := geom.NewLineStringFlat(geom.XY, []float64{105, 21, 106, 22})
	for _, tc := range []struct {
		name string
		m    *iocv1.Alert
		want error
		msg  string
	}{
		{"nil", nil, ErrNoAlert, "converting alert: no alert"},
		{"odd coordinates", &iocv1.Alert{Identifier: "a", Info: []*iocv1.AlertInfo{{Area: []*iocv1.AlertArea{{Polygon: []*iocv1.AlertPolygon{{LatLon: []float64{1, 2, 3}}}}}}}},
			ErrBadArea, `converting alert "a" info[0] area[0]: polygon[0] has 3 coordinates; want lat,lon pairs: alert area cannot be written as CAP`},
		{"line", &iocv1.Alert{Identifier: "a", Info: []*iocv1.AlertInfo{{Area: []*iocv1.AlertArea{{Geometry: &iocv1.Geometry{Wkb: mustWKB(t, line)}}}}}},
			ErrBadArea, `converting alert "a" info[0] area[0]: area geometry is a *geom.LineString; want a Point, Polygon or MultiPolygon: alert area cannot be written as CAP`},
		{"bad wkb", &iocv1.Alert{Identifier: "a", Info: []*iocv1.AlertInfo{{Area: []*iocv1.AlertArea{{Geometry: &iocv1.Geometry{Wkb: []byte{1, 2, 3}}}}}}},
			ErrBadArea, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromProto(tc.m)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v; want %v", err, tc.want)
			}
			if tc.msg != "" && err.Error() != tc.msg {
				t.Errorf("got %q; want %q", err.Error(), tc.msg)
			}
		})
	}
}
