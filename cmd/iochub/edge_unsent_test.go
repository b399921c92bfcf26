package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/edge"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
)

// TestEdgeCountsItemsExpiredUnsent: iochub edge counts on its /metrics, and
// logs as an error, the items it accepted that --retain removed while its
// link to the hub was cut, and not those the hub had copied in time; iochub
// edge-list on the hub shows the count, read from the edge across the link
// of its own leaf user, and shows an edge that does not answer (cut off, or
// stalled) as unknown once --edge-timeout has passed.
func TestEdgeCountsItemsExpiredUnsent(t *testing.T) {
	ctx := context.Background()
	const unit = "01"
	domain, err := natsx.EdgeDomain(unit)
	if err != nil {
		t.Fatal(err)
	}
	hub, proxy := testenv.LeafHub(t, edgeHubPassword, natsx.EdgeLeafUser(domain, edgeUserPassword))
	hs, nc, hubJS := hub.Server, hub.Conn, hub.JS

	const token = "unsent-token"
	cfg := edgeDefaults()
	cfg.Unit, cfg.DataDir = unit, t.TempDir()
	cfg.Hub = "nats-leaf://" + natsx.EdgeUser(unit) + ":" + edgeUserPassword + "@" + proxy.Addr()
	cfg.HTTP, cfg.OpsHTTP, cfg.NATSPort, cfg.LeafReconnect = "127.0.0.1:0", "127.0.0.1:0", -1, 50*time.Millisecond
	cfg.Stream.Retain, cfg.Stream.DuplicateWindow, cfg.Stream.MaxBytes = 2*time.Second, 2*time.Second, 1<<30
	cfg.UnsentCheck = 100 * time.Millisecond
	logs := &testkit.LockedBuffer{}
	ready := make(chan edgeReady, 1)
	run := testkit.Start(t, "edge", func(ctx context.Context) error {
		return serveEdge(ctx, edgeDeps{cfg: cfg, cat: benchCatalog(token), log: slog.New(slog.NewTextHandler(logs, nil)), ready: ready})
	})
	var er edgeReady
	select {
	case er = <-ready:
	case <-run.Done():
		t.Fatalf("edge exited at start: %v", run.Err())
	}
	testkit.Eventually(t, 30*time.Second, "the leaf link", testkit.Holds(er.Node.LinkUp))
	if _, err := natsx.AddEdgeSource(ctx, hubJS, er.Node.Domain, edge.SubjectFilters(benchCatalog(""))); err != nil {
		t.Fatal(err)
	}
	postN := func(prefix string, n int) {
		t.Helper()
		items := make([]map[string]any, n)
		for i := range items {
			items[i] = airItemTB(t, fmt.Sprintf("%s-%d", prefix, i), "st", 105.85, 21.03, time.Now().Add(-time.Minute))
		}
		if code, res, err := edgePost(er.URL, token, items); err != nil || code != http.StatusAccepted || res.Accepted != n {
			t.Fatalf("POST of %d items: HTTP %d, %d accepted, %v", n, code, res.Accepted, err)
		}
	}
	edgeEmpty := func() bool { return streamCount(t, er.Node.JS, subjects.StreamFeeds) == 0 }
	expired := func() string {
		t.Helper()
		resp, err := http.Get(er.OpsURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if strings.HasPrefix(line, edge.ExpiredUnsentMetric+" ") {
				return strings.TrimPrefix(line, edge.ExpiredUnsentMetric+" ")
			}
		}
		t.Fatalf("no %s on the edge's /metrics:\n%s", edge.ExpiredUnsentMetric, raw)
		return ""
	}

	// Copied by the hub in time, then expired at the edge: not lost.
	postN("in-time", 3)
	testkit.Eventually(t, 3*time.Minute, "the hub copying 3 items", testkit.Holds(func() bool { return streamCount(t, hubJS, subjects.StreamFeeds) == 3 }))
	testkit.Eventually(t, 30*time.Second, "the 3 items expiring at the edge", testkit.Holds(edgeEmpty))

	// Stored and expired at the edge while its link is cut: lost, and counted.
	proxy.Cut()
	testkit.Eventually(t, 30*time.Second, "the link down", testkit.Holds(func() bool { return !er.Node.LinkUp() }))
	postN("cut", 4)
	testkit.Eventually(t, 30*time.Second, "4 items counted lost", func() (bool, string) {
		got := expired()
		return got == "4" && edgeEmpty(), fmt.Sprintf("%s = %s", edge.ExpiredUnsentMetric, got)
	})
	if log := logs.String(); !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "from_seq=4") || !strings.Contains(log, "to_seq=7") {
		t.Fatalf("no error naming items 4 to 7 in the edge's log:\n%s", log)
	}

	// At the hub: a stalled edge takes the hub's requests and never answers.
	const stalled = "edge-stalled"
	if _, err := nc.SubscribeSync(natsx.EdgeAPIPrefix(stalled) + ".>"); err != nil {
		t.Fatal(err)
	}
	if _, err := natsx.AddEdgeSource(ctx, hubJS, stalled, []string{subjects.FeedUnit("01", "00004")}); err != nil {
		t.Fatal(err)
	}
	hubURL := "nats://" + natsx.HubUser + ":" + edgeHubPassword + "@" + strings.TrimPrefix(hs.ClientURL(), "nats://")
	edgeList := func() map[string]string {
		t.Helper()
		out, errOut, err := runCLI(t, "edge-list", "--nats-url", hubURL, "--edge-timeout", "500ms")
		if err != nil {
			t.Fatalf("edge-list: %v\n%s", err, errOut)
		}
		rows := map[string]string{}
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 0 {
				rows[f[0]] = line
			}
		}
		if !strings.Contains(rows["DOMAIN"], " LOST ") {
			t.Fatalf("edge-list has no column LOST:\n%s", out)
		}
		return rows
	}
	rows := edgeList()
	if !strings.Contains(rows[stalled], "? (no answer in 500ms)") || !strings.Contains(rows[domain], "? (unreachable)") {
		t.Fatalf("edge-list with the edge cut off and another stalled; want both unknown:\n%s\n%s", rows[domain], rows[stalled])
	}
	proxy.Restore()
	testkit.Eventually(t, 30*time.Second, "the edge-list showing the 4 items lost", func() (bool, string) {
		row := edgeList()[domain]
		return strings.Contains(row, " 4 (last ") && strings.Contains(row, "seq 4-7)"), row
	})
}
