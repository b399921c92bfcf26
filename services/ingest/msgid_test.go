package ingest_test

import (
	"testing"

	"github.com/iochub/iochub/internal/kind"
	"github.com/iochub/iochub/services/ingest"
)

// TestSameIDOnTwoKindsIsNoDuplicate sends one station's air, weather and
// noise (a registered kind) observations under one id and one time, as a
// station with several sensors does: the aggregator stores each in its own
// kind's table, so none of them is a duplicate of another, and answering
// one "duplicate" would drop it unstored.
func TestSameIDOnTwoKindsIsNoDuplicate(t *testing.T) {
	unregister, err := kind.Default.Register(kind.Kind{Name: "noisemsgid", Values: []kind.Value{{Name: "LAeq", Min: 0, Max: 200}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unregister)
	e := newEnv(t, ingest.Config{})
	noise := air("st-1", hoanKiem)
	delete(noise, "type")
	noise["LAeq"] = 61.0
	for _, c := range []struct {
		kind string
		item map[string]any
		want string
	}{
		{"air", air("st-1", hoanKiem), ingest.StatusAccepted},
		{"weather", weather("st-1", hoanKiem), ingest.StatusAccepted},
		{"noisemsgid", noise, ingest.StatusAccepted},
		{"weather", weather("st-1", hoanKiem), ingest.StatusDuplicate}, // a retry is still one
	} {
		r := e.post(t, c.kind, tokWard, "application/json", arr(t, c.item))
		if r.code != 202 || len(r.resp.Results) != 1 || r.resp.Results[0].Status != c.want {
			t.Errorf("POST /v1/feeds/%s of st-1: HTTP %d %s; want 202 %s", c.kind, r.code, r.raw, c.want)
		}
	}
}
