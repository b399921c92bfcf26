package natsx

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testkit"
)

// TestReaderUser checks the read-only user: it consumes FEEDS, but the server
// refuses its publishing on ioc.feed.>, deleting a stream, and pulling from
// or redefining the hub's own consumer; the hub user keeps every right and an
// anonymous client is refused.
func TestReaderUser(t *testing.T) {
	s, err := StartEmbedded(EmbeddedConfig{StoreDir: t.TempDir(), Port: -1, HubPassword: "hub-secret", ReaderPassword: "reader-secret"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if nc, err := nats.Connect(s.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("an anonymous client connected to a server requiring authentication")
	}
	hub, err := Connect(s.ClientURL(), "hub", nats.UserInfo(HubUser, "hub-secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	hjs, _ := jetstream.New(hub)
	if err := EnsureStreams(ctx, hjs, StreamOptions{Memory: true}); err != nil {
		t.Fatal(err)
	}
	subject := subjects.Feed("01", "00070", subjects.KindAir)
	if _, err := hjs.Publish(ctx, subject, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if _, err := hjs.CreateOrUpdateConsumer(ctx, subjects.StreamFeeds, jetstream.ConsumerConfig{Durable: "aggregator", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}

	var (
		mu         sync.Mutex
		violations []string
	)
	reader, err := nats.Connect(s.ClientURL(), nats.UserInfo(ReaderUser, "reader-secret"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			mu.Lock()
			violations = append(violations, err.Error())
			mu.Unlock()
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	rjs, _ := jetstream.New(reader)

	// It reads.
	cons, err := rjs.OrderedConsumer(ctx, subjects.StreamFeeds, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subjects.FeedProvince("01")}})
	if err != nil {
		t.Fatalf("reader creating an ordered consumer on FEEDS: %v", err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatalf("reader reading FEEDS: %v", err)
	}
	if msg.Subject() != subject || string(msg.Data()) != "one" {
		t.Fatalf("reader got %s %q; want %s one", msg.Subject(), msg.Data(), subject)
	}

	// It may not write, delete, or touch the hub's consumer.
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 2*time.Second) }
	c1, cancel1 := short()
	defer cancel1()
	if _, err := rjs.Publish(c1, subject, []byte("forged")); err == nil {
		t.Error("reader published on FEEDS")
	}
	c2, cancel2 := short()
	defer cancel2()
	if err := rjs.DeleteStream(c2, subjects.StreamFeeds); err == nil {
		t.Error("reader deleted FEEDS")
	}
	c3, cancel3 := short()
	defer cancel3()
	if _, err := rjs.CreateOrUpdateConsumer(c3, subjects.StreamFeeds, jetstream.ConsumerConfig{Durable: "aggregator", AckPolicy: jetstream.AckNonePolicy}); err == nil {
		t.Error("reader redefined the hub's consumer")
	}
	c4, cancel4 := short()
	defer cancel4()
	if _, err := rjs.OrderedConsumer(c4, subjects.StreamActions, jetstream.OrderedConsumerConfig{}); err == nil {
		t.Error("reader consumed ACTIONS")
	}
	if err := reader.Publish(subjects.Feed("01", "00070", subjects.KindWater), []byte("core")); err != nil {
		t.Fatal(err)
	}
	_ = reader.Flush()

	// The server said why, and nothing was written or deleted.
	info, err := hjs.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatalf("FEEDS after the reader's attempts: %v", err)
	}
	if n := info.CachedInfo().State.Msgs; n != 1 {
		t.Errorf("FEEDS holds %d messages; want 1 (the reader's were refused)", n)
	}
	ci, err := hjs.Consumer(ctx, subjects.StreamFeeds, "aggregator")
	if err != nil || ci.CachedInfo().Config.AckPolicy != jetstream.AckExplicitPolicy {
		t.Errorf("the hub's consumer after the reader's attempt: %v", err)
	}
	testkit.Eventually(t, 10*time.Second, "permission violations for the publish on ioc.feed and the stream deletion", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		got := strings.Join(violations, "\n")
		return strings.Contains(got, `Publish to "ioc.feed.01.00070.water"`) && strings.Contains(got, "STREAM.DELETE"), got
	})
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("test ran out of time")
	}
}

func TestReaderNeedsHubPassword(t *testing.T) {
	if _, err := StartEmbedded(EmbeddedConfig{StoreDir: t.TempDir(), Port: -1, ReaderPassword: "x"}); err == nil {
		t.Fatal("a reader password without a hub password was accepted")
	}
}
