package gateway

import "testing"

// BenchmarkEncodeFeature is the per-state cost paid once per STATE message,
// whatever the number of clients.
func BenchmarkEncodeFeature(b *testing.B) {
	st := airState(b, "st-1", 0, 35)
	b.ReportAllocs()
	for b.Loop() {
		f, err := encodeFeature(st, "")
		if err != nil {
			b.Fatal(err)
		}
		_ = textFrame(stateFrame(f.json))
	}
}
