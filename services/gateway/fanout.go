package gateway

import (
	"sort"
	"strings"
)

// Live fan-out by tick. The hub drains its consumers without touching a
// client: a state is decoded, encoded once and staged (a newer state of a
// staged entity replaces it: conflation before fan-out). Every LiveTick the
// hub flushes what was staged: each entity's state frame is built once, and
// each group of clients that see the same entities (group) gets, in its log,
// that frame or a remove frame. The clients of a group are then woken, and
// each client's writer takes, in one write, the newest frame of every entity
// its group logged since it last took: after one tick that is the tick's
// frames, concatenated once per group and shared by all its clients; after
// more (a client that lags) it is the same merge over more ticks, built once
// per starting point and also shared. So a lagging client gets the newest
// state of every entity it missed, never an old queue, and the work per tick
// is one buffer per group and one write per client.
//
// A client that asked for batch=1 takes the same merge as one frame,
// {"type":"batch","frames":[F,...]}, whose elements are the payloads of the
// logged frames (the objects an unbatched client gets as frames of their
// own), sliced out of them, never re-encoded. Batching is a form of the
// merge, not a filter: batched and unbatched clients of the same view share
// a group, its log and its tick's work; each form of a merge is built once
// per group, tick and starting point, when a writer first asks for it, so a
// client parses one frame per send however many updates it holds.

// group is the clients of one hub that see exactly the same frames: the same
// layers, bbox, unit scope and roll-up windows (groupKey).
type group struct {
	key     string
	params  liveParams // of the first client; every client of the group sees the same
	clients map[*client]struct{}

	// log holds, in tick order, the frames the group's clients get: the
	// newest of each key is kept, older ones are dropped by compact.
	log    []logEntry
	latest map[string]uint64 // key → tick of its newest entry in log
	// top and prev are the last two ticks that logged something for the group.
	top, prev uint64
	// cache holds the merges counted or built for this tick (cacheSeq), by
	// the tick the clients asking for them have.
	cache    map[uint64]*merge
	cacheSeq uint64
}

// logEntry is a frame (a complete WebSocket frame built by textFrame, shared,
// never modified; framePayload slices its JSON out) of key logged at tick seq.
type logEntry struct {
	seq   uint64
	key   string
	frame []byte
}

// catchUp is what a client that has tick s needs to hold the group's newest
// frames: buf is the frames concatenated (or one batch frame holding them),
// written in one write.
type catchUp struct {
	buf       []byte
	frames    int // the updates in buf
	conflated int // older frames of the same keys, skipped
}

// merge is the group's newest frames after one starting tick, as of the
// cache's tick: counted when first asked (pending), each form built when a
// writer first asks for it (since).
type merge struct {
	frames, conflated int
	// size and payload are the bytes of the frames and of their payloads;
	// last is the last of them (the whole merge when frames is 1).
	size, payload int
	last          []byte
	plain, batch  []byte // the frames concatenated; one batch frame
}

// batchPrefix and batchSuffix wrap the updates of a batch frame.
var (
	batchPrefix = []byte(`{"type":"batch","frames":[`)
	batchSuffix = []byte(`]}`)
)

// groupKey is the identity of the frames a client with p gets.
func groupKey(p liveParams) string {
	var b strings.Builder
	if p.Layers != nil {
		b.WriteString("layers:")
		b.WriteString(strings.Join(p.Layers, ","))
	}
	b.WriteString("|rollups:")
	b.WriteString(strings.Join(p.Rollups, ","))
	b.WriteString("|")
	b.WriteString(p.filterKey())
	return b.String()
}

func newGroup(key string, p liveParams) *group {
	return &group{
		key:     key,
		params:  p,
		clients: make(map[*client]struct{}),
		latest:  make(map[string]uint64),
		cache:   make(map[uint64]*merge),
	}
}

// add logs frame as the newest of key at tick seq (seq never decreases).
func (g *group) add(seq uint64, key string, frame []byte) {
	g.log = append(g.log, logEntry{seq: seq, key: key, frame: frame})
	g.latest[key] = seq
	if g.top != seq {
		g.prev, g.top = g.top, seq
	}
}

// since is the newest logged frame of every key logged after tick s, in the
// order they were logged, as of tick now, concatenated or (batch) as one
// batch frame; each form is built once per s and tick.
func (g *group) since(s, now uint64, batch bool) catchUp {
	m := g.pending(s, now)
	cu := catchUp{frames: m.frames, conflated: m.conflated}
	if m.frames == 0 {
		return cu
	}
	switch {
	case batch && m.batch == nil:
		m.batch = g.batchFrame(g.after(s), m)
	case !batch && m.plain == nil:
		m.plain = g.plainFrames(g.after(s), m)
	}
	cu.buf = m.plain
	if batch {
		cu.buf = m.batch
	}
	return cu
}

// pending is the merge after tick s as of tick now, counted (frames,
// conflated ones, their bytes) once per s and tick and built by nobody yet:
// a tick checks with it the backlog of a lagging client that could overflow
// (overflows), and builds nothing for a client whose writer is still busy
// with an older write.
func (g *group) pending(s, now uint64) *merge {
	if g.cacheSeq != now {
		clear(g.cache)
		g.cacheSeq = now
	}
	if m, ok := g.cache[s]; ok {
		return m
	}
	m := &merge{}
	for _, e := range g.after(s) {
		if g.latest[e.key] != e.seq {
			m.conflated++
			continue
		}
		m.frames++
		m.size += len(e.frame)
		m.payload += len(framePayload(e.frame))
		m.last = e.frame
	}
	g.cache[s] = m
	return m
}

// overflows reports whether more than n entities wait for a client that
// has tick s, as of tick now. The entries logged after s bound them, so
// only a backlog of more than n entries is counted (pending): a tick does
// not rescan the backlog of a client whose writer is busy (a lagging one)
// while it cannot overflow.
func (g *group) overflows(s, now uint64, n int) bool {
	return len(g.after(s)) > n && g.pending(s, now).frames > n
}

// after is the log's entries after tick s.
func (g *group) after(s uint64) []logEntry {
	return g.log[sort.Search(len(g.log), func(i int) bool { return g.log[i].seq > s }):]
}

// plainFrames is the newest frames of their keys among entries (counted in
// m), concatenated in log order; a single one is shared as it is.
func (g *group) plainFrames(entries []logEntry, m *merge) []byte {
	if m.frames == 1 {
		return m.last
	}
	b := make([]byte, 0, m.size)
	for _, e := range entries {
		if g.latest[e.key] == e.seq {
			b = append(b, e.frame...)
		}
	}
	return b
}

// batchFrame is one text frame {"type":"batch","frames":[F,...]} of the
// payloads of the newest entries of their keys among entries (counted in
// m), in log order.
func (g *group) batchFrame(entries []logEntry, m *merge) []byte {
	n := len(batchPrefix) + len(batchSuffix) + m.frames - 1 + m.payload // the commas, the payloads
	b := appendTextHeader(make([]byte, 0, textHeaderLen(n)+n), n)
	b = append(b, batchPrefix...)
	first := true
	for _, e := range entries {
		if g.latest[e.key] == e.seq {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, framePayload(e.frame)...)
		}
	}
	return append(b, batchSuffix...)
}

// compact drops the entries a newer one of the same key replaced, once they
// outnumber the others: the log stays within about twice the keys the
// group has seen, and since's answers do not change.
func (g *group) compact() {
	if len(g.log) < 2*len(g.latest)+256 {
		return
	}
	keep := g.log[:0]
	for _, e := range g.log {
		if g.latest[e.key] == e.seq {
			keep = append(keep, e)
		}
	}
	clear(g.log[len(keep):])
	g.log = keep
}
