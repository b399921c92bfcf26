package ce

import (
	"bytes"
	"encoding/json"
	"flag"
	"path/filepath"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite testdata/headers.golden.json")

// TestHeadersGolden pins the CloudEvents headers of each event type on FEEDS
// (as the ingest and the rules engine publish them) and on STATE (as the
// aggregator does), spelt and formatted as on the wire. A new kind adds its
// two entries with -update. The ingest's and the aggregator's own golden
// files pin what each producer puts into them.
func TestHeadersGolden(t *testing.T) {
	at := time.Date(2026, 7, 1, 8, 0, 0, 123456789, time.FixedZone("ICT", 7*3600))
	got := map[string]map[string][]string{}
	for _, kind := range subjects.Kinds {
		feedType := ObservedType(kind)
		if kind == subjects.KindAlert {
			feedType = AlertType
		}
		entity := "e-" + kind
		got[subjects.StreamFeeds+" "+kind] = Event{ID: entity + "@2026-07-01T01:00:00Z", Source: SourceURN("01", "00070"),
			Type: feedType, Subject: entity, Time: at}.Header()
		got[subjects.StreamState+" "+kind] = Event{ID: entity + "@2026-07-01T01:00:00Z", Source: SourceURN("01", "00070"),
			Type: StateType(kind), Subject: entity, Time: at}.Header()
	}
	// Without a subject and a time those headers are left out.
	got["minimal"] = Event{ID: "x", Source: SourceURN("01", "01"), Type: StateType(subjects.KindAir)}.Header()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	testkit.Golden(t, filepath.Join("testdata", "headers.golden.json"), append(b, '\n'), *update)
	if !bytes.Contains(b, []byte(`"ce-specversion"`)) {
		t.Errorf("header keys were re-cased: %s", b)
	}
}
