package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twpayne/go-geom"

	"github.com/iochub/iochub/internal/edge"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testkit"
	"github.com/iochub/iochub/internal/units"
)

// benchCatalog is a catalogue without PostGIS: province 01 as a square
// around Hà Nội, and one source bound to it.
func benchCatalog(token string) edge.Catalog {
	mp := geom.NewMultiPolygon(geom.XY).MustSetCoords([][][]geom.Coord{{{{105, 20.5}, {106.2, 20.5}, {106.2, 21.5}, {105, 21.5}, {105, 20.5}}}})
	src := edge.Source{ID: "bench-src", Unit: "01"}
	src.TokenSHA256 = sha256.Sum256([]byte(token))
	return edge.Catalog{Unit: "01", Units: []units.Unit{{Code: "01", Level: units.LevelProvince, NameVI: "Hà Nội", Boundary: mp}},
		Sources: []edge.Source{src}}
}

// BenchmarkEdgeCatchUp measures an edge's catch-up after a cut: items
// accepted by the edge's ingest while its leaf link is cut (n per run), then
// the link restored, until the hub's FEEDS holds them all. It reports
//
//   - catchup-events/s: n over the time from the restore to the last item at
//     the hub (nats-server's reconnect and its source-consumer retry included);
//   - transfer-events/s: n over the time from the first item at the hub to the last;
//   - reconnect-ms: from the restore to the first item at the hub;
//   - raw-source-events/s: the baseline, the same n messages (bytes and
//     headers copied from the edge) sourced by one stream from another in the
//     hub's own server, with no leaf node and no domain, in the same run.
//
// Sub-benchmark sourced: the hub was sourcing the edge before the cut (an
// edge in service). never_sourced: the hub's source was added just before
// the cut and never reached the edge, so nats-server's retry backoff for
// source consumers (5 s × 2 × failures, at most 2 min) decides when it
// starts after the restore.
//
// go test -run '^$' -bench BenchmarkEdgeCatchUp -benchtime 3x ./cmd/iochub/
func BenchmarkEdgeCatchUp(b *testing.B) {
	b.Run("sourced", func(b *testing.B) { benchEdgeCatchUp(b, true) })
	b.Run("never_sourced", func(b *testing.B) { benchEdgeCatchUp(b, false) })
}

func benchEdgeCatchUp(b *testing.B, sourced bool) {
	const n, batch, posters = 20000, 500, 4
	const token = "bench-edge-token"
	var catchup, transfer, reconnect, raw float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ctx := context.Background()
		hs, err := natsx.StartEmbedded(natsx.EmbeddedConfig{StoreDir: b.TempDir(), Port: -1, LeafPort: -1})
		if err != nil {
			b.Fatal(err)
		}
		nc, err := natsx.Connect(hs.ClientURL(), "bench hub")
		if err != nil {
			b.Fatal(err)
		}
		hubJS, err := jetstream.New(nc)
		if err != nil {
			b.Fatal(err)
		}
		if err := natsx.EnsureStreams(ctx, hubJS, natsx.StreamOptions{}); err != nil {
			b.Fatal(err)
		}
		leaf, err := url.Parse(natsx.LeafURL(hs))
		if err != nil {
			b.Fatal(err)
		}
		proxy := testkit.NewLinkProxy(b, leaf.Host)
		cfg := edgeDefaults()
		cfg.Unit, cfg.DataDir, cfg.Hub = "01", b.TempDir(), "nats-leaf://"+proxy.Addr()
		cfg.HTTP, cfg.OpsHTTP, cfg.NATSPort, cfg.LeafReconnect, cfg.LogLevel = "127.0.0.1:0", "127.0.0.1:0", -1, 50*time.Millisecond, "error"
		cfg.Ingest.Limits.SourceRate, cfg.Ingest.Limits.SourceConcurrency = -1, -1
		ready := make(chan edgeReady, 1)
		ectx, stopEdge := context.WithCancel(ctx)
		edgeDone := make(chan error, 1)
		go func() {
			edgeDone <- serveEdge(ectx, edgeDeps{cfg: cfg, cat: benchCatalog(token), log: cfg.logger(io.Discard), ready: ready})
		}()
		var er edgeReady
		select {
		case er = <-ready:
		case err := <-edgeDone:
			b.Fatalf("edge exited at start: %v", err)
		}
		testkit.Eventually(b, 30*time.Second, "the leaf link", testkit.Holds(er.Node.LinkUp))
		if _, err := natsx.AddEdgeSource(ctx, hubJS, er.Node.Domain, edge.SubjectFilters(benchCatalog(""))); err != nil {
			b.Fatal(err)
		}
		// The hub is sourcing the edge (one item through) before the cut, as in service.
		warm := 0
		if sourced {
			item, err := newAirItem(fmt.Sprintf("warm-%d", i), "warm", 105.85, 21.03, time.Now().Add(-time.Hour))
			if err != nil {
				b.Fatal(err)
			}
			if code, res, err := edgePost(er.URL, token, []map[string]any{item}); err != nil || code != http.StatusAccepted || res.Accepted != 1 {
				b.Fatalf("POST of the first item: HTTP %d, %v", code, err)
			}
			testkit.Eventually(b, 5*time.Minute, "the hub sourcing the edge", testkit.Holds(func() bool { return streamCount(b, hubJS, subjects.StreamFeeds) == 1 }))
			warm = 1
		}
		proxy.Cut()
		testkit.Eventually(b, 30*time.Second, "the link down", testkit.Holds(func() bool { return !er.Node.LinkUp() }))

		// n items accepted while the link is cut.
		var wg sync.WaitGroup
		errs := make(chan error, posters)
		at := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
		for p := range posters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k < n/batch/posters; k++ {
					items := make([]map[string]any, batch)
					for j := range items {
						seq := (p*n/posters + k*batch + j)
						item, err := newAirItem(fmt.Sprintf("b-%d-%06d", i, seq), fmt.Sprintf("st-%d", p), 105.85, 21.03, at.Add(time.Duration(seq)*time.Millisecond))
						if err != nil {
							errs <- err
							return
						}
						items[j] = item
					}
					code, res, err := edgePost(er.URL, token, items)
					if err != nil {
						errs <- err
						return
					}
					if code != http.StatusAccepted || res.Accepted != batch {
						errs <- fmt.Errorf("POST: HTTP %d, %d of %d accepted", code, res.Accepted, batch)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		if got := streamCount(b, hubJS, subjects.StreamFeeds); got != uint64(warm) {
			b.Fatalf("the hub holds %d items while the link is cut", got)
		}

		// As after any real outage, the edge has dropped the hub's sourcing
		// consumer (nats-server's 10 s inactivity threshold at most): the hub
		// must create a new one from the last sequence it holds.
		testkit.Eventually(b, time.Minute, "the edge to drop the hub's consumer", testkit.Holds(func() bool {
			st, err := er.Node.JS.Stream(ctx, subjects.StreamFeeds)
			if err != nil {
				b.Fatal(err)
			}
			info, err := st.Info(ctx)
			if err != nil {
				b.Fatal(err)
			}
			return info.State.Consumers == 0
		}))

		// The catch-up.
		b.StartTimer()
		t0 := time.Now()
		proxy.Restore()
		var first time.Time
		for {
			got := streamCount(b, hubJS, subjects.StreamFeeds)
			if got > uint64(warm) && first.IsZero() {
				first = time.Now()
			}
			if got >= uint64(n+warm) {
				break
			}
			if time.Since(t0) > 5*time.Minute {
				b.Fatalf("the hub holds %d of %d items 5 minutes after the restore", got, n)
			}
			time.Sleep(2 * time.Millisecond) // polling interval of the measurement
		}
		end := time.Now()
		b.StopTimer()
		catchup += float64(n) / end.Sub(t0).Seconds()
		transfer += float64(n) / end.Sub(first).Seconds()
		reconnect += float64(first.Sub(t0).Milliseconds())

		// The baseline: the same messages sourced inside the hub's server.
		raw += rawSourcing(b, ctx, hubJS, er.Node.JS, n)

		stopEdge()
		if err := <-edgeDone; err != nil {
			b.Fatal(err)
		}
		proxy.Cut()
		nc.Close()
		hs.Shutdown()
		hs.WaitForShutdown()
	}
	b.ReportMetric(catchup/float64(b.N), "catchup-events/s")
	b.ReportMetric(transfer/float64(b.N), "transfer-events/s")
	b.ReportMetric(reconnect/float64(b.N), "reconnect-ms")
	b.ReportMetric(raw/float64(b.N), "raw-source-events/s")
}

// rawSourcing copies the n messages of the edge's FEEDS into a stream of the
// hub (outside the timing) and times a second stream of the hub sourcing it.
func rawSourcing(b *testing.B, ctx context.Context, hubJS, edgeJS jetstream.JetStream, n int) float64 {
	b.Helper()
	if _, err := hubJS.CreateStream(ctx, jetstream.StreamConfig{Name: "RAWSRC", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage, Duplicates: time.Hour}); err != nil {
		b.Fatal(err)
	}
	c, err := edgeJS.OrderedConsumer(ctx, subjects.StreamFeeds, jetstream.OrderedConsumerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	for copied := 0; copied < n; {
		batch, err := c.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			b.Fatal(err)
		}
		for m := range batch.Messages() {
			msg := &nats.Msg{Subject: "raw." + m.Subject(), Header: m.Headers(), Data: m.Data()}
			if _, err := hubJS.PublishMsgAsync(msg); err != nil {
				b.Fatal(err)
			}
			copied++
		}
	}
	select {
	case <-hubJS.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("copying the messages to the hub took over a minute")
	}
	b.StartTimer()
	t0 := time.Now()
	if _, err := hubJS.CreateStream(ctx, jetstream.StreamConfig{Name: "RAWDST", Storage: jetstream.FileStorage, Duplicates: time.Hour,
		Sources: []*jetstream.StreamSource{{Name: "RAWSRC"}}}); err != nil {
		b.Fatal(err)
	}
	for streamCount(b, hubJS, "RAWDST") < uint64(n) {
		if time.Since(t0) > 5*time.Minute {
			b.Fatal("raw sourcing did not finish in 5 minutes")
		}
		time.Sleep(2 * time.Millisecond) // polling interval of the measurement
	}
	d := time.Since(t0)
	b.StopTimer()
	return float64(n) / d.Seconds()
}
