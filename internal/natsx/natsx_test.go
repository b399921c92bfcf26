package natsx

import (
	"context"
	"testing"
	"time"

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
