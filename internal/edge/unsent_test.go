package edge_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/iochub/iochub/internal/edge"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
)

// linked is a hub whose FEEDS sources an edge node's, the leaf link
// between them running through a proxy the test cuts and mends; the edge
// logs in as its own leaf user (natsx.EdgeLeafUser), as in production.
type linked struct {
	hubURL  string
	hubJS   jetstream.JetStream
	proxy   *testkit.LinkProxy
	node    *edge.Node
	nodeCfg edge.NodeConfig
	watch   *edge.UnsentWatch
	reg     *prometheus.Registry
	log     *testkit.LockedBuffer
	seq     int // items published so far
}

const (
	linkedHubPassword  = "linked-hub-password"
	linkedEdgePassword = "linked-edge-password"
)

func startLinked(t *testing.T, retain time.Duration) *linked {
	t.Helper()
	ctx := context.Background()
	const unit = "00070"
	domain, err := natsx.EdgeDomain(unit)
	if err != nil {
		t.Fatal(err)
	}
	hub, proxy := testenv.LeafHub(t, linkedHubPassword, natsx.EdgeLeafUser(domain, linkedEdgePassword))
	l := &linked{hubURL: hub.URL, hubJS: hub.JS, proxy: proxy}
	via, err := url.Parse("nats-leaf://" + l.proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	via.User = url.UserPassword(natsx.EdgeUser(unit), linkedEdgePassword)
	l.nodeCfg = edge.NodeConfig{Unit: unit, Hub: []*url.URL{via}, StoreDir: t.TempDir(), Port: -1,
		Stream: natsx.EdgeStreamOptions{Retain: retain, DuplicateWindow: retain}, LeafReconnect: 50 * time.Millisecond}
	l.startEdge(t)
	testkit.Eventually(t, 10*time.Second, "the edge's link", testkit.Holds(l.node.LinkUp))
	if _, err := natsx.AddEdgeSource(ctx, l.hubJS, l.node.Domain, []string{subjects.FeedUnit("01", "00070")}); err != nil {
		t.Fatal(err)
	}
	return l
}

// startEdge starts (or restarts) the edge node and a new watch on it.
func (l *linked) startEdge(t *testing.T) {
	t.Helper()
	n, err := edge.StartNode(context.Background(), l.nodeCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	l.node, l.reg, l.log = n, prometheus.NewRegistry(), &testkit.LockedBuffer{}
	if l.watch, err = edge.NewUnsentWatch(context.Background(), n, slog.New(slog.NewTextHandler(l.log, nil)), l.reg); err != nil {
		t.Fatal(err)
	}
}

// publish stores n items at the edge, as its ingest does.
func (l *linked) publish(t *testing.T, n int) {
	t.Helper()
	for range n {
		l.seq++
		if _, err := l.node.JS.Publish(context.Background(), subjects.Feed("01", "00070", "air"), []byte("{}"),
			jetstream.WithMsgID(fmt.Sprintf("s/air/%d", l.seq))); err != nil {
			t.Fatal(err)
		}
	}
}

func streamState(t *testing.T, js jetstream.JetStream) jetstream.StreamState {
	t.Helper()
	st, err := js.Stream(context.Background(), subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().State
}

// check runs one check of the watch, as its Run does every 30 s.
func (l *linked) check(t *testing.T) {
	t.Helper()
	if err := l.watch.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// waitHub waits for the hub's FEEDS to hold n items.
func (l *linked) waitHub(t *testing.T, n uint64) {
	t.Helper()
	testkit.Eventually(t, time.Minute, fmt.Sprintf("the hub holding %d items", n), func() (bool, string) {
		l.check(t) // the watch sees the hub's consumer while it sources
		got := streamState(t, l.hubJS).Msgs
		return got == n, fmt.Sprintf("%d", got)
	})
}

// cut cuts the link and waits until the edge sees it down.
func (l *linked) cut(t *testing.T) {
	t.Helper()
	l.proxy.Cut()
	testkit.Eventually(t, 20*time.Second, "the edge to see its link down", testkit.Holds(func() bool { return !l.node.LinkUp() }))
}

// lose publishes n items while the link is cut, waits until they have left
// the edge's FEEDS, and wants them counted lost.
func (l *linked) lose(t *testing.T, n int) {
	t.Helper()
	l.publish(t, n)
	l.waitEdgeEmpty(t)
	l.wantExpired(t, n)
}

// waitEdgeEmpty waits for --retain to have removed every item of the edge's
// FEEDS, checking meanwhile; then checks once more.
func (l *linked) waitEdgeEmpty(t *testing.T) {
	t.Helper()
	testkit.Eventually(t, time.Minute, "the edge's items to expire", func() (bool, string) {
		l.check(t)
		s := streamState(t, l.node.JS)
		return s.Msgs == 0, fmt.Sprintf("%+v", s)
	})
	l.check(t)
}

// wantExpired checks the counter on the edge's metrics.
func (l *linked) wantExpired(t *testing.T, n int) {
	t.Helper()
	want := fmt.Sprintf("# HELP %[1]s Items the edge accepted that left its FEEDS (--retain) before the hub copied them: lost to the hub (docs/edge.md).\n"+
		"# TYPE %[1]s counter\n%[1]s %d\n", edge.ExpiredUnsentMetric, n)
	if err := testutil.GatherAndCompare(l.reg, strings.NewReader(want), edge.ExpiredUnsentMetric); err != nil {
		t.Errorf("%v\nlog:\n%s", err, l.log)
	}
}

var logSpanRE = regexp.MustCompile(`level=(\w+) .* items=(\d+) from_seq=(\d+) to_seq=(\d+)`)

// wantLogged checks that the lines of level naming runs of items name
// exactly the items from to to (none when to is 0), each once, in order.
func (l *linked) wantLogged(t *testing.T, level string, from, to uint64) {
	t.Helper()
	next := from
	for _, line := range strings.Split(l.log.String(), "\n") {
		m := logSpanRE.FindStringSubmatch(line)
		if m == nil || m[1] != level {
			continue
		}
		n, _ := strconv.ParseUint(m[2], 10, 64)
		a, _ := strconv.ParseUint(m[3], 10, 64)
		b, _ := strconv.ParseUint(m[4], 10, 64)
		if to == 0 || a != next || b < a || n != b-a+1 {
			t.Fatalf("%s line %q; want items %d to %d named once, in order; log:\n%s", level, line, from, to, l.log)
		}
		next = b + 1
	}
	if to != 0 && next != to+1 {
		t.Fatalf("%s lines named items %d to %d; want %d to %d; log:\n%s", level, from, next-1, from, to, l.log)
	}
}

const testRetain = 2 * time.Second

// TestUnsentCountsItemsExpiredDuringACut: items the hub sourced in time
// expire at the edge unnoticed; items stored while the link is cut that
// expire before it is mended are counted, exactly, and logged as an error
// naming their sequences; when the hub resumes they are not counted again.
func TestUnsentCountsItemsExpiredDuringACut(t *testing.T) {
	l := startLinked(t, testRetain)
	l.publish(t, 5)
	l.waitHub(t, 5)
	l.waitEdgeEmpty(t)
	l.wantExpired(t, 0)
	if strings.Contains(l.log.String(), "level=ERROR") {
		t.Fatalf("items sourced in time logged as lost:\n%s", l.log)
	}

	l.cut(t)
	l.check(t)   // as at a change of the link
	l.lose(t, 7) // sequences 6 to 12
	l.wantLogged(t, "ERROR", 6, 12)
	if log := l.log.String(); !strings.Contains(log, "found=expired stored_after=") || !strings.Contains(log, "stored_before=") {
		t.Fatalf("want the errors to say when the items were stored; log:\n%s", log)
	}

	l.proxy.Restore()
	l.publish(t, 1)
	l.waitHub(t, 6)
	l.check(t)
	l.wantExpired(t, 7)
}

// TestUnsentAfterARestartCountedWhenTheHubResumes: an edge restarted while
// its link is cut cannot tell what the hub holds; it warns of what expires
// meanwhile and counts it when the hub's sourcing resumes and says where it
// stands.
func TestUnsentAfterARestartCountedWhenTheHubResumes(t *testing.T) {
	l := startLinked(t, testRetain)
	l.publish(t, 5)
	l.waitHub(t, 5)
	l.waitEdgeEmpty(t)
	l.cut(t)
	l.node.Close()
	l.startEdge(t)
	l.publish(t, 7)
	l.waitEdgeEmpty(t)
	l.wantExpired(t, 0)
	l.wantLogged(t, "ERROR", 0, 0)
	l.wantLogged(t, "WARN", 6, 12)

	l.proxy.Restore()
	testkit.Eventually(t, 3*time.Minute, "the hub's sourcing to resume", func() (bool, string) {
		l.check(t)
		return l.watch.Expired() == 7, fmt.Sprintf("%d found lost; link up %t", l.watch.Expired(), l.node.LinkUp())
	})
	l.publish(t, 1)
	l.waitHub(t, 6)
	l.wantExpired(t, 7)
	l.wantLogged(t, "ERROR", 6, 12)
}
