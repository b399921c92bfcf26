package natsx

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/subjects"
)

func TestEmbeddedAndStreams(t *testing.T) {
	s, err := StartEmbedded(EmbeddedConfig{StoreDir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	nc, err := Connect(s.ClientURL(), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
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
}
