package aggregator

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// sizesStore records the messages of each batch it is given.
type sizesStore struct {
	*postgis.Store
	mu    sync.Mutex
	sizes []int
}

func (s *sizesStore) WriteBatch(ctx context.Context, b postgis.Batch) (postgis.Result, error) {
	s.mu.Lock()
	s.sizes = append(s.sizes, b.Len())
	s.mu.Unlock()
	return s.Store.WriteBatch(ctx, b)
}

// TestBatchBoundedInBytes: a batch is bounded in bytes (Config.BatchBytes)
// as well as in messages, so that large items waiting (CAP alerts of
// megabytes, up to the server's max payload) do not make a batch of
// gigabytes. 20 items of 200 KiB waiting, then 20 more to a service
// waiting on a quiet stream, a bound of 1 MiB: every batch holds at most 5
// of them, and every item is stored.
func TestBatchBoundedInBytes(t *testing.T) {
	ne, pool := testenv.NATSMaxPayload(t, 256<<10), testDB(t)
	const n, pad = 20, 200 << 10
	var msgs []*nats.Msg
	for i := range 2 * n {
		m := feedMsg(t, subjects.KindAir, airEvent(t, i%n, t0.Add(time.Duration(i/n)*time.Minute), float64(i)), "")
		// Unknown to the decoder, kept by protobuf: the item's bytes.
		m.Data = protowire.AppendBytes(protowire.AppendTag(m.Data, 1000, protowire.BytesType), make([]byte, pad))
		msgs = append(msgs, m)
	}
	publish(t, ne.JS, msgs[:n]...)
	store := &sizesStore{Store: postgis.NewStore(pool)}
	startOn(t, ne, store, Config{Durable: "agg-bytes", BatchBytes: 1 << 20})
	waitRows(t, pool, "air_observation", n)
	// Then to the service waiting on a quiet stream: the first of these
	// comes alone, and the rest of its batch gets what it left of the bound.
	publish(t, ne.JS, msgs[n:]...)
	waitRows(t, pool, "air_observation", 2*n)
	store.mu.Lock()
	defer store.mu.Unlock()
	for _, s := range store.sizes {
		if s > (1<<20)/pad {
			t.Fatalf("batches of %v messages of %d KiB under a bound of 1 MiB; want at most %d each", store.sizes, pad>>10, (1<<20)/pad)
		}
	}
}
