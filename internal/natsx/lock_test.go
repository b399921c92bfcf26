package natsx

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/subjects"
)

// TestConcurrentEdgeAddsKeepEverySource: edge-add reads FEEDS's config,
// appends a source and writes the config back, and nats-server has no
// conditional update, so of two edge-adds that read the same config the
// second wrote the first's source away, and both answered that the hub
// sources their edge. Many edge-adds at once, each of another edge, on
// their own connections as separate commands would be, must leave every
// edge sourced.
func TestConcurrentEdgeAddsKeepEverySource(t *testing.T) {
	js, ctx := streamsReady(t, time.Minute)
	const edges = 24
	if err := atOnce(edges, func(i int) error {
		unit := fmt.Sprintf("%05d", 100+i)
		_, err := AddEdgeSource(ctx, js, "edge-"+unit, []string{subjects.FeedUnit("01", unit)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srcs, err := EdgeSources(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, s := range srcs {
		have[s.Domain] = true
	}
	var lost []string
	for i := range edges {
		if d := fmt.Sprintf("edge-%05d", 100+i); !have[d] {
			lost = append(lost, d)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("after %d concurrent edge-adds FEEDS sources %d edges; lost %s", edges, len(srcs), strings.Join(lost, " "))
	}
	// Removals at once, of every other edge, take the same lock: the
	// others stay.
	if err := atOnce(edges/2, func(i int) error {
		return RemoveEdgeSource(ctx, js, fmt.Sprintf("edge-%05d", 100+2*i))
	}); err != nil {
		t.Fatal(err)
	}
	if srcs, err = EdgeSources(ctx, js); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range srcs {
		got = append(got, s.Domain)
	}
	if len(got) != edges/2 {
		t.Fatalf("after removing %d of %d edges at once FEEDS sources %q; want the other %d", edges/2, edges, got, edges/2)
	}
	for _, d := range got {
		var n int
		if _, err := fmt.Sscanf(d, "edge-%05d", &n); err != nil || n%2 == 0 {
			t.Fatalf("after removing the even edges FEEDS sources %q", got)
		}
	}
}

// TestSourcesLockHeld: a change of sources waits for the lock another
// command holds and, when its time is up, says who holds it, leaving the
// stream as it was.
func TestSourcesLockHeld(t *testing.T) {
	js := embeddedJS(t)
	ctx := context.Background()
	if err := EnsureStreams(ctx, js, StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	l, err := lockSources(ctx, js, subjects.StreamFeeds, "a test holding the lock")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, err = AddEdgeSource(short, js, "edge-00070", hoanKiem)
	if !errors.Is(err, ErrSourcesLocked) || !strings.Contains(err.Error(), "a test holding the lock") {
		t.Fatalf("AddEdgeSource while the lock is held: %v; want ErrSourcesLocked naming the holder", err)
	}
	if srcs, err := EdgeSources(ctx, js); err != nil || len(srcs) != 0 {
		t.Fatalf("FEEDS sources %+v (%v) after a refused edge-add; want none", srcs, err)
	}
	// Released, the lock is free at once.
	l.release(ctx)
	if _, err := AddEdgeSource(ctx, js, "edge-00070", hoanKiem); err != nil {
		t.Fatalf("AddEdgeSource after the lock was released: %v", err)
	}
	// AddEdgeSource released it too, rather than leave it to expire.
	wantLockReleased(ctx, t, js, "AddEdgeSource")
}

// TestSourcesLockOfADeadHolderExpires: a command that died holding the lock
// (killed between taking and releasing it) does not block the others for
// ever: the lock bucket's TTL removes its key. The bucket is created here
// with a TTL of one second instead of SourcesLockTTL.
func TestSourcesLockOfADeadHolderExpires(t *testing.T) {
	js, ctx := streamsReady(t, 30*time.Second)
	taken := plantDeadHolder(ctx, t, js)
	if _, err := AddEdgeSource(ctx, js, "edge-00070", hoanKiem); err != nil {
		t.Fatalf("AddEdgeSource after the holder of the lock died: %v; want the lock to expire", err)
	}
	// It waited for the lock to expire rather than ignore it.
	if waited := time.Since(taken); waited < 900*time.Millisecond {
		t.Fatalf("AddEdgeSource returned %s after the dead holder took the lock; want it to wait for the 1s TTL", waited)
	}
	if srcs, err := EdgeSources(ctx, js); err != nil || len(srcs) != 1 {
		t.Fatalf("FEEDS sources %+v (%v); want edge-00070", srcs, err)
	}
}

// TestConcurrentNationalAddsKeepEverySource: national-adds of several
// provinces at once each change ROLLUPS and STATE; every province must be
// sourced on both at the end.
func TestConcurrentNationalAddsKeepEverySource(t *testing.T) {
	js, ctx := streamsReady(t, time.Minute)
	const provinces = 12
	if err := atOnce(provinces, func(i int) error {
		p := fmt.Sprintf("%02d", 10+i)
		return AddProvinceSources(ctx, js, p, "province-"+p)
	}); err != nil {
		t.Fatal(err)
	}
	srcs, err := ProvinceSources(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, s := range srcs {
		have[s.Province+" "+s.Stream] = true
	}
	for i := range provinces {
		for _, stream := range nationalStreams {
			if k := fmt.Sprintf("%02d %s", 10+i, stream); !have[k] {
				t.Errorf("after %d concurrent national-adds %s does not source province %02d", provinces, stream, 10+i)
			}
		}
	}
}

// TestEnsureStreamsKeepsConcurrentEdgeAdds: a hub starting with a changed
// configuration (here FEEDS's max age, as after an upgrade or a new
// --feeds-max-age) writes FEEDS's whole configuration with the sources it
// read; an edge-add between its read and its write was written away, the
// edge-add having answered that the hub sources the edge. Hub starts, each
// changing FEEDS, run one after the other while many edge-adds run at
// once: every edge must stay sourced.
func TestEnsureStreamsKeepsConcurrentEdgeAdds(t *testing.T) {
	js, ctx := streamsReady(t, 2*time.Minute)
	const edges = 64
	ages := []time.Duration{6 * 24 * time.Hour, 5 * 24 * time.Hour}
	var (
		start     = make(chan struct{})
		added     = make(chan struct{})
		starts    int
		startErrs []error
		hub, adds sync.WaitGroup
		errs      = make([]error, edges)
	)
	hub.Go(func() {
		<-start
		for {
			select {
			case <-added:
				return
			default:
			}
			if err := EnsureStreams(ctx, js, StreamOptions{FeedsMaxAge: ages[starts%2]}); err != nil {
				startErrs = append(startErrs, err)
				continue
			}
			starts++
		}
	})
	for i := range edges {
		adds.Go(func() {
			unit := fmt.Sprintf("%05d", 100+i)
			<-start
			_, errs[i] = AddEdgeSource(ctx, js, "edge-"+unit, []string{subjects.FeedUnit("01", unit)})
		})
	}
	close(start)
	adds.Wait()
	close(added)
	hub.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Error(err)
	}
	st, err := js.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	if len(startErrs) > 0 {
		// nats.go fails an update whose answer has other sources than it
		// sent: another write came between.
		t.Errorf("%d of %d hub starts failed, the first: %v", len(startErrs), starts+len(startErrs), startErrs[0])
	} else if got, want := st.CachedInfo().Config.MaxAge, ages[(starts+1)%2]; starts == 0 || got != want {
		t.Errorf("after %d hub starts FEEDS max age is %s; want %s, the last start's", starts, got, want)
	}
	have := map[string]bool{}
	for _, s := range st.CachedInfo().Config.Sources {
		if d, ok := edgeDomainOf(s.External.APIPrefix); ok {
			have[d] = true
		}
	}
	var lost []string
	for i := range edges {
		if d := fmt.Sprintf("edge-%05d", 100+i); !have[d] {
			lost = append(lost, d)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("after %d edge-adds during %d hub starts changing FEEDS, it sources %d edges; lost %s", edges, starts, len(have), strings.Join(lost, " "))
	}
}

// TestEnsureStreamsLockHeld: a hub start whose streams are configured
// already takes no lock (nor creates the lock bucket), so it does not wait
// for an admin command; one that changes a stream waits for the lock and,
// when startLockWait is up, fails naming the holder, the stream unchanged.
func TestEnsureStreamsLockHeld(t *testing.T) {
	js, ctx := streamsReady(t, time.Minute)
	if _, err := js.KeyValue(ctx, BucketLocks); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("bucket %s after creating the streams: %v; want none", BucketLocks, err)
	}
	if _, err := AddEdgeSource(ctx, js, "edge-00070", hoanKiem); err != nil {
		t.Fatal(err)
	}
	l, err := lockSources(ctx, js, subjects.StreamFeeds, "a test holding the lock")
	if err != nil {
		t.Fatal(err)
	}
	// With startLockWait as it is, a start that took the lock would fail
	// after half a minute.
	if err := EnsureStreams(ctx, js, StreamOptions{}); err != nil {
		t.Fatalf("EnsureStreams of configured streams while the lock is held: %v", err)
	}
	defer func(w time.Duration) { startLockWait = w }(startLockWait)
	startLockWait = 500 * time.Millisecond
	day := StreamOptions{FeedsMaxAge: 24 * time.Hour}
	err = EnsureStreams(ctx, js, day)
	if !errors.Is(err, ErrSourcesLocked) || !strings.Contains(err.Error(), "a test holding the lock") {
		t.Fatalf("EnsureStreams with a new max age while the lock is held: %v; want ErrSourcesLocked naming the holder", err)
	}
	feedsMaxAge := func() time.Duration {
		t.Helper()
		st, err := js.Stream(ctx, subjects.StreamFeeds)
		if err != nil {
			t.Fatal(err)
		}
		return st.CachedInfo().Config.MaxAge
	}
	if got := feedsMaxAge(); got != 7*24*time.Hour {
		t.Fatalf("FEEDS max age %s after a start refused the lock; want 168h, unchanged", got)
	}
	l.release(ctx)
	if err := EnsureStreams(ctx, js, day); err != nil {
		t.Fatalf("EnsureStreams with a new max age after the lock was released: %v", err)
	}
	if got := feedsMaxAge(); got != 24*time.Hour {
		t.Fatalf("FEEDS max age %s; want 24h", got)
	}
	if srcs, err := EdgeSources(ctx, js); err != nil || len(srcs) != 1 || srcs[0].Domain != "edge-00070" {
		t.Fatalf("FEEDS sources %+v (%v) after its update; want edge-00070 kept", srcs, err)
	}
	wantLockReleased(ctx, t, js, "EnsureStreams")
}

// TestEnsureStreamsWaitsOutADeadHolder: a hub started after an admin
// command died holding the lock updates its streams once the lock expired
// (the bucket's TTL, one second here instead of SourcesLockTTL), neither
// failing nor ignoring the lock.
func TestEnsureStreamsWaitsOutADeadHolder(t *testing.T) {
	js, ctx := streamsReady(t, 30*time.Second)
	taken := plantDeadHolder(ctx, t, js)
	if err := EnsureStreams(ctx, js, StreamOptions{FeedsMaxAge: 24 * time.Hour}); err != nil {
		t.Fatalf("EnsureStreams after the holder of the lock died: %v; want the lock to expire", err)
	}
	if waited := time.Since(taken); waited < 900*time.Millisecond {
		t.Fatalf("EnsureStreams returned %s after the dead holder took the lock; want it to wait for the 1s TTL", waited)
	}
	st, err := js.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.MaxAge; got != 24*time.Hour {
		t.Fatalf("FEEDS max age %s; want 24h", got)
	}
}

// plantDeadHolder creates the lock bucket with a TTL of one second (instead
// of SourcesLockTTL) and takes the lock as a command that then died would
// have, and returns when.
func plantDeadHolder(ctx context.Context, t *testing.T, js jetstream.JetStream) time.Time {
	t.Helper()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: BucketLocks, TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	taken := time.Now()
	if _, err := kv.Create(ctx, sourcesLockKey, []byte("a command that died")); err != nil {
		t.Fatal(err)
	}
	return taken
}

// wantLockReleased fails t unless the lock of the sources is free: after
// (an edge-add, a start) released it rather than leave it to expire.
func wantLockReleased(ctx context.Context, t *testing.T, js jetstream.JetStream, after string) {
	t.Helper()
	kv, err := js.KeyValue(ctx, BucketLocks)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, sourcesLockKey); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("the lock after %s: %v; want it released", after, err)
	}
}

// streamsReady starts an embedded server with the hub's streams, and a
// context of timeout for the test.
func streamsReady(t *testing.T, timeout time.Duration) (jetstream.JetStream, context.Context) {
	t.Helper()
	js := embeddedJS(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	if err := EnsureStreams(ctx, js, StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	return js, ctx
}

// atOnce runs f(0) … f(n-1) together, released at the same moment as
// separate commands would be, and returns their errors joined.
func atOnce(n int, f func(i int) error) error {
	var (
		start = make(chan struct{})
		wg    sync.WaitGroup
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errors.Join(errs...)
}

// unansweredLocks is a lock bucket whose first writes find no responders
// (a bucket just made on a cluster, its leader not elected yet); err, when
// set, fails every write.
type unansweredLocks struct {
	jetstream.KeyValue
	noResponders, creates int
	err                   error
}

func (u *unansweredLocks) Create(context.Context, string, []byte, ...jetstream.KVCreateOpt) (uint64, error) {
	u.creates++
	switch {
	case u.err != nil:
		return 0, u.err
	case u.creates <= u.noResponders:
		return 0, fmt.Errorf("create: %w", nats.ErrNoResponders)
	}
	return 7, nil
}

// TestSourcesLockNotAnsweredYet: a lock bucket that does not answer its
// first writes is written again until it does; one that never answers
// fails with its own error when the caller stops waiting, not as held by
// another command; a timeout, or an error that is not JetStream's
// readiness, fails at once.
func TestSourcesLockNotAnsweredYet(t *testing.T) {
	ctx := context.Background()
	u := &unansweredLocks{noResponders: 3}
	l, err := takeSourcesLock(ctx, u, "a test")
	if err != nil || l.rev != 7 || u.creates != 4 {
		t.Fatalf("after three writes with no responders: %v (revision %v, %d writes); want the lock at the fourth", err, l, u.creates)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	never := &unansweredLocks{noResponders: math.MaxInt}
	if _, err := takeSourcesLock(short, never, "a test"); !errors.Is(err, nats.ErrNoResponders) || errors.Is(err, ErrSourcesLocked) {
		t.Errorf("a bucket that never answers: %v; want no responders, not held", err)
	}
	// A timeout may have stored the key (it would then wait on its own
	// key); JetStream off for the account (a 503) and a refusal are not
	// JetStream's readiness: each fails at once.
	for _, e := range []error{nats.ErrTimeout, jetstream.ErrJetStreamNotEnabledForAccount, errors.New("permissions violation")} {
		denied := &unansweredLocks{err: e}
		bounded, cancel := context.WithTimeout(ctx, 2*time.Second) // were it retried
		_, err := takeSourcesLock(bounded, denied, "a test")
		cancel()
		if !errors.Is(err, e) || denied.creates != 1 {
			t.Errorf("%v: %v after %d writes; want it at the first", e, err, denied.creates)
		}
	}
}
