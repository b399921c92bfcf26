package natsx_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/iochub/iochub/internal/natsx"
)

// TestWireSize: a message whose WireSize is the server's max payload is
// published; one byte more is refused as over it, so WireSize counts as
// NATS does.
func TestWireSize(t *testing.T) {
	const max = 4096
	s, err := natsx.StartEmbedded(natsx.EmbeddedConfig{StoreDir: t.TempDir(), Port: -1, MaxPayload: max})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	h := nats.Header{"ce-id": {"ev-1"}, "Nats-Msg-Id": {"src/ev-1"}, "X-Two": {"a", "bb"}}
	m := &nats.Msg{Subject: "size.test", Header: h}
	m.Data = []byte(strings.Repeat("x", max-natsx.WireSize(h, nil)))
	if n := natsx.WireSize(m.Header, m.Data); n != max {
		t.Fatalf("WireSize = %d; want %d", n, max)
	}
	if err := nc.PublishMsg(m); err != nil {
		t.Fatalf("a message of the max payload: %v", err)
	}
	m.Data = append(m.Data, 'x')
	if err := nc.PublishMsg(m); !errors.Is(err, nats.ErrMaxPayload) {
		t.Fatalf("a message a byte over: %v; want ErrMaxPayload", err)
	}
}
