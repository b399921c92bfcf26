package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/deadletter"
	"github.com/iochub/iochub/internal/edge"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// edgeHub is a hub (NATS with a leaf-node listener and the streams; the
// aggregator on a real PostGIS with the seed units) and an edge node of
// unit, whose leaf link runs through a linkProxy.
type edgeHub struct {
	db      *testenv.DBEnv
	hubNATS *testenv.NATSEnv
	hubJS   jetstream.JetStream
	proxy   *testkit.LinkProxy
	node    *edge.Node
	url     string
	domain  string
}

const (
	edgeHubPassword  = "edge-e2e-hub-password"
	edgeUserPassword = "edge-e2e-edge-password"
)

func startEdgeHub(t *testing.T, unit string, db *testenv.DBEnv) *edgeHub {
	t.Helper()
	ctx := context.Background()
	domain, err := natsx.EdgeDomain(unit)
	if err != nil {
		t.Fatal(err)
	}
	// The edge logs in as its own user (iochub edge-nats-user), which may carry only the hub's sourcing.
	hubNATS, proxy := testenv.LeafHub(t, edgeHubPassword, natsx.EdgeLeafUser(domain, edgeUserPassword))
	js := hubNATS.JS
	// The aggregator of the hub, through the wiring of iochub serve.
	startHubTB(t, "aggregator", hubNATS, db)

	// What iochub edge-export writes and iochub edge reads.
	cat, err := edge.Export(ctx, db.Pool, unit, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	if err := cat.Write(&file); err != nil {
		t.Fatal(err)
	}
	if cat, err = edge.ReadCatalog(&file); err != nil {
		t.Fatal(err)
	}

	cfg := edgeDefaults()
	cfg.Unit, cfg.DataDir = unit, t.TempDir()
	cfg.Hub = "nats-leaf://" + natsx.EdgeUser(unit) + ":" + edgeUserPassword + "@" + proxy.Addr()
	cfg.HTTP, cfg.OpsHTTP, cfg.NATSPort = "127.0.0.1:0", "127.0.0.1:0", -1
	cfg.LeafReconnect = 50 * time.Millisecond
	cfg.LogLevel = "warn"
	// The senders post as fast as the edge answers: no per-source rate limit in the way (429 is not the subject here).
	cfg.Ingest.Limits.SourceRate, cfg.Ingest.Limits.SourceConcurrency = -1, -1
	ready := make(chan edgeReady, 1)
	run := testkit.Start(t, "edge "+unit, func(ctx context.Context) error {
		return serveEdge(ctx, edgeDeps{cfg: cfg, cat: cat, log: cfg.logger(io.Discard), ready: ready})
	})
	eh := &edgeHub{db: db, hubNATS: hubNATS, hubJS: js, proxy: proxy, domain: domain}
	select {
	case r := <-ready:
		eh.url, eh.node = r.URL, r.Node
	case <-run.Done():
		t.Fatalf("edge exited at start: %v", run.Err())
	case <-time.After(30 * time.Second):
		t.Fatal("edge did not start in 30 s")
	}
	testkit.Eventually(t, 20*time.Second, "the edge's leaf link to the hub", testkit.Holds(eh.node.LinkUp))
	// What iochub edge-add does, with the edge up (as docs/edge.md advises).
	filters, err := edgeFilters(ctx, db.URL, unit)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := natsx.AddEdgeSource(ctx, js, domain, filters); err != nil {
		t.Fatal(err)
	}
	// The hub has reached the edge once (its source heard from it), so the
	// cut below is that of an edge in service; a source never reached is
	// retried with nats-server's backoff (up to 2 min; BenchmarkEdgeCatchUp/never_sourced).
	testkit.Eventually(t, 3*time.Minute, "the hub reaching the edge's FEEDS", func() (bool, string) {
		srcs, err := natsx.EdgeSources(ctx, js)
		if err != nil || len(srcs) != 1 {
			t.Fatalf("edge sources %+v, %v; want one", srcs, err)
		}
		return srcs[0].Active >= 0, fmt.Sprintf("%+v", srcs[0])
	})
	return eh
}

// edgeResult is the ingest's answer with the event id of each item.
type edgeResult struct {
	Accepted, Duplicates, Rejected int
	Results                        []struct {
		Status  string `json:"status"`
		Reason  string `json:"reason"`
		EventID string `json:"eventId"`
		Unit    string `json:"unit"`
	} `json:"results"`
}

func edgePost(base, token string, items []map[string]any) (int, edgeResult, error) {
	body, err := json.Marshal(items)
	if err != nil {
		return 0, edgeResult{}, err
	}
	req, err := http.NewRequest("POST", base+"/v1/feeds/air", bytes.NewReader(body))
	if err != nil {
		return 0, edgeResult{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, edgeResult{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, edgeResult{}, err
	}
	var res edgeResult
	if resp.StatusCode == http.StatusAccepted {
		if err := json.Unmarshal(raw, &res); err != nil {
			return 0, edgeResult{}, fmt.Errorf("decoding %s: %w", raw, err)
		}
	}
	return resp.StatusCode, res, nil
}

// poster sends batches of air items of one station as one source, one
// request at a time, and records which event ids the edge answered accepted.
type poster struct {
	name, token, station string
	lon, lat             float64
	batch                int
	at                   time.Time // of the first item; each next one a millisecond later

	mu       sync.Mutex
	accepted []string // in the order sent
	other    map[string]int
}

func (p *poster) run(ctx context.Context, base string, total *atomic.Int64) error {
	at := p.at
	for n := 0; ctx.Err() == nil; n++ {
		items := make([]map[string]any, p.batch)
		for i := range items {
			id := fmt.Sprintf("%s-%06d-%03d", p.name, n, i)
			item, err := newAirItem(id, p.station, p.lon, p.lat, at.Add(time.Duration(n*p.batch+i)*time.Millisecond))
			if err != nil {
				return err
			}
			items[i] = item
		}
		code, res, err := edgePost(base, p.token, items)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		p.mu.Lock()
		if code != http.StatusAccepted {
			p.other[fmt.Sprint("HTTP ", code)]++
		}
		for i, r := range res.Results {
			if r.Status == "accepted" {
				if !strings.HasPrefix(r.EventID, fmt.Sprintf("%s-%06d-%03d", p.name, n, i)) {
					p.mu.Unlock()
					return fmt.Errorf("result %d has event id %q; want that of item %s-%06d-%03d", i, r.EventID, p.name, n, i)
				}
				p.accepted = append(p.accepted, r.EventID)
				total.Add(1)
			} else {
				p.other[r.Status+": "+r.Reason]++
			}
		}
		p.mu.Unlock()
	}
	return nil
}

// feedIDs reads a FEEDS stream whole and returns the event ids (ce-id) per subject, in stream order.
func feedIDs(t *testing.T, js jetstream.JetStream) map[string][]string {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	if info.State.Msgs == 0 {
		return out
	}
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for n := uint64(0); n < info.State.Msgs; {
		b, err := c.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range b.Messages() {
			out[m.Subject()] = append(out[m.Subject()], m.Headers().Get(ce.HeaderID))
			got++
		}
		if b.Error() != nil && !errors.Is(b.Error(), nats.ErrTimeout) {
			t.Fatal(b.Error())
		}
		if got == 0 {
			t.Fatalf("read %d of %d messages, then nothing", n, info.State.Msgs)
		}
		n += uint64(got)
	}
	return out
}

// edgeConsumers counts the hub's sourcing consumers on the edge's FEEDS
// (other direct consumers, a mirror, are not counted).
// nats-server shows them neither in the stream's consumer count nor in its
// consumer list, only among the direct consumers of its monitoring (Jsz).
func edgeConsumers(t *testing.T, s *server.Server) int {
	t.Helper()
	acc, err := s.JszAccount(&server.JSzOptions{Account: s.GlobalAccount().GetName(), Streams: true, Consumer: true, DirectConsumer: true, Config: true})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, st := range acc.Streams {
		if st.Name != subjects.StreamFeeds {
			continue
		}
		for _, c := range st.DirectConsumer {
			if c != nil && c.Config != nil && c.Config.Sourcing {
				n++
			}
		}
	}
	return n
}

func streamCount(tb testing.TB, js jetstream.JetStream, stream string) uint64 {
	tb.Helper()
	st, err := js.Stream(context.Background(), stream)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return info.State.Msgs
}

// TestEdgeLinkCutReconciles is the edge node's contract (docs/edge.md), on
// real NATS servers (a hub and an edge leaf node in process) and a real
// PostGIS behind the hub's aggregator: sources of Hà Nội post batches at the
// edge of unit 01 under load while the leaf link is up, then cut (the proxy
// between them closes every connection and refuses new ones until a count
// of items has been accepted meanwhile, a few seconds), then mended; every
// item the edge answered accepted is stored exactly once in PostGIS, the
// hub's FEEDS holds each once, in the edge's order per subject, which is
// each poster's sending order.
func TestEdgeLinkCutReconciles(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	tokHK, err := postgis.AddSource(ctx, db.Pool, postgis.Source{ID: "edge-hk", UnitCode: wardIn})
	if err != nil {
		t.Fatal(err)
	}
	tokBD, err := postgis.AddSource(ctx, db.Pool, postgis.Source{ID: "edge-bd", UnitCode: wardOut})
	if err != nil {
		t.Fatal(err)
	}
	tokHCM, err := postgis.AddSource(ctx, db.Pool, postgis.Source{ID: "edge-hcm", UnitCode: "79"})
	if err != nil {
		t.Fatal(err)
	}
	hkLon, hkLat := pointIn(t, db, wardIn)
	bdLon, bdLat := pointIn(t, db, wardOut)
	eh := startEdgeHub(t, "01", db)

	// Only sources of the edge's unit and below: Hồ Chí Minh City's token is unknown here,
	// and a ward's source may not place an item in another ward.
	if code, _, err := edgePost(eh.url, tokHCM, []map[string]any{airItemTB(t, "hcm-1", "hcm-st", 106.7, 10.78, time.Now())}); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("a source of unit 79 at the edge of 01: HTTP %d, %v; want 401", code, err)
	}
	if code, _, err := edgePost(eh.url, tokHK, []map[string]any{airItemTB(t, "hk-out", "hk-out", bdLon, bdLat, time.Now())}); err != nil ||
		code != http.StatusForbidden {
		t.Fatalf("a Hoàn Kiếm source placing an item in Ba Đình: HTTP %d, %v; want 403 (outside its unit)", code, err)
	}

	// Nothing but the edge's ingest publishes into what the hub sources: its NATS wants a password.
	if nc, err := nats.Connect(eh.node.Server.ClientURL(), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("the edge's NATS server took a connection without a password")
	}

	posters := []*poster{
		{name: "hk-a", token: tokHK, station: "hk-st-a", lon: hkLon, lat: hkLat},
		{name: "hk-b", token: tokHK, station: "hk-st-b", lon: hkLon, lat: hkLat},
		{name: "bd-a", token: tokBD, station: "bd-st-a", lon: bdLon, lat: bdLat},
	}
	var total atomic.Int64
	load, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var wg sync.WaitGroup
	errs := make(chan error, len(posters))
	for _, p := range posters {
		p.batch, p.other, p.at = 20, map[string]int{}, time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.run(load, eh.url, &total); err != nil {
				errs <- fmt.Errorf("poster %s: %w", p.name, err)
			}
		}()
	}
	accepted := func(n int64) func() (bool, string) {
		return func() (bool, string) {
			select {
			case err := <-errs:
				t.Fatal(err)
			default:
			}
			got := total.Load()
			return got >= n, fmt.Sprintf("%d of %d accepted", got, n)
		}
	}
	const phase = 600 // items accepted per phase at least: link up, link cut, link back
	// cutFor is how long the link stays cut at least: 3 s in CI, minutes with
	// EDGE_CUT_FOR=2m (docs/edge.md has the budget of a real edge).
	cutFor := 3 * time.Second
	if v := os.Getenv("EDGE_CUT_FOR"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 30*time.Minute {
			t.Fatalf("EDGE_CUT_FOR=%q: want a duration up to 30m", v)
		}
		cutFor = d
	}
	start := time.Now()
	testkit.Eventually(t, time.Minute, "items accepted with the link up", accepted(phase))
	if n := edgeConsumers(t, eh.node.Server); n != 1 {
		t.Fatalf("%d sourcing consumers of the hub on the edge's FEEDS before the cut; want 1", n)
	}
	eh.proxy.Cut()
	cutAt := time.Now()
	testkit.Eventually(t, 20*time.Second, "the edge to see its link down", testkit.Holds(func() bool { return !eh.node.LinkUp() }))
	atCut := total.Load()
	testkit.Eventually(t, time.Minute, "items accepted while the link is cut", accepted(atCut+phase))
	// The cut lasts, under load, at least cutFor and until the edge has
	// dropped the hub's sourcing consumer, so that the hub must resume with a
	// new one from the last sequence it holds, as after any real outage.
	testkit.Eventually(t, cutFor+time.Minute, "a cut of "+cutFor.String(), func() (bool, string) {
		n := edgeConsumers(t, eh.node.Server)
		ok, state := accepted(0)()
		if eh.node.LinkUp() {
			t.Fatal("the edge's link came back through a cut proxy")
		}
		return ok && n == 0 && time.Since(cutAt) >= cutFor, fmt.Sprintf("%d consumers on the edge's FEEDS; %s", n, state)
	})
	eh.proxy.Restore()
	cut := time.Since(cutAt)
	duringCut := total.Load() - atCut
	testkit.Eventually(t, 30*time.Second, "the edge's link back", testkit.Holds(eh.node.LinkUp))
	testkit.Eventually(t, time.Minute, "items accepted after the link came back", accepted(total.Load()+phase))
	stopLoad()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// A sender retrying a batch the edge already accepted gets duplicates, and nothing more is stored.
	retry := posters[0]
	items := make([]map[string]any, retry.batch)
	for i := range items {
		items[i] = airItemTB(t, fmt.Sprintf("%s-%06d-%03d", retry.name, 0, i), retry.station, retry.lon, retry.lat, retry.at.Add(time.Duration(i)*time.Millisecond))
	}
	if code, res, err := edgePost(eh.url, retry.token, items); err != nil || code != http.StatusAccepted || res.Duplicates != retry.batch {
		t.Fatalf("retrying the first batch: HTTP %d, %d duplicates, %v; want %d duplicates", code, res.Duplicates, err, retry.batch)
	}

	want := map[string]bool{}
	for _, p := range posters {
		for _, id := range p.accepted {
			want[id] = true
		}
		if len(p.other) > 0 {
			t.Logf("poster %s: answers other than accepted: %v", p.name, p.other)
		}
	}
	if int64(len(want)) != total.Load() {
		t.Fatalf("%d distinct accepted ids for %d accepted answers", len(want), total.Load())
	}
	t.Logf("accepted %d items at the edge, %d while the link was cut for %s", len(want), duringCut, cut.Round(time.Millisecond))

	// Every accepted item reaches PostGIS, through the hub's FEEDS.
	count := func() (rows, distinct int) {
		err := db.Pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT (source_id, event_id)) FROM air_observation
			WHERE source_id IN ('edge-hk', 'edge-bd')`).Scan(&rows, &distinct)
		if err != nil {
			t.Fatal(err)
		}
		return rows, distinct
	}
	loadDone := time.Now()
	testkit.Eventually(t, 2*time.Minute, "every accepted item stored at the hub", func() (bool, string) {
		rows, _ := count()
		return rows >= len(want), fmt.Sprintf("%d of %d rows; hub FEEDS holds %d", rows, len(want), streamCount(t, eh.hubJS, subjects.StreamFeeds))
	})
	t.Logf("load %s, then stored at the hub in %s", loadDone.Sub(start).Round(time.Millisecond), time.Since(loadDone).Round(time.Millisecond))
	if rows, distinct := count(); rows != len(want) || distinct != len(want) {
		t.Fatalf("PostGIS holds %d rows, %d distinct; want %d, each once", rows, distinct, len(want))
	}
	ids, err := db.Pool.Query(ctx, `SELECT event_id FROM air_observation WHERE source_id IN ('edge-hk', 'edge-bd')`)
	if err != nil {
		t.Fatal(err)
	}
	for ids.Next() {
		var id string
		if err := ids.Scan(&id); err != nil {
			t.Fatal(err)
		}
		if !want[id] {
			t.Errorf("PostGIS holds %s, which the edge never answered accepted", id)
		}
	}
	if err := ids.Err(); err != nil {
		t.Fatal(err)
	}

	// The hub's FEEDS holds each accepted item once, in the edge's order per subject,
	// and each poster's items in the order it sent them.
	// (The hub's FEEDS also holds the alerts its aggregator's rules raise: only air is the edge's.)
	hubIDs, edgeIDs := feedIDs(t, eh.hubJS), feedIDs(t, eh.node.JS)
	maps.DeleteFunc(hubIDs, func(subj string, _ []string) bool { return !strings.HasSuffix(subj, ".air") })
	if len(hubIDs) != 2 || len(edgeIDs) != 2 {
		t.Fatalf("air subjects: hub %v, edge %v; want one per ward", slices.Sorted(maps.Keys(hubIDs)), slices.Sorted(maps.Keys(edgeIDs)))
	}
	n := 0
	for subj, ids := range edgeIDs {
		if !slices.Equal(hubIDs[subj], ids) {
			t.Fatalf("subject %s: the hub holds %d ids, the edge %d, or in another order", subj, len(hubIDs[subj]), len(ids))
		}
		n += len(ids)
	}
	if n != len(want) {
		t.Fatalf("the hub's FEEDS holds %d air items of the edge; want %d", n, len(want))
	}
	for _, p := range posters {
		var seen []string
		for _, ids := range hubIDs {
			for _, ev := range ids {
				if strings.HasPrefix(ev, p.name+"-") {
					seen = append(seen, ev)
				}
			}
		}
		if !slices.Equal(seen, p.accepted) {
			t.Fatalf("poster %s: the hub holds %d of its items, out of the order sent (%d accepted)", p.name, len(seen), len(p.accepted))
		}
	}
	if st, err := eh.node.JS.Stream(ctx, subjects.StreamFeeds); err == nil {
		if info, err := st.Info(ctx); err == nil && info.State.Msgs > 0 {
			t.Logf("the edge's FEEDS: %d items, %d bytes (%d a stored item)", info.State.Msgs, info.State.Bytes, info.State.Bytes/info.State.Msgs)
		}
	}
	srcs, err := natsx.EdgeSources(ctx, eh.hubJS)
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 1 || srcs[0].Domain != eh.domain || srcs[0].Lag != 0 || srcs[0].Error != "" {
		t.Fatalf("edge sources %+v; want %s with no lag and no error", srcs, eh.domain)
	}
}

// TestEdgeCannotPreemptAHubItem: an edge whose machine is not to be
// trusted writes into its own FEEDS an item under the message id a source of
// the hub's is about to have, as the ingest made it before the ids were
// keyed: "<source>/<kind>/<event id>". The hub sources it (and dead-letters
// it); the real item, posted to the hub's ingest then, within FEEDS'
// duplicate window, is answered accepted and stored, because the hub's ids
// are keyed with its own key, which the edge cannot read (before, it was
// answered duplicate and never stored). Sent again, to the same ingest or
// another of the hub, it is a duplicate.
func TestEdgeCannotPreemptAHubItem(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	tokHanoi, err := postgis.AddSource(ctx, db.Pool, postgis.Source{ID: "hanoi", UnitCode: "01"})
	if err != nil {
		t.Fatal(err)
	}
	eh := startEdgeHub(t, wardIn, db)
	ingestA := startHubTB(t, "ingest", eh.hubNATS, db)
	lon, lat := pointIn(t, db, wardIn)
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	item := airItemTB(t, "real-1", "hn-st", lon, lat, at)
	event := "real-1@" + at.UTC().Format(time.RFC3339)
	forged := ce.FeedMsgID("hanoi", subjects.KindAir, event)
	subj := subjects.Feed("01", wardIn, subjects.KindAir)
	h := nats.Header{ce.HeaderFeedSource: {"hanoi"}, ce.HeaderID: {event}}
	if _, err := eh.node.JS.PublishMsg(ctx, &nats.Msg{Subject: subj, Header: h, Data: []byte("forged")}, jetstream.WithMsgID(forged)); err != nil {
		t.Fatal(err)
	}
	hubFeeds, err := eh.hubJS.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, time.Minute, "the forgery in the hub's FEEDS", func() (bool, string) {
		m, err := hubFeeds.GetLastMsgForSubject(ctx, subj)
		if err != nil {
			return false, err.Error()
		}
		return m.Header.Get(jetstream.MsgIDHeader) == forged, fmt.Sprintf("last message id %q", m.Header.Get(jetstream.MsgIDHeader))
	})

	code, res, err := edgePost(ingestA.url, tokHanoi, []map[string]any{item})
	if err != nil || code != http.StatusAccepted || res.Accepted != 1 || res.Results[0].EventID != event {
		t.Fatalf("the real item at the hub: HTTP %d, %+v, %v; want %s accepted", code, res, err, event)
	}
	testkit.Eventually(t, 30*time.Second, "the real item stored", func() (bool, string) {
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM air_observation WHERE source_id = 'hanoi' AND event_id = $1`, event).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1, fmt.Sprintf("%d rows", n)
	})

	ingestB := startHubTB(t, "ingest", eh.hubNATS, db)
	for name, url := range map[string]string{"the same ingest": ingestA.url, "another ingest of the hub": ingestB.url} {
		code, res, err := edgePost(url, tokHanoi, []map[string]any{item})
		if err != nil || code != http.StatusAccepted || res.Duplicates != 1 {
			t.Errorf("the real item again, to %s: HTTP %d, %+v, %v; want duplicate", name, code, res, err)
		}
	}
}

// TestEdgeItemsBeyondItsBindings: an edge whose machine is not to be trusted
// writes items into its own FEEDS past its ingest. The hub copies none of
// another ward's (the edge is sourced through its units' filters), and the
// aggregator dead-letters, with the reason, those of a source the hub never
// registered, those naming the province's source (not one of the edge's
// units), and those naming no source; the edge's own item is stored.
func TestEdgeItemsBeyondItsBindings(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	tokHK, err := postgis.AddSource(ctx, db.Pool, postgis.Source{ID: "edge-hk", UnitCode: wardIn})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := postgis.AddSource(ctx, db.Pool, postgis.Source{ID: "hanoi", UnitCode: "01"}); err != nil {
		t.Fatal(err)
	}
	if _, err := postgis.AddSource(ctx, db.Pool, postgis.Source{ID: "edge-bd", UnitCode: wardOut}); err != nil {
		t.Fatal(err)
	}
	eh := startEdgeHub(t, wardIn, db)
	lon, lat := pointIn(t, db, wardIn)
	if code, res, err := edgePost(eh.url, tokHK, []map[string]any{airItemTB(t, "own-1", "hk-st", lon, lat, time.Now().Add(-time.Minute))}); err != nil ||
		code != http.StatusAccepted || res.Accepted != 1 {
		t.Fatalf("the edge's own item: HTTP %d, %+v, %v; want accepted", code, res, err)
	}
	// What the edge's ingest stored, copied with other headers and subjects, as a hand on the edge's machine would.
	edgeFeeds, err := eh.node.JS.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	own, err := edgeFeeds.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	forge := func(subject, source, id string) {
		t.Helper()
		h := nats.Header{}
		for k, v := range own.Header {
			h[k] = slices.Clone(v)
		}
		delete(h, jetstream.MsgIDHeader)
		if source == "" {
			delete(h, ce.HeaderFeedSource)
		} else {
			h.Set(ce.HeaderFeedSource, source)
		}
		if _, err := eh.node.JS.PublishMsg(ctx, &nats.Msg{Subject: subject, Header: h, Data: own.Data}, jetstream.WithMsgID(id)); err != nil {
			t.Fatal(err)
		}
	}
	ownSubj := own.Subject
	forge(ownSubj, "ghost", "ghost/1")
	forge(ownSubj, "hanoi", "hanoi/1")
	forge(ownSubj, "", "nameless/1")
	forge(subjects.Feed("01", wardOut, subjects.KindAir), "edge-bd", "edge-bd/1")
	forge(subjects.Feed("79", wardIn, subjects.KindAir), "edge-hk", "edge-hk/79")

	reasons := func() map[string]string {
		out := map[string]string{}
		st, err := eh.hubJS.Stream(ctx, subjects.StreamDeadletter)
		if err != nil {
			return out
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
			m, err := st.GetMsg(ctx, seq)
			if err != nil {
				continue
			}
			out[m.Header.Get(deadletter.HeaderMsgID)] = m.Header.Get(deadletter.HeaderReason)
		}
		return out
	}
	testkit.Eventually(t, time.Minute, "the forged items dead-lettered", func() (bool, string) {
		got := reasons()
		return len(got) >= 3, fmt.Sprintf("dead letters %v", got)
	})
	got := reasons()
	for id, want := range map[string]string{
		"ghost/1":    `source "ghost" is not registered`,
		"hanoi/1":    `source "hanoi" is bound to unit 01, which is not among the edge's units (` + wardIn + `)`,
		"nameless/1": "names no source",
	} {
		if !strings.Contains(got[id], want) {
			t.Errorf("dead letter %s: reason %q; want it to say %q", id, got[id], want)
		}
	}
	if len(got) != 3 {
		t.Errorf("dead letters %v; want the 3 forged items of the edge's ward (another ward's or province's never reach the hub)", got)
	}
	if n := streamCount(t, eh.hubJS, subjects.StreamFeeds); n != 4 {
		t.Errorf("the hub's FEEDS holds %d items; want 4: the edge's own and the 3 of its ward, none of ward %s or province 79", n, wardOut)
	}
	var rows int
	var sources []string
	testkit.Eventually(t, 30*time.Second, "the edge's own item stored", func() (bool, string) {
		if err := db.Pool.QueryRow(ctx, `SELECT count(*), array_agg(DISTINCT source_id) FROM air_observation`).Scan(&rows, &sources); err != nil {
			t.Fatal(err)
		}
		return rows >= 1, fmt.Sprintf("%d rows of %v", rows, sources)
	})
	if rows != 1 || !slices.Equal(sources, []string{"edge-hk"}) {
		t.Fatalf("PostGIS holds %d air rows of %v; want the edge's own item alone", rows, sources)
	}
}
