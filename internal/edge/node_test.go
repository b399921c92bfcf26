package edge_test

import (
	"context"
	"testing"

	"github.com/iochub/iochub/internal/edge"
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
	if edge.DefaultMaxPayload != 1<<20 {
		t.Errorf("DefaultMaxPayload %d; want nats-server's default, 1 MiB", edge.DefaultMaxPayload)
	}
}
