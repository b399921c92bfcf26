package aggregator

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iochub/iochub/internal/edge"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
)

// edgeReadOK is the value of edge.StatusReadOKMetric of domain in reg, or
// -1 when absent.
func edgeReadOK(t *testing.T, reg *prometheus.Registry, domain string) float64 {
	t.Helper()
	if v, ok := testkit.GaugesOf(t, reg, "domain", domain)[edge.StatusReadOKMetric]; ok {
		return v
	}
	return -1
}

// TestEdgeStatusPolledByTheSingletonOnly: partitioned aggregators read the
// sourced edges' records of lost items with the global work, so only the
// holder of the singleton lease exports the edges' series; once it stops,
// its series go and the instance taking over exports them. (The edge here
// is sourced but never started: it does not answer, read_ok 0.)
func TestEdgeStatusPolledByTheSingletonOnly(t *testing.T) {
	e := newPartitionedEnv(t, partitionProvinces)
	e.edges = edge.LostPollConfig{Interval: 100 * time.Millisecond, Timeout: time.Second}
	domain, err := natsx.EdgeDomain("01070")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := natsx.AddEdgeSource(context.Background(), e.ne.JS, domain, []string{subjects.FeedUnit("01", "01070")}); err != nil {
		t.Fatal(err)
	}
	a, b := e.start(t, "a"), e.start(t, "b")
	exporting := func(ins ...*instance) []*instance {
		var out []*instance
		for _, in := range ins {
			if edgeReadOK(t, in.reg, domain) == 0 {
				out = append(out, in)
			}
		}
		return out
	}
	var holder, other *instance
	testkit.Eventually(t, time.Minute, "the singleton alone exporting the edge's series", func() (bool, string) {
		ex := exporting(a, b)
		if len(ex) != 1 || singletons(a, b) != 1 || singletons(ex[0]) != 1 {
			return false, fmt.Sprintf("%d export, %d singletons", len(ex), singletons(a, b))
		}
		holder, other = ex[0], a
		if holder == a {
			other = b
		}
		return true, ""
	})
	if err := holder.run.Stop(); err != nil {
		t.Fatal(err)
	}
	if v := edgeReadOK(t, holder.reg, domain); v != -1 {
		t.Errorf("the stopped instance still exports read_ok %v", v)
	}
	testkit.Eventually(t, time.Minute, "the other instance exporting the edge's series", func() (bool, string) {
		v := edgeReadOK(t, other.reg, domain)
		return v == 0, fmt.Sprintf("read_ok %v", v)
	})
}

// TestEdgeStatusPolledByTheRole: an aggregator that is not partitioned
// reads the sourced edges' records of lost items beside its feed consumer
// and rules engine, and drops their series when it stops. (The edge is
// sourced but never started: read_ok 0.)
func TestEdgeStatusPolledByTheRole(t *testing.T) {
	ne, db := testenv.NATS(t), testenv.PostGIS(t)
	domain, err := natsx.EdgeDomain("01070")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := natsx.AddEdgeSource(context.Background(), ne.JS, domain, []string{subjects.FeedUnit("01", "01070")}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg := RoleConfig{
		Aggregator: Config{AckWait: 2 * time.Second, RetryDelay: 100 * time.Millisecond, ExpiryInterval: -1},
		Edges:      edge.LostPollConfig{Interval: 100 * time.Millisecond, Timeout: time.Second},
	}
	r, err := NewRole(cfg, RoleDeps{JS: ne.JS, Pool: db.Pool, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	run := testkit.Start(t, "aggregator", r.Run)
	testkit.Eventually(t, time.Minute, "the role exporting the edge's series", func() (bool, string) {
		v := edgeReadOK(t, reg, domain)
		return v == 0, fmt.Sprintf("read_ok %v", v)
	})
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
	if v := edgeReadOK(t, reg, domain); v != -1 {
		t.Errorf("the stopped role still exports read_ok %v", v)
	}
}
