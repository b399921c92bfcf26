package deploy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testkit"
)

// testProvincePassword is the password of the national hub's user
// province-01 in the tests.
const testProvincePassword = "test-province-password"

// setProvinceEnv sets the environment province.conf reads beyond
// hub.conf's (setHubEnv): the domain of province 01, the national hub's
// leaf URL with the user province-01, and the national hub's CA.
func setProvinceEnv(t *testing.T, nationalLeafPort, nationalCA string) {
	t.Helper()
	t.Setenv("NATS_DOMAIN", "province-01")
	t.Setenv("NATS_NATIONAL_URL", (&url.URL{Scheme: "nats-leaf", Host: net.JoinHostPort("localhost", nationalLeafPort),
		User: url.UserPassword("province-01", testProvincePassword)}).String())
	t.Setenv("NATS_NATIONAL_CA", nationalCA)
}

// TestProvinceConf loads province.conf with nats-server's config parser: it
// is hub.conf (the same users, cluster, store and edge listener, with its
// TLS) with the domain NATS_DOMAIN, and one remote to the national hub: the
// URL NATS_NATIONAL_URL, TLS 1.2+ required and the national hub's
// certificate verified against NATS_NATIONAL_CA only, and
// natsx.ProvinceLeafDeny both ways.
func TestProvinceConf(t *testing.T) {
	files := setHubEnv(t, "hub-1")
	setProvinceEnv(t, "7422", files.CA)
	hub, err := server.ProcessConfigFile("nats/hub.conf")
	if err != nil {
		t.Fatalf("hub.conf: %v", err)
	}
	o, err := server.ProcessConfigFile("nats/province.conf")
	if err != nil {
		t.Fatalf("province.conf: %v", err)
	}
	if o.JetStreamDomain != "province-01" {
		t.Errorf("domain %q; want NATS_DOMAIN's province-01", o.JetStreamDomain)
	}
	userNames := func(o *server.Options) []string {
		var n []string
		for _, u := range o.Users {
			n = append(n, u.Username)
		}
		return slices.Sorted(slices.Values(n))
	}
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"server_name", o.ServerName, hub.ServerName},
		{"users", userNames(o), userNames(hub)},
		{"cluster", fmt.Sprint(o.Cluster.Name, o.Routes), fmt.Sprint(hub.Cluster.Name, hub.Routes)},
		{"jetstream", fmt.Sprint(o.JetStream, o.StoreDir, o.JetStreamMaxMemory, o.JetStreamMaxStore),
			fmt.Sprint(hub.JetStream, hub.StoreDir, hub.JetStreamMaxMemory, hub.JetStreamMaxStore)},
		{"leafnodes listener", fmt.Sprint(o.LeafNode.Host, o.LeafNode.Port, o.LeafNode.NoAdvertise, o.LeafNode.TLSTimeout),
			fmt.Sprint(hub.LeafNode.Host, hub.LeafNode.Port, hub.LeafNode.NoAdvertise, hub.LeafNode.TLSTimeout)},
		{"leafnodes TLS", o.LeafNode.TLSConfig != nil && o.LeafNode.TLSConfig.MinVersion == hub.LeafNode.TLSConfig.MinVersion &&
			len(o.LeafNode.TLSConfig.Certificates) == 1, true},
	} {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s: %v; want hub.conf's %v", c.what, c.got, c.want)
		}
	}
	if len(o.LeafNode.Remotes) != 1 {
		t.Fatalf("%d leafnodes remotes; want the national hub", len(o.LeafNode.Remotes))
	}
	r := o.LeafNode.Remotes[0]
	if len(r.URLs) != 1 || r.URLs[0].String() != "nats-leaf://province-01:"+testProvincePassword+"@localhost:7422" {
		t.Errorf("remote URLs %v; want NATS_NATIONAL_URL", r.URLs)
	}
	if tc := r.TLSConfig; tc == nil || tc.RootCAs == nil || tc.InsecureSkipVerify || tc.MinVersion < tls.VersionTLS12 || r.TLSTimeout <= 0 {
		t.Errorf("remote TLS %+v, timeout %v; want TLS 1.2+ verified against NATS_NATIONAL_CA, with a handshake timeout", tc, r.TLSTimeout)
	}
	if !slices.Equal(r.DenyImports, natsx.ProvinceLeafDeny) || !slices.Equal(r.DenyExports, natsx.ProvinceLeafDeny) {
		t.Errorf("remote deny imports %v, exports %v; want natsx.ProvinceLeafDeny", r.DenyImports, r.DenyExports)
	}
}

// TestProvinceConfLeafTLS runs a national hub (a node of hub.conf with the
// user iochub national-nats-user adds for province 01) and the hub of
// province 01 (a node of province.conf, as docs/edge.md sets it up). Given
// the CA of the national hub's leaf-node certificate, the province's link
// comes up over TLS, logged in as province-01, and the national ROLLUPS
// sources the province's own roll-up (iochub national-add); given another
// CA, the province refuses the national hub's certificate (unknown
// authority) and no link comes up.
func TestProvinceConfLeafTLS(t *testing.T) {
	ctx := context.Background()
	nationalTLS := setHubEnv(t, "national-1")
	// iochub's streams reserve more than startConfNode's store (as in cluster_test.go).
	const store = 4 << 30
	national := startConfNode(t, "nats/hub.conf", func(o *server.Options) {
		o.Users = append(o.Users, natsx.ProvinceLeafUser("province-01", testProvincePassword))
		o.JetStreamMaxStore = store
	})
	nationalLeaf, err := url.Parse(natsx.LeafURL(national))
	if err != nil || nationalLeaf.Port() == "" {
		t.Fatalf("the national hub's leaf URL %q: %v", natsx.LeafURL(national), err)
	}
	// A node of province.conf, trusting caFile for the national hub.
	startProvince := func(t *testing.T, caFile string) (*server.Server, *testkit.ErrorLog) {
		t.Helper()
		setHubEnv(t, "province-01-1")
		setProvinceEnv(t, nationalLeaf.Port(), caFile)
		p := startConfNode(t, "nats/province.conf", func(o *server.Options) {
			o.LeafNode.ReconnectInterval, o.JetStreamMaxStore = 50*time.Millisecond, store
		})
		log := &testkit.ErrorLog{}
		p.SetLogger(log, false, false)
		return p, log
	}
	connect := func(t *testing.T, s *server.Server) jetstream.JetStream {
		t.Helper()
		nc, err := natsx.Connect(s.ClientURL(), "test", nats.UserInfo(natsx.HubUser, testHubPassword))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		if err := natsx.EnsureStreams(ctx, js, natsx.StreamOptions{}); err != nil {
			t.Fatal(err)
		}
		return js
	}

	t.Run("another CA", func(t *testing.T) {
		p, log := startProvince(t, testkit.WriteTLSFiles(t).CA)
		// Over three attempts, the link is never seen up.
		testkit.Eventually(t, 20*time.Second, "the province to refuse the national hub's certificate three times", func() (bool, string) {
			if p.NumLeafNodes() != 0 || national.NumLeafNodes() != 0 {
				t.Fatalf("province leaf nodes %d, national %d; want no link with another CA", p.NumLeafNodes(), national.NumLeafNodes())
			}
			refused := log.Count("certificate signed by unknown authority")
			return refused >= 3, fmt.Sprintf("%d refusals", refused)
		})
	})

	t.Run("the national hub's CA", func(t *testing.T) {
		p, _ := startProvince(t, nationalTLS.CA)
		testkit.Eventually(t, 10*time.Second, "the province's TLS link to the national hub", testkit.Holds(func() bool {
			return p.NumLeafNodes() == 1 && national.NumLeafNodes() == 1
		}))
		lz, err := national.Leafz(nil)
		if err != nil || len(lz.Leafs) != 1 || lz.Leafs[0].Name != "province-01-1" {
			t.Fatalf("national Leafz %+v, %v; want the province's leaf", lz, err)
		}
		njs, pjs := connect(t, national), connect(t, p)
		if err := natsx.AddProvinceSources(ctx, njs, "01", "province-01"); err != nil {
			t.Fatal(err)
		}
		rollup := subjects.Rollup("01", "01", subjects.KindAir, "1h")
		if _, err := pjs.Publish(ctx, rollup, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		st, err := njs.Stream(ctx, subjects.StreamRollups)
		if err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 3*time.Minute, "the province's roll-up at the national hub", func() (bool, string) {
			_, err := st.GetLastMsgForSubject(ctx, rollup)
			return err == nil, fmt.Sprint(err)
		})
	})
}
