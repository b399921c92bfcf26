package gateway

import (
	"math/rand/v2"
	"net/url"
	"testing"
	"time"

	"github.com/iochub/iochub/services/gateway/pgread"
)

// TestPlanHistory: whatever the range and N, the plan makes at most N
// buckets covering [from, to); roll-up buckets are whole windows starting on
// a window start; an entity is always raw; a unit is raw only under a
// minute's bucket over at most a day.
func TestPlanHistory(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	windows := map[string]time.Duration{"1m": time.Minute, "15m": 15 * time.Minute, "1h": time.Hour, "1d": 24 * time.Hour}
	for i := range 20000 {
		from := time.Unix(1.7e9+rng.Int64N(1e8), rng.Int64N(1e9)).UTC()
		span := time.Duration(rng.Int64N(int64(MaxHistoryRangeEntity))) + 1
		if i%3 == 0 {
			span = time.Duration(rng.Int64N(int64(48*time.Hour))) + 1
		}
		p := historyParams{Layer: pgread.HistoryLayers["air"], From: from, To: from.Add(span), Points: 1 + rng.IntN(MaxHistoryPoints)}
		if i%2 == 0 {
			p.Entity = "st"
		} else {
			p.Unit = "01"
		}
		plan := planHistory(p)
		if plan.Bucket <= 0 || plan.Origin.After(p.From) {
			t.Fatalf("%+v: plan %+v", p, plan)
		}
		buckets := (p.To.Sub(plan.Origin) + plan.Bucket - 1) / plan.Bucket
		if buckets > time.Duration(p.Points) {
			t.Fatalf("%+v: %d buckets of %s from %s; want at most %d", p, buckets, plan.Bucket, plan.Origin, p.Points)
		}
		switch {
		case p.Entity != "" && plan.Window != "":
			t.Fatalf("entity history from roll-ups: %+v", plan)
		case plan.Window == "":
			if p.Entity == "" && (plan.Bucket >= time.Minute || span > MaxHistoryRawUnitRange) {
				t.Fatalf("unit history from raw rows with bucket %s over %s", plan.Bucket, span)
			}
			if !plan.Origin.Equal(p.From) || plan.Bucket%time.Second != 0 {
				t.Fatalf("raw plan %+v for from %s", plan, p.From)
			}
		default:
			w := windows[plan.Window]
			if plan.Bucket%w != 0 || floorMod(plan.Origin.Sub(windowGrid), w) != 0 || p.From.Sub(plan.Origin) >= w {
				t.Fatalf("roll-up plan %+v for from %s", plan, p.From)
			}
		}
	}
}

func FuzzParseHistoryQuery(f *testing.F) {
	f.Add("unit=01&layer=air&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&points=10")
	f.Add("entity=x&layer=traffic&points=10000")
	f.Add("unit=01&layer=weather&from=2026-01-02T00:00:00%2B07:00")
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		p, err := parseHistoryQuery(q, now)
		if err != nil {
			return
		}
		if !p.From.Before(p.To) || p.Points < 1 || p.Points > MaxHistoryPoints || (p.Entity == "") == (p.Unit == "") {
			t.Fatalf("accepted %q as %+v", raw, p)
		}
		plan := planHistory(p)
		if n := (p.To.Sub(plan.Origin) + plan.Bucket - 1) / plan.Bucket; n > time.Duration(p.Points) {
			t.Fatalf("%q: %d buckets; want at most %d", raw, n, p.Points)
		}
	})
}
