package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// TestStreamsThroughIocctl follows /v1/streams of a whole hub with iocctl
// tail over SSE and WebSocket: both print the same CloudEvents, and the same
// events as tail on NATS itself, for what the ingest and the aggregator
// really published.
func TestStreamsThroughIocctl(t *testing.T) {
	n := testenv.NATS(t)
	db := testenv.PostGISWithUnits(t)
	src01, err := postgis.AddSource(context.Background(), db.Pool, postgis.Source{ID: "src01", UnitCode: "01"})
	if err != nil {
		t.Fatal(err)
	}
	h := startHubTB(t, "all", n, db)
	var nd bytes.Buffer
	now := time.Now().UTC().Truncate(time.Second)
	for i := 0; i < 5; i++ {
		b, _ := json.Marshal(airItem(t, fmt.Sprintf("s%d", i), fmt.Sprintf("st-%d", i), 105.8342, 21.0278, now))
		nd.Write(append(b, '\n'))
	}
	file := filepath.Join(t.TempDir(), "air.ndjson")
	if err := os.WriteFile(file, nd.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, err := runCtl(t, "publish", "air", file, "--url", h.url, "--token", src01); err != nil || !strings.Contains(out, "5 accepted") {
		t.Fatalf("publish: %v\n%s\n%s", err, out, errOut)
	}
	tail := func(args ...string) []string {
		t.Helper()
		out, errOut, err := runCtl(t, append([]string{"tail", "ioc.feed.01.>", "--since", "seq:0", "--limit", "5"}, args...)...)
		if err != nil {
			t.Fatalf("tail %v: %v\n%s", args, err, errOut)
		}
		return strings.Split(strings.TrimSpace(out), "\n")
	}
	sse := tail("--url", h.url, "--key", devToken, "--transport", "sse")
	ws := tail("--url", h.url, "--key", devToken, "--transport", "ws")
	onNATS := tail("--nats-url", n.URL)
	if len(sse) != 5 || strings.Join(sse, "\n") != strings.Join(ws, "\n") {
		t.Fatalf("SSE printed\n%s\nWebSocket printed\n%s\nwant the same 5 events", strings.Join(sse, "\n"), strings.Join(ws, "\n"))
	}
	for i := range sse {
		var g, r map[string]any
		if err := json.Unmarshal([]byte(sse[i]), &g); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(onNATS[i]), &r); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"id", "source", "type", "subject", "time", "iocseq", "iocsubject", "iocstream", "data"} {
			if fmt.Sprint(g[k]) != fmt.Sprint(r[k]) {
				t.Errorf("event %d: %s is %v through the gateway, %v on NATS", i, k, g[k], r[k])
			}
		}
		if d, _ := g["data"].(map[string]any); d["entityId"] != fmt.Sprintf("st-%d", i) {
			t.Errorf("event %d data %v; want the observation of st-%d", i, g["data"], i)
		}
	}
}
