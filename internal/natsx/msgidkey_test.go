package natsx

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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

// flakyKeys is a key bucket whose reads find no responders the first
// noResponders times (a bucket just made on a cluster), then holds what is
// created in it; err, when set, fails every read.
type flakyKeys struct {
	noResponders, gets, creates int
	err                         error
	value                       []byte
}

type keyEntry struct {
	jetstream.KeyValueEntry
	value []byte
}

func (e keyEntry) Value() []byte { return e.value }

func (f *flakyKeys) Get(_ context.Context, _ string) (jetstream.KeyValueEntry, error) {
	f.gets++
	switch {
	case f.err != nil:
		return nil, f.err
	case f.gets <= f.noResponders:
		return nil, fmt.Errorf("get: %w", nats.ErrNoResponders)
	case f.value == nil:
		return nil, jetstream.ErrKeyNotFound
	}
	return keyEntry{value: f.value}, nil
}

func (f *flakyKeys) Create(_ context.Context, _ string, value []byte, _ ...jetstream.KVCreateOpt) (uint64, error) {
	f.creates++
	f.value = value
	return 1, nil
}

// TestFeedMsgIDKeyNoResponders: a bucket that does not answer its first
// reads (as one just made on a 3-node cluster did, failing a start) is read
// again until it does; an error that is not JetStream's readiness fails at
// once.
func TestFeedMsgIDKeyNoResponders(t *testing.T) {
	ctx := context.Background()
	f := &flakyKeys{noResponders: 2}
	k, err := feedMsgIDKey(ctx, f)
	if err != nil {
		t.Fatalf("after two reads with no responders: %v", err)
	}
	if f.gets != 3 || f.creates != 1 {
		t.Errorf("%d reads and %d creations; want 3 and 1", f.gets, f.creates)
	}
	again, err := feedMsgIDKey(ctx, f)
	if err != nil || again.FeedID("s", "air", "e") != k.FeedID("s", "air", "e") {
		t.Errorf("a later start: %v, or another key", err)
	}
	denied := &flakyKeys{err: errors.New("permissions violation")}
	if _, err := feedMsgIDKey(ctx, denied); err == nil || denied.gets != 1 {
		t.Errorf("a permanent error: %v after %d reads; want it at the first", err, denied.gets)
	}
}
