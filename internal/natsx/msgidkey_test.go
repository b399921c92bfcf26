package natsx

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/ce"
)

// TestFeedMsgIDKeyConcurrentFirstStarts: many ingests starting at once on a
// hub that has no key yet, each on its own connection, agree on one key
// (their ids of an item are one), which is stored once; a later start reads
// it. Another hub has another key.
func TestFeedMsgIDKeyConcurrentFirstStarts(t *testing.T) {
	js, ctx := streamsReady(t, time.Minute)
	srv := js.Conn().ConnectedUrl()
	const starts = 16
	ids := make([]string, starts)
	if err := atOnce(starts, func(i int) error {
		nc, err := Connect(srv, "test")
		if err != nil {
			return err
		}
		defer nc.Close()
		njs, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		k, err := FeedMsgIDKey(ctx, njs)
		if err != nil {
			return err
		}
		ids[i] = k.FeedID("src", "air", "e1")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if id != ids[0] {
			t.Fatalf("start %d made id %q, start 0 %q: want one key", i, id, ids[0])
		}
	}
	kv, err := js.KeyValue(ctx, BucketKeys)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, KeyFeedMsgID)
	if err != nil {
		t.Fatal(err)
	}
	if e.Revision() != 1 {
		t.Errorf("the key is at revision %d; want 1 (written once)", e.Revision())
	}
	k, err := FeedMsgIDKey(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if got := k.FeedID("src", "air", "e1"); got != ids[0] {
		t.Errorf("a later start made %q; want %q", got, ids[0])
	}
	if got := k.FeedID("src", "air", "e1"); got == ce.FeedMsgID("src", "air", "e1") {
		t.Errorf("the id is the plain one %q; want it keyed", got)
	}
	other, err := FeedMsgIDKey(ctx, embeddedJS(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := other.FeedID("src", "air", "e1"); got == ids[0] {
		t.Errorf("another hub made the same id %q; want a key of its own", got)
	}
}

// TestFeedMsgIDKeyMalformed: a key of the wrong size in the bucket fails
// the start, named, instead of keying ids with it.
func TestFeedMsgIDKeyMalformed(t *testing.T) {
	js, ctx := streamsReady(t, time.Minute)
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: BucketKeys})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, KeyFeedMsgID, []byte("short")); err != nil {
		t.Fatal(err)
	}
	if _, err := FeedMsgIDKey(ctx, js); !errors.Is(err, ErrBadKey) {
		t.Fatalf("got %v; want ErrBadKey", err)
	}
}
