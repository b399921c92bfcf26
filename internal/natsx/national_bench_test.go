package natsx

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testkit"
)

// BenchmarkProvinceSourcing: how fast a national hub copies a province
// hub's roll-ups across the leaf link and the domains (AddProvinceSources,
// with its filter: n of the province's own roll-ups among as many of its
// wards'), against the baseline of the same filtered sourcing inside the
// province's server (a second stream sourcing its ROLLUPS), measured in the
// same iteration. The time runs from adding the source to the last roll-up
// stored, so it includes setting the sourcing up.
func BenchmarkProvinceSourcing(b *testing.B) {
	const n = 20000 // the province's own roll-ups (distinct subjects: ROLLUPS keeps one per subject)
	var national, baseline float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ctx := context.Background()
		domain, err := ProvinceDomain("01")
		if err != nil {
			b.Fatal(err)
		}
		ns, err := StartEmbedded(EmbeddedConfig{StoreDir: b.TempDir(), Port: -1, LeafPort: -1, HubPassword: "bench",
			LeafUsers: []*server.User{ProvinceLeafUser(domain, "bench-province")}})
		if err != nil {
			b.Fatal(err)
		}
		njs := benchJS(b, ns.ClientURL(), "bench")
		if err := EnsureStreams(ctx, njs, StreamOptions{}); err != nil {
			b.Fatal(err)
		}
		leaf, err := url.Parse(LeafURL(ns))
		if err != nil {
			b.Fatal(err)
		}
		leaf.User = url.UserPassword(domain, "bench-province")
		ps, err := StartEmbedded(EmbeddedConfig{StoreDir: b.TempDir(), Port: -1, ServerName: "iochub-" + domain, Domain: domain,
			LeafRemotes: []*url.URL{leaf}, LeafDeny: ProvinceLeafDeny, LeafReconnect: 50 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		pjs := benchJS(b, ps.ClientURL(), "")
		if err := EnsureStreams(ctx, pjs, StreamOptions{}); err != nil {
			b.Fatal(err)
		}
		testkit.Eventually(b, 20*time.Second, "the leaf link", testkit.Holds(func() bool { return ps.NumLeafNodes() == 1 }))
		body := []byte(`{"unit":"01","province":"01","layer":"air","window":"1h","observations":1}`)
		for j := range n {
			for _, unit := range []string{"01", "00070"} {
				if _, err := pjs.PublishAsync(subjects.Rollup("01", unit, "air", fmt.Sprintf("w%d", j)), body); err != nil {
					b.Fatal(err)
				}
			}
			if j%1000 == 999 || j == n-1 { // at most 2 000 in flight
				select {
				case <-pjs.PublishAsyncComplete():
				case <-time.After(time.Minute):
					b.Fatal("publishing the roll-ups at the province took over a minute")
				}
			}
		}

		viaNational := func() {
			b.StartTimer()
			start := time.Now()
			if err := AddProvinceSources(ctx, njs, "01", domain); err != nil {
				b.Fatal(err)
			}
			waitMsgs(b, njs, subjects.StreamRollups, uint64(n))
			national += float64(n) / time.Since(start).Seconds()
			b.StopTimer()
		}
		// Baseline: the same filtered sourcing inside the province's server.
		inside := func() {
			start := time.Now()
			if _, err := pjs.CreateStream(ctx, jetstream.StreamConfig{Name: "BASELINE", Storage: jetstream.FileStorage,
				Sources: []*jetstream.StreamSource{{Name: subjects.StreamRollups, FilterSubject: subjects.RollupUnitAll("01", "01")}}}); err != nil {
				b.Fatal(err)
			}
			waitMsgs(b, pjs, "BASELINE", uint64(n))
			baseline += float64(n) / time.Since(start).Seconds()
		}
		// Alternately first, so that neither always runs on a warmer server.
		if i%2 == 0 {
			viaNational()
			inside()
		} else {
			inside()
			viaNational()
		}
		ps.Shutdown()
		ns.Shutdown()
	}
	b.ReportMetric(national/float64(b.N), "rollups/s")
	b.ReportMetric(baseline/float64(b.N), "baseline_rollups/s")
}

func benchJS(b *testing.B, u, password string) jetstream.JetStream {
	b.Helper()
	var opts []nats.Option
	if password != "" {
		opts = append(opts, nats.UserInfo(HubUser, password))
	}
	nc, err := Connect(u, "bench", opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	return js
}

// waitMsgs waits until stream holds n messages, reading its info every
// 5 ms (a fine clock for the rate; testkit.Eventually backs off).
func waitMsgs(b *testing.B, js jetstream.JetStream, stream string, n uint64) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	tk := time.NewTicker(5 * time.Millisecond)
	defer tk.Stop()
	got := uint64(0)
	for range tk.C {
		if st, err := js.Stream(context.Background(), stream); err == nil {
			if info, err := st.Info(context.Background()); err == nil {
				got = info.State.Msgs
			}
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s holds %d of %d roll-ups after 5 minutes", stream, got, n)
		}
	}
}
