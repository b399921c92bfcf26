package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/iochub/iochub/internal/subjects"
)

// publishRollup publishes a roll-up body as the aggregator would.
func publishRollup(t *testing.T, e *liveEnv, province, unit, layer, window, start string, n int) {
	t.Helper()
	m := nats.NewMsg(subjects.Rollup(province, unit, layer, window))
	m.Data = fmt.Appendf(nil, `{"unit":%q,"province":%q,"layer":%q,"window":%q,"windowStart":%q,"observations":%d}`,
		unit, province, layer, window, start, n)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if _, err := e.nats.JS.PublishMsg(ctx, m); err != nil {
		t.Fatalf("publishing roll-up: %v", err)
	}
}

type rollupFrame struct {
	Type    string           `json:"type"`
	Rollups []map[string]any `json:"rollups"`
	Rollup  map[string]any   `json:"rollup"`
}

func readRollupFrame(t *testing.T, c *websocket.Conn) rollupFrame {
	t.Helper()
	b := readMessage(t, c)
	var f rollupFrame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return f
}

// TestLiveRollups: a client asking rollups=1h gets, after the snapshot, the
// last hourly roll-up of every unit of its province and layers, then each
// new one; a late correction of an earlier window does not replace the kept
// one; a client without the parameter gets no roll-up.
func TestLiveRollups(t *testing.T) {
	e := newLiveEnv(t, Config{})
	publishRollup(t, e, "01", "00070", "air", "1h", "2026-11-21T06:00:00Z", 3)
	publishRollup(t, e, "01", "00070", "air", "1m", "2026-11-21T06:01:00Z", 1)
	publishRollup(t, e, "01", "00070", "traffic", "1h", "2026-11-21T06:00:00Z", 5)
	publishRollup(t, e, "79", "26734", "air", "1h", "2026-11-21T06:00:00Z", 9)

	c := e.dial(t, "province=01&layers=air&rollups=1h")
	if f := readFrame(t, c); f.Type != "snapshot" {
		t.Fatalf("first frame %q; want snapshot", f.Type)
	}
	f := readRollupFrame(t, c)
	if f.Type != "rollups" || len(f.Rollups) != 1 || f.Rollups[0]["unit"] != "00070" || f.Rollups[0]["observations"] != 3.0 {
		t.Fatalf("second frame %+v; want the rollups of air 1h of 00070 only", f)
	}
	plain := e.dial(t, "province=01")
	readFrame(t, plain)

	publishRollup(t, e, "01", "00070", "air", "1h", "2026-11-21T05:00:00Z", 7) // late correction of an earlier hour
	publishRollup(t, e, "01", "00070", "air", "1h", "2026-11-21T06:00:00Z", 4)
	f = readRollupFrame(t, c)
	if f.Type != "rollup" || f.Rollup["observations"] != 4.0 || f.Rollup["windowStart"] != "2026-11-21T06:00:00Z" {
		t.Fatalf("delta %+v; want the 06:00 hour with 4 observations", f)
	}
	// The plain client got no roll-up: its next frame is a state.
	publish(t, e.nats.JS, airState(t, "a1", 0, 1))
	if g := readFrame(t, plain); g.Type != "state" {
		t.Fatalf("client without rollups got a %q frame; want state", g.Type)
	}
}

// TestHubRollupCopies: of two copies of one window, the hub keeps the one
// updated later, whichever comes last (another aggregator may publish a copy
// it read before a newer write after that write); an equal time replaces (a
// window published again with new gauges keeps its time).
func TestHubRollupCopies(t *testing.T) {
	e := newLiveEnv(t, Config{})
	h := newHub(e.g, "01")
	subject := subjects.Rollup("01", "00070", "air", "1h")
	body := func(n int, updated string) []byte {
		return fmt.Appendf(nil, `{"unit":"00070","province":"01","layer":"air","window":"1h","windowStart":"2026-11-21T06:00:00Z","updatedAt":%q,"observations":%d}`, updated, n)
	}
	kept := func() string {
		h.mu.Lock()
		defer h.mu.Unlock()
		return string(h.stagedRollups["rollup:00070/air/1h"].base)
	}
	copies := []struct {
		n       int
		updated string
		kept    int // the copy kept after this one: its index
	}{
		{5, "2026-11-21T06:10:00Z", 0},
		{4, "2026-11-21T06:09:00Z", 0}, // an older copy, published after
		{6, "2026-11-21T06:10:00Z", 2}, // the same time: published again
		{7, "2026-11-21T06:11:00Z", 3},
	}
	for _, c := range copies {
		h.handleRollup(subject, body(c.n, c.updated))
		k := copies[c.kept]
		if got := kept(); got != string(body(k.n, k.updated)) {
			t.Fatalf("after the copy of %d updated at %s the hub keeps %s; want the copy of %d", c.n, c.updated, got, k.n)
		}
	}
}

func TestLiveRollupsBadParam(t *testing.T) {
	for _, q := range []string{"province=01&rollups=", "province=01&rollups=2h", "province=01&rollups=1h&rollups=1m"} {
		if _, err := parseLiveQueryString(q); err == nil {
			t.Errorf("%s: accepted", q)
		}
	}
	p, err := parseLiveQueryString("province=01&rollups=1h,1m,1h")
	if err != nil || fmt.Sprint(p.Rollups) != "[1h 1m]" {
		t.Fatalf("rollups = %v, %v; want [1h 1m]", p.Rollups, err)
	}
}

func parseLiveQueryString(q string) (liveParams, error) {
	v, err := url.ParseQuery(q)
	if err != nil {
		return liveParams{}, err
	}
	return parseLiveQuery(v)
}
