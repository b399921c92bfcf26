package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/loadgen"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
)

// natsCluster starts n clustered nats-servers with JetStream in this process
// (loopback, a store directory each) and returns them once JetStream has a
// meta leader; they are shut down at the end of the test.
func natsCluster(t testing.TB, n int) []*server.Server {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range 2 * n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		_ = ln.Close()
	}
	var routes []*url.URL
	for i := range n {
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", ports[2*i+1])})
	}
	servers := make([]*server.Server, n)
	for i := range n {
		o := &server.Options{
			ServerName: fmt.Sprintf("hub-%d", i+1), Host: "127.0.0.1", Port: ports[2*i],
			JetStream: true, StoreDir: t.TempDir(), JetStreamMaxStore: 4 << 30, JetStreamMaxMemory: 64 << 20,
			Cluster: server.ClusterOpts{Name: "iochub", Host: "127.0.0.1", Port: ports[2*i+1]},
			Routes:  routes, NoLog: true, NoSigs: true,
		}
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		servers[i] = s
		t.Cleanup(s.Shutdown)
	}
	for _, s := range servers {
		if !s.ReadyForConnections(30 * time.Second) {
			t.Fatalf("%s did not accept connections", s.Name())
		}
	}
	testkit.Eventually(t, time.Minute, "a JetStream meta leader", func() (bool, string) {
		for _, s := range servers {
			if s.JetStreamIsLeader() {
				return true, ""
			}
		}
		return false, "no leader yet"
	})
	return servers
}

// clusterEnv starts a cluster of n NATS servers (natsCluster) and connects
// to all of them, reconnecting without end (a test may stop a node).
func clusterEnv(t testing.TB, n int) ([]*server.Server, *testenv.NATSEnv) {
	t.Helper()
	servers := natsCluster(t, n)
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return servers, &testenv.NATSEnv{URL: urls[0], Conn: nc, JS: js}
}

// TestClusterNodeLossUnderLoad runs the whole hub on a 3-node NATS cluster
// with every stream replicated 3 times, offers load through the ingest and
// stops the node leading FEEDS in the middle of it: every item the ingest
// answered accepted is stored in PostGIS exactly once (items answered
// otherwise during the failover may or may not be; their senders retry).
func TestClusterNodeLossUnderLoad(t *testing.T) {
	servers, ne := clusterEnv(t, 3)
	js := ne.JS
	db := testenv.PostGISWithUnits(t)
	h := startHubTB(t, "all", ne, db, func(c *config) {
		c.Streams.Replicas = 3
		c.Ingest.Limits.SourceRate = -1
	})
	ctx := context.Background()

	// Stop FEEDS's leader once 1 500 items are on FEEDS (a quarter of the load).
	stopped := make(chan string, 1)
	go func() {
		st, err := js.Stream(ctx, subjects.StreamFeeds)
		if err != nil {
			stopped <- "error: " + err.Error()
			return
		}
		var info *jetstream.StreamInfo
		for deadline := time.Now().Add(time.Minute); ; {
			info, err = st.Info(ctx)
			if err == nil && info.Cluster != nil && info.State.Msgs >= 1500 {
				break
			}
			if time.Now().After(deadline) {
				stopped <- fmt.Sprintf("error: FEEDS never held 1 500 items: %v", err)
				return
			}
			time.Sleep(20 * time.Millisecond) // polling the condition
		}
		for _, s := range servers {
			if s.Name() == info.Cluster.Leader {
				s.Shutdown()
				stopped <- s.Name()
				return
			}
		}
		stopped <- "error: no server named " + info.Cluster.Leader
	}()
	const run = "clu"
	res, err := loadgen.Run(ctx, loadgen.Config{URL: h.url, Token: devToken, Province: "01", Stations: 200, Batch: 50,
		Rate: 1000, Duration: 6 * time.Second, Workers: 4, Drain: 5 * time.Second, RunID: run, KeepAccepted: true})
	if err != nil {
		t.Logf("load: %v", err) // the live view may be cut while its consumer moves; storage is what is checked
	}
	leader := <-stopped
	if strings.HasPrefix(leader, "error") {
		t.Fatalf("stopping FEEDS's leader: %s", leader)
	}
	t.Logf("stopped %s, FEEDS's leader, under load; load: %s", leader, res)
	if res.Accepted == 0 {
		t.Fatalf("nothing accepted: %s", res)
	}
	stored := map[string]int{}
	testkit.Eventually(t, 2*time.Minute, "every accepted item stored", func() (bool, string) {
		rows, err := db.Pool.Query(ctx, `SELECT event_id FROM air_observation WHERE station_id LIKE $1`, "lg-"+run+"-%")
		if err != nil {
			return false, err.Error()
		}
		clear(stored)
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return false, err.Error()
			}
			id, _, _ = strings.Cut(id, "@")
			stored[id]++
		}
		rows.Close()
		missing := 0
		for _, id := range res.AcceptedIDs {
			if stored[id] == 0 {
				missing++
			}
		}
		return missing == 0, fmt.Sprintf("%d of %d accepted items not stored yet (%d rows)", missing, len(res.AcceptedIDs), len(stored))
	})
	for id, n := range stored {
		if n != 1 {
			t.Errorf("item %s stored %d times", id, n)
		}
	}
}

// TestClusterDeliversEachItemOnce runs the whole hub on a 3-node NATS
// cluster with every stream replicated 3 times and offers it 2,000 events/s
// for 5 s: every station's newest state reaches the live view, and FEEDS's
// aggregator consumer delivered each message once (its delivery count is
// its last stream sequence, nothing redelivered, nothing left unacked). A
// reader that fetched batch by batch lost deliveries here: the server sends
// a replicated consumer's deliveries once its replicas agree on them, and
// the status that ends a fetch overtook them into a dropped inbox, so they
// came again only after AckWait (aggregator/consume.go).
func TestClusterDeliversEachItemOnce(t *testing.T) {
	_, ne := clusterEnv(t, 3)
	js := ne.JS
	db := testenv.PostGISWithUnits(t)
	h := startHubTB(t, "all", ne, db, func(c *config) {
		c.Streams.Replicas = 3
		c.Ingest.Limits.SourceRate = -1
		c.Ingest.Limits.SourceConcurrency = 16
		// Longer than the test: a slow machine's unacked batch is not
		// redelivered (and counted) while it waits, and a lost delivery
		// stays unacked until the test gives up.
		c.Aggregator.Aggregator.AckWait = 5 * time.Minute
	})
	ctx := context.Background()
	res, err := loadgen.Run(ctx, loadgen.Config{URL: h.url, Token: devToken, Province: "01", Rate: 2000,
		Duration: 5 * time.Second, Drain: 30 * time.Second})
	if err != nil {
		t.Fatalf("load: %v (%s)", err, res)
	}
	t.Logf("load: %s", res)
	if res.Accepted == 0 || res.Behind != 0 {
		t.Errorf("%d accepted, %d stations behind at the end; want some, and none behind", res.Accepted, res.Behind)
	}
	var ci *jetstream.ConsumerInfo
	testkit.Eventually(t, time.Minute, "the aggregator's consumer caught up", func() (bool, string) {
		c, err := js.Consumer(ctx, subjects.StreamFeeds, "aggregator")
		if err != nil {
			return false, err.Error()
		}
		ci = c.CachedInfo()
		return ci.NumPending == 0 && ci.NumAckPending == 0, fmt.Sprintf("%d pending, %d unacked", ci.NumPending, ci.NumAckPending)
	})
	if d := ci.Delivered; d.Consumer != d.Stream || ci.NumRedelivered != 0 || d.Stream < uint64(res.Accepted) {
		t.Errorf("FEEDS's aggregator consumer made %d deliveries up to stream sequence %d, %d redelivered now, for %d accepted items; want one delivery each",
			d.Consumer, d.Stream, ci.NumRedelivered, res.Accepted)
	}
}
