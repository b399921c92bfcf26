package loadgen

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
	"time"
)

// BenchmarkTrackerFrame is what the load's live client pays to find the
// observation's id in a state frame of the gateway (its golden air frame,
// compacted as the gateway sends it): the client shares the machine's cores
// with the hub it measures.
func BenchmarkTrackerFrame(b *testing.B) {
	raw, err := os.ReadFile("../../services/gateway/testdata/live/state_air.golden.json")
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		b.Fatal(err)
	}
	g := NewGenerator("r", 1, [4]float64{0, 0, 1, 1})
	frame := bytes.Replace(buf.Bytes(), []byte(`"hn-air-01@2026-07-01T08:00:00Z"`), []byte(`"lg-r-s0-1@2026-07-01T08:00:00Z"`), 1)
	tr := NewTracker(g)
	tr.Sent([]Ref{{0, 1}}, time.Now())
	at := time.Now()
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		tr.Frame(frame, at)
	}
	if n, _, _, _ := tr.Latencies(); n != 1 {
		b.Fatalf("the frame's id was seen %d times; want 1", n)
	}
}
