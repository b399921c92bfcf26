package aggregator

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testkit"
)

// TestStatesUnpublishableNotAcked: while STATE takes no state, the batches
// are stored but those with a state to publish are not acked on FEEDS (each
// is naked and retried, the batches behind it going on); once STATE is back,
// every event is stored once and acked, and each station's state on STATE is
// its newest observation (no older state published after it).
func TestStatesUnpublishableNotAcked(t *testing.T) {
	ne, pool := testNATS(t), testDB(t)
	ctx := context.Background()
	if err := ne.JS.DeleteStream(ctx, subjects.StreamState); err != nil {
		t.Fatal(err)
	}
	const stations, steps = 5, 12
	const n = stations * steps
	var msgs []*nats.Msg
	for k := range steps {
		for s := range stations {
			msgs = append(msgs, feedMsg(t, subjects.KindAir, airEvent(t, s, t0.Add(time.Duration(k)*time.Minute), float64(k)), ""))
		}
	}
	r := start(t, ne, pool, Config{Durable: "agg-state-down", BatchSize: 10})
	publish(t, ne.JS, msgs...)
	waitRows(t, pool, "air_observation", n)
	testkit.Eventually(t, time.Minute, "failed state publishes", func() (bool, string) {
		v := counterValue(t, r.svc.m.errors.WithLabelValues("publish"))
		return v >= 2, fmt.Sprintf("%v publish errors", v)
	})
	// A batch of duplicates whose states are superseded has nothing to
	// publish and is acked; the newest observations (stream sequences from
	// n-stations+1: FEEDS holds only these) have states STATE did not take.
	c, err := ne.JS.Consumer(ctx, subjects.StreamFeeds, "agg-state-down")
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.AckFloor.Stream >= n-stations+1 {
		t.Fatalf("ack floor %d while STATE took no state; want below %d (the newest observations not acked)", info.AckFloor.Stream, n-stations+1)
	}

	if err := natsx.EnsureStreams(ctx, ne.JS, natsx.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, ne.JS, "agg-state-down")
	if got := rows(t, pool, "air_observation"); got != n {
		t.Errorf("rows = %d; want %d", got, n)
	}
	for s := range stations {
		entity := airEvent(t, s, t0, 0).GetEntityId()
		es, _, err := lastState(t, ne.JS, subjects.KindAir, entity)
		if err != nil {
			t.Fatalf("state of %s: %v", entity, err)
		}
		if got := es.GetAir().GetPm25(); got != steps-1 {
			t.Errorf("state of %s pm25 = %v; want %d (the newest)", entity, got, steps-1)
		}
	}
}
