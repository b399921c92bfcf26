package deadletter

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
	if n := headerSize(got); n > MaxHeaderBytes {
		t.Errorf("headers of %d bytes; want at most %d", n, MaxHeaderBytes)
	}
	if _, ok := got["X-Big-1"]; !ok {
		if _, ok := got["X-Big-2"]; !ok {
			t.Error("both large headers left out; one fits")
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
