package gateway

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/subjects"
)

// benchStreamClients are the client counts of BenchmarkStreams: 1 and 100,
// or the comma-separated list in IOCHUB_BENCH_STREAM_CLIENTS (e.g. 1,100,1000).
func benchStreamClients(b *testing.B) []int {
	v := os.Getenv("IOCHUB_BENCH_STREAM_CLIENTS")
	if v == "" {
		return []int{1, 100}
	}
	var out []int
	for _, s := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 5000 {
			b.Fatalf("IOCHUB_BENCH_STREAM_CLIENTS=%q: want client counts from 1 to 5000", v)
		}
		out = append(out, n)
	}
	return out
}

// streamBatch is how many events one op of the live benchmarks publishes.
const streamBatch = 1000

// replayEvents is how many stored events one op of the replay benchmarks reads.
const replayEvents = 20000

// BenchmarkStreams measures /v1/streams beside plain nats.go ordered
// consumers on the same stream, in the same run:
//
//   - live/gateway/clients=N: one op publishes 1000 air observations on FEEDS;
//     N WebSocket clients of /v1/streams (since=new) each receive all 1000 as
//     CloudEvents (ordered consumer per client → decode → protojson → queue → socket);
//   - live/nats/clients=N: the baseline, N nats.go clients (a connection and
//     an ordered consumer each) on the same subject receiving the same 1000 raw
//     messages;
//   - replay/gateway: one client reads 20 000 stored events from since=seq:0,
//     unpaced (ReplayRate -1); replay/nats: one ordered consumer reads them.
//
// events/s counts events received by clients, summed over clients.
func BenchmarkStreams(b *testing.B) {
	for _, n := range benchStreamClients(b) {
		b.Run(fmt.Sprintf("live/gateway/clients=%d", n), func(b *testing.B) { benchStreamsLive(b, n, true) })
		b.Run(fmt.Sprintf("live/nats/clients=%d", n), func(b *testing.B) { benchStreamsLive(b, n, false) })
	}
	b.Run("replay/gateway", func(b *testing.B) { benchStreamsReplay(b, true) })
	b.Run("replay/nats", func(b *testing.B) { benchStreamsReplay(b, false) })
}

// benchReader reads want messages from one subscriber.
type benchReader func(want int) error

// wsReader reads events off a stream WebSocket.
func wsReader(c *websocket.Conn) benchReader {
	return func(want int) error {
		_ = c.SetReadDeadline(time.Now().Add(hangGuard))
		for range want {
			_, r, err := c.NextReader()
			if err != nil {
				return err
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				return err
			}
		}
		return nil
	}
}

// natsReader reads messages off an ordered consumer's iterator.
func natsReader(it jetstream.MessagesContext) benchReader {
	return func(want int) error {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		for range want {
			if _, err := it.Next(jetstream.NextContext(ctx)); err != nil {
				return err
			}
		}
		return nil
	}
}

// readAll runs every reader for want messages at once and waits.
func readAll(readers []benchReader, want int) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(readers))
	for _, r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r(want); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return fmt.Errorf("reader: %w", err)
	default:
		return nil
	}
}

func benchStreamsLive(b *testing.B, n int, gateway bool) {
	e := newStreamEnv(b, Config{MaxStreamsPerIdentity: n + 1, OpenRate: -1}, nil, nil)
	readers := make([]benchReader, n)
	for i := range readers {
		if gateway {
			readers[i] = wsReader(e.dialStream(b, "subject=ioc.feed.01.>", nil))
			continue
		}
		// Each baseline client is a plain nats.go program: its own connection.
		nc, err := nats.Connect(e.url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			b.Fatal(err)
		}
		cons, err := js.OrderedConsumer(context.Background(), subjects.StreamFeeds, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{"ioc.feed.01.>"}, DeliverPolicy: jetstream.DeliverNewPolicy})
		if err != nil {
			b.Fatal(err)
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(256))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(it.Stop)
		readers[i] = natsReader(it)
	}
	batches := make([][]*nats.Msg, b.N)
	for i := range batches {
		batches[i] = airFeeds(b, i*streamBatch, streamBatch)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		done := make(chan error, 1)
		go func() { done <- readAll(readers, streamBatch) }()
		publishMsgs(b, e.js, batches[i]...)
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N*n*streamBatch)/el.Seconds(), "events/s")
}

func benchStreamsReplay(b *testing.B, gateway bool) {
	e := newStreamEnv(b, Config{ReplayRate: -1}, nil, nil)
	publishMsgs(b, e.js, airFeeds(b, 0, replayEvents)...)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if gateway {
			c, _, err := websocket.DefaultDialer.Dial(e.wsURL("subject=ioc.feed.01.>&since=seq:0"), nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := wsReader(c)(replayEvents); err != nil {
				b.Fatal(err)
			}
			_ = c.Close()
			continue
		}
		cons, err := e.js.OrderedConsumer(context.Background(), subjects.StreamFeeds, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{"ioc.feed.01.>"}, DeliverPolicy: jetstream.DeliverAllPolicy})
		if err != nil {
			b.Fatal(err)
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(256))
		if err != nil {
			b.Fatal(err)
		}
		if err := natsReader(it)(replayEvents); err != nil {
			b.Fatal(err)
		}
		it.Stop()
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N*replayEvents)/el.Seconds(), "events/s")
}
