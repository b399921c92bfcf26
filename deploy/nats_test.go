package deploy

import (
	"bytes"
	"crypto/tls"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/testkit"
)

// Passwords of hub.conf's users in the tests (NATS_*_PASSWORD).
const (
	testHubPassword    = "test-hub-password"
	testReaderPassword = "test-reader-password"
	testEdgePassword   = "test-edge-password"
)

// setHubEnv sets the environment hub.conf reads, as node name would have
// it: the passwords, and the leaf-node listener's certificate and key, made
// for this test by a private CA (testkit.WriteTLSFiles), which it returns.
func setHubEnv(t *testing.T, name string) testkit.TLSFiles {
	t.Helper()
	t.Setenv("NATS_SERVER_NAME", name)
	t.Setenv("NATS_HUB_PASSWORD", testHubPassword)
	t.Setenv("NATS_READER_PASSWORD", testReaderPassword)
	t.Setenv("NATS_EDGE_00070_PASSWORD", testEdgePassword)
	tls := testkit.WriteTLSFiles(t)
	t.Setenv("NATS_LEAF_TLS_CERT", tls.Cert)
	t.Setenv("NATS_LEAF_TLS_KEY", tls.Key)
	return tls
}

// TestNATSConfigs loads hub.conf with nats-server's own config parser: the
// shape DESIGN.md describes (JetStream domain hub, a named 3-node cluster),
// and its users are iochub's: hub with every right, reader with
// natsx.ReaderPermissions, and the edge of 00070 as natsx.EdgeLeafUser
// makes it (leaf connections only, the hub's sourcing only). Leaf nodes log
// in as those users (no leafnodes authorization block of its own, which
// would replace them), the hub's inner addresses are not advertised, and the
// leaf-node listener takes TLS 1.2+ only, with the certificate the
// environment names (NATS_LEAF_TLS_CERT, NATS_LEAF_TLS_KEY): edges reach it
// across wide-area networks.
func TestNATSConfigs(t *testing.T) {
	files := setHubEnv(t, "hub-1")
	o, err := server.ProcessConfigFile("nats/hub.conf")
	if err != nil {
		t.Fatalf("hub.conf: %v", err)
	}
	if !o.JetStream || o.JetStreamDomain != "hub" || o.ServerName != "hub-1" {
		t.Errorf("jetstream %v domain %q server_name %q; want JetStream on, domain hub, name from the env", o.JetStream, o.JetStreamDomain, o.ServerName)
	}
	if o.Cluster.Name == "" || len(o.Routes) != 3 {
		t.Errorf("cluster %q with %d routes; want a named 3-node cluster", o.Cluster.Name, len(o.Routes))
	}
	if o.LeafNode.Port == 0 || len(o.LeafNode.Users) != 0 || o.LeafNode.Username != "" || !o.LeafNode.NoAdvertise {
		t.Errorf("leafnodes port %d, %d users of its own, no_advertise %v; want a listener, the server's users, no_advertise",
			o.LeafNode.Port, len(o.LeafNode.Users), o.LeafNode.NoAdvertise)
	}
	if tc := o.LeafNode.TLSConfig; tc == nil || tc.MinVersion < tls.VersionTLS12 || len(tc.Certificates) != 1 || o.LeafNode.TLSTimeout <= 0 {
		t.Errorf("leafnodes TLS %+v, timeout %v; want TLS 1.2+ with one certificate and a handshake timeout", tc, o.LeafNode.TLSTimeout)
	} else if want, err := tls.LoadX509KeyPair(files.Cert, files.Key); err != nil {
		t.Fatal(err)
	} else if !bytes.Equal(tc.Certificates[0].Certificate[0], want.Certificate[0]) {
		t.Error("leafnodes TLS certificate is not the one NATS_LEAF_TLS_CERT names")
	}
	users := map[string]*server.User{}
	for _, u := range o.Users {
		users[u.Username] = u
	}
	if len(users) != 3 {
		t.Errorf("users %v; want hub, reader and edge-00070", slices.Collect(func(yield func(string) bool) {
			for n := range users {
				if !yield(n) {
					return
				}
			}
		}))
	}
	if u := users[natsx.HubUser]; u == nil || u.Password != testHubPassword || u.Permissions != nil {
		t.Errorf("user hub %+v; want every right, its password from NATS_HUB_PASSWORD", u)
	}
	if u := users[natsx.ReaderUser]; u == nil || u.Password != testReaderPassword || !reflect.DeepEqual(u.Permissions, natsx.ReaderPermissions()) {
		t.Errorf("user reader %+v; want natsx.ReaderPermissions, its password from NATS_READER_PASSWORD", u)
	}
	want := natsx.EdgeLeafUser("edge-00070", testEdgePassword)
	if u := users[natsx.EdgeUser("00070")]; u == nil || u.Password != testEdgePassword ||
		!reflect.DeepEqual(u.Permissions, want.Permissions) || !reflect.DeepEqual(u.AllowedConnectionTypes, want.AllowedConnectionTypes) {
		t.Errorf("user edge-00070 %+v; want natsx.EdgeLeafUser's (leaf connections only, the hub's sourcing only)", u)
	}
}

// TestNATSConfigNeedsLeafCert: a hub started without its leaf-node
// certificate does not start (rather than take edges in clear text), and
// says which variable is missing.
func TestNATSConfigNeedsLeafCert(t *testing.T) {
	for _, v := range []string{"NATS_LEAF_TLS_CERT", "NATS_LEAF_TLS_KEY"} {
		t.Run(v, func(t *testing.T) {
			setHubEnv(t, "hub-1")
			unsetEnv(t, v)
			if _, err := server.ProcessConfigFile("nats/hub.conf"); err == nil || !strings.Contains(err.Error(), v) {
				t.Errorf("hub.conf without %s: %v; want an error naming it", v, err)
			}
		})
	}
}

// unsetEnv unsets name for the test, restoring it after.
func unsetEnv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "") // restores the old value after the test
	if err := os.Unsetenv(name); err != nil {
		t.Fatal(err)
	}
}

// hubRoutes returns the hosts of hub.conf's cluster routes, in order, as
// nats-server reads them.
func hubRoutes(t *testing.T) []string {
	t.Helper()
	setHubEnv(t, "hub-1")
	o, err := server.ProcessConfigFile("nats/hub.conf")
	if err != nil {
		t.Fatalf("hub.conf: %v", err)
	}
	var out []string
	for _, r := range o.Routes {
		out = append(out, r.Hostname())
	}
	return out
}
