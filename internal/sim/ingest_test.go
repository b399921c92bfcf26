package sim_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/seed"
	"github.com/iochub/iochub/internal/sim"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/units"
	"github.com/iochub/iochub/services/ingest"
)

// TestRealIngestAcceptsEverything posts simulated rounds to the real ingest
// (dev token, the 2025 units) on a real in-process NATS server: every item
// must be accepted and land in stream FEEDS, and a retry of the same round is
// answered duplicate.
func TestRealIngestAcceptsEverything(t *testing.T) {
	env := testenv.NATS(t)
	provinces, err := units.FromGeoJSON(bytes.NewReader(seed.Provinces2025()), units.LevelProvince, "")
	if err != nil {
		t.Fatal(err)
	}
	wards, err := units.FromGeoJSON(bytes.NewReader(seed.HanoiWards2025()), units.LevelCommune, "01")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	in, err := ingest.New(t.Context(), ingest.Config{DevToken: "dev-secret"},
		ingest.Deps{JS: env.JS, Units: append(provinces, wards...), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	in.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	const stations, segments, water, weather = 12, 20, 3, 2
	clock := func() time.Time { return now }
	run := func() sim.Stats {
		s, err := sim.New(sim.Config{BaseURL: srv.URL, Token: "dev-secret", Stations: stations, Segments: segments,
			Water: water, Weather: weather, AlertEvery: time.Minute, Rounds: 1, Seed: 11, Clock: clock, RetryBase: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Run(context.Background()); err != nil {
			t.Fatalf("Run: %v", err)
		}
		return s.Stats()
	}
	first := run()
	if want := int64(stations + segments + 1 + water + weather); first.Items != want || first.Accepted != want || first.Rejected != 0 || first.Failed != 0 {
		t.Fatalf("first round: %+v; want all %d items accepted", first, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := env.JS.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subjects.FeedProvince("01")))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.State.Msgs, uint64(stations+segments+1+water+weather); got != want {
		t.Errorf("FEEDS holds %d messages under province 01; want %d", got, want)
	}
	// Same seed, same clock: the same ids, so a resend is all duplicates.
	second := run()
	if second.Duplicate != first.Accepted || second.Accepted != 0 {
		t.Errorf("resend: %+v; want %d duplicates and nothing accepted", second, first.Accepted)
	}
}
