package rules

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/iochub/iochub/internal/alertrule"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// BenchmarkObserve measures what the engine does per STATE message: decode
// it (the baseline: every consumer of STATE pays it) and evaluate it against
// 50 congestion rules of its province, over 1000 segments whose speeds cross
// the thresholds; listed: against the most rules a province may have
// (alertrule.MaxPerProvince), each listing the most segments a rule may
// (alertrule.MaxSegments), which segment a state is of looked up in each.
func BenchmarkObserve(b *testing.B) {
	const segments = 1000
	msgs := make([][]byte, 0, 4*segments)
	for i := 0; i < 4*segments; i++ {
		st := traffic(fmt.Sprintf("seg-%d", i%segments), i/segments, speed(float64(5+(i*7)%40)))
		raw, err := proto.Marshal(st)
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, raw)
	}
	rules := make([]alertrule.Rule, 0, 50)
	for i := 0; i < 50; i++ {
		rules = append(rules, congestion(fmt.Sprintf("r%02d", i), float64(10+i%20), i%3))
	}
	listed := make([]alertrule.Rule, 0, alertrule.MaxPerProvince)
	ids := make([]string, 0, alertrule.MaxSegments)
	for i := range alertrule.MaxSegments {
		ids = append(ids, fmt.Sprintf("seg-%d", (i*7919)%segments))
	}
	for i := range alertrule.MaxPerProvince {
		r := congestion(fmt.Sprintf("l%03d", i), float64(10+i%20), i%3)
		r.Params.Segments = ids
		listed = append(listed, r)
	}
	b.Run("unmarshal", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			var st iocv1.EntityState
			if err := proto.Unmarshal(msgs[i%len(msgs)], &st); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range []struct {
		name  string
		rules []alertrule.Rule
	}{{"unmarshal+observe", rules}, {"unmarshal+observe-listed", listed}} {
		b.Run(c.name, func(b *testing.B) { observeAll(b, msgs, c.rules) })
	}
}

// observeAll decodes msgs in turn and observes each against rules.
func observeAll(b *testing.B, msgs [][]byte, rules []alertrule.Rule) {
	ev := NewEvaluator(func() time.Time { return t0 })
	ev.SetRules(rules, time.Time{})
	for i := 0; b.Loop(); i++ {
		var st iocv1.EntityState
		if err := proto.Unmarshal(msgs[i%len(msgs)], &st); err != nil {
			b.Fatal(err)
		}
		// Later rounds move the clock on, so holdings raise and clear.
		ts := st.GetTraffic().GetObservedAt()
		ts.Seconds += int64(i/len(msgs)) * 240
		ev.Observe(&st, ObservedAt(&st))
	}
}

// BenchmarkSetRules measures a change of rules in a province whose engine
// holds the last state of 20,000 road segments (and 5,000 air stations of
// the same province, which no congestion rule looks at), half of them
// slow enough to hold: one rule changed (an operator's edit), and every
// rule of the province changed at once (a start, or a reload of them all).
// The engine evaluates on the goroutine that reads STATE, which waits the
// while. Baseline: observing the same states once each (what reading them
// from STATE costs the evaluator).
func BenchmarkSetRules(b *testing.B) {
	const segments, stations = 20000, 5000
	states := make([]*iocv1.EntityState, 0, segments+stations)
	for i := range segments {
		states = append(states, traffic(fmt.Sprintf("seg-%d", i), 0, speed(float64(5+(i%2)*40))))
	}
	for i := range stations {
		states = append(states, air(fmt.Sprintf("st-%d", i), 0, 2))
	}
	rules := make([]alertrule.Rule, 0, alertrule.MaxPerProvince)
	for i := range alertrule.MaxPerProvince {
		rules = append(rules, congestion(fmt.Sprintf("r%03d", i), float64(10+i%20), 5))
	}
	loaded := func(b *testing.B) *Evaluator {
		ev := NewEvaluator(func() time.Time { return t0 })
		ev.SetRules(rules, t0)
		for _, st := range states {
			ev.Observe(st, t0)
		}
		return ev
	}
	b.Run("observe-all-states", func(b *testing.B) {
		ev := loaded(b)
		for b.Loop() {
			for _, st := range states {
				ev.Observe(st, t0)
			}
		}
	})
	b.Run("one-rule-changed", func(b *testing.B) {
		ev := loaded(b)
		next := slices.Clone(rules)
		for i := 0; b.Loop(); i++ {
			next[0].Params.MaxSpeed = float64(10 + i%2)
			ev.SetRules(next, t0)
		}
	})
	b.Run("all-rules-changed", func(b *testing.B) {
		ev := loaded(b)
		next := slices.Clone(rules)
		for i := 0; b.Loop(); i++ {
			for j := range next {
				next[j].Params.MaxSpeed = float64(10 + j%20 + i%2)
			}
			ev.SetRules(next, t0)
		}
	})
}
