package edge_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iochub/iochub/internal/edge"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/testkit"
)

// edgeSeries are the values of the poller's series of domain in reg; a
// series absent is absent from the map.
func edgeSeries(t *testing.T, reg *prometheus.Registry, domain string) map[string]float64 {
	t.Helper()
	return testkit.GaugesOf(t, reg, "domain", domain)
}

// wantSeries waits until a poll leaves the series of domain at want.
func wantSeries(t *testing.T, p *edge.LostPoller, reg *prometheus.Registry, domain string, want map[string]float64) {
	t.Helper()
	testkit.Eventually(t, time.Minute, fmt.Sprintf("the edge's series %v", want), func() (bool, string) {
		if err := p.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := edgeSeries(t, reg, domain)
		return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprint(got)
	})
}

// TestLostPollerExportsTheEdgesRecords: the hub's poller exports an edge's
// record of lost items: 0 from its start; while the edge is cut off
// read_ok is 0 and the total keeps its last value; once the link is back,
// the exact total of the items lost during the cut and when the edge
// counted them; an edge the hub no longer sources has no series.
func TestLostPollerExportsTheEdgesRecords(t *testing.T) {
	l := startLinked(t, testRetain)
	reg := prometheus.NewRegistry()
	p, err := edge.NewLostPoller(edge.LostPollConfig{Timeout: time.Second}, l.hubJS, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	d := l.node.Domain
	wantSeries(t, p, reg, d, map[string]float64{edge.LostItemsMetric: 0, edge.StatusReadOKMetric: 1})

	l.publish(t, 5)
	l.waitHub(t, 5)
	l.waitEdgeEmpty(t)
	l.cut(t)
	l.check(t)
	wantSeries(t, p, reg, d, map[string]float64{edge.LostItemsMetric: 0, edge.StatusReadOKMetric: 0})
	l.lose(t, 7) // sequences 6 to 12, lost

	l.proxy.Restore()
	testkit.Eventually(t, 20*time.Second, "the edge's link", testkit.Holds(l.node.LinkUp))
	rec := l.watch.Record()
	if rec.Last == nil {
		t.Fatalf("the edge's record names no run lost: %+v", rec)
	}
	lost := map[string]float64{edge.LostItemsMetric: 7, edge.StatusReadOKMetric: 1, edge.LastLossMetric: float64(rec.Last.DetectedAt.Unix())}
	wantSeries(t, p, reg, d, lost)

	l.cut(t)
	lost[edge.StatusReadOKMetric] = 0
	wantSeries(t, p, reg, d, lost)

	if err := natsx.RemoveEdgeSource(context.Background(), l.hubJS, d); err != nil {
		t.Fatal(err)
	}
	wantSeries(t, p, reg, d, map[string]float64{})
}

// TestLostPollerRunDropsItsSeriesWhenItStops: a poller that stops (its
// aggregator lost the singleton lease) leaves no series behind, so that
// only the instance polling exports them.
func TestLostPollerRunDropsItsSeriesWhenItStops(t *testing.T) {
	l := startLinked(t, testRetain)
	reg := prometheus.NewRegistry()
	p, err := edge.NewLostPoller(edge.LostPollConfig{Interval: 50 * time.Millisecond, Timeout: time.Second}, l.hubJS, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	want := map[string]float64{edge.LostItemsMetric: 0, edge.StatusReadOKMetric: 1}
	testkit.Eventually(t, time.Minute, "the running poller's series", func() (bool, string) {
		got := edgeSeries(t, reg, l.node.Domain)
		return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprint(got)
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := edgeSeries(t, reg, l.node.Domain); len(got) != 0 {
		t.Fatalf("series after the poller stopped: %v; want none", got)
	}
}
