package deploy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/testkit"
)

// TestHubConfLeafTLS runs one node of hub.conf (alone: no routes) with a
// leaf-node certificate of a private CA, and the edge of 00070: trusting
// that CA (iochub edge --hub-ca) its leaf connection comes up over TLS,
// logged in as hub.conf's user edge-00070; without it, the edge refuses the
// hub's certificate (unknown authority) and no link comes up.
func TestHubConfLeafTLS(t *testing.T) {
	files := setHubEnv(t, "hub-1")
	hub := startConfNode(t, "nats/hub.conf", nil)
	hubLeaf, err := url.Parse(natsx.LeafURL(hub))
	if err != nil || hubLeaf.Port() == "" {
		t.Fatalf("the hub's leaf URL %q: %v", natsx.LeafURL(hub), err)
	}
	// The name the edge dials, which the certificate names (testkit.WriteTLSFiles: localhost).
	leaf := &url.URL{Scheme: "nats-leaf", Host: net.JoinHostPort("localhost", hubLeaf.Port()),
		User: url.UserPassword(natsx.EdgeUser("00070"), testEdgePassword)}
	// The edge of 00070 as iochub edge starts it (edge.StartNode, whose
	// --hub-ca becomes LeafTLS), less its FEEDS: deploy does not import
	// internal/edge (and its geometry libraries).
	startEdge := func(t *testing.T, caFile string) (*server.Server, *testkit.ErrorLog) {
		t.Helper()
		var leafTLS *tls.Config
		if caFile != "" {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				t.Fatal(err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				t.Fatalf("no certificate in %s", caFile)
			}
			leafTLS = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
		}
		n, err := natsx.StartEmbedded(natsx.EmbeddedConfig{StoreDir: t.TempDir(), Port: -1, ServerName: natsx.EdgeServerName("00070"),
			Domain: "edge-00070", LeafRemotes: []*url.URL{leaf}, LeafTLS: leafTLS, LeafDeny: natsx.EdgeLeafDeny,
			LeafReconnect: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Shutdown(); n.WaitForShutdown() })
		log := &testkit.ErrorLog{}
		n.SetLogger(log, false, false)
		return n, log
	}

	t.Run("without the CA", func(t *testing.T) {
		n, log := startEdge(t, "")
		// Over three attempts (it reconnects every 50 ms), the link is
		// never seen up.
		testkit.Eventually(t, 10*time.Second, "the edge to refuse the hub's certificate three times", func() (bool, string) {
			if n.NumLeafNodes() == 1 || hub.NumLeafNodes() != 0 {
				t.Fatalf("link up %v, hub leaf nodes %d; want no link without the hub's CA", n.NumLeafNodes() == 1, hub.NumLeafNodes())
			}
			refused := log.Count("certificate signed by unknown authority")
			return refused >= 3, fmt.Sprintf("%d refusals", refused)
		})
	})

	t.Run("with the CA", func(t *testing.T) {
		n, _ := startEdge(t, files.CA)
		testkit.Eventually(t, 10*time.Second, "the edge's TLS link to hub.conf's node", testkit.Holds(func() bool {
			return n.NumLeafNodes() == 1 && hub.NumLeafNodes() == 1
		}))
		lz, err := hub.Leafz(nil)
		if err != nil || len(lz.Leafs) != 1 || lz.Leafs[0].Name != natsx.EdgeServerName("00070") {
			t.Fatalf("hub Leafz %+v, %v; want the edge's leaf", lz, err)
		}
	})
}

// startConfNode starts one node of the nats-server configuration file, as
// the environment has it, alone (no routes), its listeners moved to
// loopback and its store to a temporary directory; change, if set, changes
// the options first. The node ends with t.
func startConfNode(t *testing.T, file string, change func(*server.Options)) *server.Server {
	t.Helper()
	o, err := server.ProcessConfigFile(file)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	o.Host, o.Port, o.HTTPPort = "127.0.0.1", -1, 0
	o.Cluster, o.Routes = server.ClusterOpts{}, nil
	o.LeafNode.Host, o.LeafNode.Port = "127.0.0.1", -1
	o.StoreDir, o.JetStreamMaxStore, o.JetStreamMaxMemory = t.TempDir(), 1<<30, 64<<20
	o.NoSigs, o.NoLog = true, true
	if change != nil {
		change(o)
	}
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		t.Fatalf("the node of %s did not start", file)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}
