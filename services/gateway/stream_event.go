package gateway

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/cejson"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// streamMsg is one stream message as the pump got it.
type streamMsg struct {
	Subject string
	Header  nats.Header
	Data    []byte
	Stream  string
	Seq     uint64
	Stamp   time.Time // when the stream stored it
}

// streamEvent is a message decoded: what the filters read and what is encoded.
type streamEvent struct {
	msg   streamMsg
	kind  string        // the kind or layer token of the subject
	msgPB proto.Message // the payload; nil when it is JSON (roll-ups) or could not be decoded
	json  []byte        // the payload when it is JSON already
}

// cloudEvent is the CloudEvents 1.0 JSON format (structured mode) of a stream
// message, with iochub's extension attributes iocstream, iocseq and iocsubject.
type cloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            string          `json:"time,omitempty"`
	DataContentType string          `json:"datacontenttype"`
	IOCStream       string          `json:"iocstream"`
	IOCSeq          uint64          `json:"iocseq"`
	IOCSubject      string          `json:"iocsubject"`
	Data            json.RawMessage `json:"data,omitempty"`
	DataBase64      []byte          `json:"data_base64,omitempty"`
}

// ContentTypeCloudEvents is the media type of one event in structured mode.
const ContentTypeCloudEvents = "application/cloudevents+json"

// decodeStreamMsg decodes m's payload by its stream and kind: FEEDS carry the
// kind's observation (or Alert, Report), STATE an EntityState, ROLLUPS JSON.
// A payload that cannot be decoded is kept raw (sent as data_base64), never dropped.
func decodeStreamMsg(sh streamShape, m streamMsg) streamEvent {
	ev := streamEvent{msg: m}
	toks := strings.Split(m.Subject, ".")
	if len(toks) > sh.kindTok {
		ev.kind = toks[sh.kindTok]
	}
	if sh.stream == subjects.StreamRollups {
		if json.Valid(m.Data) {
			ev.json = m.Data
		}
		return ev
	}
	pb, err := cejson.Message(m.Subject) // the one map of subjects to payloads
	if err != nil || pb == nil {
		return ev
	}
	if err := proto.Unmarshal(m.Data, pb); err != nil {
		return ev
	}
	// A report's sealed contact never leaves the hub.
	switch x := pb.(type) {
	case *iocv1.Report:
		x.ContactSealed = nil
	case *iocv1.EntityState:
		if r := x.GetReport(); r != nil {
			r.ContactSealed = nil
		}
	}
	ev.msgPB = pb
	return ev
}

// units are the unit codes the event lies in: the unit token of a feed or
// roll-up subject; a state's unit and, for an alert, the units it touches.
func (ev *streamEvent) units(sh streamShape) []string {
	if sh.unitTok >= 0 {
		toks := strings.Split(ev.msg.Subject, ".")
		if len(toks) > sh.unitTok {
			return []string{subjects.Untoken(toks[sh.unitTok])}
		}
		return nil
	}
	st, ok := ev.msgPB.(*iocv1.EntityState)
	if !ok {
		return nil
	}
	return append([]string{st.GetUnit()}, st.GetUnits()...)
}

// box is the bounding box of every geometry in the payload; false when it has none.
func (ev *streamEvent) box() (bbox, bool) {
	if ev.msgPB == nil {
		return bbox{}, false
	}
	var box bbox
	found := false
	visitGeometries(ev.msgPB.ProtoReflect(), func(g *iocv1.Geometry) {
		t, err := decodeWKB(g.GetWkb())
		if err != nil || t == nil || checkFinite(t) != nil {
			return
		}
		if !found {
			b, ok := geometryBBox(t)
			if ok {
				box, found = b, true
			}
			return
		}
		extendBBox(&box, t)
	})
	return box, found
}

// visitGeometries calls f on every ioc.v1.Geometry inside m.
func visitGeometries(m protoreflect.Message, f func(*iocv1.Geometry)) {
	if g, ok := m.Interface().(*iocv1.Geometry); ok {
		f(g)
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := range l.Len() {
				visitGeometries(l.Get(i).Message(), f)
			}
			return true
		}
		visitGeometries(v.Message(), f)
		return true
	})
}

// severity is the highest CAP severity rank of an alert event (its infos'),
// 0 for any other event.
func (ev *streamEvent) severity() int {
	var a *iocv1.Alert
	switch x := ev.msgPB.(type) {
	case *iocv1.Alert:
		a = x
	case *iocv1.EntityState:
		a = x.GetAlert()
	}
	top := 0
	for _, in := range a.GetInfo() {
		top = max(top, severityRank(in.GetSeverity()))
	}
	return top
}

// encode renders ev as a CloudEvents 1.0 JSON event: the attributes from its
// ce-* headers, data as protojson of the payload (or the roll-up's JSON).
func (ev *streamEvent) encode() ([]byte, error) {
	get := func(k string) string {
		if v := ev.msg.Header[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	m := ev.msg
	out := cloudEvent{
		SpecVersion: ce.SpecVersion,
		ID:          get(ce.HeaderID),
		Source:      get(ce.HeaderSource),
		Type:        get(ce.HeaderType),
		Subject:     get(ce.HeaderSubject),
		Time:        get(ce.HeaderTime),
		IOCStream:   m.Stream,
		IOCSeq:      m.Seq,
		IOCSubject:  m.Subject,
	}
	// Every iochub publisher sets id, source and type; should one not, the
	// event stays valid and says where it came from.
	if out.ID == "" {
		out.ID = fmt.Sprintf("%s:%d", m.Stream, m.Seq)
	}
	if out.Source == "" {
		out.Source = "urn:ioc:stream:" + m.Stream
	}
	if out.Type == "" {
		out.Type = "vn.ioc." + ev.kind + ".unknown.v1"
	}
	if _, err := time.Parse(time.RFC3339Nano, out.Time); err != nil && out.Time != "" {
		out.Time = "" // not an RFC 3339 time: the stored time instead
	}
	if out.Time == "" && !m.Stamp.IsZero() {
		out.Time = m.Stamp.UTC().Format(time.RFC3339Nano)
	}
	switch {
	case ev.msgPB != nil:
		b, err := protojson.Marshal(ev.msgPB)
		if err != nil {
			return nil, fmt.Errorf("rendering %s seq %d as JSON: %w", m.Stream, m.Seq, err)
		}
		out.DataContentType, out.Data = ce.ContentTypeJSON, b
	case ev.json != nil:
		out.DataContentType, out.Data = ce.ContentTypeJSON, ev.json
	default:
		ct := get(ce.HeaderContentType)
		if ct == "" {
			ct = ce.ContentTypeProtobuf
		}
		out.DataContentType, out.DataBase64 = ct, m.Data
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encoding %s seq %d: %w", m.Stream, m.Seq, err)
	}
	return b, nil
}

// eventCacheSize is how many recent stream positions the gateway keeps
// decoded and encoded, shared by every client reading them, and
// eventCacheBytes the most they may weigh (eventCost): a feed item may be
// megabytes (a CAP alert of many areas), and 4096 such would hold gigabytes.
const (
	eventCacheSize  = 4096
	eventCacheBytes = 64 << 20
)

// eventCost is what a position of payload data bytes weighs in the cache:
// the message it keeps, its JSON (base64 or protojson) and a frame per
// transport, each about the data's size or more.
func eventCost(data int) int { return 4*data + 512 }

// transport indexes the frames of a cached event.
type transport int

const (
	transportWS  transport = iota // a WebSocket text frame
	transportSSE                  // an SSE event with id: <seq>
	transports
)

// cachedEvent is one stream position decoded once, and encoded (to JSON and
// to each transport's frame) at most once, however many clients read it.
// Clients only read ev; the frames are immutable once built.
type cachedEvent struct {
	ev   streamEvent
	cost int // its weight in the eventCache (eventCost)

	jsonOnce sync.Once
	json     []byte

	frameOnce [transports]sync.Once
	frames    [transports][]byte
}

// frame returns the event's frame for t, encoding it on first use.
func (c *cachedEvent) frame(t transport, log *slog.Logger) []byte {
	c.jsonOnce.Do(func() {
		b, err := c.ev.encode()
		if err != nil {
			// Never a silent gap: send the payload as it is.
			log.Warn("event not rendered as JSON; sent as data_base64", "stream", c.ev.msg.Stream, "seq", c.ev.msg.Seq, "err", err)
			raw := c.ev
			raw.msgPB, raw.json = nil, nil
			if c.ev.msgPB != nil {
				// The payload as decoded (a report's sealed contact cleared),
				// not as stored; none if even that cannot be marshalled.
				raw.msg.Data, _ = proto.Marshal(c.ev.msgPB)
			}
			b, _ = raw.encode() // only strings and bytes: cannot fail
		}
		c.json = b
	})
	c.frameOnce[t].Do(func() {
		switch t {
		case transportWS:
			c.frames[t] = textFrame(c.json)
		default:
			c.frames[t] = sseFrame(c.ev.msg.Seq, c.json)
		}
	})
	return c.frames[t]
}

type eventKey struct {
	stream string
	seq    uint64
}

// eventCache holds the last positions the clients read, of every stream,
// at most eventCacheSize of them weighing at most eventCacheBytes; a
// position is decoded by the first client that reaches it. The oldest
// positions go first. A position heavier than eventCacheBytes/16 is not kept:
// each client reading it decodes it. The message of a position never changes
// while the stream lives; an entry whose stored time differs is of a stream
// since deleted and recreated.
type eventCache struct {
	mu sync.Mutex
	m  map[eventKey]*cachedEvent
	// ring holds the keys of m, oldest at head; n of them; bytes their cost.
	ring    [eventCacheSize]eventKey
	head, n int
	bytes   int
}

func newEventCache() *eventCache {
	return &eventCache{m: make(map[eventKey]*cachedEvent, eventCacheSize)}
}

// get returns the cached event of m's position, decoding m when it is new.
func (c *eventCache) get(sh streamShape, m streamMsg) *cachedEvent {
	k := eventKey{m.Stream, m.Seq}
	c.mu.Lock()
	if e, ok := c.m[k]; ok && e.ev.msg.Stamp.Equal(m.Stamp) {
		c.mu.Unlock()
		return e
	}
	c.mu.Unlock()
	cost := eventCost(len(m.Data))
	e := &cachedEvent{ev: decodeStreamMsg(sh, m), cost: cost} // outside the lock; a racing client may decode it too
	if cost > eventCacheBytes/16 {
		return e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[k]; ok {
		if old.ev.msg.Stamp.Equal(m.Stamp) {
			return old
		}
		c.bytes += cost - old.cost
		c.m[k] = e // the stream was recreated: its sequences start again
		return e
	}
	for c.n == eventCacheSize || (c.n > 0 && c.bytes+cost > eventCacheBytes) {
		evict := c.ring[c.head]
		c.bytes -= c.m[evict].cost
		delete(c.m, evict)
		c.ring[c.head] = eventKey{}
		c.head = (c.head + 1) % eventCacheSize
		c.n--
	}
	c.ring[(c.head+c.n)%eventCacheSize] = k
	c.n++
	c.bytes += cost
	c.m[k] = e
	return e
}
