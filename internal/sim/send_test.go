package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/iochub/iochub/internal/testkit"
)

// ingestRecorder is a fake ingest that records every POST and answers each
// item accepted, except the items whose id contains rejectID.
type ingestRecorder struct {
	t        *testing.T
	mu       sync.Mutex
	bodies   map[string][][]byte // path → bodies, in arrival order
	fail     map[string]int      // path → number of 503s still to answer
	status   int                 // non-zero: answer every request with this status
	rejectID string
	// unpublished: path → number of answers still to mark their last item
	// retryable (valid, not published), as the ingest does when NATS is down.
	unpublished map[string]int
}

func (f *ingestRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := f.t
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Errorf("reading body: %v", err)
	}
	f.mu.Lock()
	f.bodies[r.URL.Path] = append(f.bodies[r.URL.Path], body)
	failing := f.fail[r.URL.Path] > 0
	if failing {
		f.fail[r.URL.Path]--
	}
	unpublished := f.unpublished[r.URL.Path] > 0
	if unpublished {
		f.unpublished[r.URL.Path]--
	}
	f.mu.Unlock()

	if r.Method != http.MethodPost {
		t.Errorf("%s %s; want POST", r.Method, r.URL.Path)
	}
	if got, want := r.Header.Get("Authorization"), "Bearer secret-token"; got != want {
		t.Errorf("Authorization = %q; want %q", got, want)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q; want application/json", got)
	}
	if f.status != 0 {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(f.status)
		_, _ = io.WriteString(w, `{"type":"about:blank","title":"Unauthorized","status":401,"detail":"unknown token"}`)
		return
	}
	if failing {
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	var items []map[string]any
	if err := json.Unmarshal(body, &items); err != nil {
		t.Errorf("%s: body is not a JSON array: %v", r.URL.Path, err)
	}
	kind := strings.TrimPrefix(r.URL.Path, "/v1/feeds/")
	wantType := map[string]string{"air": "AirQualityObserved", "traffic": "TrafficFlowObserved", "alert": "Alert",
		"water": "WaterQualityObserved", "weather": "WeatherObserved"}[kind]
	if wantType == "" {
		t.Errorf("POST to %s; want /v1/feeds/{air,traffic,alert,water,weather}", r.URL.Path)
	}
	type result struct {
		Index     int    `json:"index"`
		ID        string `json:"id"`
		Status    string `json:"status"`
		Reason    string `json:"reason,omitempty"`
		Retryable bool   `json:"retryable,omitempty"`
	}
	var res []result
	for i, it := range items {
		id, _ := it["id"].(string)
		if id == "" || it["type"] != wantType {
			t.Errorf("%s item %d: id %v type %v; want an id and type %s", kind, i, it["id"], it["type"], wantType)
		}
		loc, _ := it["location"].(map[string]any)
		if loc == nil || loc["type"] == nil || loc["coordinates"] == nil {
			t.Errorf("%s item %d: location %v; want a GeoJSON geometry", kind, i, it["location"])
		}
		when, _ := it["dateObserved"].(string)
		if kind == "alert" {
			when, _ = it["dateIssued"].(string)
		}
		if _, err := time.Parse(time.RFC3339Nano, when); err != nil {
			t.Errorf("%s item %d: time %q: %v", kind, i, when, err)
		}
		switch {
		case unpublished && i == len(items)-1:
			res = append(res, result{Index: i, ID: id, Status: "rejected", Reason: "not published: NATS is unavailable; safe to retry", Retryable: true})
		case f.rejectID != "" && strings.Contains(id, f.rejectID):
			res = append(res, result{Index: i, ID: id, Status: "rejected", Reason: "point outside the source's unit"})
		default:
			res = append(res, result{Index: i, ID: id, Status: "accepted"})
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]any{"results": res})
}

func newRecorder(t *testing.T) (*ingestRecorder, *httptest.Server) {
	f := &ingestRecorder{t: t, bodies: map[string][][]byte{}, fail: map[string]int{}, unpublished: map[string]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// stepClock starts at t0 and moves one minute per reading.
func stepClock() func() time.Time {
	var mu sync.Mutex
	now := t0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Minute)
		return now
	}
}

func TestRunPostsBatches(t *testing.T) {
	f, srv := newRecorder(t)
	f.rejectID = "HN-AQ-002"
	s := newTestSim(t, Config{BaseURL: srv.URL + "/", Token: "secret-token", Seed: 1, Stations: 3, Segments: 4,
		Water: 1, Weather: 1, AlertEvery: 2 * time.Minute, Rounds: 2, Interval: time.Millisecond, Clock: stepClock()})
	if err := s.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for path, want := range map[string]int{"/v1/feeds/air": 2, "/v1/feeds/traffic": 2, "/v1/feeds/alert": 1, "/v1/feeds/water": 2, "/v1/feeds/weather": 2} {
		if got := len(f.bodies[path]); got != want {
			t.Errorf("%s: %d POSTs; want %d", path, got, want)
		}
	}
	got := s.Stats()
	want := Stats{Rounds: 2, Batches: 9, Items: 2*3 + 2*4 + 1 + 2*2, Accepted: 2*3 + 2*4 + 1 + 2*2 - 2, Rejected: 2}
	if got != want {
		t.Errorf("Stats() = %+v; want %+v", got, want)
	}
}

func TestRunSplitsLargeBatches(t *testing.T) {
	f, srv := newRecorder(t)
	s := newTestSim(t, Config{BaseURL: srv.URL, Token: "secret-token", Seed: 1, Stations: 7, Segments: -1, Water: -1, Weather: -1, AlertEvery: -1,
		Rounds: 1, MaxBatch: 3, Clock: stepClock()})
	if err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, b := range f.bodies["/v1/feeds/air"] {
		var items []json.RawMessage
		if err := json.Unmarshal(b, &items); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(items))
	}
	if !reflect.DeepEqual(sizes, []int{3, 3, 1}) {
		t.Errorf("batch sizes %v; want [3 3 1]", sizes)
	}
	if got := s.Stats(); got.Accepted != 7 || got.Batches != 3 {
		t.Errorf("Stats() = %+v; want 7 accepted in 3 batches", got)
	}
}

func TestRunRetriesSameBytes(t *testing.T) {
	f, srv := newRecorder(t)
	f.fail["/v1/feeds/air"] = 2
	s := newTestSim(t, Config{BaseURL: srv.URL, Token: "secret-token", Seed: 1, Stations: 2, Segments: -1, Water: -1, Weather: -1, AlertEvery: -1,
		Rounds: 1, MaxAttempts: 3, RetryBase: time.Millisecond, Clock: stepClock()})
	if err := s.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	bodies := f.bodies["/v1/feeds/air"]
	if len(bodies) != 3 {
		t.Fatalf("%d POSTs of the air batch; want 3 (two 503s, then 202)", len(bodies))
	}
	for i := 1; i < len(bodies); i++ {
		if string(bodies[i]) != string(bodies[0]) {
			t.Errorf("retry %d sent different bytes", i)
		}
	}
	if got := s.Stats(); got.Retries != 2 || got.Batches != 1 || got.Accepted != 2 || got.Failed != 0 {
		t.Errorf("Stats() = %+v; want 2 retries, 1 batch, 2 accepted", got)
	}
}

func TestRunResendsUnpublishedItems(t *testing.T) {
	f, srv := newRecorder(t)
	f.unpublished["/v1/feeds/traffic"] = 1
	s := newTestSim(t, Config{BaseURL: srv.URL, Token: "secret-token", Seed: 1, Stations: -1, Segments: 3, Water: -1, Weather: -1, AlertEvery: -1,
		Rounds: 1, MaxAttempts: 3, RetryBase: time.Millisecond, Clock: stepClock()})
	if err := s.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	bodies := f.bodies["/v1/feeds/traffic"]
	if len(bodies) != 2 {
		t.Fatalf("%d POSTs; want 2", len(bodies))
	}
	var first, second []json.RawMessage
	if err := json.Unmarshal(bodies[0], &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(bodies[1], &second); err != nil {
		t.Fatal(err)
	}
	if len(first) != 3 || len(second) != 1 || string(second[0]) != string(first[2]) {
		t.Errorf("second POST %s; want only the unpublished last item of the first", bodies[1])
	}
	if got := s.Stats(); got.Accepted != 3 || got.Rejected != 0 || got.Retries != 1 || got.Batches != 1 {
		t.Errorf("Stats() = %+v; want 3 accepted, 0 rejected, 1 retry, 1 batch", got)
	}
}

func TestRunGivesUp(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		fail     int
		wantErr  error
		attempts int
	}{
		{"4xx is not retried", http.StatusUnauthorized, 0, ErrRejected, 1},
		{"5xx until attempts run out", 0, 10, ErrBatchFailed, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := newRecorder(t)
			f.status = tt.status
			f.fail["/v1/feeds/air"] = tt.fail
			s := newTestSim(t, Config{BaseURL: srv.URL, Token: "secret-token", Seed: 1, Stations: 2, Segments: -1, Water: -1, Weather: -1, AlertEvery: -1,
				Rounds: 1, MaxAttempts: 3, RetryBase: time.Millisecond, Clock: stepClock()})
			err := s.Run(context.Background())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run() = %v; want %v", err, tt.wantErr)
			}
			if got := len(f.bodies["/v1/feeds/air"]); got != tt.attempts {
				t.Errorf("%d attempts; want %d", got, tt.attempts)
			}
			if got := s.Stats().Failed; got != 1 {
				t.Errorf("Stats().Failed = %d; want 1", got)
			}
		})
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	f, srv := newRecorder(t)
	s := newTestSim(t, Config{BaseURL: srv.URL, Token: "secret-token", Seed: 1, Stations: 1, Segments: -1, Water: -1, Weather: -1,
		Interval: time.Millisecond, Clock: stepClock()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	testkit.Eventually(t, time.Minute, "three air posts", func() (bool, string) {
		f.mu.Lock()
		n := len(f.bodies["/v1/feeds/air"])
		f.mu.Unlock()
		return n >= 3, fmt.Sprintf("%d air posts", n)
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run() after cancel = %v; want nil", err)
	}
}

func TestParseAnswer(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    Summary
		wantErr bool
	}{
		{"results", `{"results":[{"id":"a","status":"accepted"},{"id":"b","status":"duplicate"},{"id":"c","status":"rejected","reason":"bad"}]}`,
			Summary{Accepted: 1, Duplicate: 1, Rejected: 1, FirstRejectedID: "c", FirstReason: "bad"}, false},
		{"items with result", `{"items":[{"index":0,"result":"accepted"},{"index":1,"result":"rejected","detail":"no location"}]}`,
			Summary{Accepted: 1, Rejected: 1, FirstRejectedID: "#1", FirstReason: "no location"}, false},
		{"problem errors", `{"title":"bad items","errors":[{"id":"x","reason":"point outside unit"}]}`,
			Summary{Rejected: 1, FirstRejectedID: "x", FirstReason: "point outside unit"}, false},
		{"retryable items", `{"accepted":1,"results":[{"index":0,"status":"accepted"},{"index":1,"status":"rejected","retryable":true,"reason":"not published"}]}`,
			Summary{Accepted: 1, Retry: []int{1}}, false},
		{"empty object", `{}`, Summary{}, false},
		{"empty body", ``, Summary{}, true},
		{"not json", `<html>`, Summary{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAnswer([]byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseAnswer error = %v; want error %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseAnswer = %+v; want %+v", got, tt.want)
			}
		})
	}
}

func FuzzParseAnswer(f *testing.F) {
	f.Add([]byte(`{"results":[{"id":"a","status":"accepted"},{"id":"c","status":"rejected","reason":"bad"}]}`))
	f.Add([]byte(`{"errors":[{"index":3}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		sum, err := ParseAnswer(body)
		if err != nil {
			return
		}
		if sum.Accepted < 0 || sum.Duplicate < 0 || sum.Rejected < 0 {
			t.Fatalf("negative counts %+v", sum)
		}
		if sum.Rejected == 0 && (sum.FirstReason != "" || sum.FirstRejectedID != "") {
			t.Fatalf("a reason without a rejection: %+v", sum)
		}
	})
}

func TestMetricsCountRejected(t *testing.T) {
	f, srv := newRecorder(t)
	f.rejectID = "HN-AQ-001"
	reg := prometheus.NewPedanticRegistry()
	s := newTestSim(t, Config{BaseURL: srv.URL, Token: "secret-token", Seed: 1, Stations: 3, Segments: -1, Water: -1, Weather: -1,
		Rounds: 1, Clock: stepClock(), Metrics: reg})
	if err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for status, want := range map[string]float64{"accepted": 2, "rejected": 1, "duplicate": 0} {
		if got := testutil.ToFloat64(s.metrics.items.WithLabelValues("air", status)); got != want {
			t.Errorf("iocsim_items_total{kind=air,status=%s} = %v; want %v", status, got, want)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "iocsim_items_total"); err != nil || n == 0 {
		t.Errorf("registry has %d iocsim_items_total series (%v); want them registered", n, err)
	}
	// A second Sim on the same registry shares the series instead of failing.
	if _, err := New(Config{BaseURL: srv.URL, Token: "t", Stations: 1, Segments: -1, Water: -1, Weather: -1, Metrics: reg}); err != nil {
		t.Errorf("second Sim on the same registry: %v", err)
	}
}
