package natsx

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testkit"
)

// pair is a hub with its streams and an edge leaf node with its FEEDS, both in process.
type pair struct {
	hub, edge     *server.Server
	hubJS, edgeJS jetstream.JetStream
	edgeNC        *nats.Conn
	domain        string
	leaf          *url.URL
	edgeDir       string
}

func startPair(t *testing.T, hubPassword string) *pair {
	t.Helper()
	ctx := context.Background()
	hc := EmbeddedConfig{StoreDir: t.TempDir(), Port: -1, LeafPort: -1, HubPassword: hubPassword}
	if hubPassword != "" {
		hc.LeafUsers = []*server.User{EdgeLeafUser("edge-00070", "edge-secret")}
	}
	hub, err := StartEmbedded(hc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hub.Shutdown)
	var hubOpts []nats.Option
	if hubPassword != "" {
		hubOpts = append(hubOpts, nats.UserInfo(HubUser, hubPassword))
	}
	hnc, err := Connect(hub.ClientURL(), "hub", hubOpts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hnc.Close)
	p := &pair{hub: hub}
	if p.hubJS, err = jetstream.New(hnc); err != nil {
		t.Fatal(err)
	}
	if err := EnsureStreams(ctx, p.hubJS, StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	if p.domain, err = EdgeDomain("00070"); err != nil {
		t.Fatal(err)
	}
	leaf, err := url.Parse(LeafURL(hub))
	if err != nil {
		t.Fatal(err)
	}
	if hubPassword != "" {
		leaf.User = url.UserPassword(EdgeUser("00070"), "edge-secret")
	}
	p.leaf, p.edgeDir = leaf, t.TempDir()
	p.startEdge(t)
	return p
}

// startEdge starts (or restarts) the edge on its store directory.
func (p *pair) startEdge(t *testing.T) {
	t.Helper()
	var err error
	p.edge, err = StartEmbedded(EmbeddedConfig{StoreDir: p.edgeDir, Port: -1, ServerName: EdgeServerName("00070"),
		Domain: p.domain, LeafRemotes: []*url.URL{p.leaf}, LeafDeny: EdgeLeafDeny, LeafReconnect: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.edge.Shutdown)
	if p.edgeNC, err = Connect(p.edge.ClientURL(), "edge"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.edgeNC.Close)
	if p.edgeJS, err = jetstream.New(p.edgeNC); err != nil {
		t.Fatal(err)
	}
	if err := EnsureEdgeStream(context.Background(), p.edgeJS, EdgeStreamOptions{}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the edge's leaf connection", testkit.Holds(func() bool { return p.edge.NumLeafNodes() == 1 }))
}

// stopEdge shuts the edge down (a clean shutdown: JetStream flushes; a power
// cut relies on the edge syncing every write, EmbeddedConfig.SyncAlways).
func (p *pair) stopEdge() {
	p.edgeNC.Close()
	p.edge.Shutdown()
	p.edge.WaitForShutdown()
}

func streamMsgs(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// hoanKiem is the filter of the edge of ward 00070 (Hoàn Kiếm, Hà Nội).
var hoanKiem = []string{subjects.FeedUnit("01", "00070")}

// TestEdgeSourcing: what the edge stores reaches the hub's FEEDS only by
// sourcing (a publish on ioc.feed.> at the edge does not cross the leaf
// connection), once per message id, and the hub's restart (EnsureStreams)
// keeps the source.
func TestEdgeSourcing(t *testing.T) {
	for _, pw := range []string{"", "hub-secret"} {
		t.Run(fmt.Sprintf("password=%t", pw != ""), func(t *testing.T) {
			p := startPair(t, pw)
			ctx := context.Background()
			const n = 50
			subj := subjects.Feed("01", "00070", subjects.KindAir)
			for i := range n {
				ack, err := p.edgeJS.Publish(ctx, subj, []byte(fmt.Sprint(i)), jetstream.WithMsgID(fmt.Sprint("id-", i)))
				if err != nil {
					t.Fatal(err)
				}
				if ack.Domain != p.domain {
					t.Fatalf("ack from domain %q; want %q (the edge's own stream)", ack.Domain, p.domain)
				}
			}
			// Not yet a source: the leaf connection must not carry the items.
			if got := streamMsgs(t, p.hubJS); got != 0 {
				t.Fatalf("hub FEEDS holds %d items before sourcing; want 0 (ioc.feed.> is denied on the leaf)", got)
			}
			if added, err := AddEdgeSource(ctx, p.hubJS, p.domain, hoanKiem); err != nil || added != EdgeNew {
				t.Fatalf("AddEdgeSource = %v, %v; want EdgeNew", added, err)
			}
			if added, err := AddEdgeSource(ctx, p.hubJS, p.domain, hoanKiem); err != nil || added != EdgeUnchanged { // idempotent
				t.Fatalf("AddEdgeSource again = %v, %v; want EdgeUnchanged", added, err)
			}
			testkit.Eventually(t, 20*time.Second, "the hub sourcing the edge", func() (bool, string) {
				got := streamMsgs(t, p.hubJS)
				return got == n, fmt.Sprintf("hub FEEDS holds %d of %d", got, n)
			})
			// The hub restarts its streams: the edge stays a source.
			if err := EnsureStreams(ctx, p.hubJS, StreamOptions{}); err != nil {
				t.Fatal(err)
			}
			srcs, err := EdgeSources(ctx, p.hubJS)
			if err != nil {
				t.Fatal(err)
			}
			if len(srcs) != 1 || srcs[0].Domain != p.domain {
				t.Fatalf("edge sources after EnsureStreams = %+v; want %s", srcs, p.domain)
			}
			// A repeated id at the edge within its window is stored once there and at the hub.
			if _, err := p.edgeJS.Publish(ctx, subj, []byte("again"), jetstream.WithMsgID("id-0")); err != nil {
				t.Fatal(err)
			}
			if _, err := p.edgeJS.Publish(ctx, subj, []byte("last"), jetstream.WithMsgID("id-last")); err != nil {
				t.Fatal(err)
			}
			testkit.Eventually(t, 20*time.Second, "the last item sourced", func() (bool, string) {
				got := streamMsgs(t, p.hubJS)
				return got == n+1, fmt.Sprintf("hub FEEDS holds %d of %d", got, n+1)
			})
			// In the edge's order.
			ids := hubMsgIDs(t, p.hubJS, n+1)
			for i, got := range ids {
				want := fmt.Sprint("id-", i)
				if i == n {
					want = "id-last"
				}
				if got != want {
					t.Fatalf("hub FEEDS item %d has id %q; want %q", i, got, want)
				}
			}
			if len(ids) != n+1 {
				t.Fatalf("read %d items from the hub; want %d", len(ids), n+1)
			}
			if err := RemoveEdgeSource(ctx, p.hubJS, p.domain); err != nil {
				t.Fatal(err)
			}
			if srcs, err := EdgeSources(ctx, p.hubJS); err != nil || len(srcs) != 0 {
				t.Fatalf("edge sources after removal = %+v, %v; want none", srcs, err)
			}
		})
	}
}

// TestEdgeSourcingFromTheEdgesFirstItem: a hub FEEDS that lost its first
// item (max age, on every hub after a week) sources an edge added later from
// the edge's first item, not from the time of the hub's last message: what
// the edge accepted before the hub's newest item arrives too.
func TestEdgeSourcingFromTheEdgesFirstItem(t *testing.T) {
	p := startPair(t, "")
	ctx := context.Background()
	hubSubj := subjects.Feed("01", "00166", subjects.KindAir)
	for i := range 2 {
		if _, err := p.hubJS.Publish(ctx, hubSubj, []byte("hub"), jetstream.WithMsgID(fmt.Sprint("hub-", i))); err != nil {
			t.Fatal(err)
		}
	}
	st, err := p.hubJS.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteMsg(ctx, 1); err != nil { // as max age would
		t.Fatal(err)
	}
	subj := subjects.Feed("01", "00070", subjects.KindAir)
	for i := range 5 {
		if _, err := p.edgeJS.Publish(ctx, subj, []byte(fmt.Sprint(i)), jetstream.WithMsgID(fmt.Sprint("edge-", i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.hubJS.Publish(ctx, hubSubj, []byte("hub"), jetstream.WithMsgID("hub-2")); err != nil {
		t.Fatal(err)
	}
	if _, err := AddEdgeSource(ctx, p.hubJS, p.domain, hoanKiem); err != nil {
		t.Fatal(err)
	}
	if _, err := p.edgeJS.Publish(ctx, subj, []byte("5"), jetstream.WithMsgID("edge-5")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "the edge's 6 items at the hub beside its own 2", func() (bool, string) {
		got := streamMsgs(t, p.hubJS)
		return got == 8, fmt.Sprintf("hub FEEDS holds %d of 8", got)
	})
}

// TestEdgeSourcingThroughItsFilters: the hub copies an edge's items of its
// own units only, whatever else the edge's FEEDS holds (a compromised edge
// writing items of another ward or province); an edge given other filters
// (its units changed) is sourced through them from the item after the last
// one copied: nothing copied twice, the items the old filters left out
// stay out, and the new ones come.
func TestEdgeSourcingThroughItsFilters(t *testing.T) {
	p := startPair(t, "")
	ctx := context.Background()
	own, ward, province := subjects.Feed("01", "00070", subjects.KindAir), subjects.Feed("01", "00004", subjects.KindAir), subjects.Feed("79", "26734", subjects.KindAir)
	publish := func(subj, id string) {
		t.Helper()
		if _, err := p.edgeJS.Publish(ctx, subj, []byte(id), jetstream.WithMsgID(id)); err != nil {
			t.Fatal(err)
		}
	}
	publish(own, "own-1")
	publish(ward, "ward-1")
	publish(province, "province-1")
	publish(own, "own-2")
	if _, err := AddEdgeSource(ctx, p.hubJS, p.domain, hoanKiem); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "the edge's own items at the hub", func() (bool, string) {
		got := streamMsgs(t, p.hubJS)
		return got == 2, fmt.Sprintf("hub FEEDS holds %d of 2", got)
	})
	both := []string{subjects.FeedUnit("01", "00004"), hoanKiem[0]}
	added, err := AddEdgeSource(ctx, p.hubJS, p.domain, both)
	if err != nil || added != EdgeRefiltered {
		t.Fatalf("AddEdgeSource with other filters = %v, %v; want EdgeRefiltered", added, err)
	}
	publish(ward, "ward-2")
	publish(own, "own-3")
	publish(province, "province-2")
	testkit.Eventually(t, 20*time.Second, "the items after the new filters at the hub", func() (bool, string) {
		got := streamMsgs(t, p.hubJS)
		return got == 4, fmt.Sprintf("hub FEEDS holds %d of 4", got)
	})
	ids := hubMsgIDs(t, p.hubJS, 10)
	if want := []string{"own-1", "own-2", "ward-2", "own-3"}; !slices.Equal(ids, want) {
		t.Fatalf("hub FEEDS holds %v; want %v (no other unit's item, none twice)", ids, want)
	}
	srcs, err := EdgeSources(ctx, p.hubJS)
	if err != nil || len(srcs) != 1 || !slices.Equal(srcs[0].Filters, both) {
		t.Fatalf("EdgeSources = %+v, %v; want the edge with filters %v", srcs, err, both)
	}
	for _, bad := range [][]string{nil, {"ioc.feed.>"}, {">"}, {subjects.Feed("01", "00070", subjects.KindAir)}} {
		if _, err := AddEdgeSource(ctx, p.hubJS, p.domain, bad); !errors.Is(err, ErrEdgeFilters) {
			t.Errorf("AddEdgeSource with filters %q: %v; want ErrEdgeFilters", bad, err)
		}
	}
}

func TestAddEdgeSourceRefusesShortWindow(t *testing.T) {
	js := embeddedJS(t)
	ctx := context.Background()
	if err := EnsureStreams(ctx, js, StreamOptions{DuplicateWindow: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := AddEdgeSource(ctx, js, "edge-01", []string{subjects.FeedProvince("01")}); !errors.Is(err, ErrHubWindow) {
		t.Fatalf("AddEdgeSource with a 1m window: %v; want ErrHubWindow", err)
	}
}

func TestEdgeDomain(t *testing.T) {
	for _, tc := range []struct {
		unit, want string
		ok         bool
	}{
		{"00070", "edge-00070", true},
		{"01", "edge-01", true},
		{"ha_noi-1", "edge-ha_noi-1", true},
		{"", "", false},
		{"01.02", "", false},
		{"01 02", "", false},
		{"*", "", false},
		{">", "", false},
	} {
		got, err := EdgeDomain(tc.unit)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("EdgeDomain(%q) = %q, %v; want %q, ok %t", tc.unit, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrEdgeUnit) {
			t.Errorf("EdgeDomain(%q) error %v is not ErrEdgeUnit", tc.unit, err)
		}
	}
	if d, ok := edgeDomainOf(EdgeAPIPrefix("edge-01")); !ok || d != "edge-01" {
		t.Fatalf("edgeDomainOf(EdgeAPIPrefix) = %q, %t", d, ok)
	}
}

// TestEdgeStreamFullRefusesNew: a full edge FEEDS refuses the next item and
// keeps the first one (an accepted item is never dropped to make room).
func TestEdgeStreamFullRefusesNew(t *testing.T) {
	s, err := StartEmbedded(EmbeddedConfig{StoreDir: t.TempDir(), Port: -1, Domain: "edge-01"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	nc, err := Connect(s.ClientURL(), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := EnsureEdgeStream(ctx, js, EdgeStreamOptions{MaxBytes: 8 << 10, Memory: true}); err != nil {
		t.Fatal(err)
	}
	subj := subjects.Feed("01", "00070", subjects.KindAir)
	body := make([]byte, 1000)
	var refused error
	for i := 0; i < 100 && refused == nil; i++ {
		_, refused = js.Publish(ctx, subj, body, jetstream.WithMsgID(fmt.Sprint("id-", i)))
	}
	if refused == nil {
		t.Fatal("100 KB into an 8 KiB stream: nothing refused")
	}
	m, err := js.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	first, err := m.GetMsg(ctx, 1)
	if err != nil {
		t.Fatalf("the first item after the stream filled: %v; want it kept", err)
	}
	if got := first.Header.Get(jetstream.MsgIDHeader); got != "id-0" {
		t.Fatalf("sequence 1 is %q; want id-0", got)
	}
}

// TestEdgeRestartKeepsItems: an edge restarted on its store directory (same
// server name and domain) still holds what it accepted before, and the hub
// sources all of it once, in order, with what came after.
func TestEdgeRestartKeepsItems(t *testing.T) {
	p := startPair(t, "")
	ctx := context.Background()
	subj := subjects.Feed("01", "00070", subjects.KindAir)
	publish := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if _, err := p.edgeJS.Publish(ctx, subj, []byte(fmt.Sprint(i)), jetstream.WithMsgID(fmt.Sprint("id-", i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(0, 20)
	if _, err := AddEdgeSource(ctx, p.hubJS, p.domain, hoanKiem); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, "the first items sourced", func() (bool, string) {
		got := streamMsgs(t, p.hubJS)
		return got == 20, fmt.Sprintf("hub FEEDS holds %d of 20", got)
	})
	p.stopEdge()
	p.startEdge(t)
	if got := streamMsgs(t, p.edgeJS); got != 20 {
		t.Fatalf("the restarted edge holds %d items; want the 20 it accepted", got)
	}
	publish(20, 40)
	publish(0, 5) // repeats within the edge's window: dropped there
	testkit.Eventually(t, 60*time.Second, "every item sourced after the restart", func() (bool, string) {
		got := streamMsgs(t, p.hubJS)
		return got == 40, fmt.Sprintf("hub FEEDS holds %d of 40", got)
	})
	ids := hubMsgIDs(t, p.hubJS, 40)
	for i, got := range ids {
		if want := fmt.Sprint("id-", i); got != want {
			t.Fatalf("hub FEEDS item %d is %q; want %q", i, got, want)
		}
	}
	if len(ids) != 40 {
		t.Fatalf("read %d items from the hub; want 40", len(ids))
	}
}

// hubMsgIDs are the message ids of the first items (at most most) of the
// FEEDS of js, in its order.
func hubMsgIDs(t *testing.T, js jetstream.JetStream, most int) []string {
	t.Helper()
	c, err := js.OrderedConsumer(context.Background(), subjects.StreamFeeds, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.FetchNoWait(most)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for m := range b.Messages() {
		ids = append(ids, m.Headers().Get(jetstream.MsgIDHeader))
	}
	return ids
}

// leafSubs are the subscriptions a server holds on its leaf connection.
func leafSubs(t *testing.T, s *server.Server) []string {
	t.Helper()
	lz, err := s.Leafz(&server.LeafzOptions{Subscriptions: true})
	if err != nil || len(lz.Leafs) != 1 {
		t.Fatalf("leafz: %+v, %v; want one leaf connection", lz, err)
	}
	return lz.Leafs[0].Subs
}

// TestEdgeLeafUserScope: across the leaf connection of an edge logged in as
// EdgeLeafUser, interest in other subjects crosses in neither direction (so
// no message on them can), while the hub's JetStream API requests for the
// edge's domain do; logged in as the hub's user, it does cross (the control).
func TestEdgeLeafUserScope(t *testing.T) {
	for _, restricted := range []bool{true, false} {
		t.Run(fmt.Sprintf("edge_user=%t", restricted), func(t *testing.T) {
			ctx := context.Background()
			hc := EmbeddedConfig{StoreDir: t.TempDir(), Port: -1, LeafPort: -1, HubPassword: "hub-secret",
				LeafUsers: []*server.User{EdgeLeafUser("edge-00070", "edge-secret")}}
			hub, err := StartEmbedded(hc)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(hub.Shutdown)
			leaf, err := url.Parse(LeafURL(hub))
			if err != nil {
				t.Fatal(err)
			}
			leaf.User = url.UserPassword(HubUser, "hub-secret")
			if restricted {
				leaf.User = url.UserPassword(EdgeUser("00070"), "edge-secret")
			}
			edge, err := StartEmbedded(EmbeddedConfig{StoreDir: t.TempDir(), Port: -1, ServerName: EdgeServerName("00070"),
				Domain: "edge-00070", LeafRemotes: []*url.URL{leaf}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(edge.Shutdown)
			testkit.Eventually(t, 10*time.Second, "the leaf connection", testkit.Holds(func() bool { return edge.NumLeafNodes() == 1 }))
			hnc, err := Connect(hub.ClientURL(), "hub", nats.UserInfo(HubUser, "hub-secret"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(hnc.Close)
			enc, err := Connect(edge.ClientURL(), "edge")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(enc.Close)
			for _, c := range []*nats.Conn{hnc, enc} {
				if _, err := c.SubscribeSync("secret.>"); err != nil {
					t.Fatal(err)
				}
				if err := c.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			// Another edge's deliveries: this edge may not publish there.
			other := EdgeDeliverPrefix("edge-00004") + ".>"
			if _, err := hnc.SubscribeSync(other); err != nil {
				t.Fatal(err)
			}
			// The hub sources one item from the edge: both ends have processed
			// the subscriptions above once it has arrived.
			hjs, err := jetstream.New(hnc)
			if err != nil {
				t.Fatal(err)
			}
			ejs, err := jetstream.New(enc)
			if err != nil {
				t.Fatal(err)
			}
			if err := EnsureStreams(ctx, hjs, StreamOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := EnsureEdgeStream(ctx, ejs, EdgeStreamOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := AddEdgeSource(ctx, hjs, "edge-00070", hoanKiem); err != nil {
				t.Fatal(err)
			}
			if _, err := ejs.Publish(ctx, subjects.Feed("01", "00070", subjects.KindAir), []byte("x")); err != nil {
				t.Fatal(err)
			}
			testkit.Eventually(t, time.Minute, "the hub sourcing the edge's item", func() (bool, string) {
				got := streamMsgs(t, hjs)
				return got == 1, fmt.Sprintf("hub FEEDS holds %d", got)
			})
			has := func(s *server.Server, subj string) bool { return slices.Contains(leafSubs(t, s), subj) }
			if restricted {
				if has(hub, "secret.>") || has(edge, "secret.>") || has(edge, other) {
					t.Fatalf("interest crossed the edge user's leaf connection: hub side %v, edge side %v", leafSubs(t, hub), leafSubs(t, edge))
				}
				return
			}
			testkit.Eventually(t, 10*time.Second, "interest in secret.> on both sides and in another edge's deliveries (control)", testkit.Holds(func() bool {
				return has(hub, "secret.>") && has(edge, "secret.>") && has(edge, other)
			}))
		})
	}
}

// TestEdgeUserConfig loads the generated user entry with nats-server's own
// configuration loader: it must give the edge exactly EdgeLeafUser.
func TestEdgeUserConfig(t *testing.T) {
	t.Setenv("T_EDGE_PW", "edge-pw")
	entry, err := EdgeUserConfig("00070", "$T_EDGE_PW")
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "auth.conf")
	if err := os.WriteFile(conf, []byte("authorization {\n  users: [\n"+entry+"  ]\n}\nleafnodes { port: -1, no_advertise: true }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("nats-server refuses the generated entry: %v\n%s", err, entry)
	}
	want := EdgeLeafUser("edge-00070", "edge-pw")
	if len(opts.Users) != 1 {
		t.Fatalf("users %+v; want the edge's", opts.Users)
	}
	u := opts.Users[0]
	_, leafOnly := u.AllowedConnectionTypes["LEAFNODE"]
	if u.Username != want.Username || u.Password != "edge-pw" || !leafOnly || len(u.AllowedConnectionTypes) != 1 || u.Permissions == nil ||
		!slices.Equal(u.Permissions.Publish.Allow, want.Permissions.Publish.Allow) ||
		!slices.Equal(u.Permissions.Subscribe.Allow, want.Permissions.Subscribe.Allow) {
		t.Fatalf("edge user %+v (permissions %+v); want EdgeLeafUser", u, u.Permissions)
	}
	if _, err := EdgeUserConfig("0.1", "$X"); !errors.Is(err, ErrEdgeUnit) {
		t.Fatalf("EdgeUserConfig of unit 0.1: %v; want ErrEdgeUnit", err)
	}
}

// racingJS is a JetStream whose first read of FEEDS lets add run first (on
// the real JetStream) and then answers with what it read before: a
// deterministic interleaving of an `iochub serve` start (EnsureStreams) with
// an admin's edge-add.
type racingJS struct {
	jetstream.JetStream
	add    func()
	writes []string // the streams written
}

func (r *racingJS) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	r.writes = append(r.writes, cfg.Name)
	return r.JetStream.CreateOrUpdateStream(ctx, cfg)
}

func (r *racingJS) CreateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	r.writes = append(r.writes, cfg.Name)
	return r.JetStream.CreateStream(ctx, cfg)
}

func (r *racingJS) UpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	r.writes = append(r.writes, cfg.Name)
	return r.JetStream.UpdateStream(ctx, cfg)
}

func (r *racingJS) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	st, err := r.JetStream.Stream(ctx, name)
	if name == subjects.StreamFeeds && r.add != nil {
		add := r.add
		r.add = nil
		add()
	}
	return st, err
}

// TestEnsureStreamsKeepsAnEdgeAddedMeanwhile: every `iochub serve` start
// runs EnsureStreams, which reads each stream's sources and writes them back
// with the stream's config. An edge-add landing between the read and the
// write was wiped by the write: the hub stopped sourcing the edge, silently
// (edge-add had answered that it sources it). A stream whose config is
// already what EnsureStreams wants is not written at all.
func TestEnsureStreamsKeepsAnEdgeAddedMeanwhile(t *testing.T) {
	js := embeddedJS(t)
	ctx := context.Background()
	if err := EnsureStreams(ctx, js, StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	r := &racingJS{JetStream: js, add: func() {
		if _, err := AddEdgeSource(ctx, js, "edge-00070", hoanKiem); err != nil {
			t.Fatal(err)
		}
	}}
	if err := EnsureStreams(ctx, r, StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	if r.add != nil {
		t.Fatal("the edge-add did not run")
	}
	if len(r.writes) != 0 {
		t.Errorf("EnsureStreams wrote %v, configured already; want no write", r.writes)
	}
	srcs, err := EdgeSources(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 1 || srcs[0].Domain != "edge-00070" {
		t.Fatalf("the hub's FEEDS sources %+v after a restart that raced an edge-add; want edge-00070", srcs)
	}
	// A change of config is still written (and keeps the sources).
	if err := EnsureStreams(ctx, js, StreamOptions{FeedsMaxAge: 48 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := st.CachedInfo().Config; cfg.MaxAge != 48*time.Hour || len(cfg.Sources) != 1 {
		t.Fatalf("FEEDS max age %s, %d sources after a new --feeds-max-age; want 48h and the edge kept", cfg.MaxAge, len(cfg.Sources))
	}
}

// TestEnsureStreamsUpdateKeepsAnEdgeAddedMeanwhile: a start that changes
// FEEDS's configuration (a new --feeds-max-age) writes it, and an edge-add
// landing between its first read and its write must stay: the write is
// made under the lock of the sources, with the sources read again under it.
func TestEnsureStreamsUpdateKeepsAnEdgeAddedMeanwhile(t *testing.T) {
	js := embeddedJS(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := EnsureStreams(ctx, js, StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := AddEdgeSource(ctx, js, "edge-00070", hoanKiem); err != nil {
		t.Fatal(err)
	}
	r := &racingJS{JetStream: js, add: func() {
		if _, err := AddEdgeSource(ctx, js, "edge-00071", []string{subjects.FeedUnit("01", "00071")}); err != nil {
			t.Error(err)
		}
	}}
	if err := EnsureStreams(ctx, r, StreamOptions{FeedsMaxAge: 48 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if r.add != nil {
		t.Fatal("the edge-add did not run")
	}
	// ACTIONS keeps its actions for --feeds-max-age too.
	if want := []string{subjects.StreamFeeds, subjects.StreamActions}; !slices.Equal(r.writes, want) {
		t.Errorf("EnsureStreams wrote %v; want %v", r.writes, want)
	}
	st, err := js.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	var got []string
	for _, s := range cfg.Sources {
		got = append(got, s.External.APIPrefix)
	}
	want := []string{EdgeAPIPrefix("edge-00070"), EdgeAPIPrefix("edge-00071")}
	if cfg.MaxAge != 48*time.Hour || !slices.Equal(got, want) {
		t.Fatalf("FEEDS max age %s, sources %q after a new --feeds-max-age raced by an edge-add; want 48h and %q", cfg.MaxAge, got, want)
	}
}

// TestConfiguredComparesWhatEnsureStreamsSets: a stream is left unwritten
// when configured finds it as EnsureStreams wants, so a setting
// EnsureStreams gives that configured does not compare would never reach a
// stream created before (an upgrade that sets a new field). Every field
// EnsureStreams sets in any of its streams, changed, must make configured
// false.
func TestConfiguredComparesWhatEnsureStreamsSets(t *testing.T) {
	js := embeddedJS(t)
	r := &capturingJS{JetStream: js}
	if err := EnsureStreams(context.Background(), r, StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(r.created) != 5 {
		t.Fatalf("EnsureStreams wrote %d streams on a new server; want 5", len(r.created))
	}
	for _, want := range r.created {
		st, err := js.Stream(context.Background(), want.Name)
		if err != nil {
			t.Fatal(err)
		}
		stored := st.CachedInfo().Config // as the server reports it, its defaults filled in
		if !configured(want, stored) {
			t.Errorf("%s: configured(want, the stream just written) is false", want.Name)
		}
		v := reflect.ValueOf(want)
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() || v.Field(i).IsZero() {
				continue
			}
			have := stored
			hv := reflect.ValueOf(&have).Elem().Field(i)
			switch hv.Kind() {
			case reflect.Slice:
				hv.Set(reflect.Append(hv, reflect.Zero(hv.Type().Elem())))
			case reflect.String:
				hv.SetString(hv.String() + "x")
			case reflect.Int, reflect.Int64:
				hv.SetInt(hv.Int() + 1)
			case reflect.Bool:
				hv.SetBool(!hv.Bool())
			default:
				t.Errorf("%s: field %s (%s) is set, and this test does not know how to change it", want.Name, f.Name, hv.Kind())
				continue
			}
			if configured(want, have) {
				t.Errorf("%s: configured ignores %s, which EnsureStreams sets: a stream created before would never get its new value", want.Name, f.Name)
			}
		}
	}
}

// capturingJS records the configs of the streams written through it.
type capturingJS struct {
	jetstream.JetStream
	created []jetstream.StreamConfig
}

func (c *capturingJS) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	c.created = append(c.created, cfg)
	return c.JetStream.CreateOrUpdateStream(ctx, cfg)
}

func (c *capturingJS) CreateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	c.created = append(c.created, cfg)
	return c.JetStream.CreateStream(ctx, cfg)
}

func (c *capturingJS) UpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	c.created = append(c.created, cfg)
	return c.JetStream.UpdateStream(ctx, cfg)
}
