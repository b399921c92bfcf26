// Package deadletter owns the shape of a dead letter on the DEADLETTER stream
// (a feed item the aggregator accepted but could not store, kept whole with
// its reason) and the operations on it shared by the aggregator (Build), the
// gateway's operator API and the iochub CLI (List, Get, Redrive, Discard).
//
// A dead letter is the original message, payload and headers, published on
// ioc.deadletter.<province>.<kind> with the Iochub-Dl-* headers added. Its
// Nats-Msg-Id is derived from the FEEDS sequence, so the aggregator may
// publish it again after a failure without making two.
package deadletter

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/subjects"
)

// Headers added to a dead letter, spelt exactly as on the wire.
const (
	// HeaderSubject is the original FEEDS subject.
	HeaderSubject = "Iochub-Dl-Subject"
	// HeaderFeedsSeq is the original message's sequence in FEEDS.
	HeaderFeedsSeq = "Iochub-Dl-Feeds-Seq"
	// HeaderStage is where it failed: StageDecode or StageStore.
	HeaderStage = "Iochub-Dl-Stage"
	// HeaderReason is why, cut to MaxReason bytes.
	HeaderReason = "Iochub-Dl-Reason"
	// HeaderTime is when it was dead-lettered (RFC 3339, UTC).
	HeaderTime = "Iochub-Dl-Time"
	// HeaderDelivered is how many times FEEDS had delivered it.
	HeaderDelivered = "Iochub-Dl-Delivered"
	// HeaderMsgID is the original Nats-Msg-Id (the dead letter's own is derived).
	HeaderMsgID = "Iochub-Dl-Msg-Id"
	// HeaderTruncated is "true" when original headers were left out to keep
	// the headers under MaxHeaderBytes.
	HeaderTruncated = "Iochub-Dl-Headers-Truncated"
	// HeaderPayloadDropped holds the original payload's size in bytes when
	// the payload was left out to keep the letter under Info.MaxPayload; such
	// a letter cannot be redriven.
	HeaderPayloadDropped = "Iochub-Dl-Payload-Dropped"
)

// Stages at which the aggregator dead-letters an item.
const (
	StageDecode = "decode"
	StageStore  = "store"
)

// Bounds of a dead letter's headers.
const (
	// MaxReason is the most bytes of a reason kept.
	MaxReason = 1024
	// MaxHeaderBytes bounds all the headers of a dead letter (original ones
	// are left out past it, marked by HeaderTruncated).
	MaxHeaderBytes = 60 << 10
)

// Operator actions on dead letters, published on ACTIONS by the gateway or
// the CLI and applied (and recorded in audit_log) by the aggregator.
const (
	// ActionRedrive redrives one dead letter (see Redrive).
	ActionRedrive = "deadletter.redrive"
	// ActionDiscard discards one dead letter (see Discard).
	ActionDiscard = "deadletter.discard"
	// TargetKind is the target kind of those actions; the target is the
	// dead letter's sequence in DEADLETTER, in decimal.
	TargetKind = "deadletter"
)

// ErrNotFound is returned when there is no dead letter with the sequence asked for.
var ErrNotFound = errors.New("dead letter not found")

// ErrNotRedrivable is returned by Redrive for a message that does not carry
// a FEEDS subject to go back to.
var ErrNotRedrivable = errors.New("dead letter cannot be redriven")

// Info says where and why an item failed; Build records it in headers.
type Info struct {
	Subject   string    // original FEEDS subject
	FeedsSeq  uint64    // sequence in FEEDS
	Stage     string    // StageDecode or StageStore
	Reason    string    // why; cut to MaxReason
	Time      time.Time // when
	Delivered uint64    // deliveries by FEEDS so far
	// MaxPayload is the server's max payload (nats.Conn.MaxPayload), which
	// bounds headers plus payload; 0 means unbounded. A letter past it
	// leaves out the original headers but the CloudEvents id and sources,
	// then the payload (see HeaderPayloadDropped).
	MaxPayload int64
}

// MsgID is the Nats-Msg-Id of the dead letter of FEEDS sequence seq.
func MsgID(feedsSeq uint64) string { return "dl-feeds-" + strconv.FormatUint(feedsSeq, 10) }

// Build makes the dead letter of a FEEDS message: its payload and headers
// (less NATS' own), plus the Iochub-Dl-* headers of info.
func Build(h nats.Header, data []byte, info Info) *nats.Msg {
	province, kind := "_", "_"
	if p, _, k, err := subjects.ParseFeed(info.Subject); err == nil {
		province, kind = p, k
	}
	out := nats.Header{
		HeaderSubject:         {CleanText(info.Subject, 1024)},
		HeaderFeedsSeq:        {strconv.FormatUint(info.FeedsSeq, 10)},
		HeaderStage:           {info.Stage},
		HeaderReason:          {CleanText(info.Reason, MaxReason)},
		HeaderTime:            {info.Time.UTC().Format(time.RFC3339Nano)},
		HeaderDelivered:       {strconv.FormatUint(info.Delivered, 10)},
		jetstream.MsgIDHeader: {MsgID(info.FeedsSeq)},
	}
	size := natsx.HeaderBytes(out)
	if v := h.Get(jetstream.MsgIDHeader); v != "" {
		out[HeaderMsgID] = []string{v}
		size += len(HeaderMsgID) + len(v) + 4
	}
	for _, k := range slices.Sorted(maps.Keys(h)) { // by name: the same headers kept every time
		vs := h[k]
		if strings.HasPrefix(k, "Nats-") || strings.HasPrefix(k, "Iochub-Dl-") {
			continue // JetStream's own (ids, expectations) and stale dead-letter headers
		}
		n := 0
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
		if size+n > MaxHeaderBytes {
			out[HeaderTruncated] = []string{"true"}
			continue
		}
		size += n
		out[k] = append([]string(nil), vs...)
	}
	if info.MaxPayload > 0 && int64(natsx.WireSize(out, data)) > info.MaxPayload {
		for k := range out {
			if k != ce.HeaderID && k != ce.HeaderSource && k != ce.HeaderFeedSource &&
				!strings.HasPrefix(k, "Iochub-Dl-") && k != jetstream.MsgIDHeader {
				delete(out, k)
				out[HeaderTruncated] = []string{"true"}
			}
		}
		if int64(natsx.WireSize(out, data)) > info.MaxPayload {
			out[HeaderPayloadDropped] = []string{strconv.Itoa(len(data))}
			data = nil
		}
	}
	return &nats.Msg{Subject: subjects.Deadletter(province, kind), Header: out, Data: data}
}

// CleanText makes s a safe header value, and text PostgreSQL holds, of at
// most max bytes: control characters (NUL too) become spaces, invalid UTF-8
// U+FFFD, and a cut never splits a character.
func CleanText(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) <= max {
		return s
	}
	cut := max - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Letter is one dead letter as stored in DEADLETTER.
type Letter struct {
	Sequence  uint64    `json:"sequence"` // in DEADLETTER: the letter's id
	Subject   string    `json:"subject"`  // original FEEDS subject
	Province  string    `json:"province"` // of the original subject
	Kind      string    `json:"kind"`     // of the original subject
	Source    string    `json:"source"`   // feed source (Iochub-Source, else ce-source)
	EventID   string    `json:"eventId"`  // ce-id
	FeedsSeq  uint64    `json:"feedsSequence"`
	Stage     string    `json:"stage"`
	Reason    string    `json:"reason"`
	Time      time.Time `json:"time"`
	Delivered uint64    `json:"delivered"`
	// Header and Data are the whole message, for Get.
	Header nats.Header `json:"-"`
	Data   []byte      `json:"-"`
}

func fromRaw(m *jetstream.RawStreamMsg) Letter {
	h := m.Header
	l := Letter{Sequence: m.Sequence, Subject: h.Get(HeaderSubject), Source: h.Get(ce.HeaderFeedSource),
		EventID: h.Get(ce.HeaderID), Stage: h.Get(HeaderStage), Reason: h.Get(HeaderReason), Header: h, Data: m.Data}
	if l.Source == "" {
		l.Source = h.Get(ce.HeaderSource)
	}
	l.Province, l.Kind, _ = subjects.ParseDeadletter(m.Subject)
	l.FeedsSeq, _ = strconv.ParseUint(h.Get(HeaderFeedsSeq), 10, 64)
	l.Delivered, _ = strconv.ParseUint(h.Get(HeaderDelivered), 10, 64)
	l.Time, _ = time.Parse(time.RFC3339Nano, h.Get(HeaderTime))
	return l
}

// Query selects dead letters.
type Query struct {
	Province string // empty means every province
	Kind     string // empty means every kind
	After    uint64 // only sequences after this one (paging)
	Limit    int    // at most this many; 0 means 100
}

// List returns the dead letters matching q in sequence order (oldest first),
// without their payloads, and the sequence to pass as After for the next
// page (0 when there is none).
func List(ctx context.Context, js jetstream.JetStream, q Query) ([]Letter, uint64, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	st, err := js.Stream(ctx, subjects.StreamDeadletter)
	if err != nil {
		return nil, 0, fmt.Errorf("opening stream %s: %w", subjects.StreamDeadletter, err)
	}
	filter := subjects.DeadletterFilter(q.Province, q.Kind)
	var out []Letter
	seq := q.After + 1
	for len(out) < q.Limit {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, 0, nil
		}
		if err != nil {
			return out, 0, fmt.Errorf("reading %s from sequence %d: %w", subjects.StreamDeadletter, seq, err)
		}
		l := fromRaw(m)
		l.Header, l.Data = nil, nil
		out = append(out, l)
		seq = m.Sequence + 1
	}
	// A full page: say where the next starts only if there is more.
	if _, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter)); err == nil {
		return out, out[len(out)-1].Sequence, nil
	} else if !errors.Is(err, jetstream.ErrMsgNotFound) {
		return out, 0, fmt.Errorf("reading %s from sequence %d: %w", subjects.StreamDeadletter, seq, err)
	}
	return out, 0, nil
}

// Get returns the dead letter of sequence seq, with its headers and payload.
func Get(ctx context.Context, js jetstream.JetStream, seq uint64) (Letter, error) {
	st, err := js.Stream(ctx, subjects.StreamDeadletter)
	if err != nil {
		return Letter{}, fmt.Errorf("opening stream %s: %w", subjects.StreamDeadletter, err)
	}
	m, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Letter{}, fmt.Errorf("dead letter %d: %w", seq, ErrNotFound)
	}
	if err != nil {
		return Letter{}, fmt.Errorf("reading dead letter %d: %w", seq, err)
	}
	return fromRaw(m), nil
}

// RedriveMsgID is the plain id of the redrive of dead letter seq whose
// original id was orig: new, so FEEDS' duplicate window does not swallow it,
// and the same on every retry of the same redrive. Republish sends it keyed
// with the hub's key (natsx.FeedMsgIDKey), as every id on FEEDS: an edge
// knows the ids of its own items, and a reader sees those on FEEDS, so a
// plain redrive id could be taken first, the redrive answered duplicate,
// and the letter deleted with its item stored nowhere.
func RedriveMsgID(orig string, seq uint64) string {
	return orig + "#redrive-" + strconv.FormatUint(seq, 10)
}

// Redrive publishes dead letter seq's original payload and headers to its
// original FEEDS subject, waits for FEEDS' ack, then deletes the dead
// letter (Republish, then Discard). A retry after a failure in between
// publishes nothing twice within FEEDS' duplicate window (same
// Nats-Msg-Id), and the aggregator's store is idempotent on (source, event
// id) beyond it. It returns the redriven letter.
func Redrive(ctx context.Context, js jetstream.JetStream, seq uint64) (Letter, error) {
	keys, err := natsx.FeedMsgIDKey(ctx, js)
	if err != nil {
		return Letter{}, fmt.Errorf("redriving dead letter %d: %w", seq, err)
	}
	l, err := Republish(ctx, js, keys, seq)
	if err != nil {
		return l, err
	}
	if err := Discard(ctx, js, seq); err != nil && !errors.Is(err, ErrNotFound) {
		return l, fmt.Errorf("redriven, but %w", err)
	}
	return l, nil
}

// Republish is Redrive without the deletion of the dead letter, which the
// caller does once it has recorded the redrive (the aggregator's action,
// after its transaction commits: a redrive whose record is rolled back is
// then done again, not found gone and refused). A letter cut to fit the max
// payload (its payload dropped or its headers truncated) sends again the
// original as FEEDS still holds it. keys is the hub's key of FEEDS message
// ids (natsx.FeedMsgIDKey), which the redrive's id is keyed with.
func Republish(ctx context.Context, js jetstream.JetStream, keys *ce.MsgIDKey, seq uint64) (Letter, error) {
	l, err := Get(ctx, js, seq)
	if err != nil {
		return l, err
	}
	if _, _, _, err := subjects.ParseFeed(l.Subject); err != nil {
		return l, fmt.Errorf("dead letter %d has subject %q: %w", seq, l.Subject, ErrNotRedrivable)
	}
	hdr, data := l.Header, l.Data
	if l.Header.Get(HeaderPayloadDropped) != "" || l.Header.Get(HeaderTruncated) != "" {
		// The letter was cut to fit the max payload: the message is sent
		// again as FEEDS still holds it, whole.
		m, err := feedsOriginal(ctx, js, l)
		if err != nil {
			return l, fmt.Errorf("dead letter %d was cut to fit (payload dropped %q, headers truncated %q): %w", seq,
				l.Header.Get(HeaderPayloadDropped), l.Header.Get(HeaderTruncated), err)
		}
		hdr, data = m.Header, m.Data
	}
	h := nats.Header{}
	for k, vs := range hdr {
		if strings.HasPrefix(k, "Nats-") || strings.HasPrefix(k, "Iochub-Dl-") {
			continue
		}
		h[k] = vs
	}
	orig := l.Header.Get(HeaderMsgID)
	if orig == "" {
		orig = MsgID(l.FeedsSeq)
	}
	h[jetstream.MsgIDHeader] = []string{keys.ID(RedriveMsgID(orig, seq))}
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: l.Subject, Header: h, Data: data}); err != nil {
		if errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum) {
			// Its redrive id made it longer than the server or FEEDS takes:
			// no retry will send it.
			return l, fmt.Errorf("redriving dead letter %d to %s: %w: %w", seq, l.Subject, err, ErrNotRedrivable)
		}
		return l, fmt.Errorf("redriving dead letter %d to %s: %w", seq, l.Subject, err)
	}
	return l, nil
}

// feedsOriginal is the FEEDS message l was made of, while FEEDS holds it
// (its max age); ErrNotRedrivable once it does not.
func feedsOriginal(ctx context.Context, js jetstream.JetStream, l Letter) (*jetstream.RawStreamMsg, error) {
	if l.FeedsSeq == 0 {
		return nil, fmt.Errorf("it names no FEEDS message: %w", ErrNotRedrivable)
	}
	st, err := js.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		return nil, fmt.Errorf("opening stream %s: %w", subjects.StreamFeeds, err)
	}
	m, err := st.GetMsg(ctx, l.FeedsSeq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, fmt.Errorf("FEEDS no longer holds its message %d (FEEDS keeps messages for its max age): %w", l.FeedsSeq, ErrNotRedrivable)
	case err != nil:
		return nil, fmt.Errorf("reading FEEDS message %d: %w", l.FeedsSeq, err)
	case m.Subject != l.Subject:
		return nil, fmt.Errorf("FEEDS message %d is on %s, not %s: %w", l.FeedsSeq, m.Subject, l.Subject, ErrNotRedrivable)
	}
	return m, nil
}

// Discard deletes dead letter seq.
func Discard(ctx context.Context, js jetstream.JetStream, seq uint64) error {
	st, err := js.Stream(ctx, subjects.StreamDeadletter)
	if err != nil {
		return fmt.Errorf("opening stream %s: %w", subjects.StreamDeadletter, err)
	}
	if err := st.DeleteMsg(ctx, seq); err != nil {
		if errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
			// The server says only "unsuccessful": tell a missing one apart.
			if _, gerr := st.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
				err = ErrNotFound
			}
		}
		return fmt.Errorf("deleting dead letter %d: %w", seq, err)
	}
	return nil
}
