package ingest_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/services/ingest"
)

// TestMsgIDNotForgeable: whoever holds an edge's machine can put any message
// into the hub's FEEDS (through sourcing: FEEDS checks the message id of
// what it sources as of what is published), here under the id the ingest
// used to give an item, "<source>/<kind>/<event id>", before the item
// arrives. The item is still accepted and in FEEDS: its id is keyed with
// the hub's key, which the edge cannot read (without that, it was answered
// duplicate and never stored).
func TestMsgIDNotForgeable(t *testing.T) {
	e := newEnv(t, ingest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	body := arr(t, moveTo(fixture(t, "AirQualityObserved.example.json"), hoanKiem))
	const event = "Madrid-AmbientObserved-28079004-2016-03-15T11:00:00@2016-03-15T11:00:00Z"
	subj := subjects.Feed("01", "00070", subjects.KindAir)
	forged := &nats.Msg{Subject: subj, Header: nats.Header{ce.HeaderFeedSource: {"hk"}}, Data: []byte("forged")}
	if _, err := e.js.PublishMsg(ctx, forged, jetstream.WithMsgID(ce.FeedMsgID("hk", subjects.KindAir, event))); err != nil {
		t.Fatal(err)
	}
	r := e.post(t, subjects.KindAir, tokWard, "application/json", body)
	if r.code != 202 || r.resp.Accepted != 1 || r.resp.Results[0].EventID != event {
		t.Fatalf("got HTTP %d %s; want 202 with event %s accepted", r.code, r.raw, event)
	}
	stream, err := e.js.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) == "forged" || m.Header.Get(ce.HeaderID) != event {
		t.Fatalf("FEEDS' last item of %s is %q (ce-id %q); want the real item", subj, m.Data, m.Header.Get(ce.HeaderID))
	}
	if got, want := m.Header.Get(jetstream.MsgIDHeader), e.msgID(t, ce.FeedMsgID("hk", subjects.KindAir, event)); got != want {
		t.Errorf("Nats-Msg-Id %q; want %q", got, want)
	}
}

// TestMsgIDSameAtEveryIngest: the key is the hub's, in its JetStream, so two
// ingests of one hub give an item one id: sent again to the other, it is
// answered duplicate, and FEEDS holds it once.
func TestMsgIDSameAtEveryIngest(t *testing.T) {
	ne := startNATS(t)
	a, b := newEnvOn(t, ne, ingest.Config{}), newEnvOn(t, ne, ingest.Config{})
	body := arr(t, moveTo(fixture(t, "AirQualityObserved.example.json"), hoanKiem))
	if r := a.post(t, subjects.KindAir, tokWard, "application/json", body); r.code != 202 || r.resp.Accepted != 1 {
		t.Fatalf("first POST: got HTTP %d %s; want 202 with 1 accepted", r.code, r.raw)
	}
	for name, e := range map[string]*env{"the same ingest": a, "another ingest": b} {
		if r := e.post(t, subjects.KindAir, tokWard, "application/json", body); r.code != 202 || r.resp.Duplicates != 1 {
			t.Errorf("again to %s: got HTTP %d %s; want 202 with 1 duplicate", name, r.code, r.raw)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := ne.js.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("FEEDS holds %d messages; want 1", info.State.Msgs)
	}
}
