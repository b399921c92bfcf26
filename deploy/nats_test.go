package deploy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// TestNATSConfigs loads the cluster and leaf-node sketches with nats-server's
// own config parser: they are not run anywhere yet, but they must at least be
// configs NATS accepts, with the shape DESIGN.md describes.
func TestNATSConfigs(t *testing.T) {
	t.Setenv("NATS_SERVER_NAME", "hub-1")
	t.Setenv("LEAF_PASSWORD_00070", "s3cret")
	for i := 1; i <= 3; i++ {
		t.Setenv(fmt.Sprintf("LEAF_HUB_URL_%d", i), fmt.Sprintf("nats-leaf://ioc-00070:s3cret@hub-%d:7422", i))
	}
	t.Run("hub", func(t *testing.T) {
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
		if o.LeafNode.Port == 0 || len(o.LeafNode.Users) == 0 {
			t.Errorf("leafnodes port %d users %d; want a leaf listener with users", o.LeafNode.Port, len(o.LeafNode.Users))
		}
	})
	t.Run("leaf", func(t *testing.T) {
		o, err := server.ProcessConfigFile("nats/leaf.conf")
		if err != nil {
			t.Fatalf("leaf.conf: %v", err)
		}
		if !o.JetStream || o.JetStreamDomain == "" || o.JetStreamDomain == "hub" {
			t.Errorf("jetstream %v domain %q; want its own domain", o.JetStream, o.JetStreamDomain)
		}
		if o.ServerName == "" || strings.Contains(o.ServerName, "$") {
			t.Errorf("server_name %q; want a fixed name", o.ServerName)
		}
		if len(o.LeafNode.Remotes) != 1 || len(o.LeafNode.Remotes[0].URLs) != 3 {
			t.Fatalf("remotes %v; want one remote with the 3 hub nodes", o.LeafNode.Remotes)
		}
		if u := o.LeafNode.Remotes[0].URLs[0]; u.User.Username() != "ioc-00070" {
			t.Errorf("remote user %q; want ioc-00070, a user of hub.conf", u.User.Username())
		}
	})
}

// hubRoutes returns the hosts of hub.conf's cluster routes, in order, as
// nats-server reads them.
func hubRoutes(t *testing.T) []string {
	t.Helper()
	t.Setenv("NATS_SERVER_NAME", "hub-1")
	t.Setenv("LEAF_PASSWORD_00070", "s3cret")
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
