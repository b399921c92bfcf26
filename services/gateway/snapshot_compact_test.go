package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/iochub/iochub/internal/subjects"
)

// expandCompact rebuilds the Features of a compact snapshot frame, as a
// client does (web/app/store.js, snapshotFeatures).
func expandCompact(t testing.TB, frame []byte) (province string, fs []map[string]any) {
	t.Helper()
	var snap struct {
		Type     string `json:"type"`
		Province string `json:"province"`
		Entities []any  `json:"entities"`
		Shapes   []struct {
			Paths [][]string     `json:"paths"`
			Same  map[string]any `json:"same"`
			Rows  [][]any        `json:"rows"`
		} `json:"shapes"`
	}
	dec := json.NewDecoder(bytes.NewReader(frame))
	dec.UseNumber()
	if err := dec.Decode(&snap); err != nil {
		t.Fatalf("decoding %s: %v", frame, err)
	}
	if snap.Type != "snapshot" || snap.Entities != nil || snap.Shapes == nil {
		t.Fatalf("frame %s: want a compact snapshot (shapes, no entities)", frame)
	}
	for _, s := range snap.Shapes {
		if len(s.Rows) == 0 {
			t.Fatalf("shape %v has no rows", s.Paths)
		}
		if len(s.Rows) == 1 && len(s.Same) > 0 {
			t.Errorf("shape %v of one row has same values %v", s.Paths, s.Same)
		}
		for _, row := range s.Rows {
			if len(row)+len(s.Same) != len(s.Paths) {
				t.Fatalf("row %v: %d values and %d same for %d paths", row, len(row), len(s.Same), len(s.Paths))
			}
			f := map[string]any{}
			next := 0
			for i, p := range s.Paths {
				v, ok := s.Same[strconv.Itoa(i)]
				if !ok {
					v = row[next]
					next++
				}
				o := f
				for _, name := range p[:len(p)-1] {
					c, ok := o[name].(map[string]any)
					if !ok {
						c = map[string]any{}
						o[name] = c
					}
					o = c
				}
				o[p[len(p)-1]] = v
			}
			fs = append(fs, f)
		}
	}
	return snap.Province, fs
}

// decodeAll decodes each Feature as expandCompact's values are (numbers as json.Number).
func decodeAll(t testing.TB, raw [][]byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, b := range raw {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var f map[string]any
		if err := dec.Decode(&f); err != nil {
			t.Fatalf("decoding %s: %v", b, err)
		}
		out = append(out, f)
	}
	return out
}

func byID(fs []map[string]any) map[string]map[string]any {
	m := map[string]map[string]any{}
	for _, f := range fs {
		m[fmt.Sprint(f["id"])] = f
	}
	return m
}

// flatAll cuts each of raw with one flattener, as the hub does.
func flatAll(t testing.TB, raw [][]byte) []*flatFeature {
	t.Helper()
	var out []*flatFeature
	var f flattener
	for _, b := range raw {
		ff, err := f.flatten(b)
		if err != nil {
			t.Fatalf("flattening %s: %v", b, err)
		}
		if !ff.of(b) {
			t.Fatalf("flat form of %s not known as made of it", b)
		}
		out = append(out, &ff)
	}
	return out
}

// The compact snapshot holds the same Features as the snapshot: every layer's
// golden Feature, a stale one, two of one shape (values they share go to
// "same"), and members the scanner must take whole (escapes, braces and
// brackets in strings, nested arrays, an empty object, literals).
func TestCompactSnapshotSameFeatures(t *testing.T) {
	var raw [][]byte
	for _, st := range goldenStates(t) {
		f, err := encodeFeature(st, subjects.State(st.GetProvince(), st.GetLayer(), st.GetEntityId()))
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, f.json)
	}
	raw = append(raw, markStale(raw[0]))
	for i := range 3 {
		raw = append(raw, fmt.Appendf(nil, `{"type":"Feature","id":"air/x-%d","geometry":{"type":"Point","coordinates":[105.%d,21]},`+
			`"properties":{"layer":"air","name":"Tr\u1ea1m \"{[x]}\"\\ %d","empty":{},"ok":true,"none":null,`+
			`"observation":{"values":{"pm25":%d.5e0,"list":[[1,{"a":"}"}],[]]}}}}`, i, i, i, 40+i%2))
	}
	frame := compactSnapshotFrame("01", flatAll(t, raw))
	if !json.Valid(frame) {
		t.Fatalf("not JSON: %s", frame)
	}
	province, got := expandCompact(t, frame)
	if province != "01" {
		t.Errorf("province %q; want 01", province)
	}
	want := decodeAll(t, raw)
	if len(got) != len(want) {
		t.Fatalf("%d Features; want %d", len(got), len(want))
	}
	// The stale Feature has the same id as its fresh one: compare in order of shapes' first rows instead of by id.
	gotStale, wantStale := 0, 0
	for _, f := range got {
		if p, _ := f["properties"].(map[string]any); p["stale"] == true {
			gotStale++
		}
	}
	for _, f := range want {
		if p, _ := f["properties"].(map[string]any); p["stale"] == true {
			wantStale++
		}
	}
	if gotStale != wantStale || gotStale != 1 {
		t.Errorf("stale Features %d; want %d (1)", gotStale, wantStale)
	}
	gm, wm := map[string]map[string]any{}, map[string]map[string]any{}
	for _, f := range got {
		if p, _ := f["properties"].(map[string]any); p["stale"] != true {
			gm[fmt.Sprint(f["id"])] = f
		}
	}
	for _, f := range want {
		if p, _ := f["properties"].(map[string]any); p["stale"] != true {
			wm[fmt.Sprint(f["id"])] = f
		}
	}
	if !reflect.DeepEqual(gm, wm) {
		t.Errorf("expanded Features differ:\n got %v\nwant %v", gm, wm)
	}
	// The three of one shape share their type, layer, empty object and flags, not their id, name or pm25.
	if !bytes.Contains(frame, []byte(`"same":{"0":"Feature","2":"Point",`)) || !bytes.Contains(frame, []byte(`"rows":[["air/x-0",[105.0,21],"Tr`)) {
		t.Errorf("frame %s: want the values the three share in same, the others in rows", frame)
	}
	// Eight shapes (six layers, the stale one, the three alike): each member's path once per shape.
	if n := bytes.Count(frame, []byte(`["properties","layer"]`)); n != 8 {
		t.Errorf("the layer's path sent %d times for %d Features; want once per shape, 8", n, len(raw))
	}
}

func TestFlattenFeatureRefusesNonObjects(t *testing.T) {
	deep := strings.Repeat(`{"a":`, maxFlattenDepth+1) + `1` + strings.Repeat(`}`, maxFlattenDepth+1)
	for _, b := range []string{``, `[]`, `{}`, `"x"`, `{"a":1`, `{"a":1}x`, `{"a" 1}`, `{"a":}`, `{"a":"x}`, deep} {
		if _, err := new(flattener).flatten([]byte(b)); err == nil {
			t.Errorf("flatten(%.40q): no error", b)
		}
	}
	ok := strings.Repeat(`{"a":`, maxFlattenDepth) + `1` + strings.Repeat(`}`, maxFlattenDepth)
	if _, err := new(flattener).flatten([]byte(ok)); err != nil {
		t.Errorf("flatten of objects %d deep: %v", maxFlattenDepth, err)
	}
}

// A live view with snapshot=compact gets the Features a view without it gets,
// then the same state frames.
func TestLiveCompactSnapshot(t *testing.T) {
	e := newLiveEnv(t, Config{})
	var sts = goldenStates(t)
	for i := range 50 {
		sts = append(sts, airState(t, fmt.Sprintf("st-%03d", i), 0, float64(i)))
	}
	publishAsync(t, e.nats.JS, sts)
	plain := e.dial(t, "province=01")
	snap := readFrame(t, plain)
	compact := e.dial(t, "province=01&snapshot=compact")
	b := readMessage(t, compact)
	_, got := expandCompact(t, b)
	var raw [][]byte
	for _, f := range snap.Entities {
		j, _ := json.Marshal(f)
		raw = append(raw, j)
	}
	if want := byID(decodeAll(t, raw)); !reflect.DeepEqual(byID(got), want) {
		t.Errorf("compact snapshot's Features differ from the snapshot's:\n got %v\nwant %v", byID(got), want)
	}
	if len(got) != len(snap.Entities) || len(got) < 50 {
		t.Fatalf("compact snapshot has %d Features, the snapshot %d", len(got), len(snap.Entities))
	}
	if len(b) >= 2*len(raw[0])*len(raw)/3 {
		t.Errorf("compact snapshot is %d bytes for %d Features of ~%d bytes; want well under", len(b), len(raw), len(raw[0]))
	}
	// Then deltas, as for any view; a new client gets the snapshot with the change (the cache is dropped).
	publish(t, e.nats.JS, airState(t, "st-007", 1, 99))
	f := readFrame(t, compact)
	if f.Type != "state" || idOf(f.Entity) != "air/st-007" || obsOf(f.Entity) != obsID("st-007", 1) {
		t.Fatalf("got %s frame of %s at %s; want the state of air/st-007 at 1", f.Type, idOf(f.Entity), obsOf(f.Entity))
	}
	again := e.dial(t, "province=01&snapshot=compact")
	_, got2 := expandCompact(t, readMessage(t, again))
	if obs := obsOf(byID(got2)["air/st-007"]); obs != obsID("st-007", 1) {
		t.Errorf("a later compact snapshot has st-007 at %q; want %q", obs, obsID("st-007", 1))
	}
}

// BenchmarkCompactSnapshot builds the compact snapshot of 5 000 air stations:
// cold (every Feature cut) and warm (each already cut, as after a tick that
// changed none of them), beside the plain snapshot of the same Features.
func BenchmarkCompactSnapshot(b *testing.B) {
	var raw [][]byte
	for i := range 5000 {
		st := airState(b, fmt.Sprintf("st-%04d", i), 0, float64(i%300))
		f, err := encodeFeature(st, subjects.State(st.GetProvince(), st.GetLayer(), st.GetEntityId()))
		if err != nil {
			b.Fatal(err)
		}
		raw = append(raw, f.json)
	}
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			b.SetBytes(int64(len(snapshotFrame("01", raw))))
		}
	})
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			b.SetBytes(int64(len(compactSnapshotFrame("01", flatAll(b, raw)))))
		}
	})
	fs := flatAll(b, raw)
	b.Run("warm", func(b *testing.B) {
		for b.Loop() {
			b.SetBytes(int64(len(compactSnapshotFrame("01", fs))))
		}
	})
}

// FuzzCompactSnapshot: whatever the bytes, cutting them neither panics nor
// reads past them; a JSON object without repeated member names (as the
// gateway encodes its Features) that is cut comes back from the compact
// frame of one copy of it (its values in the row) and of two (its values
// shared), and the frames are JSON.
func FuzzCompactSnapshot(f *testing.F) {
	for _, s := range []string{
		`{"type":"Feature","id":"air/a","geometry":{"type":"Point","coordinates":[105.8,21.03]},"properties":{"aqi":{"hourly":42,"band":1},"extra":{}}}`,
		`{"a":"\"}{[","b":[1,{"c":[]}],"d":{"e":{"f":null}},"g":true,"h":-1.5e3}`,
		`{"a":1,"a":{"b":2}}`, `{"a":{}}`, `{"":""}`, ` { "a" : 1 } `, `{"a":1`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ff, err := new(flattener).flatten(b)
		if err != nil || !json.Valid(b) || repeatsNames(b) {
			return
		}
		want := decodeAll(t, [][]byte{b})[0]
		// One copy: every value in its row; two: every value in "same".
		for _, fs := range [][]*flatFeature{{&ff}, {&ff, &ff}} {
			frame := compactSnapshotFrame("01", fs)
			if !json.Valid(frame) {
				t.Fatalf("compact frame of %q is not JSON: %s", b, frame)
			}
			_, got := expandCompact(t, frame)
			if len(got) != len(fs) {
				t.Fatalf("compact frame of %d × %q gives back %d Features", len(fs), b, len(got))
			}
			for _, g := range got {
				if !reflect.DeepEqual(g, want) {
					t.Fatalf("compact frame of %d × %q gives back %v; want %v", len(fs), b, g, want)
				}
			}
		}
	})
}

// repeatsNames reports whether an object of the JSON text b names a member
// twice (decoders keep the last; the compact form merges them).
func repeatsNames(b []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	type level struct {
		names  map[string]bool
		object bool
		key    bool // the next token of an object is a member's name
	}
	var stack []level
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if n := len(stack); n > 0 && stack[n-1].object {
			top := &stack[n-1]
			if top.key {
				if name, ok := tok.(string); ok {
					if top.names[name] {
						return true
					}
					top.names[name] = true
					top.key = false
					continue
				}
			} else {
				top.key = true // this token begins the member's value
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, level{names: map[string]bool{}, object: true, key: true})
		case json.Delim('['):
			stack = append(stack, level{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}
