package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// FuzzDecodeLazy checks that the handler's decoder (decodeItemsInto, lazy,
// whose items may come as members read into one reused map, into memory
// that the bodies before used: reqMem) gives the items decodeItems gives,
// field for field, on every body.
func FuzzDecodeLazy(f *testing.F) {
	mem := new(reqMem) // the fuzzer's bodies, one after the other, in one memory
	seedBodies(f)
	f.Add([]byte(`[{"a":1,"z":2},{"b":2}]`))
	f.Add([]byte(`[{"id":"a","id":"b","type":"X"},{},{"type":"Feature","properties":{"id":"c"}},{"type":"Feature","type":"Y","x":1}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, format := range []string{"", formatJSON, formatNDJSON} {
			want, werr := decodeItems(bytes.NewReader(body), format, 100)
			got, gerr := decodeItemsInto(bytes.NewReader(body), format, 100, int64(len(body)), true, mem)
			if fmt.Sprint(gerr) != fmt.Sprint(werr) || len(got) != len(want) {
				t.Fatalf("format %q: lazy gave %d items, %v; decodeItems %d, %v", format, len(got), gerr, len(want), werr)
			}
			shared := make(map[string]json.RawMessage)
			var big map[string]json.RawMessage
			for i, it := range got {
				if it.members != nil {
					if it.fields != nil || it.err != "" || it.cap != nil {
						t.Fatalf("format %q item %d: members with fields %v, err %q", format, i, it.fields, it.err)
					}
					// What the parsers read, as a list or a map, holds the members decodeItems gives.
					f := it.fieldsIn(&big)
					read := map[string]json.RawMessage{}
					for k, raw := range f.all() {
						if _, twice := read[k]; twice {
							t.Fatalf("format %q item %d: member %q yielded twice", format, i, k)
						}
						read[k] = raw
						if r, _ := f.raw(k); !bytes.Equal(r, raw) {
							t.Fatalf("format %q item %d: member %q is %s; all gave %s", format, i, k, r, raw)
						}
					}
					if !reflect.DeepEqual(read, want[i].fields) {
						t.Fatalf("format %q item %d: fields %v; decodeItems %v", format, i, read, want[i].fields)
					}
					fillFields(shared, it.members)
					it.fields, it.members = shared, nil
				}
				if !reflect.DeepEqual(it, want[i]) {
					t.Fatalf("format %q item %d: lazy gave %+v; decodeItems %+v", format, i, it, want[i])
				}
			}
			mem.reset()
		}
	})
}

// BenchmarkReadBatchLazy compares, in one process, the handler's way of
// reading BenchmarkReadBatch's batch (decodeItemsLazy, one map filled per
// item) with a new map per item (decodeItemsSized), in alternating rounds so
// that other load on the machine weighs on both alike.
func BenchmarkReadBatchLazy(b *testing.B) {
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
	for round := range 4 {
		b.Run("map"+strconv.Itoa(round), func(b *testing.B) {
			for b.Loop() {
				items, _ := decodeItemsSized(bytes.NewReader(body.Bytes()), formatJSON, 10000, int64(body.Len()))
				for _, it := range items {
					if _, ierr := parseAir(fieldsOf(it.fields), env); ierr != nil {
						b.Fatal(ierr)
					}
				}
			}
		})
		b.Run("lazy"+strconv.Itoa(round), func(b *testing.B) {
			for b.Loop() {
				items, _ := decodeItemsLazy(bytes.NewReader(body.Bytes()), formatJSON, 10000, int64(body.Len()))
				var shared map[string]json.RawMessage
				for _, it := range items {
					f := it.fieldsIn(&shared)
					if _, ierr := parseAir(f, env); ierr != nil {
						b.Fatal(ierr)
					}
				}
			}
		})
	}
}

// decodeItemsLazy is the handler's decoding (decodeItemsInto, lazy) without
// a request's memory.
func decodeItemsLazy(r io.Reader, format string, maxItems int, size int64) ([]rawItem, error) {
	return decodeItemsInto(r, format, maxItems, size, true, nil)
}

// fastArrayOf is fastArrayInto without a request's memory.
func fastArrayOf(body []byte, maxItems int, lazy bool) ([]rawItem, bool) {
	return fastArrayInto(body, maxItems, lazy, nil)
}
