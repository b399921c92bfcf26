package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/loadgen"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
)

// BenchmarkClusterNodes runs the end-to-end load (E2E_RATE, default here
// 5000 events/s, for E2E_DURATION) through the whole hub on one NATS server
// and on a 3-node cluster with every stream replicated 3 times, each beside
// raw async JetStream publishes of 20 000 messages of the same size to a
// stream of the same replication in the same run. Run it with -benchtime 1x.
func BenchmarkClusterNodes(b *testing.B) {
	r, dur := loadSettings(b)
	if os.Getenv("E2E_RATE") == "" {
		r = 5000 // below the hub's ceiling, so that the nodes' cost shows in latency
	}
	for _, nodes := range []int{1, 3} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				var n *testenv.NATSEnv
				if nodes == 1 {
					n = testenv.NATS(b)
				} else {
					_, n = clusterEnv(b, nodes)
				}
				raw := rawPublishRate(b, n.JS, nodes)
				db := testenv.PostGISWithUnits(b)
				h := startHubTB(b, "all", n, db, func(c *config) {
					c.Streams.Replicas = nodes
					c.Ingest.Limits.SourceRate = -1
					c.Ingest.Limits.SourceConcurrency = 16
				})
				res, err := loadgen.Run(context.Background(), loadgen.Config{URL: h.url, Token: devToken, Province: "01", Rate: r, Duration: dur})
				if err != nil {
					b.Fatalf("load: %v (%s)", err, res)
				}
				b.Logf("%d node(s): hub %s; raw publish %.0f msgs/s", nodes, res, raw)
				b.ReportMetric(raw, "raw-publish-msgs/s")
				b.ReportMetric(res.StoredRate(), "hub-events/s")
				b.ReportMetric(float64(res.P50.Microseconds())/1000, "hub-p50-ms")
				b.ReportMetric(float64(res.P99.Microseconds())/1000, "hub-p99-ms")
				b.ReportMetric(float64(res.Behind), "hub-behind")
				b.ReportMetric(0, "ns/op")
			}
		})
	}
}

// rawPublishRate publishes 20 000 messages of ~400 bytes with message ids,
// asynchronously, to a stream of the given replication, and returns msgs/s.
func rawPublishRate(b *testing.B, js jetstream.JetStream, replicas int) float64 {
	b.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("RAWBENCH%d", replicas)
	// A cluster that has just elected its meta leader may not place a
	// replicated stream yet (the request times out, or finds a peer
	// offline): the hub's start waits for that (natsx.EnsureStreams), and
	// so does the baseline, trying again until the stream is there.
	cfg := jetstream.StreamConfig{Name: name, Subjects: []string{"rawbench." + name + ".>"},
		Storage: jetstream.FileStorage, Replicas: replicas, Duplicates: time.Minute}
	testkit.Eventually(b, 2*time.Minute, "stream "+name+" created", func() (bool, string) {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := js.CreateStream(cctx, cfg)
		if err == nil || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return true, ""
		}
		return false, err.Error()
	})
	body := []byte(strings.Repeat("x", 400))
	const total = 20000
	start := time.Now()
	for i := 0; i < total; i += 500 {
		futs := make([]jetstream.PubAckFuture, 0, 500)
		for j := i; j < i+500; j++ {
			m := &nats.Msg{Subject: fmt.Sprintf("rawbench.%s.%d", name, j%200), Data: body, Header: nats.Header{}}
			m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("m-%d", j))
			f, err := js.PublishMsgAsync(m)
			if err != nil {
				b.Fatal(err)
			}
			futs = append(futs, f)
		}
		for _, f := range futs {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				b.Fatal(err)
			}
		}
	}
	rate := total / time.Since(start).Seconds()
	if err := js.DeleteStream(ctx, name); err != nil {
		b.Fatal(err)
	}
	return rate
}
