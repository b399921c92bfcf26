package cejson

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

func TestFromMsg(t *testing.T) {
	st := &iocv1.EntityState{EntityId: "st-1"}
	body, err := proto.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 21, 8, 0, 0, 0, time.FixedZone("ICT", 7*3600))
	h := ce.Event{ID: "e1", Source: "urn:ioc:01:00070", Type: ce.StateType("air"), Subject: "st-1", Time: at}.Header()
	ev, err := FromMsg(subjects.State("01", "air", "st-1"), h, body, 42)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ev)
	var got map[string]any
	_ = json.Unmarshal(b, &got)
	if got["id"] != "e1" || got["type"] != "vn.ioc.air.state.v1" || got["time"] != "2026-11-21T01:00:00Z" || got["iocseq"] != 42.0 ||
		got["iocsubject"] != "ioc.state.01.air.st-1" || got["data"].(map[string]any)["entityId"] != "st-1" {
		t.Errorf("state event = %s", b)
	}

	// A roll-up's JSON body is kept; missing attributes are filled.
	ev, err = FromMsg(subjects.Rollup("01", "001", "air", "1h"), nats.Header{ce.HeaderContentType: {ce.ContentTypeJSON}}, []byte(`{"n":3}`), 7)
	if err != nil || string(ev.Data) != `{"n":3}` || ev.ID != "seq-7" || ev.Source == "" || ev.Type == "" {
		t.Errorf("roll-up event = %+v, %v", ev, err)
	}
	if _, err := FromMsg(subjects.Rollup("01", "001", "air", "1h"), nil, []byte("not json"), 8); err == nil {
		t.Error("a roll-up that is not JSON was rendered")
	}
	if _, err := FromMsg("other.subject", nil, nil, 1); !errors.Is(err, ErrUnknownSubject) {
		t.Errorf("other subject: %v", err)
	}
	if _, err := FromMsg(subjects.Feed("01", "00070", "air"), nil, []byte{0xff, 0xff}, 1); err == nil {
		t.Error("a broken protobuf body was rendered")
	}
}

func TestMessage(t *testing.T) {
	for subject, want := range map[string]string{
		subjects.Feed("01", "u", "traffic"):     "TrafficObserved",
		subjects.Feed("01", "u", "air"):         "AirQualityObserved",
		subjects.Feed("01", "u", "water"):       "WaterObserved",
		subjects.Feed("01", "u", "weather"):     "WeatherObserved",
		subjects.Feed("01", "u", "alert"):       "Alert",
		subjects.Feed("01", "u", "report"):      "Report",
		subjects.Feed("01", "u", "noise"):       "Observation",
		subjects.State("01", "air", "e"):        "EntityState",
		subjects.Action("01", "report", "r"):    "Action",
		subjects.Deadletter("01", "water"):      "WaterObserved",
		subjects.Rollup("01", "u", "air", "1h"): "",
	} {
		m, err := Message(subject)
		name := ""
		if m != nil {
			name = string(m.ProtoReflect().Descriptor().Name())
		}
		if err != nil || name != want {
			t.Errorf("Message(%s) = %s, %v; want %s", subject, name, err, want)
		}
	}
}

// FuzzFromMsg renders arbitrary bodies and time headers on a subject of
// each stream: no panic; a rendered event has JSON data and a time in UTC.
func FuzzFromMsg(f *testing.F) {
	body, _ := proto.Marshal(&iocv1.EntityState{EntityId: "st-1"})
	f.Add(body, "2026-11-21T08:00:00+07:00", false)
	f.Add([]byte(`{"n":3}`), "", true)
	f.Add([]byte{0xff, 0xff}, "9999-12-31T23:59:59Z", false)
	subs := []string{subjects.State("01", "air", "st-1"), subjects.Feed("01", "00070", "alert"), subjects.Rollup("01", "001", "air", "1h"),
		subjects.Feed("01", "00070", "report")}
	f.Fuzz(func(t *testing.T, data []byte, at string, asJSON bool) {
		h := nats.Header{ce.HeaderTime: {at}}
		if asJSON {
			h[ce.HeaderContentType] = []string{ce.ContentTypeJSON}
		}
		for _, s := range subs {
			ev, err := FromMsg(s, h, data, 1)
			if err != nil {
				continue
			}
			if !json.Valid(ev.Data) {
				t.Fatalf("%s: data %q is not JSON", s, ev.Data)
			}
			if ev.Time != nil && ev.Time.Location() != time.UTC {
				t.Fatalf("%s: time %v not in UTC", s, ev.Time)
			}
			if _, err := json.Marshal(ev); err != nil {
				t.Fatalf("%s: the event does not marshal: %v", s, err)
			}
		}
	})
}
