package ingest

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
)

// FuzzDecodeLazy checks that the handler's decoder (decodeItemsLazy, whose
// items may come as members read into one reused map) gives the items
// decodeItems gives, field for field, on every body.
func FuzzDecodeLazy(f *testing.F) {
	seedBodies(f)
	f.Add([]byte(`[{"a":1,"z":2},{"b":2}]`))
	f.Add([]byte(`[{"id":"a","id":"b","type":"X"},{},{"type":"Feature","properties":{"id":"c"}},{"type":"Feature","type":"Y","x":1}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, format := range []string{"", formatJSON, formatNDJSON} {
			want, werr := decodeItems(bytes.NewReader(body), format, 100)
			got, gerr := decodeItemsLazy(bytes.NewReader(body), format, 100, int64(len(body)))
			if fmt.Sprint(gerr) != fmt.Sprint(werr) || len(got) != len(want) {
				t.Fatalf("format %q: lazy gave %d items, %v; decodeItems %d, %v", format, len(got), gerr, len(want), werr)
			}
			shared := make(fields)
			for i, it := range got {
				if it.members != nil {
					if it.fields != nil || it.err != "" || it.cap != nil {
						t.Fatalf("format %q item %d: members with fields %v, err %q", format, i, it.fields, it.err)
					}
					fillFields(shared, it.members)
					it.fields, it.members = shared, nil
				}
				if !reflect.DeepEqual(it, want[i]) {
					t.Fatalf("format %q item %d: lazy gave %+v; decodeItems %+v", format, i, it, want[i])
				}
			}
		}
	})
}
