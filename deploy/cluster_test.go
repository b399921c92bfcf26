package deploy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testkit"
)

// hubNode is one in-process node of the cluster of hub.conf.
type hubNode struct {
	name     string
	storeDir string
	ports    nodePorts
	opts     *server.Options
	srv      *server.Server
}

// freePorts reserves n loopback ports and frees them for the servers to take.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var out []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		_ = ln.Close()
	}
	return out
}

// nodePorts are a node's listeners, all chosen before any node starts: a
// port left to the system (-1) could take another node's cluster port.
type nodePorts struct{ client, cluster, leaf int }

// hubNodeOptions reads hub.conf with nats-server's parser as node name would
// (NATS_SERVER_NAME), then moves its listeners to loopback and its routes to
// the cluster ports of this test: the cluster name, JetStream domain, server
// names and route count are hub.conf's own.
func hubNodeOptions(t *testing.T, name, storeDir string, own nodePorts, clusterPorts []int) *server.Options {
	t.Helper()
	setHubEnv(t, name)
	o, err := server.ProcessConfigFile("nats/hub.conf")
	if err != nil {
		t.Fatalf("hub.conf: %v", err)
	}
	if len(o.Routes) != len(clusterPorts) {
		t.Fatalf("hub.conf has %d routes; this test runs %d nodes", len(o.Routes), len(clusterPorts))
	}
	o.Host, o.Port, o.HTTPPort = "127.0.0.1", own.client, 0
	o.Cluster.Host, o.Cluster.Port = "127.0.0.1", own.cluster
	o.LeafNode.Host, o.LeafNode.Port = "127.0.0.1", own.leaf
	o.Routes = nil
	for _, p := range clusterPorts {
		o.Routes = append(o.Routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	o.StoreDir = storeDir
	// A reservation, not disk used: DEADLETTER (1 GiB) and the map files
	// (1 GiB) reserve their MaxBytes, so the hub needs more than 2 GiB.
	// hub.conf's 100 GB is for a real volume.
	o.JetStreamMaxStore, o.JetStreamMaxMemory = 4<<30, 64<<20
	o.NoSigs, o.NoLog = true, true
	return o
}

func (n *hubNode) start(t *testing.T) {
	t.Helper()
	s, err := server.NewServer(n.opts)
	if err != nil {
		t.Fatalf("starting %s: %v", n.name, err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		t.Fatalf("%s did not accept connections", n.name)
	}
	n.srv = s
}

// TestHubConfCluster runs three nats-servers configured by hub.conf in this
// process, lets the hub create its streams and buckets with
// StreamOptions.Replicas 3 (IOCHUB_STREAM_REPLICAS in cluster.yml and
// deploy/k8s), and stops the leader of FEEDS while items are published:
// every item JetStream acknowledged is in FEEDS once, including after the
// stopped node returns and catches up.
func TestHubConfCluster(t *testing.T) {
	free := freePorts(t, 9)
	own := make([]nodePorts, 3)
	var ports []int
	for i := range own {
		own[i] = nodePorts{client: free[3*i], cluster: free[3*i+1], leaf: free[3*i+2]}
		ports = append(ports, own[i].cluster)
	}
	nodes := make([]*hubNode, 3)
	for i := range nodes {
		name := fmt.Sprintf("hub-%d", i+1)
		dir := t.TempDir()
		nodes[i] = &hubNode{name: name, storeDir: dir, ports: own[i], opts: hubNodeOptions(t, name, dir, own[i], ports)}
	}
	for _, n := range nodes {
		n.start(t)
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			if n.srv != nil {
				n.srv.Shutdown()
			}
		}
	})
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.srv.ClientURL())
	}
	nc, err := natsx.Connect(strings.Join(urls, ","), "deploy-test", nats.UserInfo(natsx.HubUser, testHubPassword))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// First as a hub started without IOCHUB_STREAM_REPLICAS (one replica),
	// then with 3: the roles' restart with the setting moves the streams.
	// An admin command (edge-add) ran before the move: the lock bucket it
	// created with one replica moves with the streams.
	for _, replicas := range []int{1, 3} {
		ensureAll(ctx, t, js, natsx.StreamOptions{Replicas: replicas})
		if replicas == 1 {
			if _, err := natsx.AddEdgeSource(ctx, js, "edge-00070", []string{subjects.FeedUnit("01", "00070")}); err != nil {
				t.Fatalf("edge-add on one replica: %v", err)
			}
		}
	}
	streams := []string{subjects.StreamFeeds, subjects.StreamState, subjects.StreamActions, subjects.StreamDeadletter,
		subjects.StreamRollups, "KV_" + natsx.BucketUnitImports, "OBJ_" + natsx.BucketUnitImportFiles, "KV_" + natsx.BucketLocks}
	for _, name := range streams {
		testkit.Eventually(t, time.Minute, name+" on three current nodes", func() (bool, string) {
			info, err := streamInfo(ctx, js, name)
			if err != nil {
				return false, err.Error()
			}
			c := info.Cluster
			switch {
			case info.Config.Replicas != 3:
				t.Fatalf("%s has %d replicas; want 3", name, info.Config.Replicas)
			case c == nil || c.Leader == "" || len(c.Replicas) != 2:
				return false, fmt.Sprintf("cluster %+v", c)
			case !c.Replicas[0].Current || !c.Replicas[1].Current:
				return false, fmt.Sprintf("replicas %+v %+v not current yet", *c.Replicas[0], *c.Replicas[1])
			case c.Name != nodes[0].opts.Cluster.Name:
				t.Fatalf("%s is in cluster %q; want hub.conf's %q", name, c.Name, nodes[0].opts.Cluster.Name)
			}
			return true, ""
		})
	}

	// Stop FEEDS's leader, then publish: each item is retried with its
	// message id until acknowledged, as the ingest's sources retry.
	info, err := streamInfo(ctx, js, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	var stopped *hubNode
	for _, n := range nodes {
		if n.name == info.Cluster.Leader {
			stopped = n
		}
	}
	if stopped == nil {
		t.Fatalf("FEEDS's leader %q is none of the nodes", info.Cluster.Leader)
	}
	const items = 200
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			id := fmt.Sprintf("deploy-test-%d", i)
			testkit.Eventually(t, time.Minute, "the ack of "+id, func() (bool, string) {
				pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
				defer pcancel()
				_, err := js.Publish(pctx, subjects.Feed("01", "00070", "air"), []byte(id), jetstream.WithMsgID(id))
				if err != nil {
					return false, err.Error()
				}
				return true, ""
			})
		}
	}
	publish(0, items/2)
	stopped.srv.Shutdown()
	stopped.srv.WaitForShutdown()
	publish(items/2, items)
	// Publish the first half again: the duplicate window keeps each once.
	publish(0, items/2)
	wantMsgs := func(what string) {
		testkit.Eventually(t, time.Minute, what, func() (bool, string) {
			info, err := streamInfo(ctx, js, subjects.StreamFeeds)
			if err != nil {
				return false, err.Error()
			}
			if info.State.Msgs > items {
				t.Fatalf("FEEDS holds %d messages; want %d (an item stored twice)", info.State.Msgs, items)
			}
			return info.State.Msgs == items, fmt.Sprintf("%d messages, leader %q", info.State.Msgs, info.Cluster.Leader)
		})
	}
	wantMsgs(fmt.Sprintf("FEEDS to hold the %d acknowledged items on two nodes", items))

	// The stopped node returns with its name and store, and catches up.
	stopped.opts = hubNodeOptions(t, stopped.name, stopped.storeDir, stopped.ports, ports)
	stopped.start(t)
	testkit.Eventually(t, time.Minute, stopped.name+" current again in FEEDS", func() (bool, string) {
		info, err := streamInfo(ctx, js, subjects.StreamFeeds)
		if err != nil || info.Cluster == nil {
			return false, fmt.Sprint(err)
		}
		peers := []string{info.Cluster.Leader}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				return false, fmt.Sprintf("replica %s current=%v offline=%v lag=%d", r.Name, r.Current, r.Offline, r.Lag)
			}
			peers = append(peers, r.Name)
		}
		return len(peers) == 3, fmt.Sprintf("peers %v", peers)
	})
	wantMsgs("FEEDS to hold every item once after the node returned")

	// Every item is in FEEDS once: read each stored message by sequence.
	stream, err := js.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	info, err = streamInfo(ctx, js, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		var data string
		testkit.Eventually(t, 30*time.Second, fmt.Sprintf("FEEDS message %d", seq), func() (bool, string) {
			gctx, gcancel := context.WithTimeout(ctx, 3*time.Second)
			defer gcancel()
			m, err := stream.GetMsg(gctx, seq)
			if err != nil {
				return false, err.Error()
			}
			data = string(m.Data)
			return true, ""
		})
		if seen[data] {
			t.Fatalf("%s twice in FEEDS", data)
		}
		seen[data] = true
	}
	for i := range items {
		if id := fmt.Sprintf("deploy-test-%d", i); !seen[id] {
			t.Errorf("%s acknowledged but not in FEEDS", id)
		}
	}
}

// streamInfo asks the stream's current leader for its info.
func streamInfo(ctx context.Context, js jetstream.JetStream, name string) (*jetstream.StreamInfo, error) {
	ictx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	s, err := js.Stream(ictx, name)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ictx)
	if err != nil {
		return nil, err
	}
	if info.Cluster == nil {
		return nil, errors.New("no cluster info")
	}
	return info, nil
}

// ensureAll creates or updates the hub's streams and buckets with o, retrying
// until the cluster answers.
func ensureAll(ctx context.Context, t *testing.T, js jetstream.JetStream, o natsx.StreamOptions) {
	t.Helper()
	testkit.Eventually(t, time.Minute, fmt.Sprintf("the streams created with %d replicas", o.Replicas), func() (bool, string) {
		// One attempt at a time: a JetStream API request sent before the
		// meta leader is elected gets no answer and waits for its context.
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		defer acancel()
		if err := natsx.EnsureStreams(actx, js, o); err != nil {
			return false, err.Error()
		}
		if err := natsx.EnsureImportBuckets(actx, js, o); err != nil {
			return false, err.Error()
		}
		return true, ""
	})

}
