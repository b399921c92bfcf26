package ingest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// listFields is the fields of the JSON object raw as the handler reads an
// item of an array: its members as a list; ok is false when the fast path
// does not split it or it has too many members to come as a list.
func listFields(raw []byte) (fields, bool) {
	items, ok := fastArrayOf(append(append([]byte{'['}, raw...), ']'), 1, true)
	if !ok || len(items) != 1 || items[0].members == nil || len(items[0].members) > maxListMembers {
		return fields{}, false
	}
	var shared map[string]json.RawMessage
	f := items[0].fieldsIn(&shared)
	if f.list == nil {
		return fields{}, false
	}
	return f, true
}

// sameParse parses the item m (raw as JSON) as a map and, where the handler
// would read it so, as a list of its members, and fails unless both give
// the same answer; it returns the map's.
func sameParse(t *testing.T, name string, parse func(fields, parseEnv) (*parsed, *itemError), m map[string]json.RawMessage, raw []byte, env parseEnv) (*parsed, *itemError) {
	t.Helper()
	want, werr := parse(fieldsOf(m), env)
	f, ok := listFields(raw)
	if !ok {
		return want, werr
	}
	got, gerr := parse(f, env)
	if fmt.Sprint(parseAnswer(got, gerr)) != fmt.Sprint(parseAnswer(want, werr)) {
		t.Fatalf("%s: as a list %s; as a map %s", name, parseAnswer(got, gerr), parseAnswer(want, werr))
	}
	return want, werr
}

// parseAnswer is what an item's parse gave, for comparing two: the rejection,
// or the item's ids, time, geometries and event bytes before finish.
func parseAnswer(p *parsed, ierr *itemError) string {
	if ierr != nil {
		return fmt.Sprintf("rejected %q (outside %v)", ierr.Error(), ierr.outside)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(p.msg)
	return fmt.Sprintf("id %q event %q entity %q time %v shape %v geoms %v at %q event %x (%v)",
		p.id, p.eventID, p.entityID, p.time, p.shape, p.geoms, p.geomPointer, b, err)
}

// TestFieldsListAsMap holds the members read as a list to the answer of the
// same members read as a map, where order could tell them apart: repeated
// keys, two names of one quantity, several members at fault, an item of as
// many members as a list holds; and one larger comes as a map.
func TestFieldsListAsMap(t *testing.T) {
	const head = `"id":"a","type":"AirQualityObserved","dateObserved":"2025-07-01T08:00:00Z","location":{"type":"Point","coordinates":[105.85,21.02]}`
	env := parseEnv{now: time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC), maxFuture: 10 * time.Minute}
	xs := func(n int) string {
		ms := make([]string, 0, n)
		for i := range n {
			ms = append(ms, `"x`+strconv.Itoa(i)+`":`+strconv.Itoa(i))
		}
		return strings.Join(ms, ",")
	}
	// The head's 4 members, 26 more and pm25 twice: a list at its bound.
	full := `{` + head + `,` + xs(maxListMembers-6) + `,"pm25":3,"pm25":4}`
	if f, ok := listFields([]byte(full)); !ok || len(f.list) != maxListMembers {
		t.Fatalf("an item of %d members did not come as a list", maxListMembers)
	}
	for _, tt := range []struct{ name, item, want string }{
		{"repeated id", `{"id":"first",` + head + `}`, `id "a"`},
		{"repeated measure", `{` + head + `,"pm25":1,"pm25":2}`, "pm25:2"},
		{"alias after name", `{` + head + `,"pm25":1,"PM2.5":2}`, "pm25:1"}, // in name order PM2.5 comes first
		{"alias before name", `{` + head + `,"PM2.5":2,"pm25":1}`, "pm25:1"},
		{"two at fault", `{` + head + `,"pm25":-1,"no2":-1}`, `"no2: no2 -1 is negative`},
		{"fault and unknown", `{` + head + `,"zz":1e300,"pm10":5000}`, `"pm10: pm10 5000 is outside`},
		{"members up to the bound", full, "pm25:4"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var m map[string]json.RawMessage
			if err := json.Unmarshal([]byte(tt.item), &m); err != nil {
				t.Fatal(err)
			}
			it, ierr := sameParse(t, tt.name, parseAir, m, []byte(tt.item), env)
			got := parseAnswer(it, ierr)
			if ierr == nil {
				got += fmt.Sprintf(" pm25:%v", it.msg.(*iocv1.AirQualityObserved).GetPm25())
			}
			if !strings.Contains(got, tt.want) {
				t.Fatalf("got %s; want %s in it", got, tt.want)
			}
		})
	}
	// The large item is read as a map, not scanned as a list.
	var shared map[string]json.RawMessage
	items, ok := fastArrayOf([]byte(`[{`+head+`,`+xs(maxListMembers)+`}]`), 1, true)
	if !ok || items[0].fieldsIn(&shared).list != nil || shared == nil {
		t.Fatalf("an item of %d members came as a list", maxListMembers+4)
	}
}

// TestListFieldsTaken checks that listFields, which the parse fuzzers rely
// on, gives a list for an ordinary item.
func TestListFieldsTaken(t *testing.T) {
	f, ok := listFields([]byte(`{"id":"a","b":[1,{"c":2}],"id":"z"}`))
	if !ok {
		t.Fatal("no list")
	}
	if raw, _ := f.raw("id"); string(raw) != `"z"` || !reflect.DeepEqual(f.asMap(), map[string]json.RawMessage{"id": json.RawMessage(`"z"`), "b": json.RawMessage(`[1,{"c":2}]`)}) {
		t.Fatalf("got id %s, members %v", raw, f.asMap())
	}
}

// TestJSONPointer: an item's paths become RFC 6901 pointers from the list
// of items, whichever of '.', '/' or "[n]" parts them; a member's own name
// with a dot or a slash stays one segment, its '~' and '/' escaped.
func TestJSONPointer(t *testing.T) {
	for _, tc := range []struct {
		path string
		want string
	}{
		{"", "/3"},
		{"location", "/3/location"},
		{"location.coordinates[1]", "/3/location/coordinates/1"},
		{"info[0].area[2].geometry", "/3/info/0/area/2/geometry"},
		{"media/0", "/3/media/0"},
		{"contact/phone", "/3/contact/phone"},
		{pathSegment("PM2.5"), "/3/PM2.5"},
		{pathSegment("a/b~c"), "/3/a~1b~0c"},
		{"contact/" + pathSegment(`x.y[1]\z`), `/3/contact/x.y[1]\z`},
	} {
		if got := jsonPointer(3, tc.path); got != tc.want {
			t.Errorf("jsonPointer(3, %q) = %q; want %q", tc.path, got, tc.want)
		}
	}
}
