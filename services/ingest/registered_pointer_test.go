package ingest_test

import (
	"fmt"
	"maps"
	"testing"

	"github.com/iochub/iochub/internal/kind"
	"github.com/iochub/iochub/services/ingest"
)

// TestRegisteredValuePointer checks that a rejected value of a registered
// kind is pointed at as the one member its name is, dots included (RFC 6901),
// whether the item has that member or lacks it: "noise.LAeq" is
// /<index>/noise.LAeq, never /<index>/noise/LAeq.
func TestRegisteredValuePointer(t *testing.T) {
	unregister, err := kind.Default.Register(kind.Kind{Name: "noisepointer", Values: []kind.Value{
		{Name: "noise.LAeq", Min: 0, Max: 200, Required: true}, {Name: "LA.max", Min: 0, Max: 200}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unregister)
	e := newEnv(t, ingest.Config{})
	item := func(id string, values map[string]any) map[string]any {
		it := air(id, hoanKiem)
		delete(it, "type")
		delete(it, "pm25")
		delete(it, "pm10")
		maps.Copy(it, values)
		return it
	}
	for i, c := range []struct {
		name    string
		values  map[string]any
		pointer string // "" for accepted
	}{
		{"missing", nil, "/0/noise.LAeq"},
		{"nested is not the member", map[string]any{"noise": map[string]any{"LAeq": 60.0}}, "/0/noise.LAeq"},
		{"not a number", map[string]any{"noise.LAeq": "loud"}, "/0/noise.LAeq"},
		{"out of bounds", map[string]any{"noise.LAeq": 60.0, "LA.max": -1.0}, "/0/LA.max"},
		{"accepted", map[string]any{"noise.LAeq": 60.0}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.post(t, "noisepointer", tokWard, "application/json", arr(t, item(fmt.Sprintf("st-%d", i), c.values)))
			if r.code != 202 || len(r.resp.Results) != 1 {
				t.Fatalf("HTTP %d %s; want 202 and one result", r.code, r.raw)
			}
			got := r.resp.Results[0]
			switch {
			case c.pointer == "" && got.Status != ingest.StatusAccepted:
				t.Errorf("got %s at %q (%s); want accepted", got.Status, got.Pointer, got.Reason)
			case c.pointer != "" && (got.Status != ingest.StatusRejected || got.Pointer != c.pointer):
				t.Errorf("got %s at %q (%s); want rejected at %q", got.Status, got.Pointer, got.Reason, c.pointer)
			}
		})
	}
}
