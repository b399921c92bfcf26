package ingest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/services/ingest"
)

// TestBatchPublishedInOrder checks that a request's items reach the stream
// in the order of the body, rejected items left out: a guard for any change
// to how the handler hands items to nats.go (the publishing goroutine tried
// on branch ingestpass failed it when made to send a chunk backwards).
func TestBatchPublishedInOrder(t *testing.T) {
	e := newEnv(t, ingest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := e.js.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 101
	items := make([]map[string]any, n)
	for i := range items {
		items[i] = air(fmt.Sprintf("order-%03d", i), hoanKiem)
		if i%7 == 3 {
			items[i]["pm25"] = -1.0 // rejected
		}
	}
	r := e.post(t, "air", tokProvince, "application/json", mustJSON(t, items))
	if r.code != 202 {
		t.Fatalf("got HTTP %d: %s", r.code, r.raw)
	}
	var want []string
	for i, res := range r.resp.Results {
		if res.Index != i {
			t.Fatalf("result %d has index %d", i, res.Index)
		}
		if (i%7 == 3) != (res.Status == ingest.StatusRejected) {
			t.Fatalf("item %d: status %s (%s)", i, res.Status, res.Reason)
		}
		if res.Status == ingest.StatusAccepted {
			want = append(want, res.EventID)
		}
	}
	cons, err := e.js.OrderedConsumer(ctx, subjects.StreamFeeds, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: info.State.LastSeq + 1})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(len(want), jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range batch.Messages() {
		got = append(got, m.Headers().Get(ce.HeaderID))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stream holds ce-ids\n%v\nwant, in the body's order,\n%v", got, want)
	}
}
