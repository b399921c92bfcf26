package ingest

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// TestStorableNamesTheField: a text or time that the aggregator would
// refuse is named by its path in the event.
func TestStorableNamesTheField(t *testing.T) {
	at := timestamppb.New(time.Date(2025, 7, 1, 1, 0, 0, 0, time.UTC))
	for _, tc := range []struct {
		name string
		m    func() error
		want string
	}{
		{name: "map key", m: func() error {
			return storable(&iocv1.Observation{Id: "a", ObservedAt: at, Values: map[string]float64{"p\x00m": 1}})
		}, want: "values key has a NUL character at byte 1"},
		{name: "list element", m: func() error {
			return storable(&iocv1.Alert{Id: "a", Sent: at, Info: []*iocv1.AlertInfo{{}, {Category: []string{"Met", "\xff"}}}})
		}, want: "info[1].category[1] is not valid UTF-8"},
		{name: "time", m: func() error {
			return storable(&iocv1.Alert{Id: "a", Sent: timestamppb.New(time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC))})
		}, want: "sent 1990-01-01T00:00:00Z is out of range"},
		{name: "nested time", m: func() error {
			return storable(&iocv1.Observation{Id: "a", ObservedAt: at, Origin: &iocv1.Origin{ReceivedAt: &timestamppb.Timestamp{Nanos: -1}}})
		}, want: "origin.received_at: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.m()
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("storable: %v; want an error starting %q", err, tc.want)
			}
		})
	}
	if err := storable(&iocv1.Observation{Id: "a", ObservedAt: at, Name: "Hoàn Kiếm", Values: map[string]float64{"pm25": 1}}); err != nil {
		t.Fatalf("storable of a valid observation: %v", err)
	}
}

// TestStorableAllocs: the paths of the fields are spelt only for an error,
// not per list element. protobuf's reflection copies each string element it
// hands out (one allocation), which is all an extra element may cost.
func TestStorableAllocs(t *testing.T) {
	at := timestamppb.New(time.Date(2025, 7, 1, 1, 0, 0, 0, time.UTC))
	alert := func(n int) *iocv1.Alert {
		a := &iocv1.Alert{Id: "a", Sent: at, Info: []*iocv1.AlertInfo{{Event: "Flood"}}}
		for range n {
			a.Info[0].Category = append(a.Info[0].Category, "Met")
			a.References = append(a.References, "s,i,2025-07-01T08:00:00+07:00")
		}
		return a
	}
	one, many := alert(1), alert(50)
	a1 := testing.AllocsPerRun(50, func() { _ = storable(one) })
	a50 := testing.AllocsPerRun(50, func() { _ = storable(many) })
	const extra = 2 * 49 // string elements in many but not in one
	if a50-a1 > extra {
		t.Errorf("storable allocates %.0f times for 2×50 list elements, %.0f for 2×1: more than the one copy per element", a50, a1)
	}
}

// TestWireStorable: the check on encoded bytes passes exactly what storable
// passes, on events that encode, and refuses bad text that only a hand-made
// encoding can carry (protobuf refuses to encode invalid UTF-8).
func TestWireStorable(t *testing.T) {
	at := timestamppb.New(time.Date(2025, 7, 1, 1, 0, 0, 0, time.UTC))
	for i, m := range []proto.Message{
		&iocv1.Observation{Id: "a", ObservedAt: at, Name: "Hoàn Kiếm", Values: map[string]float64{"pm25": 1}},
		&iocv1.Observation{Id: "a", ObservedAt: at, Values: map[string]float64{"p\x00m": 1}},
		&iocv1.Observation{Id: "a\x00", ObservedAt: at},
		&iocv1.Alert{Id: "a", Sent: timestamppb.New(time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC))},
		&iocv1.Alert{Id: "a", Sent: at, Info: []*iocv1.AlertInfo{{}, {Category: []string{"Met", "x\x00"}}}},
		&iocv1.Observation{Id: "a", ObservedAt: at, Origin: &iocv1.Origin{ReceivedAt: &timestamppb.Timestamp{Nanos: -1}}},
		&iocv1.Observation{Id: "a", ObservedAt: &timestamppb.Timestamp{Seconds: 1 << 40}},
		&iocv1.AirQualityObserved{Id: "a", ObservedAt: at, Other: map[string]float64{"x": 1}, Origin: &iocv1.Origin{SourceId: "s", ReceivedAt: at}},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if got, want := wireStorable(b, m.ProtoReflect().Descriptor()), storable(m) == nil; got != want {
			t.Errorf("case %d: wireStorable %v; storable passes: %v", i, got, want)
		}
	}
	md := (&iocv1.Observation{}).ProtoReflect().Descriptor()
	name := md.Fields().ByName("name").Number()
	for _, s := range []string{"\xff", "a\x00b"} {
		b := protowire.AppendString(protowire.AppendTag(nil, name, protowire.BytesType), s)
		if wireStorable(b, md) {
			t.Errorf("wireStorable passed name %q", s)
		}
	}
	if wireStorable([]byte{0xff}, md) {
		t.Error("wireStorable passed a broken encoding")
	}
}
