package rules

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/alertrule"
)

// unusedJS satisfies Deps.JS for tests that publish nothing; any call panics.
type unusedJS struct{ jetstream.JetStream }

// fakeStore serves fixed rules and raised alerts.
type fakeStore struct {
	rules  []alertrule.Rule
	raised []Raised
}

func (f fakeStore) Rules(context.Context, string) ([]alertrule.Rule, error) { return f.rules, nil }
func (f fakeStore) RulesVersion(context.Context, string) (string, error)    { return "1", nil }
func (f fakeStore) RaisedAlerts(context.Context, string) ([]Raised, error)  { return f.raised, nil }

// TestEngineRunAgainWaitsBeforeSweeping: a partitioned aggregator runs the
// engine again when it takes the singleton lease back. The alerts restored
// by that run must not be swept before its consumer has delivered the last
// state of every entity: a sweep then starts their silence at the wall
// clock, and an entity silent for long keeps its alert up to a stale
// duration more.
func TestEngineRunAgainWaitsBeforeSweeping(t *testing.T) {
	wl := alertrule.Rule{ID: "wl", Province: "01", Kind: alertrule.KindWaterLevel, Params: alertrule.Params{MinAlarm: 2},
		Severity: "Severe", Enabled: true, Version: 1}
	id := Identifier("wl", "w1", at(0))
	store := fakeStore{rules: []alertrule.Rule{wl}, raised: []Raised{{Identifier: id, Sent: at(0), Province: "01", Unit: "00070"}}}
	e, err := New(Config{Province: "01"}, Deps{JS: unusedJS{}, Store: store, Now: fixed(at(1000))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for run := range 2 {
		if err := e.start(ctx); err != nil {
			t.Fatal(err)
		}
		e.sweep(ctx) // the first tick, before the consumer delivered anything
		if h := e.ev.held[heldKey{"wl", "w1"}]; h == nil || !h.seen.IsZero() {
			t.Fatalf("run %d: holding %+v after a sweep before the states; want its silence not started", run, h)
		}
		// The last state of w1, received at minute 10: silent since, the
		// next sweep cancels its alert (not published here).
		if got := e.ev.Observe(water("w1", 10, 3), at(10)); len(got) != 0 {
			t.Fatalf("run %d: got %q", run, describe(got))
		}
		if got := describe(e.ev.Sweep()); got != "cancel wl w1 since+0 at+1000" {
			t.Fatalf("run %d: sweep got %q; want the silent alert cancelled", run, got)
		}
		e.markReady() // the consumer caught up; the run ends (lease lost)
	}
}
