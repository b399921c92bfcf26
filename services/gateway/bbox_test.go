package gateway

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twpayne/go-geom"
	"google.golang.org/protobuf/proto"

	"github.com/iochub/iochub/internal/testenv"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

func TestBBoxIntersects(t *testing.T) {
	box := bbox{105, 20, 106, 21}
	tests := []struct {
		name  string
		other bbox
		want  bool
	}{
		{"inside", bbox{105.5, 20.5, 105.6, 20.6}, true},
		{"covering", bbox{100, 10, 110, 30}, true},
		{"overlapping a corner", bbox{105.9, 20.9, 107, 22}, true},
		{"touching the east edge", bbox{106, 20.5, 107, 20.6}, true},
		{"a point on the south edge", bbox{105.5, 20, 105.5, 20}, true},
		{"west of it", bbox{104, 20.5, 104.99, 20.6}, false},
		{"north of it", bbox{105.5, 21.01, 105.6, 22}, false},
		{"same longitudes, south of it", bbox{105, 10, 106, 19.99}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := box.intersects(tt.other); got != tt.want {
				t.Errorf("got %v; want %v", got, tt.want)
			}
			if got := tt.other.intersects(box); got != tt.want {
				t.Errorf("reversed: got %v; want %v", got, tt.want)
			}
		})
	}
}

func TestEncodeFeatureBBox(t *testing.T) {
	noGeom := airState(t, "no-geom", 0, 1)
	noGeom.GetAir().Location = nil
	badGeom := airState(t, "bad-geom", 0, 1)
	badGeom.GetAir().Location = &iocv1.Geometry{Wkb: []byte{1, 2, 3}}
	xyz := airState(t, "xyz", 0, 1)
	xyz.GetAir().Location = mustWKB(t, geom.NewPoint(geom.XYZ).MustSetCoords(geom.Coord{105.5, 21.5, 30}))
	tests := []struct {
		name    string
		st      *iocv1.EntityState
		want    bbox
		located bool
	}{
		{"point", airState(t, "p", 0, 1), bbox{105.8412345678, 21.0245, 105.8412345678, 21.0245}, true},
		{"point with height", xyz, bbox{105.5, 21.5, 105.5, 21.5}, true},
		{"line", trafficState(t, "l", 0), bbox{105.80, 21.00, 105.81, 21.01}, true},
		{"alert areas as a MultiPolygon", alertState(t, "a", cwSquare(105, 21), cwSquare(107, 20)), bbox{105, 20, 108, 22}, true},
		{"alert areas as a GeometryCollection", alertState(t, "gc", cwSquare(105, 21),
			geom.NewPoint(geom.XY).MustSetCoords(geom.Coord{104.5, 22.5})), bbox{104.5, 21, 106, 22.5}, true},
		{"alert without area", alertState(t, "none"), bbox{}, false},
		{"no geometry", noGeom, bbox{}, false},
		{"undecodable geometry", badGeom, bbox{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := encodeFeature(proto.Clone(tt.st).(*iocv1.EntityState), "")
			if err != nil {
				t.Fatal(err)
			}
			if f.located != tt.located {
				t.Fatalf("got located %v; want %v", f.located, tt.located)
			}
			if tt.located && f.box != tt.want {
				t.Errorf("got box %v; want %v", f.box, tt.want)
			}
		})
	}
}

func TestRemoveFrame(t *testing.T) {
	got := decodeJSON(t, removeFrame(`air/trạm "1"`))
	if got["type"] != "remove" || got["id"] != `air/trạm "1"` || len(got) != 2 {
		t.Errorf("got %v; want type remove and the id, nothing else", got)
	}
}

// TestHubFiltersWithSharedBytes checks that bbox filtering adds no per-client
// encoding: every client that passes gets the very same frame bytes (state or
// remove), and the others get nothing.
func TestHubFiltersWithSharedBytes(t *testing.T) {
	n := testenv.NATS(t)
	g, err := New(Config{}, Deps{JS: n.JS, Metrics: prometheus.NewRegistry(), Auth: testAuth(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	h := newHub(g, "01")
	boxOf := func(s string) *bbox {
		b, err := parseBBox(s)
		if err != nil {
			t.Fatal(err)
		}
		return &b
	}
	clients := map[string]*client{
		"west":   newClient(g, h, nil, nil, liveParams{Province: "01", BBox: boxOf("105.7,20.9,105.86,21.1")}),
		"centre": newClient(g, h, nil, nil, liveParams{Province: "01", BBox: boxOf("105.8,21,105.9,21.1")}),
		"narrow": newClient(g, h, nil, nil, liveParams{Province: "01", Layers: []string{"air"}, BBox: boxOf("105.84,21.04,105.9,21.06")}),
		"east":   newClient(g, h, nil, nil, liveParams{Province: "01", BBox: boxOf("106,21,106.1,21.1")}),
		"all":    newClient(g, h, nil, nil, liveParams{Province: "01"}),
		"water":  newClient(g, h, nil, nil, liveParams{Province: "01", Layers: []string{"water"}, BBox: boxOf("105,20,107,22")}),
	}
	h.mu.Lock()
	for _, c := range clients {
		c.finished = true // no writer: the test takes what each would write
		h.joinLocked(c)
	}
	h.mu.Unlock()
	publish := func(st *iocv1.EntityState) {
		f, err := encodeFeature(st, "")
		if err != nil {
			t.Fatal(err)
		}
		h.publish(f)
	}
	// queued ends the tick, takes what each client has waiting and checks that equal frames share one array.
	queued := func() map[string]string {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.flushLocked()
		got := map[string]string{}
		first := map[string][]byte{} // by content
		for name, c := range clients {
			frames, n, _ := h.takeLocked(c, nil)
			if len(frames) > 1 || n > 1 {
				t.Fatalf("%s has %d frames waiting; want at most 1", name, n)
			}
			if len(frames) == 1 {
				fr := frames[0]
				s := string(fr[bytes.IndexByte(fr, '{'):])
				if f, ok := first[s]; ok && &fr[0] != &f[0] {
					t.Errorf("%s got its own copy of %s; want the shared bytes", name, s)
				}
				first[s] = fr
				got[name] = s
			}
		}
		return got
	}

	publish(airAt(t, "s", 0, 105.85, 21.05)) // in west, centre and narrow
	got := queued()
	if want := []string{"all", "centre", "narrow", "west"}; !slices.Equal(keysOf(got), want) {
		t.Fatalf("after the first state, clients with frames: %v; want %v", keysOf(got), want)
	}
	if !strings.HasPrefix(got["west"], `{"type":"state","entity":{"type":"Feature","id":"air/s"`) {
		t.Errorf("west got %s; want the state of air/s", got["west"])
	}

	publish(airAt(t, "s", 1, 105.88, 21.05)) // out of west only
	got = queued()
	if want := `{"type":"remove","id":"air/s"}`; got["west"] != want || len(got) != 4 ||
		!strings.HasPrefix(got["centre"], `{"type":"state"`) || !strings.HasPrefix(got["all"], `{"type":"state"`) {
		t.Errorf("after leaving west: %v; want west %s and states for centre, narrow and all", got, want)
	}

	publish(airAt(t, "s", 2, 105.95, 21.05)) // out of centre and narrow too; west already lacks it
	got = queued()
	if want := `{"type":"remove","id":"air/s"}`; got["centre"] != want || got["narrow"] != want || got["west"] != "" || len(got) != 3 {
		t.Errorf("after leaving centre: %v; want a remove for centre and narrow, nothing for west, a state for all", got)
	}
}

func keysOf(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
