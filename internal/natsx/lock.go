package natsx

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A change of a stream's sources (AddEdgeSource, AddProvinceSources and the
// removals) reads the stream's configuration, edits its sources and writes
// it back whole, and nats-server has no conditional stream update: of two
// admin commands that read the same configuration, the second would write
// the first's source away, and both would answer that it is there. So each
// takes a lock first, the key sourcesLockKey of the key-value bucket
// BucketLocks on the same server, and re-reads the configuration under it.
// EnsureStreams, which writes a stream's whole configuration too when it
// changed, takes the same lock for that (updateStreams).
//
// The lock is nats-server's own compare-and-set: kv.Create publishes
// expecting no live message on the key, which the stream's leader checks
// and stores atomically, so of two commands one gets the key and the other
// waits. The bucket's TTL (its MaxAge) removes the key of a command that
// died holding it; a holder renews its key (kv.Update at its revision, which
// also proves the key is still its own) just before it writes the stream,
// and deletes it, at that revision, when done. A TTL per key (nats-server
// 2.11's Nats-TTL, kv.Create with jetstream.KeyTTL) would not do: kv.Update
// carries none, so a renewed key would outlive a holder that died.

// BucketLocks is the key-value bucket of the locks of admin commands.
const BucketLocks = "admin_locks"

// SourcesLockTTL is how long the lock of the sources outlives the command
// holding it: a command killed while holding it blocks the others for up to
// this long. A holder needs it for one stream update after its renewal.
const SourcesLockTTL = 20 * time.Second

// sourcesLockKey is the key of the lock in BucketLocks: one for every stream
// of the server, so a national-add changes ROLLUPS and STATE under one lock.
const sourcesLockKey = "sources"

// ErrSourcesLocked is returned when another command held the lock of the
// sources for as long as the caller could wait, or took it over from a
// holder that kept it past SourcesLockTTL.
var ErrSourcesLocked = errors.New("another command is changing the sources of the streams")

// sourcesLease is the lock of the sources, held at revision rev.
type sourcesLease struct {
	kv    jetstream.KeyValue
	value []byte
	rev   uint64
}

// lockSources takes the lock of the sources of the streams of js, waiting
// while another command holds it, until ctx ends. holder says what the
// caller does ("adding edge X to FEEDS"), for the error of those waiting.
// stream is the (first) stream the caller changes: the bucket, when it has
// to be created, gets its replicas.
func lockSources(ctx context.Context, js jetstream.JetStream, stream, holder string) (*sourcesLease, error) {
	kv, err := locksBucket(ctx, js, stream)
	if err != nil {
		return nil, err
	}
	return takeSourcesLock(ctx, kv, holder)
}

// takeSourcesLock takes the lock of the sources in kv, BucketLocks, waiting
// while another command holds it or JetStream does not answer yet, until
// ctx ends (lockSources).
func takeSourcesLock(ctx context.Context, kv jetstream.KeyValue, holder string) (*sourcesLease, error) {
	host, _ := os.Hostname()
	l := &sourcesLease{kv: kv, value: fmt.Appendf(nil, "%s (pid %d on %s, at %s)", holder, os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))}
	pause := 10 * time.Millisecond
	for {
		rev, err := kv.Create(ctx, sourcesLockKey, l.value)
		if err == nil {
			l.rev = rev
			return l, nil
		}
		// Held by another, or not taken by anyone yet: a bucket just made
		// on a cluster may have no leader to take the write. Not a timeout:
		// the write may have been stored, and the key would then be ours.
		notReady := unanswered(ctx, err)
		if !errors.Is(err, jetstream.ErrKeyExists) && !notReady {
			return nil, fmt.Errorf("taking the lock %s/%s: %w", BucketLocks, sourcesLockKey, err)
		}
		// Jitter, so that many waiting commands do not all try at once.
		t := time.NewTimer(pause/2 + rand.N(pause)) //nolint:gosec // G404: a pause, not a secret
		select {
		case <-ctx.Done():
			t.Stop()
			if notReady {
				return nil, fmt.Errorf("taking the lock %s/%s: %w", BucketLocks, sourcesLockKey, err)
			}
			return nil, heldError(kv)
		case <-t.C:
		}
		pause = min(2*pause, 500*time.Millisecond)
	}
}

// heldError says who holds the lock, for a command that waited for it in vain.
func heldError(kv jetstream.KeyValue) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	holder := "a command"
	if e, err := kv.Get(ctx, sourcesLockKey); err == nil {
		holder = string(e.Value())
	}
	return fmt.Errorf("%s holds the lock %s/%s (a command that died holding it loses it %s after it last wrote it); try again: %w",
		holder, BucketLocks, sourcesLockKey, SourcesLockTTL, ErrSourcesLocked)
}

// locksBucket is BucketLocks on js, created (with the replicas of stream)
// when missing. It is not created with the hub's streams, so that an admin
// command works against a hub started by an iochub that had no locks.
func locksBucket(ctx context.Context, js jetstream.JetStream, stream string) (jetstream.KeyValue, error) {
	kv, err := openBucket(ctx, js, locksConfig, func() (int, error) {
		st, err := js.Stream(ctx, stream)
		if err != nil {
			return 0, fmt.Errorf("reading stream %s: %w", stream, err)
		}
		return st.CachedInfo().Config.Replicas, nil
	})
	return kv, wrapBucketErr(err)
}

// openLocksBucket is BucketLocks on js, created with replicas when missing;
// one that exists keeps its own.
func openLocksBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	kv, err := openBucket(ctx, js, locksConfig, func() (int, error) { return replicas, nil })
	return kv, wrapBucketErr(err)
}

// locksConfig is BucketLocks' configuration, less its replicas.
var locksConfig = jetstream.KeyValueConfig{
	Bucket:      BucketLocks,
	Description: "Locks of iochub's admin commands: key sources while one changes the sources of a stream",
	TTL:         SourcesLockTTL,
}

// openBucket is the key-value bucket cfg.Bucket on js; when missing, it is
// created with cfg and the replicas replicas gives (asked only then). One
// that exists keeps its own configuration (EnsureStreams rescales the
// hub's, rescaleBucket), and starts or commands that create it at once
// agree: whoever loses opens the winner's.
func openBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig, replicas func() (int, error)) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return kv, err
	}
	if cfg.Replicas, err = replicas(); err != nil {
		return nil, err
	}
	kv, err = js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.KeyValue(ctx, cfg.Bucket) // created meanwhile
	}
	return kv, err
}

// rescaleBucket gives bucket (BucketLocks, BucketKeys), when it exists, the
// replicas of the hub's streams: it is created on demand, by the first
// command or service that needs it, with the replicas of a stream then, so
// a hub moved from one replica to three would otherwise keep it on one
// node. A missing bucket is left to the first that needs it.
func rescaleBucket(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) error {
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening key-value bucket %s: %w", bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return fmt.Errorf("reading key-value bucket %s: %w", bucket, err)
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return nil
	}
	cfg := bs.StreamInfo().Config
	if cfg.Replicas == max(replicas, 1) {
		return nil
	}
	if _, err := js.UpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, Description: cfg.Description,
		TTL: cfg.MaxAge, Storage: cfg.Storage, Replicas: replicas}); err != nil {
		return fmt.Errorf("rescaling key-value bucket %s: %w", bucket, err)
	}
	return nil
}

func wrapBucketErr(err error) error {
	if err != nil {
		return fmt.Errorf("opening key-value bucket %s: %w", BucketLocks, err)
	}
	return nil
}

// renew writes the lock again at its revision, so that it lasts
// SourcesLockTTL from now; it fails with ErrSourcesLocked when the lock
// expired meanwhile (and another command may have taken it).
func (l *sourcesLease) renew(ctx context.Context) error {
	rev, err := l.kv.Update(ctx, sourcesLockKey, l.value, l.rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return fmt.Errorf("held the lock %s/%s past its %s and lost it; try again: %w", BucketLocks, sourcesLockKey, SourcesLockTTL, ErrSourcesLocked)
	}
	if err != nil {
		return fmt.Errorf("renewing the lock %s/%s: %w", BucketLocks, sourcesLockKey, err)
	}
	l.rev = rev
	return nil
}

// release deletes the lock if it is still this lease's, even when ctx has
// ended. A lock it fails to delete expires after SourcesLockTTL, so the
// failure is not the caller's.
func (l *sourcesLease) release(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = l.kv.Delete(ctx, sourcesLockKey, jetstream.LastRevision(l.rev))
}

// withSourcesLock runs f holding the lock of the sources (lockSources).
func withSourcesLock(ctx context.Context, js jetstream.JetStream, stream, holder string, f func(*sourcesLease) error) error {
	l, err := lockSources(ctx, js, stream, holder)
	if err != nil {
		return err
	}
	defer l.release(ctx)
	return f(l)
}
