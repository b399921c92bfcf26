package aggregator

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// fill sets every field of m to a value of its type (nested messages to a
// depth of 3, two entries in maps and lists), so that an encoding that drops
// or changes a field shows.
func fill(m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.ContainingOneof() != nil && !fd.HasOptionalKeyword() && m.WhichOneof(fd.ContainingOneof()) != nil {
			continue // one member of a real oneof
		}
		switch {
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for j := range 2 {
				k := scalar(fd.MapKey(), j).MapKey()
				if fd.MapValue().Kind() == protoreflect.MessageKind {
					if depth > 0 {
						v := mp.NewValue()
						fill(v.Message(), depth-1)
						mp.Set(k, v)
					}
					continue
				}
				mp.Set(k, scalar(fd.MapValue(), j))
			}
		case fd.IsList():
			l := m.Mutable(fd).List()
			for j := range 2 {
				if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
					if depth > 0 {
						v := l.NewElement()
						fill(v.Message(), depth-1)
						l.Append(v)
					}
					continue
				}
				l.Append(scalar(fd, j))
			}
		case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
			if depth > 0 {
				fill(m.Mutable(fd).Message(), depth-1)
			}
		default:
			m.Set(fd, scalar(fd, 1))
		}
	}
}

// scalar is a value of fd's scalar kind, different for each j.
func scalar(fd protoreflect.FieldDescriptor, j int) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(j%2 == 1)
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(j + 1))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(-7 - j))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(7 + j))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(int64(-1e12) - int64(j))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(uint64(1e12) + uint64(j))
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(1.5 + float32(j))
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(21.25 + float64(j))
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(fmt.Sprintf("%s-%d-Hà Nội", fd.Name(), j))
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte{0, byte(j), 0xff, 1})
	}
	panic("kind " + fd.Kind().String())
}

// TestMarshalStateSharesFeedBytes checks marshalState for every event a
// state can carry: what a reader decodes equals st encoded whole by
// proto.Marshal (the fields of st and of the event, and an unknown field of
// the feed's bytes, such as a newer ingest may write), and the feed's bytes
// are in it as they came.
func TestMarshalStateSharesFeedBytes(t *testing.T) {
	fields := latestOneof.Fields()
	if fields.Len() < 7 {
		t.Fatalf("oneof latest has %d fields; the test expects every kind's", fields.Len())
	}
	for i := range fields.Len() {
		fd := fields.Get(i)
		t.Run(string(fd.Name()), func(t *testing.T) {
			ev := (&iocv1.EntityState{}).ProtoReflect().NewField(fd).Message()
			fill(ev, 3)
			raw, err := proto.Marshal(ev.Interface())
			if err != nil {
				t.Fatal(err)
			}
			raw = protowire.AppendTag(raw, 9999, protowire.VarintType) // a field this build does not know
			raw = protowire.AppendVarint(raw, 42)
			decoded := ev.Interface().ProtoReflect().New().Interface()
			if err := proto.Unmarshal(raw, decoded); err != nil {
				t.Fatal(err)
			}
			now := timestamppb.Now()
			st := func() *iocv1.EntityState {
				st := &iocv1.EntityState{Layer: "air", EntityId: "station-1", Province: "01", Unit: "00070",
					UpdatedAt: now, Aqi: &iocv1.AirQualityIndex{Hourly: proto.Int32(151), Dominant: "pm25"}, Units: []string{"00070", "01"}}
				st.ProtoReflect().Set(fd, protoreflect.ValueOfMessage(decoded.ProtoReflect()))
				return st
			}
			want, err := proto.Marshal(st())
			if err != nil {
				t.Fatal(err)
			}
			got, err := marshalState(st(), decoded, raw)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(got, raw) {
				t.Error("the feed's bytes are not in the state as they came")
			}
			var g, w iocv1.EntityState
			if err := proto.Unmarshal(got, &g); err != nil {
				t.Fatalf("the state does not decode: %v", err)
			}
			if err := proto.Unmarshal(want, &w); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(&g, &w) {
				t.Errorf("decoded state differs from proto.Marshal's:\n got %v\nwant %v", &g, &w)
			}
			if u := g.ProtoReflect().Get(fd).Message().GetUnknown(); !bytes.Contains(u, protowire.AppendVarint(protowire.AppendTag(nil, 9999, protowire.VarintType), 42)) {
				t.Errorf("the feed's unknown field is lost: %x", u)
			}
		})
	}

	// A state whose event is not the decoded message (a report's, built
	// from its row) is encoded whole, whatever raw holds.
	st := &iocv1.EntityState{Layer: "report", EntityId: "r1", Latest: &iocv1.EntityState_Report{Report: &iocv1.Report{Id: "r1", Text: "ngập"}}}
	got, err := marshalState(st, &iocv1.Report{Id: "other"}, []byte("not this"))
	if err != nil {
		t.Fatal(err)
	}
	var g iocv1.EntityState
	if err := proto.Unmarshal(got, &g); err != nil || g.GetReport().GetText() != "ngập" || bytes.Contains(got, []byte("not this")) {
		t.Errorf("a report's state: %v, %v", &g, err)
	}
}

// BenchmarkMarshalState encodes an air station's state as the drain does,
// against proto.Marshal of the same state (the baseline: the way before).
func BenchmarkMarshalState(b *testing.B) {
	ev := &iocv1.AirQualityObserved{}
	fill(ev.ProtoReflect(), 2)
	raw, err := proto.Marshal(ev)
	if err != nil {
		b.Fatal(err)
	}
	decoded := &iocv1.AirQualityObserved{}
	if err := proto.Unmarshal(raw, decoded); err != nil {
		b.Fatal(err)
	}
	now := timestamppb.Now()
	st := func() *iocv1.EntityState {
		return &iocv1.EntityState{Layer: "air", EntityId: "station-1", Province: "01", Unit: "00070", UpdatedAt: now,
			Latest: &iocv1.EntityState_Air{Air: decoded}, Aqi: &iocv1.AirQualityIndex{Hourly: proto.Int32(151), Dominant: "pm25", Band: 4}}
	}
	b.Run("proto.Marshal", func(b *testing.B) {
		for b.Loop() {
			if _, err := proto.Marshal(st()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("shared", func(b *testing.B) {
		for b.Loop() {
			if _, err := marshalState(st(), decoded, raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A stored event whose state is larger than the server's max payload (its
// event came within a few bytes of the limit, past the ingest's headroom)
// is stored and its state left out, counted; its batch-mates' states are
// published and the whole batch acked, not retried forever together.
func TestStateTooLargeDoesNotHoldItsBatch(t *testing.T) {
	const maxPayload = 256 << 10
	ne, pool := testenv.NATSMaxPayload(t, maxPayload), testDB(t)
	insertUnit(t, pool, province, "province", "", 105, 20)
	big := capEvent(t, "big", "Alert", t0)
	msg := feedMsg(t, subjects.KindAlert, big, "")
	size := func(m *nats.Msg) int { return natsx.WireSize(m.Header, m.Data) }
	big.Info[0].Description = strings.Repeat("m", maxPayload-size(msg)-6)
	msg = feedMsg(t, subjects.KindAlert, big, "")
	if n := size(msg); n > maxPayload || n < maxPayload-8 {
		t.Fatalf("the big alert's message is %d bytes; want just under %d", n, maxPayload)
	}
	msgs := []*nats.Msg{msg}
	for i := range 3 {
		msgs = append(msgs, feedMsg(t, subjects.KindAlert, capEvent(t, fmt.Sprintf("small-%d", i), "Alert", t0), ""))
	}
	publish(t, ne.JS, msgs...)
	r := start(t, ne, pool, Config{Durable: "agg-big"})
	waitIdle(t, ne.JS, "agg-big")
	if n := rows(t, pool, "alert"); n != 4 {
		t.Errorf("%d alerts stored; want 4", n)
	}
	if n := counterValue(t, r.svc.m.errors.WithLabelValues("state-too-large")); n != 1 {
		t.Errorf("errors_total{stage=state-too-large} = %v; want 1", n)
	}
	for i := range 3 {
		if _, _, err := lastState(t, ne.JS, subjects.KindAlert, fmt.Sprintf("%s/small-%d", sourceID, i)); err != nil {
			t.Errorf("small-%d: %v", i, err)
		}
	}
}
