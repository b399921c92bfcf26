package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestGeneratorItems(t *testing.T) {
	g := NewGenerator("r1", 9, [4]float64{105, 21, 106, 22})
	var b []byte
	b = append(b, '[')
	var refs []Ref
	for i := 0; i < 20; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		var r Ref
		b, r = g.Append(b, i%9)
		refs = append(refs, r)
	}
	b = append(b, ']')
	var items []struct {
		ID, Type, RefPointOfInterest, DateObserved string
		Location                                   struct{ Coordinates []float64 }
		PM25                                       float64 `json:"pm25"`
	}
	if err := json.Unmarshal(b, &items); err != nil {
		t.Fatalf("the batch is not JSON: %v\n%s", err, b)
	}
	seen := map[string]bool{}
	for i, it := range items {
		if it.Type != "AirQualityObserved" || it.RefPointOfInterest != g.Station(refs[i].Station) || seen[it.ID] {
			t.Errorf("item %d: %+v", i, it)
		}
		seen[it.ID] = true
		if g.ItemID(refs[i]) != it.ID {
			t.Errorf("item %d: ItemID %q; want %q", i, g.ItemID(refs[i]), it.ID)
		}
		at, err := time.Parse(time.RFC3339Nano, it.DateObserved)
		if err != nil || at.After(time.Now()) {
			t.Errorf("item %d: dateObserved %q (%v): want a past RFC 3339 time", i, it.DateObserved, err)
		}
		if lon, lat := it.Location.Coordinates[0], it.Location.Coordinates[1]; lon < 105 || lon > 106 || lat < 21 || lat > 22 {
			t.Errorf("item %d at %v: outside the box", i, it.Location.Coordinates)
		}
		for _, id := range []string{it.ID, it.ID + "@2026-12-05T03:20:15Z"} {
			if r, ok := g.ParseID(id); !ok || r != refs[i] {
				t.Errorf("ParseID(%q) = %v %v; want %v", id, r, ok, refs[i])
			}
		}
	}
	if refs[0].Seq != 1 || refs[9].Seq != 2 || refs[9].Station != 0 {
		t.Errorf("sequences per station: %v", refs)
	}
	for _, id := range []string{"lg-r2-s1-1", "lg-r1-s9-1", "lg-r1-s1-0", "lg-r1-s1", "x"} {
		if r, ok := g.ParseID(id); ok {
			t.Errorf("ParseID(%q) = %v; want not ours", id, r)
		}
	}
}

func TestTracker(t *testing.T) {
	g := NewGenerator("r", 2, [4]float64{0, 0, 1, 1})
	tr := NewTracker(g)
	t0 := time.Unix(1000, 0)
	refs := []Ref{{0, 1}, {1, 1}, {0, 2}}
	tr.Sent(refs, t0)
	tr.Accepted(refs[:2]) // {0,2} was not accepted
	if n := tr.Behind(); n != 2 {
		t.Fatalf("Behind before any frame = %d; want 2", n)
	}
	tr.Frame([]byte(`{"type":"state","entity":{"properties":{"observation":{"id":"lg-r-s0-1@x"}}}}`), t0.Add(5*time.Millisecond))
	tr.Frame([]byte(`{"type":"batch","entities":[{"properties":{"observation":{"id":"lg-r-s1-1"}}},{"properties":{}}]}`), t0.Add(7*time.Millisecond))
	tr.Frame([]byte(`{"type":"state","entity":{"properties":{"observation":{"id":"lg-r-s0-1"}}}}`), t0.Add(9*time.Millisecond)) // a repeat counts once
	tr.Frame([]byte(`not json`), t0)
	if n := tr.Behind(); n != 0 {
		t.Errorf("Behind = %d; want 0", n)
	}
	n, p50, p99, mx := tr.Latencies()
	if n != 2 || p50 != 5*time.Millisecond || p99 != 5*time.Millisecond || mx != 7*time.Millisecond {
		t.Errorf("Latencies = %d %v %v %v; want 2 5ms 5ms 7ms", n, p50, p99, mx)
	}
}

// TestRunAgainstFakeHub drives Run against a stand-in hub that accepts every
// other station's items and shows the accepted ones on its live view, so the
// counts Run reports can be checked exactly.
func TestRunAgainstFakeHub(t *testing.T) {
	var mu sync.Mutex
	var conns []*websocket.Conn
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/live", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" || r.URL.Query().Get("province") != "01" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	})
	accepted, shown := 0, 0 // shown: accepted while the live view was connected (it connects as Run starts)
	mux.HandleFunc("POST /v1/feeds/air", func(w http.ResponseWriter, r *http.Request) {
		var items []struct{ ID, RefPointOfInterest string }
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &items); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		var res []string
		mu.Lock()
		defer mu.Unlock()
		for _, it := range items {
			if strings.HasSuffix(it.RefPointOfInterest, "1") { // stations ending in 1 are refused
				res = append(res, `{"status":"rejected","reason":"no"}`)
				continue
			}
			accepted++
			if len(conns) > 0 {
				shown++
			}
			res = append(res, `{"status":"accepted"}`)
			for _, c := range conns {
				_ = c.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"type":"state","entity":{"properties":{"observation":{"id":%q}}}}`, it.ID+"@t"))
			}
		}
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"results":[%s]}`, strings.Join(res, ","))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	res, err := Run(context.Background(), Config{URL: srv.URL, Token: "tok", Province: "01", Stations: 20, Batch: 10,
		Rate: 2000, Duration: 300 * time.Millisecond, Workers: 2, Drain: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	want, wantSeen := accepted, shown
	mu.Unlock()
	if res.Offered == 0 || res.Accepted != want || res.Rejected != res.Offered-want || res.Seen != wantSeen || wantSeen == 0 || res.Behind != 0 {
		t.Errorf("Run = %s; want %d accepted, %d of them seen, the rest rejected", res, want, wantSeen)
	}
	if !strings.HasPrefix(res.FirstError, "rejected: no") {
		t.Errorf("FirstError %q; want the rejection", res.FirstError)
	}
}

// TestRunLiveFrameLimit: a live frame larger than LiveFrameLimit ends the
// live view with websocket.ErrReadLimit, which Run reports, instead of being
// read whole into memory.
func TestRunLiveFrameLimit(t *testing.T) {
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/live", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		_ = c.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("x"), 4097))
	})
	mux.HandleFunc("POST /v1/feeds/air", func(w http.ResponseWriter, r *http.Request) {
		var items []json.RawMessage
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &items); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"results":[%s]}`, strings.TrimSuffix(strings.Repeat(`{"status":"accepted"},`, len(items)), ","))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	_, err := Run(context.Background(), Config{URL: srv.URL, Token: "tok", Province: "01", Stations: 4, Batch: 2,
		Rate: 100, Duration: 100 * time.Millisecond, Workers: 1, Drain: 5 * time.Second, LiveFrameLimit: 4096})
	if !errors.Is(err, websocket.ErrReadLimit) {
		t.Fatalf("Run = %v; want the live view ended by websocket.ErrReadLimit", err)
	}
}

// TestObservationIDs: the ids read by their compact key are those a decoder
// reads, and a frame they cannot be read from so is left to the decoder.
func TestObservationIDs(t *testing.T) {
	for _, tt := range []struct {
		frame string
		want  []string // nil: left to the decoder
	}{
		{`{"type":"state","entity":{"type":"Feature","properties":{"name":"x","observation":{"id":"lg-r-s0-1@t","time":"t"}}}}`, []string{"lg-r-s0-1@t"}},
		{`{"type":"batch","entities":[{"properties":{"observation":{"id":"a"}}},{"properties":{}},{"properties":{"observation":{"id":"b"}}}]}`, []string{"a", "b"}},
		{`{"type":"state","entity":{"properties":{"aqi":{"hourly":3}}}}`, []string{}},
		{`{"type":"state","entity":{"properties":{"observation": {"id":"spaced"}}}}`, nil},
		{`{"type":"state","entity":{"properties":{"observation":{"time":"t","id":"second"}}}}`, nil},
		{`{"type":"state","entity":{"properties":{"observation":{"id":"esc\"aped"}}}}`, nil},
		{`{"type":"state","entity":{"properties":{"name":"\"observation\":{\"id\":\"fake\"","observation":{"id":"real"}}}}`, []string{"real"}},
	} {
		got, ok := observationIDs([]byte(tt.frame), nil)
		if tt.want == nil {
			if ok {
				t.Errorf("%s: read %q; want it left to the decoder", tt.frame, got)
			}
			continue
		}
		if !ok || !slices.Equal(got, tt.want) && len(got)+len(tt.want) > 0 {
			t.Errorf("%s: %q, %v; want %q", tt.frame, got, ok, tt.want)
		}
		var f liveFrame
		if err := json.Unmarshal([]byte(tt.frame), &f); err != nil {
			t.Fatal(err)
		}
		if f.Entity != nil {
			f.Entities = append(f.Entities, *f.Entity)
		}
		var decoded []string
		for _, e := range f.Entities {
			if e.Properties.Observation != nil {
				decoded = append(decoded, e.Properties.Observation.ID)
			}
		}
		if !slices.Equal(got, decoded) && len(got)+len(decoded) > 0 {
			t.Errorf("%s: read %q; decoded %q", tt.frame, got, decoded)
		}
	}
}
