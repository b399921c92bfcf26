package natsx

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testkit"
)

// startWithReader starts a server whose users are the hub ("hub-secret")
// and the reader ("reader-secret"), shut down at the end of the test.
func startWithReader(t *testing.T) *server.Server {
	t.Helper()
	s, err := StartEmbedded(EmbeddedConfig{StoreDir: t.TempDir(), Port: -1, HubPassword: "hub-secret", ReaderPassword: "reader-secret"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// TestReaderUser checks the read-only user: it consumes FEEDS, but the server
// refuses its publishing on ioc.feed.>, deleting a stream, and pulling from
// or redefining the hub's own consumer; the hub user keeps every right and an
// anonymous client is refused.
func TestReaderUser(t *testing.T) {
	s := startWithReader(t)
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
	if _, err := hjs.Publish(ctx, subjects.Action("01", "report", "r1"), []byte("act")); err != nil {
		t.Fatal(err)
	}
	if _, err := hjs.CreateOrUpdateConsumer(ctx, subjects.StreamActions, jetstream.ConsumerConfig{Durable: "aggregator-actions", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
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
	c5, cancel5 := short()
	defer cancel5()
	if _, err := reader.RequestWithContext(c5, "$JS.API.CONSUMER.MSG.NEXT."+subjects.StreamActions+".aggregator-actions", []byte(`{"batch":1}`)); err == nil {
		t.Error("reader pulled from a consumer on ACTIONS")
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
	ai, err := hjs.Consumer(ctx, subjects.StreamActions, "aggregator-actions")
	if err != nil || ai.CachedInfo().Delivered.Stream != 0 {
		t.Errorf("the actions consumer after the reader's pull: %v, delivered %+v; want nothing delivered", err, ai.CachedInfo().Delivered)
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

// TestAuthorizationConfig loads the generated block with nats-server's own
// configuration loader: it must give the reader exactly ReaderPermissions.
func TestAuthorizationConfig(t *testing.T) {
	t.Setenv("T_HUB_PW", "hub-pw")
	t.Setenv("T_READER_PW", "reader-pw")
	conf := filepath.Join(t.TempDir(), "auth.conf")
	if err := os.WriteFile(conf, []byte(AuthorizationConfig("$T_HUB_PW", "$T_READER_PW")), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("nats-server refuses the generated config: %v\n%s", err, AuthorizationConfig("$T_HUB_PW", "$T_READER_PW"))
	}
	users := map[string]*server.User{}
	for _, u := range opts.Users {
		users[u.Username] = u
	}
	hub, reader := users[HubUser], users[ReaderUser]
	if hub == nil || hub.Password != "hub-pw" || hub.Permissions != nil {
		t.Errorf("hub user %+v; want password hub-pw and every right", hub)
	}
	want := ReaderPermissions()
	if reader == nil || reader.Password != "reader-pw" || reader.Permissions == nil ||
		!slices.Equal(reader.Permissions.Publish.Allow, want.Publish.Allow) || !slices.Equal(reader.Permissions.Publish.Deny, want.Publish.Deny) ||
		!slices.Equal(reader.Permissions.Subscribe.Allow, want.Subscribe.Allow) {
		t.Errorf("reader user %+v; want ReaderPermissions", reader)
	}
}

// TestReaderCannotReadTheHubsReplies: the reader may subscribe to the
// default inboxes ("_INBOX.>") for its own replies, but the hub's
// connections take theirs under HubInboxPrefix, so a reader listening on
// every inbox gets none of the hub's replies: not the key of the message
// ids on FEEDS (FeedMsgIDKey), not a stream's info. Without HubInbox the
// reader got the key's 32 bytes.
func TestReaderCannotReadTheHubsReplies(t *testing.T) {
	s := startWithReader(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reader, err := nats.Connect(s.ClientURL(), nats.UserInfo(ReaderUser, "reader-secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	snoop, err := reader.SubscribeSync("_INBOX.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := reader.Flush(); err != nil { // the subscription is in place
		t.Fatal(err)
	}
	hub, err := Connect(s.ClientURL(), "hub", nats.UserInfo(HubUser, "hub-secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	js, err := jetstream.New(hub)
	if err != nil {
		t.Fatal(err)
	}
	if err := EnsureStreams(ctx, js, StreamOptions{Memory: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := FeedMsgIDKey(ctx, js); err != nil {
		t.Fatal(err)
	}
	if _, err := FeedMsgIDKey(ctx, js); err != nil { // the read of a key that exists
		t.Fatal(err)
	}
	// The server queues a reply to every subscriber as it routes it: what
	// the reader was sent has reached it once its own round trip is done.
	if err := reader.Flush(); err != nil {
		t.Fatal(err)
	}
	n, _, err := snoop.Pending()
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		m, err := snoop.NextMsg(0)
		if err != nil {
			t.Fatalf("a reader on _INBOX.> got %d of the hub's replies", n)
		}
		t.Fatalf("a reader on _INBOX.> got %d of the hub's replies, the first on %s: %.80q", n, m.Subject, m.Data)
	}
}
