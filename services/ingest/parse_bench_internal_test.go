package ingest

import (
	"bytes"
	"strconv"
	"testing"
	"time"
)

// BenchmarkReadBatch is the CPU cost of reading BenchmarkIngest's batch of
// 500 air items (split into items, then each parsed), without HTTP or NATS,
// by the fast path beside the encoding/json path it replaced for arrays.
func BenchmarkReadBatch(b *testing.B) {
	var body bytes.Buffer
	body.WriteByte('[')
	for i := range 500 {
		if i > 0 {
			body.WriteByte(',')
		}
		body.WriteString(`{"id":"bench-1-` + strconv.Itoa(i) + `","type":"AirQualityObserved","dateObserved":"2025-07-01T08:00:00+07:00",` +
			`"location":{"type":"Point","coordinates":[105.8522,21.0287]},"pm25":35.5,"pm10":50,"no2":20.5,` +
			`"temperature":31,"refDevice":"station-bench-1-` + strconv.Itoa(i) + `"}`)
	}
	body.WriteByte(']')
	env := parseEnv{now: time.Date(2025, 7, 1, 2, 0, 0, 0, time.UTC), maxFuture: 10 * time.Minute}
	read := func(b *testing.B, split func() ([]rawItem, error)) {
		b.SetBytes(int64(body.Len()))
		for b.Loop() {
			items, err := split()
			if err != nil || len(items) != 500 {
				b.Fatalf("got %d items, %v", len(items), err)
			}
			for _, it := range items {
				if _, ierr := parseAir(fieldsOf(it.fields), env); ierr != nil {
					b.Fatal(ierr)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(500*b.N), "ns/item")
	}
	b.Run("fast", func(b *testing.B) {
		read(b, func() ([]rawItem, error) { return decodeItems(bytes.NewReader(body.Bytes()), formatJSON, 10000) })
	})
	b.Run("encoding-json", func(b *testing.B) {
		read(b, func() ([]rawItem, error) { return decodeStream(bytes.NewReader(body.Bytes()), formatJSON, 10000) })
	})
}
