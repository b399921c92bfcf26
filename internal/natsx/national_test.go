package natsx

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testkit"
)

// TestProvinceSourcing: a province hub (its own domain, a leaf node of the
// national hub, logged in as ProvinceLeafUser) and the national hub's
// ROLLUPS and STATE sourcing it. The province's own roll-ups and its alerts
// reach the national hub; its feeds, its wards' roll-ups and its other
// states do not; the sources survive EnsureStreams (a restarted national
// hub) and are listed; a second domain for the province is refused.
// startProvincePair starts a national hub and the hub of province 01 as its
// leaf node, both with iochub's streams, and waits for their link.
func startProvincePair(t *testing.T) (njs, pjs jetstream.JetStream, domain string) {
	t.Helper()
	ctx := context.Background()
	const pw, provincePW = "national-secret", "province-secret"
	domain, err := ProvinceDomain("01")
	if err != nil {
		t.Fatal(err)
	}
	national, err := StartEmbedded(EmbeddedConfig{StoreDir: t.TempDir(), Port: -1, LeafPort: -1, HubPassword: pw,
		LeafUsers: []*server.User{ProvinceLeafUser(domain, provincePW)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(national.Shutdown)
	nnc, err := Connect(national.ClientURL(), "national", nats.UserInfo(HubUser, pw))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nnc.Close)
	njs, err = jetstream.New(nnc)
	if err != nil {
		t.Fatal(err)
	}
	if err := EnsureStreams(ctx, njs, StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	leaf, err := url.Parse(LeafURL(national))
	if err != nil {
		t.Fatal(err)
	}
	leaf.User = url.UserPassword(domain, provincePW)
	province, err := StartEmbedded(EmbeddedConfig{StoreDir: t.TempDir(), Port: -1, ServerName: "iochub-" + domain, Domain: domain,
		LeafRemotes: []*url.URL{leaf}, LeafDeny: ProvinceLeafDeny, LeafReconnect: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(province.Shutdown)
	pnc, err := Connect(province.ClientURL(), "province")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pnc.Close)
	pjs, err = jetstream.New(pnc)
	if err != nil {
		t.Fatal(err)
	}
	if err := EnsureStreams(ctx, pjs, StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "the province's leaf link", testkit.Holds(func() bool { return province.NumLeafNodes() == 1 }))
	return njs, pjs, domain
}

func TestProvinceSourcing(t *testing.T) {
	ctx := context.Background()
	njs, pjs, domain := startProvincePair(t)
	if err := AddProvinceSources(ctx, njs, "01", domain); err != nil {
		t.Fatal(err)
	}
	if err := AddProvinceSources(ctx, njs, "01", domain); err != nil {
		t.Fatalf("adding the same province again: %v", err)
	}
	if err := AddProvinceSources(ctx, njs, "01", "province-01b"); !errors.Is(err, ErrProvinceSource) {
		t.Fatalf("adding province 01 under another domain: %v; want ErrProvinceSource", err)
	}
	// A restarted national hub keeps its sources.
	if err := EnsureStreams(ctx, njs, StreamOptions{}); err != nil {
		t.Fatal(err)
	}

	publish := func(subject string) {
		t.Helper()
		if _, err := pjs.Publish(ctx, subject, []byte(`{}`)); err != nil {
			t.Fatalf("publishing %s at the province: %v", subject, err)
		}
	}
	publish(subjects.Feed("01", "00070", subjects.KindAir))
	publish(subjects.Rollup("01", "00070", subjects.KindAir, "1h")) // a ward's
	publish(subjects.Rollup("VN", "VN", subjects.KindAir, "1h"))    // the province's share of VN
	publish(subjects.State("01", subjects.KindAir, "st-1"))
	publish(subjects.Rollup("01", "01", subjects.KindAir, "1h"))
	publish(subjects.State("01", subjects.KindAlert, "src/alert-1"))

	count := func(stream string) uint64 {
		st, err := njs.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	testkit.Eventually(t, 3*time.Minute, "the province's roll-up and alert at the national hub", func() (bool, string) {
		r, s := count(subjects.StreamRollups), count(subjects.StreamState)
		return r >= 1 && s >= 1, fmt.Sprintf("ROLLUPS %d, STATE %d", r, s)
	})
	// What was published last arrived: what was published before it and not sourced never will.
	if r, s, f := count(subjects.StreamRollups), count(subjects.StreamState), count(subjects.StreamFeeds); r != 1 || s != 1 || f != 0 {
		t.Fatalf("national ROLLUPS %d, STATE %d, FEEDS %d; want 1, 1, 0", r, s, f)
	}
	for stream, subject := range map[string]string{
		subjects.StreamRollups: subjects.Rollup("01", "01", subjects.KindAir, "1h"),
		subjects.StreamState:   subjects.State("01", subjects.KindAlert, "src/alert-1"),
	} {
		st, _ := njs.Stream(ctx, stream)
		if _, err := st.GetLastMsgForSubject(ctx, subject); err != nil {
			t.Errorf("national %s has no %s: %v", stream, subject, err)
		}
	}
	srcs, err := ProvinceSources(ctx, njs)
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 2 || srcs[0].Province != "01" || srcs[0].Domain != domain || srcs[1].Province != "01" || srcs[0].Stream == srcs[1].Stream {
		t.Fatalf("province sources %+v; want 01 at %s on ROLLUPS and STATE", srcs, domain)
	}
	if err := RemoveProvinceSources(ctx, njs, "01"); err != nil {
		t.Fatal(err)
	}
	if srcs, err := ProvinceSources(ctx, njs); err != nil || len(srcs) != 0 {
		t.Fatalf("after removing: %+v, %v; want none", srcs, err)
	}
}

// TestProvinceSourcingFromTheProvincesFirstMessage: the national STATE
// keeps one message a subject, so its first sequence is past 1 at once; a
// province added then is sourced from its first message, not from the time
// of the national hub's last one: the province's alert stored before
// arrives.
func TestProvinceSourcingFromTheProvincesFirstMessage(t *testing.T) {
	ctx := context.Background()
	njs, pjs, domain := startProvincePair(t)
	other := subjects.State("02", subjects.KindAlert, "src/a")
	for range 2 { // the second replaces the first: the national STATE starts at 2
		if _, err := njs.Publish(ctx, other, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	alert := subjects.State("01", subjects.KindAlert, "src/alert-1")
	if _, err := pjs.Publish(ctx, alert, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := njs.Publish(ctx, subjects.State("02", subjects.KindAlert, "src/b"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := AddProvinceSources(ctx, njs, "01", domain); err != nil {
		t.Fatal(err)
	}
	st, err := njs.Stream(ctx, subjects.StreamState)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 3*time.Minute, "the province's alert of before at the national hub", func() (bool, string) {
		_, err := st.GetLastMsgForSubject(ctx, alert)
		return err == nil, fmt.Sprint(err)
	})
}

func TestProvinceUserConfig(t *testing.T) {
	got, err := ProvinceUserConfig("01", "province-01", "$NATS_PROVINCE_01_PASSWORD")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`user: "province-01"`, `"$JS.province-01.API.>"`, `"iochub.national.province-01.deliver.>"`, `"LEAFNODE"`} {
		if !strings.Contains(got, want) {
			t.Errorf("config entry lacks %s:\n%s", want, got)
		}
	}
	if _, err := ProvinceUserConfig("01", "bad.domain", "$X"); !errors.Is(err, ErrEdgeUnit) {
		t.Errorf("a domain with a dot: %v; want ErrEdgeUnit", err)
	}
}

// TestAddProvinceSourcesAllOrNothing: a province that one of the national
// streams already sources under another domain is refused before either
// stream changes (before, ROLLUPS took the new domain's source and STATE
// refused it: the province half-sourced from two hubs).
func TestAddProvinceSourcesAllOrNothing(t *testing.T) {
	ctx := context.Background()
	js := embeddedJS(t)
	if err := EnsureStreams(ctx, js, StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	// STATE alone sources province 02 from province-02a (as a half-done
	// change by hand would leave it).
	old := provinceSources("02", "province-02a")[subjects.StreamState]
	st, err := js.Stream(ctx, subjects.StreamState)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.Sources = append(cfg.Sources, old)
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := AddProvinceSources(ctx, js, "02", "province-02b"); !errors.Is(err, ErrProvinceSource) {
		t.Fatalf("adding province 02 under another domain: %v; want ErrProvinceSource", err)
	}
	for _, stream := range nationalStreams {
		st, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range st.CachedInfo().Config.Sources {
			if s.External != nil && strings.Contains(s.External.APIPrefix, "province-02b") {
				t.Errorf("%s sources %s through %s after the refusal", stream, s.FilterSubject, s.External.APIPrefix)
			}
		}
	}
}
