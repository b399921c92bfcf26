package aggregator

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/semaphore"

	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// TestDeletedConsumerComesBack: the aggregator's durable deleted under it
// (by an operator, or lost with a stream's recovery) ends its subscription;
// the reader makes the consumer again and goes on, so items published
// after the deletion are stored.
func TestDeletedConsumerComesBack(t *testing.T) {
	ne, pool := testenv.NATS(t), testDB(t)
	var msgs []*nats.Msg
	for i := range 20 {
		msgs = append(msgs, feedMsg(t, subjects.KindAir, airEvent(t, i, t0.Add(time.Duration(i/10)*time.Minute), float64(i)), ""))
	}
	publish(t, ne.JS, msgs[:10]...)
	startOn(t, ne, postgis.NewStore(pool), Config{Durable: "agg-deleted"})
	waitRows(t, pool, "air_observation", 10)
	if err := ne.JS.DeleteConsumer(context.Background(), subjects.StreamFeeds, "agg-deleted"); err != nil {
		t.Fatal(err)
	}
	publish(t, ne.JS, msgs[10:]...)
	waitRows(t, pool, "air_observation", 20)
}

// fakeMsg is a message of a given data size, for feedIn's bounds.
type fakeMsg struct {
	jetstream.Msg
	data []byte
}

func (m fakeMsg) Subject() string      { return "s" }
func (m fakeMsg) Reply() string        { return "" }
func (m fakeMsg) Headers() nats.Header { return nil }
func (m fakeMsg) Data() []byte         { return m.data }
func (m fakeMsg) String() string       { return fmt.Sprint(len(m.data)) }

func newSized(n int) jetstream.Msg { return fakeMsg{data: make([]byte, n)} }

// sizes is the data sizes of msgs.
func sizes(msgs []jetstream.Msg) []int {
	var n []int
	for _, m := range msgs {
		n = append(n, len(m.Data()))
	}
	return n
}

// TestFeedInBounds: a batch takes the first message that comes and what is
// already there, within BatchSize and the byte bound; the message that
// does not fit starts the next batch; the channel's room in bytes comes
// back as the reader takes messages, so the handler can hand over more.
func TestFeedInBounds(t *testing.T) {
	in := newFeedIn(3, 1000)
	ctx := context.Background()
	overhead := msgBytes(newSized(0)) // subject, header preamble
	// hand hands over a message of n bytes as msgBytes counts them.
	hand := func(n int) {
		t.Helper()
		sm := in.sized(newSized(n - overhead))
		actx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := in.room.Acquire(actx, int64(sm.n)); err != nil {
			t.Fatalf("no room for a message of %d bytes: %v", n, err)
		}
		in.msgs <- sm
	}
	// Three messages (BatchSize) of 950 bytes in all are one batch.
	hand(400)
	hand(400)
	hand(150)
	if !in.room.TryAcquire(50) || in.room.TryAcquire(1) {
		t.Fatalf("room after 950 bytes handed over of 1000: want exactly 50 left")
	}
	in.room.Release(50)
	b := in.next(ctx, nil)
	if got := sizes(b); len(got) != 3 {
		t.Fatalf("first batch %v; want the three handed over (950 bytes, 3 = BatchSize)", got)
	}
	// The room is back: 1000 bytes can be handed over again; four
	// messages make a batch of three (BatchSize) and one of one.
	for range 3 {
		hand(250)
	}
	fourth := in.sized(newSized(250 - overhead))
	if !in.room.TryAcquire(int64(fourth.n)) {
		t.Fatal("no room for a fourth message of 250 bytes after 750")
	}
	go func() { in.msgs <- fourth }() // waits for room in the channel (BatchSize), as the handler does
	if b := in.next(ctx, nil); len(b) != 3 {
		t.Fatalf("batch %v; want three (BatchSize)", sizes(b))
	}
	if b := in.next(ctx, nil); len(b) != 1 {
		t.Fatalf("batch %v; want the fourth", sizes(b))
	}
	// A message that would take a batch past its bytes starts the next. The
	// channel's room is the same bound, so that happens when the handler
	// hands over more while the reader takes a batch: a larger room stands
	// for that here.
	in.room = semaphore.NewWeighted(2000)
	hand(600)
	hand(500)
	if b := in.next(ctx, nil); len(b) != 1 || msgBytes(b[0]) != 600 {
		t.Fatalf("batch %v; want the 600-byte message alone (500 more would pass 1000)", sizes(b))
	}
	if in.carry == nil || msgBytes(in.carry.m) != 500 || in.carry.n != 500 {
		t.Fatalf("carry %v; want the 500-byte message", in.carry)
	}
	if b := in.next(ctx, nil); len(b) != 1 || msgBytes(b[0]) != 500 {
		t.Fatalf("batch %v; want the carried message first", sizes(b))
	}
	ended := make(chan struct{})
	close(ended)
	if b := in.next(ctx, ended); b != nil {
		t.Fatalf("batch %v after the subscription ended with nothing handed over; want none", sizes(b))
	}
}

// TestStopAcksWhatItPublished: a batch whose states were sent when the
// service stops is acked on FEEDS once STATE acks them, not left to
// AckWait: its items are stored and published, and a restarted hub (and its
// rules engine, which waits for the aggregator at its start) should not
// wait for their redelivery.
func TestStopAcksWhatItPublished(t *testing.T) {
	ne, pool := testenv.NATS(t), testDB(t)
	// One item, so that one batch is in flight when the service stops.
	publish(t, ne.JS, feedMsg(t, subjects.KindAir, airEvent(t, 0, t0, 1), ""))
	var once sync.Once
	var r *running
	ready := make(chan struct{})
	cfg := Config{Durable: "agg-stop-ack", AckWait: time.Minute}
	cfg.beforeAck = func() { once.Do(func() { <-ready; r.cancel() }) }
	r = startOn(t, ne, postgis.NewStore(pool), cfg)
	close(ready)
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		r.done <- nil // for the cleanup
	case <-time.After(time.Minute):
		t.Fatal("the aggregator did not stop")
	}
	if n := rows(t, pool, "air_observation"); n != 1 {
		t.Fatalf("%d rows stored; want 1", n)
	}
	testkit.Eventually(t, 10*time.Second, "every item acked on FEEDS", func() (bool, string) {
		c, err := ne.JS.Consumer(context.Background(), subjects.StreamFeeds, "agg-stop-ack")
		if err != nil {
			return false, err.Error()
		}
		info := c.CachedInfo()
		return info.NumAckPending == 0 && info.NumPending == 0 && info.AckFloor.Stream >= 1,
			fmt.Sprintf("%d unacked, %d pending, acked up to %d", info.NumAckPending, info.NumPending, info.AckFloor.Stream)
	})
}
