package aggregator

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// BenchmarkDecode measures decode (subject, CloudEvents headers, protobuf,
// checks, the row to store) of a FEEDS message per kind, beside the
// floor: proto.Unmarshal of the same bytes alone.
func BenchmarkDecode(b *testing.B) {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	for _, k := range []struct {
		kind string
		msg  proto.Message
		new  func() proto.Message
	}{
		{subjects.KindAir, airEvent(b, 1, t0, 12), func() proto.Message { return &iocv1.AirQualityObserved{} }},
		{subjects.KindTraffic, trafficEvent(b, 1, t0, 30), func() proto.Message { return &iocv1.TrafficObserved{} }},
	} {
		m := feedMsg(b, k.kind, k.msg, "id-1")
		b.Run(k.kind, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decode(m.Subject, m.Header, m.Data, now); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(k.kind+"/baseline_unmarshal", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := proto.Unmarshal(m.Data, k.new()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
