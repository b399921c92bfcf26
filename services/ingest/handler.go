package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/feedcheck"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/routes"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// Item statuses in a Response.
const (
	StatusAccepted  = "accepted"
	StatusDuplicate = "duplicate"
	StatusRejected  = "rejected"
)

// Result is the outcome of one item, in the order of the body.
type Result struct {
	Index int `json:"index"`
	// Line is the NDJSON line of the item (NDJSON bodies only).
	Line int `json:"line,omitempty"`
	// Path is the XML element of the alert in a CAP body ("alert", "alert[2]")
	// or, when it was rejected as CAP, the element of its first problem.
	Path   string `json:"path,omitempty"`
	ID     string `json:"id,omitempty"`
	Status string `json:"status"`
	// Reason says why an item was rejected, naming the field.
	Reason string `json:"reason,omitempty"`
	// Pointer is the JSON pointer of the field at fault, relative to the list of items: /<index>/<field>...
	Pointer string `json:"pointer,omitempty"`
	EventID string `json:"eventId,omitempty"`
	Unit    string `json:"unit,omitempty"`
	Subject string `json:"subject,omitempty"`
	// Retryable marks an item that was valid but not published (NATS unavailable or
	// no ack in time): sending it again is safe and may succeed.
	Retryable bool `json:"retryable,omitempty"`
}

// Response is the 202 answer to POST /v1/feeds/{kind}.
type Response struct {
	Accepted   int      `json:"accepted"`
	Duplicates int      `json:"duplicates"`
	Rejected   int      `json:"rejected"`
	Results    []Result `json:"results"`
}

// Register adds POST /v1/feeds/{kind} to mux.
func (s *Service) Register(mux routes.Mux) {
	mux.HandleFunc("POST /v1/feeds/{kind}", s.handleFeed)
}

func (s *Service) handleFeed(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	kind := r.PathValue("kind")
	code := s.serveFeed(w, r, kind)
	label := kind
	if _, ok := lookupSpec(kind); !ok {
		label = "unknown"
	}
	s.metrics.latency.WithLabelValues(label, strconv.Itoa(code)).Observe(time.Since(start).Seconds())
}

func (s *Service) serveFeed(w http.ResponseWriter, r *http.Request, kind string) int {
	cat := s.cat.Load()
	if cat == nil {
		return writeProblem(w, r, http.StatusServiceUnavailable, "units-not-loaded", "Units not loaded yet",
			"the hub has not yet loaded its administrative units and sources; retry in a few seconds", nil)
	}
	token, ok := bearer(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="iochub"`)
		return writeProblem(w, r, http.StatusUnauthorized, "unauthorized", "Missing bearer token",
			"send the source's token as Authorization: Bearer <token>", nil)
	}
	p, ok := s.authenticate(cat, token)
	if !ok && strings.HasPrefix(token, auth.TokenPrefix) {
		// An identity's key (API key of a person or program) reads; feeds are
		// written only with a source's token, bound to the source's unit.
		return writeProblem(w, r, http.StatusForbidden, "forbidden", "Identity keys cannot write feeds",
			"this is an identity key ("+auth.TokenPrefix+"…), which reads the gateway and streams; feed items are sent with a source's token (ioc_…), which binds them to the source's unit: ask the hub's operators to register a source", nil)
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="iochub", error="invalid_token"`)
		return writeProblem(w, r, http.StatusUnauthorized, "unauthorized", "Unknown bearer token",
			"the token is not that of an enabled source; check it, or ask the hub's operators to register the source", nil)
	}
	spec, ok := lookupSpec(kind)
	if !ok {
		return writeProblem(w, r, http.StatusNotFound, "unknown-kind", "Unknown feed kind",
			fmt.Sprintf("kind %q is not taken here; POST to /v1/feeds/{%s}", kind, strings.Join(supportedKinds(), "|")), nil)
	}
	format, err := bodyFormat(r.Header.Get("Content-Type"))
	if err != nil {
		return writeProblem(w, r, http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			err.Error()+"; send application/json (an array, one item or a GeoJSON FeatureCollection), application/x-ndjson, or application/cap+xml (alerts)", nil)
	}
	if (format == formatCAP || format == formatXML) && !spec.capXML {
		return writeProblem(w, r, http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			fmt.Sprintf("Content-Type %s (CAP XML) is taken only on /v1/feeds/%s; send %s items as application/json or application/x-ndjson",
				strings.TrimSpace(strings.Split(r.Header.Get("Content-Type"), ";")[0]), subjects.KindAlert, kind), nil)
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return writeProblem(w, r, http.StatusRequestEntityTooLarge, "body-too-large", "Body too large",
			fmt.Sprintf("the body is %d bytes; at most %d are taken in one request: split the batch", r.ContentLength, s.cfg.MaxBodyBytes), nil)
	}
	// Admitted only now: what can never succeed (an unknown kind, a media
	// type or a declared size the ingest does not take) is answered with
	// its 4xx whatever the source's rate, never a 429 or 503 that says to
	// send it again; the body deadline starts here, before the body is read.
	release, status := s.admit(w, r, p.sourceID)
	if release == nil {
		return status
	}
	defer release()
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	mem := getReqMem()
	raws, err := decodeItemsInto(body, format, s.cfg.MaxItems, r.ContentLength, true, mem)
	// Given back when the request is done, if its publisher says JetStream
	// holds nothing of it any more.
	var pub *publisher
	defer func() {
		if pub == nil || pub.clean() {
			putReqMem(mem)
		}
	}()
	if err != nil {
		if status, ok := s.bodyTimedOut(w, r); ok {
			return status
		}
		var mbe *http.MaxBytesError
		var be *bodyError
		switch {
		case errors.As(err, &mbe):
			return writeProblem(w, r, http.StatusRequestEntityTooLarge, "body-too-large", "Body too large",
				fmt.Sprintf("the body is larger than %d bytes: split the batch", mbe.Limit), nil)
		case errors.Is(err, ErrTooManyItems):
			return writeProblem(w, r, http.StatusRequestEntityTooLarge, "too-many-items", "Too many items",
				fmt.Sprintf("%v; at most %d items are taken in one request: split the batch", err, s.cfg.MaxItems), nil)
		case errors.As(err, &be):
			return writeProblem(w, r, http.StatusBadRequest, "malformed-body", "Malformed body", "the body could not be read "+be.Error(), nil)
		case errors.Is(err, ErrNoItems):
			return writeProblem(w, r, http.StatusBadRequest, "no-items", "No items", "the body holds no item", nil)
		default:
			return writeProblem(w, r, http.StatusBadRequest, "malformed-body", "Malformed body", err.Error(), nil)
		}
	}

	now := s.now()
	env := parseEnv{now: now, maxFuture: s.cfg.MaxFuture, maxAge: s.cfg.MaxAge, seal: s.sealer}
	results := mem.resultsFor(len(raws))
	// Every pending of the request in one allocation, and every event's
	// bytes in a few: appended to one buffer, each message a slice of it
	// (reused only once JetStream acked them all: reqMem).
	mem.reserve(len(raws))
	pends := mem.pends
	scratch := newBatchScratch(now, len(raws), p.sourceID, mem)
	outside := 0
	// Items are published as soon as they are valid, so that JetStream stores
	// the first while the rest are still being checked.
	pub = s.newPublisher(r.Context())
	defer pub.close()
	room := itemRoom(s.js.Conn().MaxPayload())
	// One map for the members of every large item that came as members:
	// filled for each in turn; nothing keeps it past its item.
	var shared map[string]json.RawMessage
	for i, raw := range raws {
		f := raw.fieldsIn(&shared)
		res := &results[i]
		res.Index, res.Line = i, raw.line
		sp := spec
		if raw.cap != nil {
			res.ID, res.Path = raw.cap.id, raw.cap.path
			sp.parse = raw.cap.parse
		}
		if raw.err != "" {
			res.Status, res.Reason, res.Pointer = StatusRejected, raw.err, "/"+strconv.Itoa(i)
			s.countRejected(cat, p, rejectReason(nil))
			continue
		}
		msg, id, ierr := s.buildItem(cat, p, sp, f, env, res, scratch)
		if ierr != nil {
			if res.ID == "" {
				// Rejected before its id was read: echo the id as sent (buildItem sets it otherwise).
				res.ID = itemIDAsSent(f)
			}
			// A rejected id may be huge: quote only its start.
			res.ID = feedcheck.Clip(res.ID)
			ptr := ierr.pointer
			if _, member := f.raw(ptr); member || ierr.member {
				ptr = pathSegment(ptr) // a member's own name, dots and slashes included
			}
			res.Status, res.Reason, res.Pointer = StatusRejected, ierr.Error(), jsonPointer(i, ptr)
			s.countRejected(cat, p, rejectReason(ierr))
			if ierr.outside {
				outside++
			}
			continue
		}
		if n := msgSize(msg, room/2); n > room {
			res.Status, res.Subject = StatusRejected, ""
			res.Reason = fmt.Sprintf("the item makes an event of %d bytes; the hub takes at most %d (the event backbone's max payload less %d kept for its state and dead letter): shorten its fields",
				n, room, payloadHeadroom)
			res.Pointer = jsonPointer(i, "")
			s.countRejected(cat, p, "too-large")
			continue
		}
		pends = append(pends, pending{idx: i, msg: msg, id: id})
		pd := &pends[len(pends)-1]
		pub.send(pd)
	}
	if len(pends) == 0 && outside == len(raws) {
		return writeProblem(w, r, http.StatusForbidden, "outside-source-unit", "Items outside the source's unit",
			fmt.Sprintf("source %s may publish only in unit %s, and every item lies elsewhere", p.sourceID, p.unit), problemErrors(results))
	}
	if len(pends) > 0 { // every pending is sent, in order
		if pub.down != "" {
			for i := range pends {
				markUnpublished(&results[pends[i].idx], "NATS is unavailable ("+pub.down+")")
			}
			s.count(kind, results)
			return writeProblem(w, r, http.StatusServiceUnavailable, "nats-unavailable", "Event backbone unavailable",
				"NATS is unavailable; nothing was published: retry later (items are idempotent by id)", problemErrors(results))
		}
		acked := pub.wait(pends)
		retryable := 0
		for i := range pends {
			pd := &pends[i]
			res := &results[pd.idx]
			switch {
			case permanentPublishError(pd.err):
				res.Status, res.Subject = StatusRejected, ""
				res.Reason = "the item is too large for the event backbone (" + pd.err.Error() + "); shorten its fields"
				s.countRejected(cat, p, "too-large")
			case pd.err != nil:
				markUnpublished(res, pd.err.Error())
				retryable++
			default:
				res.Status = pd.status
			}
		}
		if acked == 0 && retryable > 0 {
			s.count(kind, results)
			return writeProblem(w, r, http.StatusServiceUnavailable, "nats-unavailable", "Event backbone unavailable",
				"no item was acknowledged by JetStream; retry later (items are idempotent by id)", problemErrors(results))
		}
	}
	resp := Response{Results: results}
	for _, res := range results {
		switch res.Status {
		case StatusAccepted:
			resp.Accepted++
		case StatusDuplicate:
			resp.Duplicates++
		default:
			resp.Rejected++
		}
	}
	s.count(kind, results)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(resp)
	return http.StatusAccepted
}

// payloadHeadroom is the part of the server's max payload an item's event
// may not take: what the hub adds to it later must fit too, its state on
// STATE (the entity id; the codes of every current unit an alert's area
// touches, ~30 KB for all 3,400) and its dead letter's headers (subject,
// reason), so that an item answered accepted can always be stored,
// published and dead-lettered whole, and re-driven from its letter.
const payloadHeadroom = 128 << 10

// itemRoom is the largest event an item may make on a server whose max
// payload is maxPayload: less payloadHeadroom, and never less than half of
// it (a server configured below 256 KiB).
func itemRoom(maxPayload int64) int {
	if maxPayload <= 0 { // not known (no connection yet): the server's own check stands
		return math.MaxInt
	}
	return int(max(maxPayload-payloadHeadroom, maxPayload/2))
}

// msgSize is what NATS counts of m against its max payload (the payload
// and the encoded headers), when its payload alone is over from; less, it
// returns the payload's length (the headers, at most a few KB, are not
// counted then: the event is far from the limit).
func msgSize(m *nats.Msg, from int) int {
	if len(m.Data) <= from {
		return len(m.Data)
	}
	return natsx.WireSize(m.Header, m.Data)
}

// permanentPublishError reports whether publishing failed because of the
// message itself (too large a payload or header), which no retry can cure:
// the item is rejected with a 4xx reason, never answered as retryable.
func permanentPublishError(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, nats.ErrMaxPayload) {
		return true
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "maximum payload") || strings.Contains(msg, "header too large") ||
		strings.Contains(msg, "headers too large") || strings.Contains(msg, "message size exceeds")
}

func markUnpublished(res *Result, why string) {
	res.Status = StatusRejected
	res.Reason = "not published: " + why + "; safe to retry"
	res.Retryable = true
	res.Subject = ""
}

func (s *Service) count(kind string, results []Result) {
	for _, res := range results {
		st := res.Status
		if res.Retryable {
			st = "failed"
		}
		s.metrics.items.WithLabelValues(kind, st).Inc()
	}
}

// itemIDAsSent is the id (or CAP identifier) of an item as sent, clipped:
// a huge rejected id is not echoed whole.
func itemIDAsSent(f fields) string {
	raw, _ := f.raw("id")
	id := unquote(raw)
	if id == "" {
		raw, _ = f.raw("identifier")
		id = unquote(raw)
	}
	return clipID(id)
}

// batchScratch is what the items of one request share or take their
// memory from, so that each item allocates less; it lives as long as the
// request. Nothing in it is written once an event holds it.
type batchScratch struct {
	// mem holds the request's messages, their headers, the events' bytes
	// (mem.arena: each message a slice of it, appended to) and their
	// Origins, reused by a later request only once JetStream acked them all.
	mem *reqMem
	// received is every event's origin.received_at (read only).
	received *timestamppb.Timestamp
	// feedSource is the value of every event's feed source header (read only).
	feedSource []string
	// places remembers the subject and ce-source of the last few units.
	places []feedPlace
}

// feedPlace is the subject and ce-source of the events of one unit and kind.
type feedPlace struct {
	province, unit, kind string
	subject, source      string
}

func newBatchScratch(now time.Time, items int, sourceID string, mem *reqMem) *batchScratch {
	if want := min(1<<20, 256*items); cap(mem.arena) < want {
		mem.arena = make([]byte, 0, want)
	}
	mem.origins = originsFor(mem, min(items, 1024))
	return &batchScratch{
		mem:        mem,
		received:   timestamppb.New(now),
		feedSource: []string{sourceID},
	}
}

// origin returns a new Origin of the request's memory.
func (b *batchScratch) origin() *iocv1.Origin {
	m := b.mem
	if len(m.origins) == cap(m.origins) {
		m.origins = make([]iocv1.Origin, 0, cap(m.origins)) // a new block; the old stays with its events
	}
	m.origins = m.origins[:len(m.origins)+1]
	return &m.origins[len(m.origins)-1]
}

// maxPlaces bounds the places a request remembers.
const maxPlaces = 8

// place returns the feed subject and ce-source of an event of kind in unit.
func (b *batchScratch) place(province, unit, kind string) (subject, source string) {
	for i := range b.places {
		if pl := &b.places[i]; pl.unit == unit && pl.province == province && pl.kind == kind {
			return pl.subject, pl.source
		}
	}
	subject, source = subjects.Feed(province, unit, kind), ce.SourceURN(province, unit)
	if len(b.places) == maxPlaces {
		b.places = b.places[:0]
	}
	b.places = append(b.places, feedPlace{province: province, unit: unit, kind: kind, subject: subject, source: source})
	return subject, source
}

// buildItem validates one item and returns the message to publish and its
// message id; res gets the id, event id, unit and subject. The event is
// encoded at the end of b.mem.arena.
func (s *Service) buildItem(cat *catalog, p principal, spec kindSpec, f fields, env parseEnv, res *Result, b *batchScratch) (*nats.Msg, string, *itemError) {
	it, ierr := spec.parse(f, env)
	if ierr != nil {
		return nil, "", ierr
	}
	res.ID = it.id
	ix := cat.indexAt(it.time, p.unit)
	unit, province, ierr := resolve(ix, p, it)
	if ierr != nil && ix != cat.ix && p.unit != "" {
		// The source's unit grew since (a merger): what lies in it now but
		// not then is placed on the current map, as before maps had times.
		ix = cat.ix
		unit, province, ierr = resolve(ix, p, it)
	}
	if ierr != nil {
		return nil, "", ierr
	}
	if it.areaScope != nil && p.unit != "" {
		if ierr := it.areaScope(ix, p.unit, s.cfg.AlertScope); ierr != nil {
			return nil, "", ierr
		}
	}
	o := b.origin()
	o.SourceId, o.Province, o.Unit, o.ReceivedAt = p.sourceID, province, unit, b.received
	it.finish(o)
	start := len(b.mem.arena)
	all, err := proto.MarshalOptions{}.MarshalAppend(b.mem.arena, it.msg)
	// storable's rules are checked on the encoded bytes (cheap); only when
	// they fail, or the encoding does, is the event walked to say where.
	if err != nil || !wireStorable(all[start:], it.msg.ProtoReflect().Descriptor()) {
		if serr := storable(it.msg); serr != nil {
			return nil, "", &itemError{reason: serr.Error()}
		}
	}
	if err != nil {
		return nil, "", &itemError{reason: "encoding the event: " + err.Error()}
	}
	// Headers carry them, and NATS trims a header value: " a" and "a" would be one message id.
	if err := feedcheck.HeaderValue("event id", it.eventID); err != nil {
		return nil, "", &itemError{reason: err.Error()}
	}
	if err := feedcheck.HeaderValue("entity id", it.entityID); err != nil {
		return nil, "", &itemError{reason: err.Error()}
	}
	// Keyed (ce.MsgIDKey): an edge could send an item under a plain id
	// before the real item, which FEEDS would then drop as a duplicate.
	var msgID string
	if spec.msgID != nil {
		msgID = s.msgIDs.ID(spec.msgID(p.sourceID, it))
	} else {
		msgID = s.msgIDs.FeedID(p.sourceID, spec.kind, it.eventID)
	}
	b.mem.arena = all // only now: a rejected item leaves nothing in the buffer
	body := all[start:len(all):len(all)]
	subj, source := b.place(province, unit, spec.kind)
	msg := b.mem.msg()
	ce.Event{ID: it.eventID, Source: source, Type: spec.ceType, Subject: it.entityID, Time: it.time}.SetOnIn(msg.Header, b.mem.headerValues(ce.HeaderValues))
	msg.Header[ce.HeaderFeedSource] = b.feedSource
	msg.Subject, msg.Data = subj, body
	res.EventID, res.Unit, res.Subject = it.eventID, unit, subj
	return msg, msgID, nil
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	t := strings.TrimSpace(h[len(prefix):])
	return t, t != ""
}

// jsonPointer turns an item's path into an RFC 6901 pointer from the list
// of items: "location.coordinates[3]" (or "location/coordinates/3") into
// "/<index>/location/coordinates/3". In a path, '.', '/' and "[n]" part
// the segments, and '\\' takes the next character as it is (pathSegment);
// a segment's '~' and '/' are escaped as the RFC says.
func jsonPointer(index int, path string) string {
	var b strings.Builder
	b.WriteString("/")
	b.WriteString(strconv.Itoa(index))
	if path == "" {
		return b.String()
	}
	b.WriteByte('/')
	literal, empty := false, true // empty: nothing written of the current segment
	for _, c := range path {
		if literal {
			literal = false
		} else {
			switch c {
			case '\\':
				literal = true
				continue
			case '.', '[', '/':
				if !empty {
					b.WriteByte('/')
					empty = true
				}
				continue
			case ']':
				continue
			}
		}
		empty = false
		switch c {
		case '~':
			b.WriteString("~0")
		case '/':
			b.WriteString("~1")
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// pathSegment is name as one segment of an item's path (jsonPointer): its
// '.', '/', '[', ']' and '\\' taken as they are.
func pathSegment(name string) string {
	if !strings.ContainsAny(name, `./[]\`) {
		return name
	}
	var b strings.Builder
	for _, c := range name {
		if strings.ContainsRune(`./[]\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}
