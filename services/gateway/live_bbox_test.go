package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/twpayne/go-geom"

	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// inBox is the bbox the tests below watch: central Hà Nội.
const inBox = "105.80,21.00,105.90,21.10"

// airAt is airState with the station at lon, lat.
func airAt(t testing.TB, id string, version int, lon, lat float64) *iocv1.EntityState {
	st := airState(t, id, version, float64(version))
	st.GetAir().Location = mustWKB(t, geom.NewPoint(geom.XY).MustSetCoords(geom.Coord{lon, lat}))
	return st
}

// trafficAlong is trafficState on a segment from (x1, y1) to (x2, y2).
func trafficAlong(t testing.TB, id string, x1, y1, x2, y2 float64) *iocv1.EntityState {
	st := trafficState(t, id, 0)
	st.GetTraffic().Location = mustWKB(t, geom.NewLineString(geom.XY).MustSetCoords([]geom.Coord{{x1, y1}, {x2, y2}}))
	return st
}

func snapshotIDs(t testing.TB, c *websocket.Conn) []string {
	t.Helper()
	f := readFrame(t, c)
	if f.Type != "snapshot" {
		t.Fatalf("first frame %s; want snapshot", f.Type)
	}
	ids := []string{}
	for _, e := range f.Entities {
		ids = append(ids, idOf(e))
	}
	return ids
}

// describe is a frame as "<type> <id>" for comparisons.
func describe(f frame) string {
	if f.Type == "remove" {
		return "remove " + f.ID
	}
	return f.Type + " " + idOf(f.Entity)
}

func TestLiveBBoxFilter(t *testing.T) {
	e := newLiveEnv(t, Config{})
	publish(t, e.nats.JS,
		airAt(t, "in-1", 0, 105.85, 21.03),
		airAt(t, "out-1", 0, 105.70, 21.03),
		airAt(t, "edge", 0, 105.90, 21.10),                      // on the box's corner: intersects
		trafficAlong(t, "seg-in", 105.75, 21.05, 105.82, 21.05), // starts outside, ends inside
		trafficAlong(t, "seg-out", 105.60, 21.05, 105.70, 21.06),
		alertState(t, "cap-over", cwSquare(105.5, 20.5)), // covers the whole box
		alertState(t, "cap-away", cwSquare(106.5, 20.0)),
		alertState(t, "cap-none"), // no area: no geometry, left out under a bbox
	)
	tests := []struct {
		query  string
		snap   []string
		deltas []string // after the publish below, in order
	}{
		{
			query:  "province=01&bbox=" + inBox,
			snap:   []string{"air/edge", "air/in-1", "alert/cap-over", "traffic/seg-in"},
			deltas: []string{"state air/in-2", "state traffic/seg-in", "state air/in-1"},
		},
		{
			query:  "province=01&layers=air&bbox=" + inBox,
			snap:   []string{"air/edge", "air/in-1"},
			deltas: []string{"state air/in-2", "state air/in-1"},
		},
		{
			query: "province=01",
			snap: []string{"air/edge", "air/in-1", "air/out-1", "alert/cap-away", "alert/cap-none", "alert/cap-over",
				"traffic/seg-in", "traffic/seg-out"},
			deltas: []string{"state air/out-2", "state air/in-2", "state traffic/seg-out", "state traffic/seg-in",
				"state alert/cap-none", "state air/in-1"},
		},
	}
	conns := make([]*websocket.Conn, len(tests))
	for i, tt := range tests {
		conns[i] = e.dial(t, tt.query)
		if got := snapshotIDs(t, conns[i]); !slices.Equal(got, tt.snap) {
			t.Errorf("%s: snapshot %v; want %v", tt.query, got, tt.snap)
		}
	}
	seg := trafficAlong(t, "seg-in", 105.88, 21.09, 105.95, 21.2) // still crosses the box
	seg.GetTraffic().Id = obsID("seg-in", 1)
	publish(t, e.nats.JS,
		airAt(t, "out-2", 0, 106.0, 21.03),
		airAt(t, "in-2", 0, 105.81, 21.01),
		trafficAlong(t, "seg-out", 105.60, 21.05, 105.79, 21.06),
		seg,
		alertState(t, "cap-none"),
		airAt(t, "in-1", 1, 105.86, 21.04),
	)
	for i, tt := range tests {
		for _, want := range tt.deltas {
			if got := describe(readFrame(t, conns[i])); got != want {
				t.Fatalf("%s: got %s; want %s (deltas %v)", tt.query, got, want, tt.deltas)
			}
		}
	}
}

func TestLiveBBoxMoveOut(t *testing.T) {
	e := newLiveEnv(t, Config{})
	publish(t, e.nats.JS, airAt(t, "mover", 0, 105.85, 21.05), airAt(t, "anchor", 0, 105.82, 21.02))
	boxed, all := e.dial(t, "province=01&bbox="+inBox), e.dial(t, "province=01")
	for _, c := range []*websocket.Conn{boxed, all} {
		if got, want := snapshotIDs(t, c), []string{"air/anchor", "air/mover"}; !slices.Equal(got, want) {
			t.Fatalf("snapshot %v; want %v", got, want)
		}
	}

	// The mover leaves the box and keeps moving outside it; then the anchor changes.
	publish(t, e.nats.JS,
		airAt(t, "mover", 1, 105.95, 21.05),
		airAt(t, "mover", 2, 106.00, 21.05),
		airAt(t, "mover", 3, 106.05, 21.05),
		airAt(t, "anchor", 1, 105.83, 21.02),
	)
	// Exactly one remove, and nothing more of the mover before the anchor's state.
	for _, want := range []string{"remove air/mover", "state air/anchor"} {
		if got := describe(readFrame(t, boxed)); got != want {
			t.Fatalf("bbox client: got %s; want %s", got, want)
		}
	}
	// A client without a bbox follows the mover to its last place (its queue
	// may conflate the moves in between), then gets the anchor.
	for last := 0; last < 3; {
		f := readFrame(t, all)
		v := slices.Index([]string{obsID("mover", 1), obsID("mover", 2), obsID("mover", 3)}, obsOf(f.Entity)) + 1
		if describe(f) != "state air/mover" || v <= last {
			t.Fatalf("whole-province client: got %s at %s after version %d; want a newer state of air/mover", describe(f), obsOf(f.Entity), last)
		}
		last = v
	}
	if got := describe(readFrame(t, all)); got != "state air/anchor" {
		t.Fatalf("whole-province client: got %s; want state air/anchor", got)
	}

	// A client arriving now does not get the mover in its snapshot.
	late := e.dial(t, "province=01&bbox="+inBox)
	if got, want := snapshotIDs(t, late), []string{"air/anchor"}; !slices.Equal(got, want) {
		t.Fatalf("late client's snapshot %v; want %v", got, want)
	}

	// The mover comes back: both bbox clients get its state again. Then the
	// anchor loses its geometry: without one it is outside every bbox.
	anchor := airState(t, "anchor", 2, 1)
	anchor.GetAir().Location = nil
	publish(t, e.nats.JS, airAt(t, "mover", 4, 105.89, 21.09), anchor)
	for _, c := range []*websocket.Conn{boxed, late} {
		for _, want := range []string{"state air/mover", "remove air/anchor"} {
			if got := describe(readFrame(t, c)); got != want {
				t.Fatalf("after the return: got %s; want %s", got, want)
			}
		}
	}
}

func TestLiveBadBBox(t *testing.T) {
	e := newLiveEnv(t, Config{})
	tests := []struct {
		bbox   string
		detail string
	}{
		{"105.8,21.0,105.9", `parameter bbox: "105.8,21.0,105.9" has 3 values`},
		{"105.8,21.0,105.9,21.1,0", "has 5 values"},
		{"105.8,north,105.9,21.1", `minLat "north" is not a number`},
		{"NaN,21.0,105.9,21.1", `minLon "NaN" is not a finite number`},
		{"105.8,21.0,105.9,-Inf", `maxLat "-Inf" is not a finite number`},
		{"105.8,21.0,185,21.1", "maxLon 185 is outside [-180, 180]"},
		{"105.8,-95,105.9,21.1", "minLat -95 is outside [-90, 90]"},
		{"21.0,105.8,21.1,105.9", "bbox looks like lat,lon order; RFC 7946 wants minLon,minLat,maxLon,maxLat"},
		{"179.5,21.0,-179.5,21.1", "boxes crossing the antimeridian are not supported"},
		{"105.8,21.1,105.9,21.0", "minLat 21.1 is greater than maxLat 21; give the south edge first"},
	}
	for _, tt := range tests {
		t.Run(tt.bbox, func(t *testing.T) {
			q := "province=01&bbox=" + url.QueryEscape(tt.bbox)
			resp, err := http.Get(e.srv.URL + "/v1/live?" + q)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var p problem
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			if resp.StatusCode != http.StatusBadRequest || p.Status != http.StatusBadRequest || !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("got status %d, problem %s; want 400 with a detail containing %q", resp.StatusCode, body, tt.detail)
			}
			_, wsResp, err := websocket.DefaultDialer.Dial(e.wsURL(q), nil)
			if err == nil || wsResp == nil || wsResp.StatusCode != http.StatusBadRequest {
				t.Errorf("handshake: err %v resp %v; want a refused handshake with 400", err, wsResp)
			}
		})
	}
}
