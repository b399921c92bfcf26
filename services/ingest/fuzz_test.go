package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twpayne/go-geom/encoding/wkb"
	"google.golang.org/protobuf/proto"
)

func seedBodies(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(append(append([]byte("["), b...), ']'))
		f.Add(append(append(bytes.ReplaceAll(b, []byte("\n"), nil), '\n'), bytes.ReplaceAll(b, []byte("\n"), nil)...))
	}
	for _, s := range []string{
		`[]`, `[1, null, "x", {}]`, `{"type":"FeatureCollection","features":[{"type":"Feature","geometry":null,"properties":{"id":"a"}}]}`,
		`[{"id":"a","pm25":1.5e3,"x":[true,false,null,{"k":"\u00e9\n"}]}, null ,{"id":"b","id":"c"}]`, `[{"a":01}]`, `[{"a":1.}]`,
		`[{"a":"\x"}]`, `[{"\u0061":1}]`, `[{"a":-0.5E+3}]  `, `[{"a":"` + "\xff" + `"}]`, `[{"a":1},]`, `[{"a":[[[[[[[1]]]]]]]}]`,
		`{"features": 3}`, "{\"id\":1}\n{bad\n{\"id\":2}", "\xEF\xBB\xBF[{}]", `[{"a":1}] x`, `{"type":"Feature","properties":[]}`,
	} {
		f.Add([]byte(s))
	}
}

// FuzzDecodeItems runs every body decoder (sniffed, JSON, NDJSON) on arbitrary bytes.
func FuzzDecodeItems(f *testing.F) {
	seedBodies(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, format := range []string{"", formatJSON, formatNDJSON} {
			items, err := decodeItems(bytes.NewReader(body), format, 100)
			// The fast path (decode_fast.go) must answer as encoding/json does.
			slow, serr := decodeStream(bytes.NewReader(body), format, 100)
			if fmt.Sprint(err) != fmt.Sprint(serr) || !reflect.DeepEqual(items, slow) {
				t.Fatalf("format %q: fast path gave %v, %v; encoding/json %v, %v", format, items, err, slow, serr)
			}
			if sized, zerr := decodeItemsSized(bytes.NewReader(body), format, 100, int64(len(body))); fmt.Sprint(zerr) != fmt.Sprint(err) || !reflect.DeepEqual(sized, items) {
				t.Fatalf("format %q: read with its size, the body gave %v, %v; without %v, %v", format, sized, zerr, items, err)
			}
			if err != nil {
				if !errors.Is(err, ErrMalformedBody) && !errors.Is(err, ErrNoItems) && !errors.Is(err, ErrTooManyItems) {
					t.Fatalf("format %q: unexpected error kind %v", format, err)
				}
				if len(items) != 0 {
					t.Fatalf("format %q: got items with an error", format)
				}
				continue
			}
			if len(items) == 0 || len(items) > 100 {
				t.Fatalf("format %q: got %d items; want 1..100", format, len(items))
			}
			last := 0
			for i, it := range items {
				if (it.fields == nil) == (it.err == "") {
					t.Fatalf("format %q item %d: fields %v and err %q; want exactly one", format, i, it.fields, it.err)
				}
				if it.line != 0 {
					if it.line <= last {
						t.Fatalf("format %q item %d: line %d after %d", format, i, it.line, last)
					}
					last = it.line
				}
			}
			if format == formatJSON && bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")) {
				var all []json.RawMessage
				if json.Unmarshal(body, &all) == nil && len(all) != len(items) {
					t.Fatalf("JSON array of %d values decoded into %d items", len(all), len(items))
				}
			}
		}
	})
}

// FuzzGeometry checks that a geometry that passes validation is in range,
// closed where it must be, and survives WKB.
func FuzzGeometry(f *testing.F) {
	for _, s := range []string{
		`{"type":"Point","coordinates":[105.85,21.02]}`,
		`{"type":"Point","coordinates":[21.02,105.85]}`,
		`{"type":"LineString","coordinates":[[105.85,21.02],[105.86,21.03]]}`,
		`{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1],[0,0]],[[0.2,0.2],[0.4,0.2],[0.4,0.4],[0.2,0.2]]]}`,
		`{"type":"Polygon","coordinates":[[[0,0],[1,1],[1,0],[0,1],[0,0]]]}`,
		`{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]]],[[[5,5],[6,5],[6,6],[5,5]]]]}`,
		`{"type":"Polygon","coordinates":[[[0,0],[1,0],[0,0],[1,0]]]}`,
		`{"type":"Point","coordinates":[1e999,0]}`, `{"type":"Point"}`, `{"type":"Circle","coordinates":[0,0]}`, `[]`,
	} {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		` { "coordinates" : [ 105.85 , 21.02 , 3 ] , "type" : "Point" } `, `{"type":"Point","coordinates":[105.85]}`,
		`{"type":"Point","coordinates":[105.85,21.02,1,2]}`, `{"type":"Point","coordinates":[-0.0,-1e-7]}`,
		`{"type":"Point","type":"LineString","coordinates":[1,2]}`, `{"Type":"Point","coordinates":[1,2]}`,
		`{"type":"LineString","coordinates":[[105.85,21.02]]}`, `{"type":"LineString","coordinates":[[1,2],[3,"4"]]}`,
		`{"type":"LineString","coordinates":[[1,2],[300,4]]}`, `{"type":"Point","coordinates":[1,2],"bbox":[1,2,1,2]}`,
	} {
		f.Add([]byte(s))
	}
	allowedSets := [][]string{{"Point", "LineString", "Polygon", "MultiPolygon"}, {"Point"}, {"LineString"}}
	f.Fuzz(func(t *testing.T, raw []byte) {
		// The fast path (geometry_fast.go) must answer as encoding/json does.
		for _, allowed := range allowedSets {
			fast, ferr := ParseGeometry(raw, "location", allowed...)
			slow, serr := parseGeometrySlow(raw, "location", allowed...)
			if fmt.Sprint(ferr) != fmt.Sprint(serr) || !reflect.DeepEqual(fast, slow) {
				t.Fatalf("allowed %v: fast path gave %v, %v; encoding/json %v, %v", allowed, fast, ferr, slow, serr)
			}
		}
		g, err := ParseGeometry(raw, "location", "Point", "LineString", "Polygon", "MultiPolygon")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "location") {
				t.Fatalf("error %q does not name the field", err)
			}
			return
		}
		for _, p := range g.Polys {
			for _, r := range p {
				for k := 0; k+1 < len(r); k += 2 {
					if math.IsNaN(r[k]) || math.Abs(r[k]) > 180 || math.Abs(r[k+1]) > 90 {
						t.Fatalf("accepted position [%v, %v]", r[k], r[k+1])
					}
				}
				if (g.Type == "Polygon" || g.Type == "MultiPolygon") && (len(r) < 8 || r[0] != r[len(r)-2] || r[1] != r[len(r)-1]) {
					t.Fatalf("accepted an open or short ring %v", r)
				}
			}
		}
		b, err := g.WKB()
		if err != nil {
			t.Fatalf("WKB of an accepted geometry: %v", err)
		}
		if viaGeom, err := g.wkbGeom(); err != nil || !bytes.Equal(b, viaGeom) {
			t.Fatalf("WKB %x; go-geom writes %x (%v)", b, viaGeom, err)
		}
		back, err := wkb.Unmarshal(b)
		if err != nil {
			t.Fatalf("reading back WKB: %v", err)
		}
		gt, _ := g.Geom()
		if !slicesEqual(back.FlatCoords(), gt.FlatCoords()) {
			t.Fatalf("WKB round trip changed coordinates")
		}
	})
}

func slicesEqual(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzParseItems runs the item parsers of every kind (FIWARE keyValues, CAP
// JSON) on arbitrary JSON objects: no panic, and an accepted item has ids, a
// time and an encodable event.
func FuzzParseItems(f *testing.F) {
	seedBodies(f)
	f.Add([]byte(`{"identifier":"x","sent":"2025-07-01T08:00:00Z","status":"Actual","msgType":"Alert","info":[{"category":"Met","event":"e"}],"area":[{"geometry":{"type":"Point","coordinates":[105.85,21.02]}}]}`))
	f.Add([]byte(`{"id":"a","dateObserved":"2025-07-01T08:00:00Z/2025-07-01T09:00:00Z","location":{"type":"LineString","coordinates":[[1,2],[3,4]]},"laneId":1.5}`))
	env := parseEnv{now: time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC), maxFuture: 10 * time.Minute}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil || m == nil {
			return
		}
		for kind, spec := range kindSpecs {
			it, ierr := sameParse(t, kind, spec.parse, m, raw, env)
			if ierr != nil {
				if ierr.reason == "" {
					t.Fatalf("%s: rejection without a reason", kind)
				}
				continue
			}
			if it.id == "" || it.eventID == "" || it.entityID == "" || it.time.IsZero() || it.msg == nil {
				t.Fatalf("%s: accepted item lacks an id, event id, entity or time: %+v", kind, it)
			}
			b, err := proto.Marshal(it.msg)
			if err != nil {
				t.Fatalf("%s: encoding: %v", kind, err)
			}
			// The check on the bytes passes exactly what storable passes.
			if got, want := wireStorable(b, it.msg.ProtoReflect().Descriptor()), storable(it.msg) == nil; got != want {
				t.Fatalf("%s: wireStorable %v; storable passes: %v", kind, got, want)
			}
		}
	})
}
