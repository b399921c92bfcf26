package gateway

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/iochub/iochub/internal/testkit"
)

// tickFrames ends h's tick and returns, split into frames, what c's writer
// would write now.
func tickFrames(t testing.TB, h *hub, c *client) [][]byte {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.flushLocked()
	bufs, n, _ := h.takeLocked(c, nil)
	var frames [][]byte
	for _, b := range bufs {
		fs, err := splitFrames(b)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, fs...)
	}
	if len(frames) != n {
		t.Fatalf("took %d frames; counted %d", len(frames), n)
	}
	return frames
}

// splitFrames splits b, complete unmasked server frames, into their payloads.
func splitFrames(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 || b[0] != 0x81 {
			return nil, fmt.Errorf("not a final text frame at %q", b[:min(len(b), 8)])
		}
		n, h := int(b[1]), 2
		switch n {
		case 126:
			n, h = int(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			n, h = int(binary.BigEndian.Uint64(b[2:])), 10
		}
		if len(b) < h+n {
			return nil, fmt.Errorf("frame of %d bytes cut at %d", n, len(b)-h)
		}
		out = append(out, b[h:h+n])
		b = b[h+n:]
	}
	return out, nil
}

// TestGroupSince: a client that has tick s gets the newest frame of every
// key logged after s, once, in the order the newest ones were logged; the
// answers do not change when the log is compacted.
func TestGroupSince(t *testing.T) {
	g := newGroup("", liveParams{})
	f := func(s string) []byte { return textFrame([]byte(s)) }
	g.add(1, "a", f("a1"))
	g.add(1, "b", f("b1"))
	g.add(2, "a", f("a2"))
	g.add(3, "c", f("c3"))
	g.add(3, "b", f("b3"))
	g.add(4, "a", f("a4"))
	for _, tc := range []struct {
		since     uint64
		want      []string
		conflated int
	}{
		{0, []string{"c3", "b3", "a4"}, 3},
		{1, []string{"c3", "b3", "a4"}, 1},
		{2, []string{"c3", "b3", "a4"}, 0},
		{3, []string{"a4"}, 0},
		{4, nil, 0},
	} {
		check := func(when string) {
			cu := g.since(tc.since, 4, false)
			frames, err := splitFrames(cu.buf)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, fr := range frames {
				got = append(got, string(fr))
			}
			if !slices.Equal(got, tc.want) || cu.frames != len(tc.want) {
				t.Errorf("%s: since %d: got %v (%d counted); want %v", when, tc.since, got, cu.frames, tc.want)
			}
			if when == "before compaction" && cu.conflated != tc.conflated {
				t.Errorf("since %d: %d conflated; want %d", tc.since, cu.conflated, tc.conflated)
			}
		}
		check("before compaction")
		g.cacheSeq = 0 // build again
		check("from the cache, then compacted")
	}
	// Compaction keeps the newest entry of every key only.
	for i := 0; i < 300; i++ {
		g.add(uint64(5+i), "a", f(fmt.Sprintf("a%d", 5+i)))
	}
	g.compact()
	if len(g.log) != 3 {
		t.Errorf("compacted log holds %d entries; want 3 (a, b and c)", len(g.log))
	}
	g.cacheSeq = 0
	if cu := g.since(2, 304, false); cu.frames != 3 {
		t.Errorf("after compaction, since 2: %d frames; want 3", cu.frames)
	}
}

// TestGroupSinceShares: one frame is the logged bytes themselves; a merge is
// built once per starting tick and shared.
func TestGroupSinceShares(t *testing.T) {
	g := newGroup("", liveParams{})
	one := textFrame([]byte("x"))
	g.add(1, "x", one)
	if cu := g.since(0, 1, false); &cu.buf[0] != &one[0] {
		t.Error("a single frame was copied; want the logged bytes")
	}
	g.add(2, "y", textFrame([]byte("y")))
	a, b := g.since(0, 2, false), g.since(0, 2, false)
	if &a.buf[0] != &b.buf[0] {
		t.Error("the same merge was built twice in one tick")
	}
}

// TestLiveIdleClientHoldsNoWriter: once a client has what there is, its
// writer goroutine ends; a change starts one again.
func TestLiveIdleClientHoldsNoWriter(t *testing.T) {
	e := newLiveEnv(t, Config{})
	c := e.dial(t, "province=01")
	if f := readFrame(t, c); f.Type != "snapshot" {
		t.Fatalf("first frame %s; want snapshot", f.Type)
	}
	writers := func() (bool, string) {
		e.g.mu.Lock()
		h := e.g.hubs["01"]
		e.g.mu.Unlock()
		h.mu.Lock()
		defer h.mu.Unlock()
		running := 0
		for cl := range h.clients {
			cl.mu.Lock()
			if cl.running {
				running++
			}
			cl.mu.Unlock()
		}
		return len(h.clients) == 1 && running == 0, fmt.Sprintf("%d clients, %d writers running", len(h.clients), running)
	}
	testkit.Eventually(t, hangGuard, "the idle client's writer to end", writers)
	publish(t, e.nats.JS, airState(t, "w", 0, 1))
	if f := readFrame(t, c); f.Type != "state" || idOf(f.Entity) != "air/w" {
		t.Fatalf("got %s %s; want the state of air/w", f.Type, idOf(f.Entity))
	}
	testkit.Eventually(t, hangGuard, "the writer to end again", writers)
}
