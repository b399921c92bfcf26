package edge

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/natsx"
)

// NodeConfig configures the NATS server of an edge node.
type NodeConfig struct {
	// Unit is the edge's unit; it names the JetStream domain
	// (natsx.EdgeDomain) and the persistent server name (natsx.EdgeServerName).
	Unit string
	// Hub are the URLs of the hub's leaf-node listener
	// (nats-leaf://user:password@host:7422); empty means no hub (the edge
	// keeps everything until one is configured).
	Hub []*url.URL
	// HubTLS, when set, makes the leaf connection to Hub require TLS
	// verified with it (HubTLS builds it from --hub-ca); nil means TLS only
	// if the hub asks for it, verified against the system's roots.
	HubTLS *tls.Config
	// StoreDir is where JetStream keeps the edge's FEEDS; required. Keep it
	// across restarts: what the hub has not sourced yet is only there.
	StoreDir string
	// Host and Port are the local client listener (local tools such as
	// iocctl tail); "" means 127.0.0.1, 0 means 4222, -1 a random port.
	Host string
	Port int
	// Stream sizes the edge's FEEDS: Retain is the link-loss budget.
	Stream natsx.EdgeStreamOptions
	// LeafReconnect is the wait between attempts to reach the hub; 0 means 1s.
	LeafReconnect time.Duration
	// MaxPayload is the largest message the edge's server takes, headers
	// included (its ingest refuses an item that would not fit); 0 means
	// DefaultMaxPayload. It must not exceed the hub's: the hub closes a
	// leaf connection that sends it more, and the item, stored at the edge,
	// would hold every item behind it until --retain drops them.
	MaxPayload int32
	// Password of natsx.HubUser on the edge's server; empty means a random
	// one for this run. The server always requires it: whatever enters the
	// edge's FEEDS reaches the hub, so only the edge's ingest (and a local
	// tool given the password) may publish there.
	Password string
}

// DefaultMaxPayload is the edge's max payload when NodeConfig says none:
// nats-server's own default, which a hub run from deploy/nats/hub.conf has.
const DefaultMaxPayload = server.MAX_PAYLOAD_SIZE

// Node is an edge's running NATS server with its FEEDS, and a connection to it.
type Node struct {
	Server *server.Server
	Conn   *nats.Conn
	JS     jetstream.JetStream
	// Domain is the edge's JetStream domain; the hub sources $JS.<Domain>.API.
	Domain string
}

// StartNode starts the edge's NATS server (a leaf node of cfg.Hub with its
// own JetStream domain), connects to it in process and creates its FEEDS.
func StartNode(ctx context.Context, cfg NodeConfig) (*Node, error) {
	domain, err := natsx.EdgeDomain(cfg.Unit)
	if err != nil {
		return nil, err
	}
	if cfg.StoreDir == "" {
		return nil, errors.New("starting the edge node: StoreDir is required")
	}
	pw := cfg.Password
	if pw == "" {
		pw = rand.Text()
	}
	s, err := natsx.StartEmbedded(natsx.EmbeddedConfig{
		StoreDir: cfg.StoreDir, Host: cfg.Host, Port: cfg.Port, HubPassword: pw,
		ServerName: natsx.EdgeServerName(cfg.Unit), Domain: domain,
		LeafRemotes: cfg.Hub, LeafTLS: cfg.HubTLS, LeafDeny: natsx.EdgeLeafDeny, LeafReconnect: cfg.LeafReconnect,
		MaxPayload: cmp.Or(cfg.MaxPayload, DefaultMaxPayload),
		// The edge answers an item accepted once its one node stored it, with
		// no replica and the hub perhaps out of reach: it must be on disk.
		SyncAlways: true,
	})
	if err != nil {
		return nil, fmt.Errorf("starting the edge node of %s: %w", cfg.Unit, err)
	}
	n := &Node{Server: s, Domain: domain}
	if n.Conn, err = natsx.Connect(s.ClientURL(), "iochub-edge-"+cfg.Unit, nats.InProcessServer(s), nats.UserInfo(natsx.HubUser, pw)); err != nil {
		n.Close()
		return nil, err
	}
	if n.JS, err = jetstream.New(n.Conn); err != nil {
		n.Close()
		return nil, fmt.Errorf("opening the edge's JetStream: %w", err)
	}
	if err := natsx.EnsureEdgeStream(ctx, n.JS, cfg.Stream); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// LinkUp reports whether the leaf connection to the hub is up.
func (n *Node) LinkUp() bool { return n.Server.NumLeafNodes() > 0 }

// Close closes the connection and shuts the server down, waiting for it.
func (n *Node) Close() {
	if n.Conn != nil {
		n.Conn.Close()
	}
	n.Server.Shutdown()
	n.Server.WaitForShutdown()
}
