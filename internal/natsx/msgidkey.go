package natsx

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
)

// The message ids the hub puts on FEEDS are keyed (ce.MsgIDKey): its own
// JetStream keeps the key, in the bucket BucketKeys, which no edge can read
// (an edge's leaf user reaches none of the hub's JetStream API,
// EdgeLeafUser). Each iochub edge has a key of its own in its own JetStream:
// its ids need only be unique within it.

// BucketKeys is the key-value bucket of the hub's secret keys.
const BucketKeys = "iochub_keys"

// KeyFeedMsgID is the key, in BucketKeys, of the secret of the message ids
// on FEEDS.
const KeyFeedMsgID = "feed-msgid"

// ErrBadKey is returned when BucketKeys holds a key that is not one.
var ErrBadKey = errors.New("malformed key in the key bucket")

// FeedMsgIDKey reads the key of the message ids on FEEDS from the JetStream
// of js, creating the bucket (with the replicas of FEEDS, when it exists)
// and a random key the first time. Concurrent first starts agree: the key
// is written with kv.Create, which nats-server stores only when the key is
// missing, and whoever loses reads the winner's.
func FeedMsgIDKey(ctx context.Context, js jetstream.JetStream) (*ce.MsgIDKey, error) {
	var kv jetstream.KeyValue
	if err := untilReady(ctx, func() (err error) {
		kv, err = keysBucket(ctx, js)
		return err
	}); err != nil {
		return nil, fmt.Errorf("opening key-value bucket %s: %w", BucketKeys, err)
	}
	return feedMsgIDKey(ctx, kv)
}

// feedMsgIDKey reads (or creates) the key in kv. A bucket just made on a
// cluster may not answer its reads yet (no responders: its replicas have
// not subscribed to direct gets), so they are tried again while JetStream
// is not ready (untilReady).
func feedMsgIDKey(ctx context.Context, kv keyValues) (*ce.MsgIDKey, error) {
	var secret []byte
	if err := untilReady(ctx, func() (err error) {
		secret, err = readOrCreateKey(ctx, kv)
		return err
	}); err != nil {
		return nil, fmt.Errorf("reading %s/%s: %w", BucketKeys, KeyFeedMsgID, err)
	}
	k, err := ce.NewMsgIDKey(secret)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w: %w", BucketKeys, KeyFeedMsgID, ErrBadKey, err)
	}
	return k, nil
}

// keyValues is what readOrCreateKey uses of a jetstream.KeyValue.
type keyValues interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error)
}

// readOrCreateKey returns the secret of KeyFeedMsgID in kv, creating a
// random one when there is none (kv.Create: of concurrent creations one
// wins, and the others read its secret).
func readOrCreateKey(ctx context.Context, kv keyValues) ([]byte, error) {
	e, err := kv.Get(ctx, KeyFeedMsgID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		secret := make([]byte, ce.MsgIDKeySize)
		_, _ = rand.Read(secret) // never fails (crypto/rand)
		if _, err = kv.Create(ctx, KeyFeedMsgID, secret); err == nil {
			return secret, nil
		}
		if errors.Is(err, jetstream.ErrKeyExists) { // another start made it meanwhile
			e, err = kv.Get(ctx, KeyFeedMsgID)
		}
	}
	if err != nil {
		return nil, err
	}
	return e.Value(), nil
}

// keysBucket is BucketKeys on js, created when missing with the replicas of
// FEEDS (1 without FEEDS); EnsureStreams rescales it with the streams.
func keysBucket(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	cfg := jetstream.KeyValueConfig{Bucket: BucketKeys, Description: "iochub's secret keys: feed-msgid, of the message ids on FEEDS"}
	return openBucket(ctx, js, cfg, func() (int, error) {
		st, err := js.Stream(ctx, subjects.StreamFeeds)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			return 1, nil
		case err != nil:
			return 0, fmt.Errorf("reading stream %s: %w", subjects.StreamFeeds, err)
		}
		return st.CachedInfo().Config.Replicas, nil
	})
}

// LazyFeedMsgIDKey is FeedMsgIDKey read at its first use and kept, for the
// parts that publish on FEEDS now and then (the aggregator's sweeps, the
// rules engine): a use that fails to read it returns the error, and the next
// tries again. Safe for concurrent use.
type LazyFeedMsgIDKey struct {
	js jetstream.JetStream
	mu sync.Mutex
	k  *ce.MsgIDKey
}

// NewLazyFeedMsgIDKey reads the key from the JetStream of js when first used.
func NewLazyFeedMsgIDKey(js jetstream.JetStream) *LazyFeedMsgIDKey {
	return &LazyFeedMsgIDKey{js: js}
}

// Get returns the key, reading it (or creating it) the first time.
func (l *LazyFeedMsgIDKey) Get(ctx context.Context) (*ce.MsgIDKey, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.k == nil {
		k, err := FeedMsgIDKey(ctx, l.js)
		if err != nil {
			return nil, err
		}
		l.k = k
	}
	return l.k, nil
}
