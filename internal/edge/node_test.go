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
