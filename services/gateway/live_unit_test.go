package gateway

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/testenv"
)

// TestLiveUnitRollups: /v1/live?unit=VN&rollups=1h gives an identity of
// every province the national roll-ups (then each new one) and nothing of a
// province; unit=<custom group> gives the group's to an identity that may
// read every member. An identity scoped to province 01 gets 403 for VN and
// for a group with a member outside 01, one scoped to a ward 403 for a group
// with another ward; a province, an unknown code or a missing rollups is
// refused before the upgrade (real NATS and PostGIS).
func TestLiveUnitRollups(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	ctx := context.Background()
	from := time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC)
	for _, g := range []schema.Group{
		{Code: "inner-city", NameVI: "Nội đô", Members: []string{"00070", "00166"}, ValidFrom: from},
		{Code: "metro", NameVI: "Hai đô thị", Members: []string{"00070", "79"}, ValidFrom: from},
	} {
		if err := schema.DefineGroup(ctx, db.Pool, g); err != nil {
			t.Fatal(err)
		}
	}
	n := testenv.NATS(t)
	tokProv, sumProv := auth.NewToken()
	tokWard, sumWard := auth.NewToken()
	a := testAuth(t, &fakeLoader{list: []auth.Identity{
		{ID: "id_00000000000000b1", Name: "hanoi wall", Role: auth.RoleViewer, Scopes: []string{"01"}, TokenSHA256: sumProv},
		{ID: "id_00000000000000b2", Name: "ward wall", Role: auth.RoleViewer, Scopes: []string{"00070"}, TokenSHA256: sumWard},
	}})
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	gw, err := New(Config{}, Deps{JS: n.JS, Pool: db.Pool, Metrics: prometheus.NewRegistry(), Auth: a})
	if err != nil {
		t.Fatal(err)
	}
	srv := serveGateway(t, gw)
	e := &liveEnv{nats: n, g: gw, srv: srv}
	dial := func(query, token string) (*websocket.Conn, int, string) {
		t.Helper()
		c, resp, err := websocket.DefaultDialer.Dial(e.wsURL(query), http.Header{"Authorization": {"Bearer " + token}})
		if err != nil {
			if resp == nil {
				t.Fatalf("dialing %s: %v", query, err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			return nil, resp.StatusCode, string(body)
		}
		t.Cleanup(func() { c.Close() })
		return c, http.StatusSwitchingProtocols, ""
	}

	publishRollup(t, e, "VN", "VN", "air", "1h", "2026-11-21T06:00:00Z", 30)
	publishRollup(t, e, "VN", "VN", "air", "1d", "2026-11-20T17:00:00Z", 300)
	publishRollup(t, e, "inner-city", "inner-city", "air", "1h", "2026-11-21T06:00:00Z", 8)
	publishRollup(t, e, "01", "00070", "air", "1h", "2026-11-21T06:00:00Z", 3)

	c, code, body := dial("unit=VN&rollups=1h", testToken)
	if c == nil {
		t.Fatalf("unit=VN as admin of *: %d %s", code, body)
	}
	_ = c.SetReadDeadline(time.Now().Add(hangGuard))
	f := readRollupFrame(t, c)
	if f.Type != "rollups" || len(f.Rollups) != 1 || f.Rollups[0]["unit"] != "VN" || f.Rollups[0]["observations"] != 30.0 {
		t.Fatalf("first frame %+v; want the rollups frame with VN's 1h only", f)
	}
	publishRollup(t, e, "01", "00070", "air", "1h", "2026-11-21T06:00:00Z", 4) // not VN's
	publishRollup(t, e, "VN", "VN", "air", "1h", "2026-11-21T06:00:00Z", 31)
	if f = readRollupFrame(t, c); f.Type != "rollup" || f.Rollup["unit"] != "VN" || f.Rollup["observations"] != 31.0 {
		t.Fatalf("delta %+v; want VN's 1h with 31 observations", f)
	}

	g, code, body := dial("unit=inner-city&rollups=1h,1d", tokProv)
	if g == nil {
		t.Fatalf("unit=inner-city as viewer of 01: %d %s", code, body)
	}
	_ = g.SetReadDeadline(time.Now().Add(hangGuard))
	if f = readRollupFrame(t, g); f.Type != "rollups" || len(f.Rollups) != 1 || f.Rollups[0]["unit"] != "inner-city" || f.Rollups[0]["observations"] != 8.0 {
		t.Fatalf("group's first frame %+v; want inner-city's 1h", f)
	}
	gw.mu.Lock()
	_, stray := gw.hubs[""]
	gw.mu.Unlock()
	if stray {
		t.Error("a view of a unit started a hub of province \"\"")
	}
	var raw map[string]any
	_ = g.SetReadDeadline(time.Now().Add(hangGuard))
	publishRollup(t, e, "inner-city", "inner-city", "air", "1d", "2026-11-20T17:00:00Z", 80)
	if err := g.ReadJSON(&raw); err != nil || raw["type"] != "rollup" {
		t.Fatalf("group delta %v, %v", raw, err)
	}

	for _, c := range []struct {
		name, query, token string
		code               int
		want               string
	}{
		{"VN for a province scope", "unit=VN&rollups=1h", tokProv, http.StatusForbidden, "every province"},
		{"group with a member outside the scope", "unit=metro&rollups=1h", tokProv, http.StatusForbidden, "79"},
		{"group with another ward than the scope", "unit=inner-city&rollups=1h", tokWard, http.StatusForbidden, "00166"},
		{"a province", "unit=01&rollups=1h", testToken, http.StatusBadRequest, "province="},
		{"unknown", "unit=nowhere&rollups=1h", testToken, http.StatusNotFound, "nowhere"},
		{"no rollups", "unit=VN", testToken, http.StatusBadRequest, "rollups"},
		{"with a province", "unit=VN&province=01&rollups=1h", testToken, http.StatusBadRequest, "not both"},
		{"with a bbox", "unit=VN&rollups=1h&bbox=105,20,106,21", testToken, http.StatusBadRequest, "bbox"},
	} {
		if got, code, body := dial(c.query, c.token); got != nil || code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s; want %d naming %q", c.name, code, body, c.code, c.want)
		}
	}
	// The ward's identity still has its province's view of its ward.
	if got, code, body := dial("province=01&rollups=1h", tokWard); got == nil {
		t.Errorf("province=01 as viewer of 00070: %d %s", code, body)
	}
}
