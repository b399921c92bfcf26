package aggregator

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/wkb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

func TestDecode(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	air := func(edit func(*iocv1.AirQualityObserved)) func(*nats.Msg) {
		return func(m *nats.Msg) {
			a := airEvent(t, 1, t0, 12)
			edit(a)
			m.Data, _ = proto.Marshal(a)
		}
	}
	traffic := func(edit func(*iocv1.TrafficObserved)) func(*nats.Msg) {
		return func(m *nats.Msg) {
			tr := trafficEvent(t, 1, t0, 30)
			edit(tr)
			m.Subject = subjects.Feed(province, unit, subjects.KindTraffic)
			m.Data, _ = proto.Marshal(tr)
		}
	}
	alert := func(edit func(*iocv1.Alert)) func(*nats.Msg) {
		return func(m *nats.Msg) {
			a := &iocv1.Alert{Id: "a1", Identifier: "a1", Sender: "s", Sent: timestamppb.New(t0), Status: "Actual", MsgType: "Alert",
				Info: []*iocv1.AlertInfo{{Area: []*iocv1.AlertArea{{Geometry: mustWKB(t, square(105, 21, 0.1))}}}}}
			edit(a)
			m.Subject = subjects.Feed(province, unit, subjects.KindAlert)
			m.Data, _ = proto.Marshal(a)
		}
	}
	tests := []struct {
		name    string
		edit    func(*nats.Msg)
		wantErr string // substring; empty means success
		is      error
	}{
		{"valid air", func(*nats.Msg) {}, "", nil},
		{"valid traffic", traffic(func(*iocv1.TrafficObserved) {}), "", nil},
		{"valid alert", alert(func(*iocv1.Alert) {}), "", nil},
		{"bad subject", func(m *nats.Msg) { m.Subject = "ioc.feed.01.air" }, "subject", ErrBadMessage},
		{"empty unit", func(m *nats.Msg) { m.Subject = subjects.Feed(province, "", subjects.KindAir) }, "empty province or unit", ErrBadMessage},
		{"missing ce-type", func(m *nats.Msg) { delete(m.Header, ce.HeaderType) }, "ce-type", ErrBadMessage},
		{"unsupported kind", func(m *nats.Msg) { m.Subject = subjects.Feed(province, unit, "sewage") }, "sewage", ErrUnsupportedKind},
		{"garbage body", func(m *nats.Msg) { m.Data = []byte{0x0a, 0xff} }, "unmarshalling AirQualityObserved", ErrBadMessage},
		{"no source", func(m *nats.Msg) {
			delete(m.Header, HeaderSource)
			air(func(a *iocv1.AirQualityObserved) { a.Origin.SourceId = "" })(m)
		}, "no source", ErrBadMessage},
		{"source from origin", func(m *nats.Msg) { delete(m.Header, HeaderSource) }, "", nil},
		{"other named as a value", air(func(a *iocv1.AirQualityObserved) { // left out for the named value, not checked
			a.Pm1, a.Other = proto.Float64(3), map[string]float64{"pm1": math.NaN()}
		}), "", nil},
		{"no id", air(func(a *iocv1.AirQualityObserved) { a.Id = "" }), "id is empty", ErrBadMessage},
		{"no entity", air(func(a *iocv1.AirQualityObserved) { a.EntityId = "" }), "entity_id is empty", ErrBadMessage},
		{"NUL in entity", air(func(a *iocv1.AirQualityObserved) { a.EntityId = "a\x00b" }), "NUL", ErrBadMessage},
		{"no time", air(func(a *iocv1.AirQualityObserved) { a.ObservedAt = nil }), "observed_at is missing", ErrBadMessage},
		{"epoch time", air(func(a *iocv1.AirQualityObserved) { a.ObservedAt = &timestamppb.Timestamp{} }), "out of range", ErrBadMessage},
		{"1900 time", air(func(a *iocv1.AirQualityObserved) {
			a.ObservedAt = timestamppb.New(time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC))
		}), "out of range", ErrBadMessage},
		{"1999 time", air(func(a *iocv1.AirQualityObserved) {
			a.ObservedAt = timestamppb.New(time.Date(1999, 12, 31, 23, 0, 0, 0, time.UTC))
		}), "out of range", ErrBadMessage},
		{"an event past the last day of roll-ups", air(func(a *iocv1.AirQualityObserved) {
			a.ObservedAt = timestamppb.New(time.Date(9999, 12, 31, 18, 0, 0, 0, time.UTC))
		}), "an event may be dated up to 9999-12-30T23:59:59Z", ErrBadMessage},
		{"an alert that never expires", alert(func(a *iocv1.Alert) {
			a.Info[0].Expires = timestamppb.New(time.Date(9999, 12, 31, 23, 0, 0, 0, time.UTC))
		}), "", nil},
		{"invalid UTF-8 name", air(func(a *iocv1.AirQualityObserved) { a.Name = "a\xff" }), "UTF-8", ErrBadMessage},
		{"NUL in alert id", alert(func(a *iocv1.Alert) { a.Id = "a\x00" }), "NUL", ErrBadMessage},
		{"NUL in alert headline", alert(func(a *iocv1.Alert) { a.Info[0].Headline = "a\x00" }), "NUL", ErrBadMessage},
		{"alert headline with the text \\u0000", alert(func(a *iocv1.Alert) { a.Info[0].Headline = `C:\u0000 x \\u0000` }), "", nil},
		{"NaN value", air(func(a *iocv1.AirQualityObserved) { a.Pm25 = proto.Float64(math.NaN()) }), "pm25 is NaN", ErrBadMessage},
		{"Inf extra", air(func(a *iocv1.AirQualityObserved) { a.Temperature = proto.Float64(math.Inf(1)) }), "temperature", ErrBadMessage},
		{"line for a station", air(func(a *iocv1.AirQualityObserved) {
			a.Location = mustWKB(t, geom.NewLineStringFlat(geom.XY, []float64{105, 21, 106, 22}))
		}), "want a Point", ErrBadMessage},
		{"bad WKB", air(func(a *iocv1.AirQualityObserved) { a.Location = &iocv1.Geometry{Wkb: []byte{1, 2, 3}} }), "decoding WKB", ErrBadMessage},
		{"latitude out of range", air(func(a *iocv1.AirQualityObserved) {
			a.Location = mustWKB(t, geom.NewPointFlat(geom.XY, []float64{21, 105}))
		}), "not a longitude, latitude pair", ErrBadMessage},
		{"3D point", air(func(a *iocv1.AirQualityObserved) {
			a.Location = mustWKB(t, geom.NewPointFlat(geom.XYZ, []float64{105, 21, 10}))
		}), "want 2D", ErrBadMessage},
		{"geometry collection", air(func(a *iocv1.AirQualityObserved) {
			a.Location = mustWKB(t, geom.NewGeometryCollection().MustPush(geom.NewPointFlat(geom.XY, []float64{105, 21})))
		}), "GeometryCollection is not accepted", ErrBadMessage},
		{"huge point count", air(func(a *iocv1.AirQualityObserved) {
			a.Location = &iocv1.Geometry{Wkb: []byte{1, 2, 0, 0, 0, 0x19, 0x19, 0x19, 0x19, 0, 0}}
		}), "does not fit", ErrBadMessage},
		{"point for a segment", traffic(func(tr *iocv1.TrafficObserved) {
			tr.Location = mustWKB(t, geom.NewPointFlat(geom.XY, []float64{105, 21}))
		}), "want a LineString", ErrBadMessage},
		{"alert without sent", alert(func(a *iocv1.Alert) { a.Sent = nil }), "sent is missing", ErrBadMessage},
		{"alert without identifier", alert(func(a *iocv1.Alert) { a.Identifier = "" }), "identifier is empty", ErrBadMessage},
		{"alert area is a line", alert(func(a *iocv1.Alert) {
			a.Info[0].Area[0].Geometry = mustWKB(t, geom.NewLineStringFlat(geom.XY, []float64{105, 21, 106, 22}))
		}), "want a Point, Polygon or MultiPolygon", ErrBadMessage},
		{"alert ring not closed", alert(func(a *iocv1.Alert) {
			a.Info[0].Area[0].Geometry = mustWKB(t, geom.NewPolygonFlat(geom.XY, []float64{105, 21, 106, 21, 106, 22, 105, 22}, []int{8}))
		}), "not closed", ErrBadMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := feedMsg(t, subjects.KindAir, airEvent(t, 1, t0, 12), "")
			tt.edit(m)
			d, err := decode(m.Subject, m.Header, m.Data, now)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("decode: got %+v; want an error containing %q", d, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("decode: got %q; want it to contain %q", err, tt.wantErr)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("decode: got %v; want errors.Is %v", err, tt.is)
			}
		})
	}
}

func TestDecodeRows(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	a := airEvent(t, 1, t0, 12)
	a.Origin.ReceivedAt = nil
	m := feedMsg(t, subjects.KindAir, a, "")
	d, err := decode(m.Subject, m.Header, m.Data, now)
	if err != nil {
		t.Fatal(err)
	}
	r := d.row.(postgis.AirRow)
	if r.SourceID != sourceID || r.EventID != a.GetId() || r.StationID != a.GetEntityId() || r.Province != province || r.UnitCode != unit {
		t.Errorf("row keys = %+v", r)
	}
	if !r.ObservedAt.Equal(t0) || !r.ReceivedAt.Equal(now) {
		t.Errorf("row times = %v, %v; want %v, %v", r.ObservedAt, r.ReceivedAt, t0, now)
	}
	if *r.PM25 != 12 || *r.PM10 != 18 || r.NO2 != nil {
		t.Errorf("row pollutants = %v %v %v; want 12 18 nil", *r.PM25, *r.PM10, r.NO2)
	}
	if r.Extra["temperature"] != 27.0 || r.Extra["benzene"] != 1.5 {
		t.Errorf("row extra = %v; want temperature 27, benzene 1.5", r.Extra)
	}
	lon, lat := stationPoint(1)
	if r.Location.X() != lon || r.Location.Y() != lat {
		t.Errorf("row location = %v; want (%v %v)", r.Location.FlatCoords(), lon, lat)
	}

	// Alert: expires is the latest of the info blocks; several areas become one collection.
	al := &iocv1.Alert{Identifier: "a1", Sender: "s", Sent: timestamppb.New(t0), Info: []*iocv1.AlertInfo{
		{Language: "vi-VN", Expires: timestamppb.New(t0.Add(time.Hour)), Area: []*iocv1.AlertArea{
			{Geometry: mustWKB(t, square(105, 21, 0.1))}, {Geometry: mustWKB(t, geom.NewPointFlat(geom.XY, []float64{105.5, 21.5}))},
		}},
		{Language: "en-US", Expires: timestamppb.New(t0.Add(2 * time.Hour))},
	}}
	m = feedMsg(t, subjects.KindAlert, al, "")
	m.Subject = subjects.Feed(province, unit, subjects.KindAlert)
	d, err = decode(m.Subject, m.Header, m.Data, now)
	if err != nil {
		t.Fatal(err)
	}
	ar := d.row.(postgis.AlertRow)
	if ar.EventID != "a1" || ar.ID() != sourceID+"/a1" || ar.Expires == nil || !ar.Expires.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("alert row = %+v", ar)
	}
	if gc, ok := ar.Area.(*geom.GeometryCollection); !ok || gc.NumGeoms() != 2 {
		t.Errorf("alert area = %T; want a GeometryCollection of 2", ar.Area)
	}
	if !strings.Contains(string(ar.Info), `"language":"en-US"`) {
		t.Errorf("alert info = %s", ar.Info)
	}
}

// FuzzDecode feeds arbitrary bodies, subjects and headers to the decoder: it
// must never panic, and what it accepts must be storable (no NUL, finite
// numbers, a time after 1970).
func FuzzDecode(f *testing.F) {
	for _, kind := range []string{subjects.KindAir, subjects.KindTraffic, subjects.KindAlert} {
		var body []byte
		switch kind {
		case subjects.KindAir:
			body, _ = proto.Marshal(airEvent(f, 1, t0, 3))
		case subjects.KindTraffic:
			body, _ = proto.Marshal(trafficEvent(f, 1, t0, 3))
		case subjects.KindAlert:
			body, _ = proto.Marshal(&iocv1.Alert{Identifier: "a", Sent: timestamppb.New(t0),
				Info: []*iocv1.AlertInfo{{Area: []*iocv1.AlertArea{{Geometry: mustWKB(f, square(105, 21, 1))}}}}})
		}
		f.Add(subjects.Feed(province, unit, kind), "id-1", sourceID, body)
	}
	f.Add("ioc.feed.01", "", "", []byte{})
	f.Fuzz(func(t *testing.T, subject, id, source string, body []byte) {
		h := ce.Event{ID: id, Source: "urn:ioc:01:00070", Type: "t"}.Header()
		h[HeaderSource] = []string{source}
		d, err := decode(subject, h, body, t0)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) && !errors.Is(err, ErrUnsupportedKind) {
				t.Fatalf("error %v is neither ErrBadMessage nor ErrUnsupportedKind", err)
			}
			return
		}
		var texts []string
		switch d.kind {
		case subjects.KindAir:
			r := d.row.(postgis.AirRow)
			texts = []string{r.SourceID, r.EventID, r.StationID, r.Name}
			if r.ObservedAt.Unix() <= 0 {
				t.Fatalf("accepted observed_at %v", r.ObservedAt)
			}
		case subjects.KindTraffic:
			r := d.row.(postgis.TrafficRow)
			texts = []string{r.SourceID, r.EventID, r.SegmentID, r.Name}
		case subjects.KindAlert:
			r := d.row.(postgis.AlertRow)
			texts = []string{r.SourceID, r.EventID, r.Identifier, r.Sender, string(r.Info)}
		case subjects.KindWater, subjects.KindWeather:
			// FuzzDecodeStations checks these.
		default:
			t.Fatalf("accepted kind %q", d.kind)
		}
		for _, s := range texts {
			if strings.ContainsRune(s, 0) || strings.Contains(s, `\u0000`) {
				t.Fatalf("accepted a NUL byte in %q", s)
			}
		}
	})
}

// TestDecodeWKBSetsSRID: a decoded geometry has the store's SRID (the
// store's WithSRID then uses it as it is: the goroutines that encode a
// batch's rows share it unchanged).
func TestDecodeWKBSetsSRID(t *testing.T) {
	for _, g := range []geom.T{
		geom.NewPointFlat(geom.XY, []float64{105.85, 21.03}),
		geom.NewLineStringFlat(geom.XY, []float64{105.85, 21.03, 105.9, 21.1}),
	} {
		b, err := wkb.Marshal(g, binary.LittleEndian)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeWKB(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.SRID() != postgis.SRID {
			t.Errorf("decoded %T has SRID %d; want %d", got, got.SRID(), postgis.SRID)
		}
	}
}

// TestDecodeNamesFirstBadValue: of several values that are not finite (an
// alert's: times out of range), the error names the first in the message's
// order, the same every time (they were checked in a map's order, which Go
// varies from run to run).
func TestDecodeNamesFirstBadValue(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	a := airEvent(t, 1, t0, 12)
	a.Pm25, a.Pm10, a.O3 = proto.Float64(math.NaN()), proto.Float64(math.Inf(1)), proto.Float64(math.Inf(-1))
	tr := trafficEvent(t, 1, t0, 30)
	tr.Intensity, tr.Occupancy, tr.AverageVehicleSpeed = proto.Float64(math.NaN()), proto.Float64(math.Inf(1)), proto.Float64(math.NaN())
	al := &iocv1.Alert{Id: "a1", Identifier: "a1", Sender: "s", Sent: timestamppb.New(t0), Status: "Actual", MsgType: "Alert",
		Info: []*iocv1.AlertInfo{{Effective: &timestamppb.Timestamp{}, Onset: &timestamppb.Timestamp{}, Expires: &timestamppb.Timestamp{},
			Area: []*iocv1.AlertArea{{Geometry: mustWKB(t, square(105, 21, 0.1))}}}}}
	// The named values before the others; the others by name; the id first.
	a2 := airEvent(t, 1, t0, 12)
	a2.Temperature, a2.WindSpeed, a2.Other = proto.Float64(math.NaN()), proto.Float64(math.Inf(1)), map[string]float64{"benzene": math.NaN()}
	a3 := airEvent(t, 1, t0, 12)
	a3.Other = map[string]float64{"xylene": math.Inf(1), "toluene": math.NaN(), "benzene": math.NaN()}
	w := waterEvent(t, "w1", t0, 2)
	w.Other = map[string]float64{"nitrate": math.NaN(), "ch4": math.Inf(1), "zinc": math.NaN()}
	a4 := airEvent(t, 1, t0, 12)
	a4.Id, a4.EntityId = "", ""
	for _, c := range []struct {
		kind string
		msg  proto.Message
		want string
	}{
		{subjects.KindAir, a, "pm25 is NaN"}, {subjects.KindTraffic, tr, "intensity is NaN"}, {subjects.KindAlert, al, "info[0].effective"},
		{subjects.KindAir, a2, "temperature is NaN"}, {subjects.KindAir, a3, "benzene is NaN"}, {subjects.KindWater, w, "ch4 is +Inf"},
		{subjects.KindAir, a4, ": id is empty"},
	} {
		m := feedMsg(t, c.kind, c.msg, "id-1")
		m.Header[ce.HeaderID] = []string{"event-1"} // feedMsg takes it from the message's id, empty or unknown here
		for range 50 {
			_, err := decode(m.Subject, m.Header, m.Data, now)
			if err == nil || !errors.Is(err, ErrBadMessage) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%s: error %v; want ErrBadMessage naming %q", c.kind, err, c.want)
			}
		}
	}
}

// FuzzJSONHasNUL: of any text json.Marshal writes, jsonHasNUL finds a NUL
// exactly when the text holds one (a backslash and u0000 written as text
// are not one).
func FuzzJSONHasNUL(f *testing.F) {
	for _, s := range []string{"", "a\x00", `\u0000`, `\\u0000`, "\\\x00", `C:\u0000 x`, "\xff\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := json.Marshal([]string{s, s + `\`})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := jsonHasNUL(b), strings.Contains(s, "\x00"); got != want {
			t.Fatalf("jsonHasNUL(%s) = %v; the text %q holds a NUL: %v", b, got, s, want)
		}
	})
}
