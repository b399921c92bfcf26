package deadletter

import (
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/subjects"
)

func TestBuild(t *testing.T) {
	h := nats.Header{
		"ce-id":                         {"ev-1"},
		jetstream.MsgIDHeader:           {"src/ev-1"},
		jetstream.ExpectedStreamHeader:  {"FEEDS"},
		"Iochub-Source":                 {"src"},
		"X-Big-1":                       {strings.Repeat("a", 40<<10)},
		"X-Big-2":                       {strings.Repeat("b", 40<<10)},
		HeaderReason /* a stale one */ : {"old"},
	}
	reason := "line one\r\nline two: " + strings.Repeat("é", 3000)
	at := time.Date(2026, 12, 4, 1, 2, 3, 0, time.UTC)
	m := Build(h, []byte("payload"), Info{Subject: subjects.Feed("01", "00070", "air"), FeedsSeq: 42,
		Stage: StageStore, Reason: reason, Time: at, Delivered: 2})
	if m.Subject != "ioc.deadletter.01.air" {
		t.Errorf("subject = %q; want ioc.deadletter.01.air", m.Subject)
	}
	got := m.Header
	for k, want := range map[string]string{
		HeaderSubject: "ioc.feed.01.00070.air", HeaderFeedsSeq: "42", HeaderStage: StageStore,
		HeaderTime: "2026-12-04T01:02:03Z", HeaderDelivered: "2", HeaderMsgID: "src/ev-1",
		jetstream.MsgIDHeader: "dl-feeds-42", "ce-id": "ev-1", "Iochub-Source": "src", HeaderTruncated: "true",
	} {
		if v := got.Get(k); v != want {
			t.Errorf("header %s = %q; want %q", k, v, want)
		}
	}
	if _, ok := got[jetstream.ExpectedStreamHeader]; ok {
		t.Error("JetStream's expectation header was copied; a redrive would be refused by it")
	}
	r := got.Get(HeaderReason)
	if len(r) > MaxReason || !utf8.ValidString(r) || strings.ContainsAny(r, "\r\n") || !strings.HasPrefix(r, "line one  line two") {
		t.Errorf("reason of %d bytes %.40q…; want at most %d bytes of valid UTF-8 without line breaks", len(r), r, MaxReason)
	}
	if n := natsx.HeaderBytes(got); n > MaxHeaderBytes {
		t.Errorf("headers of %d bytes; want at most %d", n, MaxHeaderBytes)
	}
	// Of the two large headers only one fits: the first by name, every time.
	for range 20 {
		got := Build(h, []byte("payload"), Info{Subject: subjects.Feed("01", "00070", "air"), FeedsSeq: 42,
			Stage: StageStore, Reason: reason, Time: at, Delivered: 2}).Header
		_, big1 := got["X-Big-1"]
		_, big2 := got["X-Big-2"]
		if !big1 || big2 {
			t.Fatalf("large headers kept: X-Big-1 %v, X-Big-2 %v; want X-Big-1 only", big1, big2)
		}
	}
	if string(m.Data) != "payload" {
		t.Errorf("data = %q", m.Data)
	}
	// An undecodable item with a subject that is not a feed subject still has a home.
	if m := Build(nil, nil, Info{Subject: "ioc.feed.x"}); m.Subject != "ioc.deadletter._._" {
		t.Errorf("subject of a bad feed subject = %q", m.Subject)
	}
}

func TestRedriveMsgID(t *testing.T) {
	if got := RedriveMsgID("src/ev-1", 7); got != "src/ev-1#redrive-7" {
		t.Errorf("RedriveMsgID = %q", got)
	}
}

// A dead letter of an item near the server's max payload must still fit
// under it (NATS counts headers plus payload), else it is neither stored nor
// dead-lettered: first the original's extra headers go, then the payload.
func TestBuildBoundedByMaxPayload(t *testing.T) {
	const max = 1 << 20
	h := nats.Header{"ce-id": {"ev-1"}, "Iochub-Source": {"src"}, "X-Extra": {strings.Repeat("x", 2000)}}
	info := Info{Subject: subjects.Feed("01", "00070", "air"), FeedsSeq: 7, Stage: StageDecode,
		Reason: strings.Repeat("r", 2*MaxReason), Time: time.Unix(0, 0), MaxPayload: max}

	// Fits once X-Extra is left out: the payload is kept whole.
	data := make([]byte, max-1500)
	m := Build(h, data, info)
	if n := int64(natsx.WireSize(m.Header, m.Data)); n > max {
		t.Fatalf("letter of %d bytes; want at most %d", n, max)
	}
	if len(m.Data) != len(data) || m.Header.Get(HeaderPayloadDropped) != "" {
		t.Errorf("payload of %d bytes kept as %d (dropped %q); want it whole", len(data), len(m.Data), m.Header.Get(HeaderPayloadDropped))
	}
	if m.Header.Get("X-Extra") != "" || m.Header.Get(HeaderTruncated) != "true" {
		t.Error("X-Extra kept or truncation not marked")
	}
	if m.Header.Get("ce-id") != "ev-1" || m.Header.Get("Iochub-Source") != "src" {
		t.Error("the event id or source was left out")
	}

	// Does not fit even so: the payload goes, its size recorded.
	data = make([]byte, max-20)
	m = Build(h, data, info)
	if n := int64(natsx.WireSize(m.Header, m.Data)); n > max {
		t.Fatalf("letter of %d bytes; want at most %d", n, max)
	}
	if len(m.Data) != 0 || m.Header.Get(HeaderPayloadDropped) != strconv.Itoa(len(data)) {
		t.Errorf("data of %d bytes, dropped %q; want none, %d", len(m.Data), m.Header.Get(HeaderPayloadDropped), len(data))
	}

	// Unbounded (MaxPayload 0) and small: untouched.
	info.MaxPayload = 0
	if m := Build(h, []byte("p"), info); m.Header.Get("X-Extra") == "" || string(m.Data) != "p" {
		t.Error("a small letter lost a header or its payload")
	}
}
