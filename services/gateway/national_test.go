package gateway

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/iochub/iochub/internal/subjects"
)

// publishRollupAt publishes a roll-up body updated at the given time, as a
// province's aggregator would (and the national hub's sourcing copies it).
func publishRollupAt(t *testing.T, e *liveEnv, province, unit, layer, window string, n int, updated time.Time) {
	t.Helper()
	m := nats.NewMsg(subjects.Rollup(province, unit, layer, window))
	m.Data = fmt.Appendf(nil, `{"unit":%q,"province":%q,"layer":%q,"window":%q,"windowStart":"2026-11-21T06:00:00Z","observations":%d,"updatedAt":%q}`,
		unit, province, layer, window, n, updated.UTC().Format(time.RFC3339Nano))
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if _, err := e.nats.JS.PublishMsg(ctx, m); err != nil {
		t.Fatalf("publishing roll-up: %v", err)
	}
}

// waitRollup reads frames until a roll-up of unit satisfies ok.
func waitRollup(t *testing.T, c *websocket.Conn, unit string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	for {
		f := readRollupFrame(t, c)
		for _, r := range append(f.Rollups, f.Rollup) {
			if r != nil && r["unit"] == unit && ok(r) {
				return r
			}
		}
	}
}

// TestNationalView: at the national level, /v1/live?unit=VN&rollups=1h
// carries VN's roll-ups and every province's own (not a ward's); a province
// whose newest roll-up grows older than ProvinceStaleAfter is sent again
// with "hubStale": true, an older roll-up arriving does not clear the mark,
// and a fresh one does; a fresh province is never marked.
func TestNationalView(t *testing.T) {
	const staleAfter = 500 * time.Millisecond
	e := newLiveEnv(t, Config{Level: LevelNational, ProvinceStaleAfter: staleAfter})
	now := time.Now()
	publishRollupAt(t, e, "VN", "VN", "air", "1h", 30, now)
	publishRollupAt(t, e, "01", "01", "air", "1h", 10, now)
	publishRollupAt(t, e, "79", "79", "air", "1h", 20, now)
	publishRollupAt(t, e, "01", "00070", "air", "1h", 3, now)          // a ward's: a province hub does not send it, nor shows the view
	publishRollupAt(t, e, "metro", "metro", "air", "1h", 4, now)       // a custom group's: not a province
	publishRollupAt(t, e, "VN", "VN", "traffic", "1h", 5, time.Time{}) // VN's own: never marked

	c := e.dial(t, "unit=VN&rollups=1h")
	f := readRollupFrame(t, c)
	got := map[string]map[string]any{}
	for _, r := range f.Rollups {
		got[r["unit"].(string)] = r
	}
	if f.Type != "rollups" || len(f.Rollups) != 4 || got["VN"] == nil || got["01"] == nil || got["79"] == nil {
		t.Fatalf("first frame %+v; want the roll-ups of VN (air, traffic), 01 and 79", f)
	}
	for u, r := range got {
		if r["hubStale"] != nil {
			t.Errorf("roll-up of %s marked at once: %v", u, r)
		}
	}

	// 01 keeps sending; 79 is silent: 79 turns stale, 01 never.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(staleAfter / 5)
		defer tk.Stop()
		for n := 11; ; n++ {
			select {
			case <-stop:
				return
			case <-tk.C:
				m := nats.NewMsg(subjects.Rollup("01", "01", "air", "1h"))
				m.Data = fmt.Appendf(nil, `{"unit":"01","province":"01","layer":"air","window":"1h","windowStart":"2026-11-21T06:00:00Z","observations":%d,"updatedAt":%q}`,
					n, time.Now().UTC().Format(time.RFC3339Nano))
				if _, err := e.nats.JS.PublishMsg(context.Background(), m); err != nil {
					return
				}
			}
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		fr := readRollupFrame(t, c)
		r := fr.Rollup
		if r == nil {
			t.Fatalf("frame %+v; want roll-ups", fr)
		}
		if r["unit"] == "01" && r["hubStale"] != nil {
			t.Fatalf("province 01, sending, marked stale: %v", r)
		}
		if r["unit"] == "79" && r["hubStale"] == true {
			if r["observations"] != 20.0 {
				t.Fatalf("stale 79 sent as %v; want its last roll-up, marked", r)
			}
			break
		}
	}
	close(stop)
	<-done

	// An old roll-up of 79 (a window published again, updated when the
	// kept one was; an older copy would replace nothing) is marked; a fresh
	// one clears the mark.
	publishRollupAt(t, e, "79", "79", "air", "1h", 21, now)
	waitRollup(t, c, "79", func(r map[string]any) bool {
		if r["observations"] == 21.0 && r["hubStale"] != true {
			t.Fatalf("an old roll-up cleared the mark: %v", r)
		}
		return r["observations"] == 21.0
	})
	publishRollupAt(t, e, "79", "79", "air", "1h", 22, time.Now())
	waitRollup(t, c, "79", func(r map[string]any) bool {
		if r["observations"] == 22.0 && r["hubStale"] != nil {
			t.Fatalf("a fresh roll-up still marked: %v", r)
		}
		return r["observations"] == 22.0
	})
	// A new client of the national view gets 79 unmarked.
	c2 := e.dial(t, "unit=VN&rollups=1h")
	waitRollup(t, c2, "79", func(r map[string]any) bool { return r["observations"] == 22.0 && r["hubStale"] == nil })

	// At the province level (the default), the view of VN carries VN's roll-ups only.
	p := newLiveEnv(t, Config{})
	publishRollupAt(t, p, "VN", "VN", "air", "1h", 30, now)
	publishRollupAt(t, p, "01", "01", "air", "1h", 10, now)
	f = readRollupFrame(t, p.dial(t, "unit=VN&rollups=1h"))
	if len(f.Rollups) != 1 || f.Rollups[0]["unit"] != "VN" {
		t.Fatalf("province-level view of VN: %+v; want VN's roll-up only", f)
	}
}

func TestLevelConfig(t *testing.T) {
	if err := (Config{Level: "regional"}).Validate(); err == nil {
		t.Error("level regional accepted")
	}
	if err := (Config{Level: LevelNational, ProvinceStaleAfter: -time.Second}).Validate(); err == nil {
		t.Error("a negative ProvinceStaleAfter accepted")
	}
	if err := (Config{Level: LevelNational}).Validate(); err != nil {
		t.Error(err)
	}
}
