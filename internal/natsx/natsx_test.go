package natsx

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/subjects"
)

// embeddedJS starts an embedded server for t (no leaf nodes, no users) and
// returns JetStream on a connection to it; both end with the test.
func embeddedJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	s, err := StartEmbedded(EmbeddedConfig{StoreDir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	nc, err := Connect(s.ClientURL(), "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func TestEmbeddedAndStreams(t *testing.T) {
	js := embeddedJS(t)
	ctx := context.Background()
	for i := 0; i < 2; i++ { // idempotent
		if err := EnsureStreams(ctx, js, StreamOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := js.Stream(ctx, subjects.StreamState)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.MaxMsgsPerSubject; got != 1 {
		t.Fatalf("STATE MaxMsgsPerSubject = %d; want 1", got)
	}
	ru, err := js.Stream(ctx, subjects.StreamRollups)
	if err != nil {
		t.Fatal(err)
	}
	if got := ru.CachedInfo().Config.MaxMsgsPerSubject; got != 1 {
		t.Fatalf("ROLLUPS MaxMsgsPerSubject = %d; want 1", got)
	}
	dl, err := js.Stream(ctx, subjects.StreamDeadletter)
	if err != nil {
		t.Fatal(err)
	}
	c := dl.CachedInfo().Config
	if c.Discard != jetstream.DiscardNew || c.MaxAge != 30*24*time.Hour || c.MaxBytes != 1<<30 || c.Storage != jetstream.FileStorage {
		t.Fatalf("DEADLETTER discard %v, max age %s, max bytes %d, storage %v; want new, 720h, 1 GiB, file",
			c.Discard, c.MaxAge, c.MaxBytes, c.Storage)
	}
}

// TestEnsureStreamsWaitsForJetStream: streams asked of a server whose
// JetStream is not ready yet (here: not enabled; in a cluster: no meta
// leader yet, or a loaded machine answering late) are created once it is,
// not refused (a hub started beside its NATS cluster failed with "creating
// stream FEEDS: context deadline exceeded"); an error that no wait mends is
// returned at once.
func TestEnsureStreamsWaitsForJetStream(t *testing.T) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(s.Shutdown)
	nc, err := Connect(s.ClientURL(), "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	// What the hub asks of JetStream, seen here: something listens on the
	// API (as a server still starting it), answering nothing, so each
	// request waits for its timeout.
	asked := make(chan struct{}, 64)
	sub, err := nc.Subscribe("$JS.API.>", func(*nats.Msg) { asked <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	// No deadline on ctx: each request then waits the JetStream context's
	// own timeout (a deadline on ctx would be every request's).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bound := time.After(time.Minute)
	done := make(chan error, 1)
	go func() { done <- EnsureStreams(ctx, js, StreamOptions{}) }()
	for range 2 { // a request, and one more after its timeout
		select {
		case <-asked:
		case err := <-done:
			t.Fatalf("EnsureStreams returned before JetStream was ready: %v", err)
		case <-bound:
			t.Fatal("no request to JetStream's API")
		}
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if err := s.EnableJetStream(&server.JetStreamConfig{StoreDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("EnsureStreams once JetStream is ready: %v", err)
		}
	case <-bound:
		t.Fatal("EnsureStreams did not return once JetStream was ready")
	}
	if _, err := js.Stream(ctx, subjects.StreamFeeds); err != nil {
		t.Fatalf("FEEDS: %v", err)
	}
	// A wrong request is not waited on: refused at once.
	if err := EnsureStreams(ctx, js, StreamOptions{Replicas: 3}); err == nil || transient(ctx, err) {
		t.Fatalf("3 replicas on one server: %v; want a refusal that is not transient", err)
	}
}

// TestTransientAnswers: which JetStream answers mean "not ready yet" (tried
// again) and which a wrong request (refused at once).
func TestTransientAnswers(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}, true},
		{fmt.Errorf("creating stream: %w", &jetstream.APIError{Code: 400, ErrorCode: 10005, Description: "no suitable peers for placement, peer offline"}), true},
		{&jetstream.APIError{Code: 400, ErrorCode: 10005, Description: "no suitable peers for placement, insufficient storage"}, false},
		{&jetstream.APIError{Code: 400, ErrorCode: 10003, Description: "bad request"}, false},
		{nats.ErrNoResponders, true},
		{jetstream.ErrJetStreamNotEnabledForAccount, false},
	} {
		if got := transient(ctx, c.err); got != c.want {
			t.Errorf("transient(%v) = %v; want %v", c.err, got, c.want)
		}
	}
}

func TestRedactURLs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"nats://hub:hunter2@n1:4222", "nats://hub:xxxxx@n1:4222"},
		{"nats://hub:hunter2@n1:4222,nats://hub:hunter2@n2:4222", "nats://hub:xxxxx@n1:4222,nats://hub:xxxxx@n2:4222"},
		{"nats://n1:4222, tls://s3cr3t-token@n2:4222", "nats://n1:4222, tls://xxxxx@n2:4222"},
		{"hub:p@ss@n1:4222", "hub:xxxxx@n1:4222"},
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"", ""},
	} {
		if got := RedactURLs(tc.in); got != tc.want {
			t.Errorf("RedactURLs(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

// TestConnectErrorRedacted: Connect's error names the URLs it was given
// without their passwords or tokens, also when nats.go quotes a URL that
// does not parse.
func TestConnectErrorRedacted(t *testing.T) {
	_, err := Connect("nats://hub:hunter2@127.0.0.1:4222,nats://s3cr3t-token@host:bad", "test")
	if err == nil {
		t.Fatal("a URL with a bad port was accepted")
	}
	for _, secret := range []string{"hunter2", "s3cr3t-token"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error tells %s: %v", secret, err)
		}
	}
	if !strings.Contains(err.Error(), "nats://hub:xxxxx@127.0.0.1:4222") {
		t.Errorf("the error does not name the URL: %v", err)
	}
}
