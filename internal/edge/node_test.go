package edge_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/iochub/iochub/internal/edge"
	"github.com/iochub/iochub/internal/natsx"
)

// TestNodeSyncsEveryWrite: the edge answers an item accepted once its single
// node stored it, so its JetStream must fsync every write (by default a
// server syncs every 2 minutes, and a power cut would lose what it
// acknowledged since).
func TestNodeSyncsEveryWrite(t *testing.T) {
	n, err := edge.StartNode(context.Background(), edge.NodeConfig{Unit: "00070", StoreDir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if cfg := n.Server.JetStreamConfig(); cfg == nil || !cfg.SyncAlways {
		t.Fatalf("the edge's JetStream config %+v; want SyncAlways", cfg)
	}
}

// TestNodeMaxPayload: the edge's server takes no larger message than a hub
// of nats-server's default (1 MiB) does, unless told more: a larger item
// stored at the edge would close the hub's leaf connection each time the
// hub's source copied it, and hold every item behind it.
func TestNodeMaxPayload(t *testing.T) {
	for _, c := range []struct {
		set, want int32
	}{{0, edge.DefaultMaxPayload}, {4 << 20, 4 << 20}} {
		n, err := edge.StartNode(context.Background(), edge.NodeConfig{Unit: "00070", StoreDir: t.TempDir(), Port: -1, MaxPayload: c.set})
		if err != nil {
			t.Fatal(err)
		}
		if got := n.Conn.MaxPayload(); got != int64(c.want) {
			t.Errorf("MaxPayload %d: the edge's server takes %d bytes; want %d", c.set, got, c.want)
		}
		n.Close()
	}
	// No more than a hub of default options takes: iochub serve's embedded
	// server, and nats-server from deploy/nats/hub.conf (its own default).
	hub, err := natsx.StartEmbedded(natsx.EmbeddedConfig{StoreDir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { hub.Shutdown(); hub.WaitForShutdown() }()
	v, err := hub.Varz(nil)
	if err != nil {
		t.Fatal(err)
	}
	if most := min(int64(v.MaxPayload), server.MAX_PAYLOAD_SIZE); int64(edge.DefaultMaxPayload) > most {
		t.Errorf("DefaultMaxPayload %d; want at most %d, what every hub of default options takes", edge.DefaultMaxPayload, most)
	}
}
