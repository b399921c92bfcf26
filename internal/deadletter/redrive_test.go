package deadletter_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/deadletter"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
)

// airHeader is the header the ingest gives air item id of source src in
// ward 00070 (its CloudEvents attributes and message id).
func airHeader(id string) nats.Header {
	h := ce.Event{ID: id, Source: ce.SourceURN("01", "00070"), Type: ce.ObservedType("air"), Subject: "st-1", Time: time.Now()}.Header()
	h[nats.MsgIdHdr] = []string{ce.FeedMsgID("src", "air", id)}
	return h
}

// TestRedriveACutLetter: a letter cut to fit the max payload (its payload
// dropped, or its CloudEvents headers left out) is re-driven as FEEDS still
// holds the original, whole: its payload and every header. Once FEEDS no
// longer holds it, the re-drive is refused as not re-drivable and the
// letter stays.
func TestRedriveACutLetter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ne := testenv.NATS(t)
	subject := subjects.Feed("01", "00070", "air")
	h := airHeader("ev-1")
	data := []byte("the original event")
	ack, err := ne.JS.PublishMsg(ctx, &nats.Msg{Subject: subject, Header: h, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	info := deadletter.Info{Subject: subject, FeedsSeq: ack.Sequence, Stage: deadletter.StageStore, Reason: "refused", Time: time.Now(), Delivered: 1}
	whole := deadletter.Build(h, data, info) // unbounded: its size, less a byte, cuts its headers only
	size := int64(natsx.WireSize(whole.Header, whole.Data))
	for _, tc := range []struct {
		name    string
		maxLoad int64 // the letter's bound, to cut it
	}{{"payload dropped", 400}, {"headers truncated", size - 1}} {
		t.Run(tc.name, func(t *testing.T) {
			in := info
			in.MaxPayload = tc.maxLoad
			letter := deadletter.Build(h, data, in)
			if letter.Header.Get(deadletter.HeaderPayloadDropped) == "" && letter.Header.Get(deadletter.HeaderTruncated) == "" {
				t.Fatalf("the letter was not cut: %v", letter.Header)
			}
			letter.Header.Del(nats.MsgIdHdr) // one letter per case
			dl, err := ne.JS.PublishMsg(ctx, letter)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := deadletter.Redrive(ctx, ne.JS, dl.Sequence); err != nil {
				t.Fatal(err)
			}
			st, err := ne.JS.Stream(ctx, subjects.StreamFeeds)
			if err != nil {
				t.Fatal(err)
			}
			m, err := st.GetLastMsgForSubject(ctx, subject)
			if err != nil {
				t.Fatal(err)
			}
			if m.Sequence == ack.Sequence || !slices.Equal(m.Data, data) || m.Header.Get(ce.HeaderType) != ce.ObservedType("air") ||
				m.Header.Get(ce.HeaderSubject) != "st-1" {
				t.Errorf("re-driven message %d: %q, headers %v; want the original's payload and headers", m.Sequence, m.Data, m.Header)
			}
		})
	}
	// FEEDS no longer holds it: refused, the letter kept.
	letter := deadletter.Build(h, data, deadletter.Info{Subject: subject, FeedsSeq: ack.Sequence, Stage: deadletter.StageStore,
		Reason: "refused", Time: time.Now(), Delivered: 1, MaxPayload: 400})
	letter.Header.Del(nats.MsgIdHdr)
	dl, err := ne.JS.PublishMsg(ctx, letter)
	if err != nil {
		t.Fatal(err)
	}
	st, err := ne.JS.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteMsg(ctx, ack.Sequence); err != nil {
		t.Fatal(err)
	}
	if _, err := deadletter.Redrive(ctx, ne.JS, dl.Sequence); !errors.Is(err, deadletter.ErrNotRedrivable) {
		t.Fatalf("re-drive with FEEDS' message gone: %v; want ErrNotRedrivable", err)
	}
	if _, err := deadletter.Get(ctx, ne.JS, dl.Sequence); err != nil {
		t.Errorf("the letter is gone after a refused re-drive: %v", err)
	}
}

// TestRedriveTooLarge: a letter FEEDS will not take back (over its largest
// message: the redrive's message id makes it longer than the original, or
// the stream's bound was lowered since) is refused as not re-drivable, not
// failed as if a retry could send it; the letter stays.
func TestRedriveTooLarge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ne := testenv.NATS(t)
	subject := subjects.Feed("01", "00070", "air")
	h := airHeader("ev-big")
	data := make([]byte, 4000)
	letter := deadletter.Build(h, data, deadletter.Info{Subject: subject, FeedsSeq: 1, Stage: deadletter.StageStore, Reason: "refused", Time: time.Now(), Delivered: 1})
	dl, err := ne.JS.PublishMsg(ctx, letter)
	if err != nil {
		t.Fatal(err)
	}
	st, err := ne.JS.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.MaxMsgSize = 2000
	if _, err := ne.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := deadletter.Redrive(ctx, ne.JS, dl.Sequence); !errors.Is(err, deadletter.ErrNotRedrivable) {
		t.Fatalf("re-drive of a letter larger than FEEDS takes: %v; want ErrNotRedrivable", err)
	}
	if _, err := deadletter.Get(ctx, ne.JS, dl.Sequence); err != nil {
		t.Errorf("the letter is gone after a refused re-drive: %v", err)
	}
}

// TestRedriveNotPreempted: a message sent on FEEDS first under the plain
// redrive id of a letter (an edge knows its own items' ids, a reader sees
// those on FEEDS) does not swallow the redrive: the redrive's id is keyed
// with the hub's key, so the letter's item is stored on FEEDS and only then
// is the letter deleted. With the plain id, FEEDS answered the redrive
// duplicate and the letter was deleted with its item stored nowhere.
func TestRedriveNotPreempted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ne := testenv.NATS(t)
	subject := subjects.Feed("01", "00070", "air")
	h := airHeader("ev-late")
	ack, err := ne.JS.PublishMsg(ctx, &nats.Msg{Subject: subject, Header: h, Data: []byte("the item")})
	if err != nil {
		t.Fatal(err)
	}
	letter := deadletter.Build(h, []byte("the item"), deadletter.Info{Subject: subject, FeedsSeq: ack.Sequence,
		Stage: deadletter.StageStore, Reason: "refused", Time: time.Now(), Delivered: 1})
	dl, err := ne.JS.PublishMsg(ctx, letter)
	if err != nil {
		t.Fatal(err)
	}
	forged := airHeader("ev-forged")
	forged[nats.MsgIdHdr] = []string{deadletter.RedriveMsgID(h.Get(nats.MsgIdHdr), dl.Sequence)}
	if _, err := ne.JS.PublishMsg(ctx, &nats.Msg{Subject: subject, Header: forged, Data: []byte("a forgery")}); err != nil {
		t.Fatal(err)
	}
	if _, err := deadletter.Redrive(ctx, ne.JS, dl.Sequence); err != nil {
		t.Fatal(err)
	}
	feeds, err := ne.JS.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	last, err := feeds.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	if got := last.Header.Get(ce.HeaderID); got != "ev-late" || string(last.Data) != "the item" {
		t.Fatalf("FEEDS' last message after the redrive: ce-id %q, %q; want the letter's item ev-late", got, last.Data)
	}
	keys, err := natsx.FeedMsgIDKey(ctx, ne.JS)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := last.Header.Get(nats.MsgIdHdr), keys.ID(deadletter.RedriveMsgID(h.Get(nats.MsgIdHdr), dl.Sequence)); got != want {
		t.Errorf("redrive Nats-Msg-Id %q; want %q, the plain redrive id keyed", got, want)
	}
}
