package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testkit"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// TestTextFrameHeaders: framePayload gives back what textFrame wrapped, for
// each of the three header lengths.
func TestTextFrameHeaders(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 0xFFFF, 0x10000} {
		p := bytes.Repeat([]byte{'x'}, n)
		f := textFrame(p)
		if len(f) != textHeaderLen(n)+n || cap(f) != len(f) {
			t.Errorf("%d bytes: frame of %d (cap %d); want %d", n, len(f), cap(f), textHeaderLen(n)+n)
		}
		if got := framePayload(f); !bytes.Equal(got, p) {
			t.Errorf("%d bytes: payload of %d bytes back", n, len(got))
		}
		fs, err := splitFrames(f)
		if err != nil || len(fs) != 1 || !bytes.Equal(fs[0], p) {
			t.Errorf("%d bytes: split into %d frames (%v)", n, len(fs), err)
		}
	}
}

// unbatch is the elements of the batch frame payload b, as raw bytes.
func unbatch(t testing.TB, b []byte) []json.RawMessage {
	t.Helper()
	var f struct {
		Type   string            `json:"type"`
		Frames []json.RawMessage `json:"frames"`
	}
	if err := json.Unmarshal(b, &f); err != nil || f.Type != "batch" {
		t.Fatalf("not a batch frame (%v): %.200s", err, b)
	}
	return f.Frames
}

// sameFrames fails t unless the elements of a batch are byte for byte the
// payloads of the single frames.
func sameFrames(t testing.TB, what string, batch []json.RawMessage, single [][]byte) {
	t.Helper()
	if len(batch) != len(single) {
		t.Fatalf("%s: batch of %d updates; the unbatched client got %d frames", what, len(batch), len(single))
	}
	for i := range batch {
		if !bytes.Equal(batch[i], single[i]) {
			t.Fatalf("%s: update %d of the batch is\n%s\nthe unbatched client's frame is\n%s", what, i, batch[i], single[i])
		}
	}
}

// holdFlushes keeps h from sending until the test calls flushLocked: its
// last send is in the future and a send is marked due (none is scheduled).
func holdFlushes(t testing.TB, h *hub) {
	t.Helper()
	testkit.Eventually(t, hangGuard, "no send to be scheduled", func() (bool, string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.flushDue {
			return false, "a send is scheduled"
		}
		h.lastFlush, h.flushDue = time.Now().Add(time.Hour), true
		return true, ""
	})
}

// TestHubBatchFrames: a batch client's send is one frame whose elements are
// the unbatched client's frames (state, remove, roll-up) in the same order;
// a batch client that lags gets, in one frame built once and shared, the
// newest of every entity, as an unbatched client that lags does.
func TestHubBatchFrames(t *testing.T) {
	g, h := bareHub(t)
	box, err := parseBBox(inBox)
	if err != nil {
		t.Fatal(err)
	}
	params := func(batch bool) liveParams {
		return liveParams{Province: "01", BBox: &box, Rollups: []string{"1h"}, Batch: batch}
	}
	join := func(batch bool) *client {
		c := newClient(g, h, nil, nil, params(batch))
		c.finished = true // no writer: the test takes what it would write
		h.mu.Lock()
		h.joinLocked(c)
		h.mu.Unlock()
		return c
	}
	plain, batched := join(false), join(true)
	lagPlain, lagBatched, lagBatched2 := join(false), join(true), join(true)
	// Batching is a form of the merge, not a filter: one group, one log.
	if plain.grp != batched.grp || batched.grp != lagBatched.grp || plain.grp != lagPlain.grp {
		t.Fatal("clients of the same view, batched or not, are in different groups")
	}
	holdFlushes(t, h)
	state := func(st *iocv1.EntityState) {
		h.handleState(st, subjects.State(st.GetProvince(), st.GetLayer(), st.GetEntityId()))
	}
	// take ends the tick and returns the payloads c's writer would write now
	// and the updates it counted.
	take := func(c *client) ([][]byte, int) {
		h.mu.Lock()
		defer h.mu.Unlock()
		bufs, n, _ := h.takeLocked(c, nil)
		var out [][]byte
		for _, b := range bufs {
			fs, err := splitFrames(b)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fs...)
		}
		return out, n
	}
	tick := func(what string) {
		t.Helper()
		h.mu.Lock()
		h.flushLocked()
		h.mu.Unlock()
		single, n := take(plain)
		got, nb := take(batched)
		if len(got) != 1 || nb != n {
			t.Fatalf("%s: the batch client got %d frames counted as %d updates; want 1 frame of %d", what, len(got), nb, n)
		}
		sameFrames(t, what, unbatch(t, got[0]), single)
	}

	state(airAt(t, "in-1", 0, 105.85, 21.03))
	state(airAt(t, "in-2", 0, 105.86, 21.04))
	state(airAt(t, "out-1", 0, 105.70, 21.03))
	h.handleRollup(subjects.Rollup("01", "00070", "air", "1h"),
		[]byte(`{"unit":"00070","province":"01","layer":"air","window":"1h","windowStart":"2026-11-21T06:00:00Z","observations":3}`))
	tick("states and a roll-up")

	state(airAt(t, "in-1", 1, 105.70, 21.03)) // leaves the box: a remove
	state(airAt(t, "in-2", 1, 105.86, 21.04))
	tick("a remove and a state")

	state(airAt(t, "in-2", 2, 105.86, 21.04))
	tick("one state")

	// The lagging clients missed all three ticks: the newest of each key.
	single, n := take(lagPlain)
	got, nb := take(lagBatched)
	if len(got) != 1 || nb != n || n != 3 {
		t.Fatalf("lagging batch client got %d frames of %d updates; unbatched %d; want one frame of 3", len(got), nb, n)
	}
	batch := unbatch(t, got[0])
	sameFrames(t, "lagging", batch, single)
	want := []string{`"type":"rollup"`, `"type":"remove","id":"air/in-1"`, obsID("in-2", 2)}
	for i, w := range want {
		if !strings.Contains(string(batch[i]), w) {
			t.Errorf("lagging client's update %d: %.120s; want %s", i, batch[i], w)
		}
	}
	h.mu.Lock()
	a, _, _ := h.takeLocked(lagBatched2, nil)
	h.mu.Unlock()
	h.mu.Lock()
	b := batched.grp.since(0, h.seq, true)
	h.mu.Unlock()
	if len(a) != 1 || &a[0][0] != &b.buf[0] {
		t.Error("the lagging batch clients' frame was built twice in one tick")
	}
}

// batchFrame is a frame that may be a batch.
type batchFrame struct {
	frame
	Frames []frame `json:"frames"`
}

// readUpdates reads one frame of c: a batch's updates, or the frame itself.
func readUpdates(t testing.TB, c *websocket.Conn) (string, []frame, []byte) {
	t.Helper()
	b := readMessage(t, c)
	var f batchFrame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("decoding frame %s: %v", b, err)
	}
	if f.Type == "batch" {
		return f.Type, f.Frames, b
	}
	return f.Type, []frame{f.frame}, b
}

// TestLiveBatch: over the gateway, with states through JetStream, a client
// with batch=1 gets each send as one batch frame holding the updates that
// an unbatched client beside it gets as frames, byte for byte and in the
// same order; both get the same snapshot and roll-ups frames first.
func TestLiveBatch(t *testing.T) {
	e := newLiveEnv(t, Config{LiveTick: time.Hour})
	q := "province=01&bbox=" + inBox + "&rollups=1h"
	plain := e.dial(t, q)
	batched := e.dial(t, q+"&batch=1")
	for _, want := range []string{"snapshot", "rollups"} {
		_, _, a := readUpdates(t, plain)
		typ, _, b := readUpdates(t, batched)
		if typ != want || !bytes.Equal(a, b) {
			t.Fatalf("batch client's first frames: %s %.200s; want the unbatched client's %s %.200s", typ, b, want, a)
		}
	}
	e.g.mu.Lock()
	h := e.g.hubs["01"]
	e.g.mu.Unlock()
	// send publishes sts and the roll-ups through JetStream, waits until the
	// hub has staged them all (staged more counts the entities out of the
	// box) and sends them in one go.
	send := func(what string, staged int, sts []*iocv1.EntityState, rollups ...int) {
		t.Helper()
		holdFlushes(t, h)
		publish(t, e.nats.JS, sts...)
		for _, n := range rollups {
			publishRollup(t, e, "01", "00070", "air", "1h", "2026-11-21T06:00:00Z", n)
		}
		testkit.Eventually(t, hangGuard, "the hub to stage "+what, func() (bool, string) {
			h.mu.Lock()
			defer h.mu.Unlock()
			n := len(h.stagedOrder) + len(h.stagedRollupsOrder)
			return n == staged, fmt.Sprintf("%d staged", n)
		})
		h.mu.Lock()
		h.flushLocked()
		h.lastFlush, h.flushDue = time.Now(), false
		h.mu.Unlock()
		typ, updates, raw := readUpdates(t, batched)
		if typ != "batch" {
			t.Fatalf("%s: batch client got a %s frame; want batch", what, typ)
		}
		var single [][]byte
		for range updates {
			_, _, b := readUpdates(t, plain)
			single = append(single, b)
		}
		var f struct{ Frames []json.RawMessage }
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatal(err)
		}
		sameFrames(t, what, f.Frames, single)
		t.Logf("%s: one batch frame of %d updates", what, len(updates))
	}
	send("three states, one out of the box, and a roll-up", 4, []*iocv1.EntityState{
		airAt(t, "in-1", 0, 105.85, 21.03), airAt(t, "in-2", 0, 105.86, 21.04), airAt(t, "out-1", 0, 105.70, 21.03),
	}, 5)
	send("a remove and a state", 2, []*iocv1.EntityState{
		airAt(t, "in-1", 1, 105.70, 21.03), airAt(t, "in-2", 1, 105.86, 21.04),
	})
	// Nothing else came: the next frame of each is the next send's.
	publish(t, e.nats.JS, airAt(t, "in-3", 0, 105.87, 21.05))
	if typ, u, _ := readUpdates(t, batched); typ != "batch" || len(u) != 1 || idOf(u[0].Entity) != "air/in-3" {
		t.Fatalf("batch client then got %s of %d; want a batch of in-3", typ, len(u))
	}
	if typ, u, _ := readUpdates(t, plain); typ != "state" || idOf(u[0].Entity) != "air/in-3" {
		t.Fatalf("unbatched client then got %s; want the state of in-3", typ)
	}
}

// TestLiveBatchSlowClient: a batch client that does not read while states
// pour in gets, once it reads, the newest state of every entity, each batch
// holding an entity at most once and fewer updates than were published in
// all (conflation), or it is closed with 4001; the batch client reading
// beside it, and an unbatched one, get every entity's newest state.
func TestLiveBatchSlowClient(t *testing.T) {
	e := newLiveEnv(t, Config{WriteTimeout: hangGuard})
	const entities, versions = 500, 40
	reader := e.dial(t, "province=01&batch=1")
	plain := e.dial(t, "province=01")
	idle, _, err := smallRecvDialer().Dial(e.wsURL("province=01&batch=1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()

	sts, want := versionedStates(t, entities, versions)
	// follow reads c until it holds want; it returns the updates and frames
	// it read, failing on a batch that holds an entity twice.
	follow := func(name string, c *websocket.Conn, batch bool) (updates, frames int, tooSlow bool) {
		tr := &tracker{latest: map[string]string{}}
		for !tr.complete(want) {
			_ = c.SetReadDeadline(time.Now().Add(hangGuard))
			_, b, err := c.ReadMessage()
			if websocket.IsCloseError(err, CloseTooSlow) {
				return updates, frames, true
			}
			if err != nil {
				t.Errorf("%s: %v", name, err)
				return updates, frames, false
			}
			var f batchFrame
			if err := json.Unmarshal(b, &f); err != nil {
				t.Errorf("%s: decoding %.200s: %v", name, b, err)
				return updates, frames, false
			}
			frames++
			if f.Type == "snapshot" {
				tr.apply(f.frame)
				continue
			}
			if (f.Type == "batch") != batch {
				t.Errorf("%s: got a %s frame", name, f.Type)
				return updates, frames, false
			}
			if !batch {
				f.Frames = []frame{f.frame}
			}
			in := map[string]bool{}
			for _, u := range f.Frames {
				if id := idOf(u.Entity); in[id] {
					t.Errorf("%s: a batch holds %s twice", name, id)
				} else {
					in[id] = true
				}
				tr.apply(u)
				updates++
			}
		}
		return updates, frames, false
	}
	type result struct{ updates, frames int }
	done := make(chan result, 2)
	go func() {
		u, f, _ := follow("reading batch client", reader, true)
		done <- result{u, f}
	}()
	go func() {
		u, f, _ := follow("unbatched client", plain, false)
		done <- result{u, f}
	}()
	publishAsync(t, e.nats.JS, sts)
	for range 2 {
		r := <-done
		t.Logf("a reading client got the final state of all %d entities: %d updates in %d frames", entities, r.updates, r.frames)
	}
	if t.Failed() {
		return
	}
	updates, frames, tooSlow := follow("idle batch client", idle, true)
	if tooSlow {
		t.Logf("idle batch client closed with 4001 after %d updates in %d frames", updates, frames)
		return
	}
	t.Logf("idle batch client: final state of all entities, %d updates in %d frames", updates, frames)
	if updates >= len(sts) {
		t.Errorf("idle batch client got %d updates for %d states; want conflation", updates, len(sts))
	}
}

// TestScanUpdates: the load clients find every update of a message however
// the reads and their chunk cut it.
func TestScanUpdates(t *testing.T) {
	marker := []byte(`"name":"k`)
	msg := []byte(`{"type":"batch","frames":[{"type":"state","entity":{"name":"k0000000012 xx"}},` +
		`{"type":"state","entity":{"name":"k0000000345 x"}},{"type":"state","entity":{"name":"k0000006789 "}}]}`)
	for size := len(marker) + 10; size < len(msg)+2; size++ {
		for _, one := range []bool{false, true} {
			var r io.Reader = bytes.NewReader(msg)
			if one {
				r = iotest.OneByteReader(r)
			}
			ks, err := scanUpdates(r, make([]byte, size), marker, nil)
			if err != nil || !slices.Equal(ks, []int{12, 345, 6789}) {
				t.Fatalf("chunk %d, one byte a read %v: %v (%v)", size, one, ks, err)
			}
		}
	}
}

// TestGroupPendingBuildsNothing: the backlog check of a tick counts without
// building a frame; the frame, built when a writer asks, is then shared.
func TestGroupPendingBuildsNothing(t *testing.T) {
	for _, batch := range []bool{false, true} {
		g := newGroup("", liveParams{})
		g.add(1, "a", textFrame([]byte(`{"a":1}`)))
		g.add(2, "b", textFrame([]byte(`{"b":2}`)))
		g.add(2, "a", textFrame([]byte(`{"a":2}`)))
		if m := g.pending(0, 2); m.plain != nil || m.batch != nil || m.frames != 2 || m.conflated != 1 {
			t.Fatalf("batch %v: pending %+v; want 2 frames, 1 conflated, nothing built", batch, m)
		}
		cu := g.since(0, 2, batch)
		if cu.buf == nil || cu.frames != 2 {
			t.Fatalf("batch %v: since %+v; want 2 frames built", batch, cu)
		}
		if again := g.since(0, 2, batch); &again.buf[0] != &cu.buf[0] {
			t.Errorf("batch %v: the built frames are not what the next ask gets", batch)
		}
		if m := g.pending(0, 2); (m.plain != nil) == batch || (m.batch != nil) != batch {
			t.Errorf("batch %v: built %+v; want only the form asked for", batch, m)
		}
	}
}

// TestGroupOverflows: a backlog of no more entries than the bound is not
// counted; a longer one is, and overflows only when more distinct entities
// than the bound wait (conflated entries do not count).
func TestGroupOverflows(t *testing.T) {
	g := newGroup("", liveParams{})
	for i := range 4 {
		g.add(uint64(i+1), "a", textFrame([]byte(`{"a":1}`)))
	}
	g.add(5, "b", textFrame([]byte(`{"b":1}`)))
	if g.overflows(0, 5, 5) || len(g.cache) != 0 {
		t.Fatalf("a backlog of 5 entries overflows a bound of 5, or was counted (%d merges)", len(g.cache))
	}
	if g.overflows(0, 5, 2) || len(g.cache) != 1 {
		t.Fatalf("2 entities (3 entries conflated) overflow a bound of 2, or were not counted (%d merges)", len(g.cache))
	}
	if !g.overflows(0, 5, 1) {
		t.Fatal("2 entities do not overflow a bound of 1")
	}
	if g.overflows(4, 5, 1) {
		t.Fatal("the one entry after tick 4 overflows a bound of 1")
	}
}

// bareHub is a hub of province 01 of a gateway of defaults, neither running
// nor fed: tests publish to it and tick it themselves.
func bareHub(t *testing.T) (*Gateway, *hub) {
	t.Helper()
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	g := &Gateway{cfg: Config{}.withDefaults(), log: slog.New(slog.DiscardHandler), m: m}
	return g, newHub(g, "01")
}
