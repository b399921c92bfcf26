package edge_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/edge"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
)

const (
	tlsHubPassword  = "tls-hub-password"
	tlsEdgePassword = "tls-edge-password"
)

// startTLSHub starts a hub whose leaf-node listener requires TLS with the
// certificate of files (as deploy/nats/hub.conf's leafnodes tls block), with
// its streams and the edge user of 00070, and returns it with the edge's
// leaf URL and the hub's JetStream.
func startTLSHub(t *testing.T, files testkit.TLSFiles) (*server.Server, *url.URL, jetstream.JetStream) {
	t.Helper()
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: files.Cert, KeyFile: files.Key, Timeout: 5})
	if err != nil {
		t.Fatal(err)
	}
	o := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
		Users: []*server.User{{Username: natsx.HubUser, Password: tlsHubPassword}, natsx.EdgeLeafUser(natsx.EdgeUser("00070"), tlsEdgePassword)}}
	o.LeafNode.Host, o.LeafNode.Port, o.LeafNode.NoAdvertise = "127.0.0.1", -1, true
	o.LeafNode.TLSConfig, o.LeafNode.TLSTimeout = tc, 5
	hub, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go hub.Start()
	if !hub.ReadyForConnections(15 * time.Second) {
		t.Fatal("the hub did not start")
	}
	t.Cleanup(func() { hub.Shutdown(); hub.WaitForShutdown() })
	env := testenv.HubOn(t, hub, tlsHubPassword)
	leaf, err := url.Parse(natsx.LeafURL(hub))
	if err != nil {
		t.Fatal(err)
	}
	leaf.User = url.UserPassword(natsx.EdgeUser("00070"), tlsEdgePassword)
	return hub, leaf, env.JS
}

// TestNodeHubTLS: an edge given the hub's private CA (--hub-ca) reaches a
// hub whose leaf-node listener requires TLS, and the hub sources its items;
// an edge without it refuses the hub's certificate (unknown authority) and
// its link stays down, so neither its password nor its items cross.
func TestNodeHubTLS(t *testing.T) {
	ctx := context.Background()
	files := testkit.WriteTLSFiles(t)
	hub, leaf, hubJS := startTLSHub(t, files)
	startEdge := func(t *testing.T, hubTLS *tls.Config) (*edge.Node, *testkit.ErrorLog) {
		t.Helper()
		n, err := edge.StartNode(ctx, edge.NodeConfig{Unit: "00070", Hub: []*url.URL{leaf}, HubTLS: hubTLS, StoreDir: t.TempDir(),
			Port: -1, LeafReconnect: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.Close)
		log := &testkit.ErrorLog{}
		n.Server.SetLogger(log, false, false)
		return n, log
	}

	t.Run("without the CA", func(t *testing.T) {
		n, log := startEdge(t, nil)
		// Over three attempts (it reconnects every 50 ms), the link is
		// never seen up.
		testkit.Eventually(t, 10*time.Second, "the edge to refuse the hub's certificate three times", func() (bool, string) {
			if n.LinkUp() || hub.NumLeafNodes() != 0 {
				t.Fatalf("link up %v, hub leaf nodes %d; want no link without the hub's CA", n.LinkUp(), hub.NumLeafNodes())
			}
			refused := log.Count("certificate signed by unknown authority")
			return refused >= 3, fmt.Sprintf("%d refusals", refused)
		})
	})

	t.Run("with the CA", func(t *testing.T) {
		hubTLS, err := edge.HubTLS([]*url.URL{leaf}, files.CA)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := startEdge(t, hubTLS)
		testkit.Eventually(t, 10*time.Second, "the edge's TLS link to the hub", testkit.Holds(func() bool {
			return n.LinkUp() && hub.NumLeafNodes() == 1
		}))
		lz, err := hub.Leafz(nil)
		if err != nil || len(lz.Leafs) != 1 || lz.Leafs[0].Name != natsx.EdgeServerName("00070") {
			t.Fatalf("hub Leafz %+v, %v; want the edge's leaf", lz, err)
		}
		const items = 10
		subj := subjects.Feed("01", "00070", subjects.KindAir)
		for i := range items {
			if _, err := n.JS.Publish(ctx, subj, []byte(fmt.Sprint(i)), jetstream.WithMsgID(fmt.Sprint("tls-", i))); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := natsx.AddEdgeSource(ctx, hubJS, n.Domain, []string{subjects.FeedUnit("01", "00070")}); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 30*time.Second, "the hub sourcing the edge over TLS", func() (bool, string) {
			st, err := hubJS.Stream(ctx, subjects.StreamFeeds)
			if err != nil {
				return false, err.Error()
			}
			info, err := st.Info(ctx)
			if err != nil {
				return false, err.Error()
			}
			return info.State.Msgs == items, fmt.Sprintf("hub FEEDS holds %d of %d", info.State.Msgs, items)
		})
	})
}

// TestHubTLS: --hub-ca makes the edge require TLS of the hub with that CA
// only; a tls:// URL requires TLS with the system's roots; neither leaves
// it to the hub; a CA file without a certificate stops the edge at its start.
func TestHubTLS(t *testing.T) {
	files := testkit.WriteTLSFiles(t)
	leaf, _ := url.Parse("nats-leaf://hub.example:7422")
	tlsURL, _ := url.Parse("tls://hub.example:7422")
	if tc, err := edge.HubTLS([]*url.URL{leaf}, ""); tc != nil || err != nil {
		t.Errorf("nats-leaf:// without a CA: %+v, %v; want nil (TLS if the hub asks)", tc, err)
	}
	if tc, err := edge.HubTLS([]*url.URL{leaf, tlsURL}, ""); err != nil || tc == nil || tc.RootCAs != nil || tc.MinVersion < tls.VersionTLS12 {
		t.Errorf("tls:// without a CA: %+v, %v; want TLS 1.2+ with the system's roots", tc, err)
	}
	tc, err := edge.HubTLS([]*url.URL{leaf}, files.CA)
	if err != nil || tc == nil || tc.RootCAs == nil || tc.MinVersion < tls.VersionTLS12 {
		t.Fatalf("with a CA: %+v, %v; want TLS 1.2+ with its roots", tc, err)
	}
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.der")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := edge.HubTLS(nil, notPEM); !errors.Is(err, edge.ErrNoCACert) {
		t.Errorf("a file without a PEM certificate: %v; want ErrNoCACert", err)
	}
	if _, err := edge.HubTLS(nil, files.Key); !errors.Is(err, edge.ErrNoCACert) {
		t.Errorf("the server's key instead of the CA: %v; want ErrNoCACert", err)
	}
	badCert := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(badCert, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := edge.HubTLS(nil, badCert); err == nil || errors.Is(err, edge.ErrNoCACert) {
		t.Errorf("a PEM block that is no certificate: %v; want a parse error", err)
	}
	if _, err := edge.HubTLS(nil, filepath.Join(dir, "missing.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v; want ErrNotExist", err)
	}
}

// sniffer forwards each TCP connection to target and keeps what its client
// sent: a man in the middle of the leaf link.
type sniffer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns [][]byte // what the client sent, by connection
}

func newSniffer(t *testing.T, target string) *sniffer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sniffer{ln: ln}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, nil)
			i := len(s.conns) - 1
			s.mu.Unlock()
			go s.relay(c, target, i)
		}
	}()
	return s
}

// relay copies connection i both ways to target, keeping what the client sent.
func (s *sniffer) relay(c net.Conn, target string, i int) {
	defer c.Close()
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	go func() { _, _ = io.Copy(c, up) }()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		s.mu.Lock()
		s.conns[i] = append(s.conns[i], buf[:n]...)
		s.mu.Unlock()
		if err != nil {
			return
		}
		if _, err := up.Write(buf[:n]); err != nil {
			return
		}
	}
}

// seen is what the client sent on each connection so far.
func (s *sniffer) seen() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(s.conns))
	for i, b := range s.conns {
		out[i] = bytes.Clone(b)
	}
	return out
}

// TestNodeHubTLSRequired: an edge given --hub-ca does not fall back to
// clear text with a hub, or a man in the middle, that offers no TLS: what it
// sends after the hub's INFO is a TLS handshake, never its password, and
// its link stays down.
func TestNodeHubTLSRequired(t *testing.T) {
	files := testkit.WriteTLSFiles(t)
	hub, err := natsx.StartEmbedded(natsx.EmbeddedConfig{StoreDir: t.TempDir(), Port: -1, LeafPort: -1, HubPassword: tlsHubPassword,
		LeafUsers: []*server.User{natsx.EdgeLeafUser(natsx.EdgeUser("00070"), tlsEdgePassword)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Shutdown(); hub.WaitForShutdown() })
	hubLeaf, err := url.Parse(natsx.LeafURL(hub))
	if err != nil {
		t.Fatal(err)
	}
	mitm := newSniffer(t, hubLeaf.Host)
	leaf := &url.URL{Scheme: "nats-leaf", Host: mitm.ln.Addr().String(), User: url.UserPassword(natsx.EdgeUser("00070"), tlsEdgePassword)}
	hubTLS, err := edge.HubTLS([]*url.URL{leaf}, files.CA)
	if err != nil {
		t.Fatal(err)
	}
	n, err := edge.StartNode(context.Background(), edge.NodeConfig{Unit: "00070", Hub: []*url.URL{leaf}, HubTLS: hubTLS, StoreDir: t.TempDir(),
		Port: -1, LeafReconnect: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	// Over three attempts (it reconnects every 50 ms), every connection
	// starts with a TLS handshake, the password never crosses, and the link
	// is never seen up.
	testkit.Eventually(t, 10*time.Second, "the edge's first bytes to the hub on three connections", func() (bool, string) {
		if n.LinkUp() || hub.NumLeafNodes() != 0 {
			t.Fatalf("link up %v, hub leaf nodes %d; want no link to a hub without TLS", n.LinkUp(), hub.NumLeafNodes())
		}
		conns := mitm.seen()
		started := 0
		for _, sent := range conns {
			if bytes.Contains(sent, []byte(tlsEdgePassword)) || len(sent) > 0 && sent[0] != 0x16 {
				t.Fatalf("the edge sent %q to a hub without TLS; want a TLS handshake record (0x16), not its password", sent)
			}
			if len(sent) >= 5 {
				started++
			}
		}
		return started >= 3, fmt.Sprintf("%d connections, %d with a record started", len(conns), started)
	})
}
