package ingest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/internal/testkit"
)

const (
	limTokA = "tok-a" // source "a"
	limTokB = "tok-b" // source "b"
)

// limitEnv runs the ingest with lim behind a real HTTP server; the catalogue
// has two sources and no units (the requests here never reach validation).
func limitEnv(t *testing.T, lim Limits) (*Service, string) {
	t.Helper()
	ne := testenv.NATS(t)
	s, err := New(t.Context(), Config{Limits: lim}, Deps{JS: ne.JS, Sources: []Source{
		SourceWithToken("a", "00070", limTokA), SourceWithToken("b", "01", limTokB)}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return s, hs.URL
}

type limitReply struct {
	code       int
	retryAfter string
	problem    Problem
}

func limitPost(t *testing.T, url, token string, body io.Reader) limitReply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/v1/feeds/air", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p Problem
	_ = json.NewDecoder(resp.Body).Decode(&p)
	return limitReply{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), problem: p}
}

// hold starts a request of token whose body never ends, and waits until the
// ingest counts it in flight; the returned func ends the body and waits for the answer.
func hold(t *testing.T, s *Service, url, token, source string, want int) (finish func() int) {
	t.Helper()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, url+"/v1/feeds/air", pr)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	if _, err := pw.Write([]byte("[")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, fmt.Sprintf("%d requests of %s in flight", want, source), func() (bool, string) {
		n := s.lim.inflight(source)
		return n == want, fmt.Sprintf("%d in flight", n)
	})
	var once sync.Once
	code := 0
	finish = func() int {
		once.Do(func() {
			_, _ = pw.Write([]byte("]"))
			_ = pw.Close()
			code = <-done
		})
		return code
	}
	t.Cleanup(func() { finish() })
	return finish
}

func (l *limiter) inflight(source string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.sources[source]; st != nil {
		return st.inflight
	}
	return 0
}

func TestLimitSourceConcurrency(t *testing.T) {
	s, url := limitEnv(t, Limits{SourceConcurrency: 2, SourceRate: -1})
	f1 := hold(t, s, url, limTokA, "a", 1)
	hold(t, s, url, limTokA, "a", 2)

	r := limitPost(t, url, limTokA, strings.NewReader("[]"))
	if r.code != http.StatusTooManyRequests || r.retryAfter != "1" {
		t.Fatalf("third request of a: got %d Retry-After %q; want 429 Retry-After 1", r.code, r.retryAfter)
	}
	if !strings.Contains(r.problem.Detail, "source a has 2 requests in flight; at most 2") {
		t.Errorf("got detail %q; want the source and its limit named", r.problem.Detail)
	}
	// Another source is not affected.
	if r := limitPost(t, url, limTokB, strings.NewReader("[]")); r.code != http.StatusBadRequest {
		t.Errorf("source b: got %d; want 400 (no items), not limited", r.code)
	}
	// Once one answer is out, a has room again.
	if code := f1(); code != http.StatusBadRequest {
		t.Errorf("held request: got %d; want 400 (no items)", code)
	}
	if r := limitPost(t, url, limTokA, strings.NewReader("[]")); r.code != http.StatusBadRequest {
		t.Errorf("a after an answer: got %d; want 400, not limited", r.code)
	}
}

func TestLimitSourceRate(t *testing.T) {
	s, url := limitEnv(t, Limits{SourceRate: 0.5, SourceBurst: 3})
	t0 := time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := t0
	s.lim.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }

	for i := range 3 {
		if r := limitPost(t, url, limTokA, strings.NewReader("[]")); r.code != http.StatusBadRequest {
			t.Fatalf("request %d of the burst: got %d; want 400, not limited", i, r.code)
		}
	}
	r := limitPost(t, url, limTokA, strings.NewReader("[]"))
	if r.code != http.StatusTooManyRequests || r.retryAfter != "2" {
		t.Fatalf("request past the burst: got %d Retry-After %q; want 429 Retry-After 2 (one token every 2 s)", r.code, r.retryAfter)
	}
	if !strings.Contains(r.problem.Detail, "more than 0.5 requests per second (bursts of 3)") {
		t.Errorf("got detail %q; want the rate named", r.problem.Detail)
	}
	if r := limitPost(t, url, limTokB, strings.NewReader("[]")); r.code != http.StatusBadRequest {
		t.Errorf("source b: got %d; want 400, not limited", r.code)
	}
	// A refused request takes no token: after 2 s exactly one more is taken.
	mu.Lock()
	now = t0.Add(2 * time.Second)
	mu.Unlock()
	if r := limitPost(t, url, limTokA, strings.NewReader("[]")); r.code != http.StatusBadRequest {
		t.Errorf("after 2 s: got %d; want 400, not limited", r.code)
	}
	if r := limitPost(t, url, limTokA, strings.NewReader("[]")); r.code != http.StatusTooManyRequests {
		t.Errorf("second after 2 s: got %d; want 429", r.code)
	}
}

func TestLimitGlobalConcurrency(t *testing.T) {
	s, url := limitEnv(t, Limits{MaxConcurrent: 1, MaxSources: 10, SourceRate: -1})
	finish := hold(t, s, url, limTokA, "a", 1)
	r := limitPost(t, url, limTokB, strings.NewReader("[]"))
	if r.code != http.StatusServiceUnavailable || r.retryAfter != "1" || r.problem.Type != "urn:iochub:problem:overloaded" {
		t.Fatalf("second request in all: got %d Retry-After %q %s; want 503 Retry-After 1 overloaded", r.code, r.retryAfter, r.problem.Type)
	}
	finish()
	if r := limitPost(t, url, limTokB, strings.NewReader("[]")); r.code != http.StatusBadRequest {
		t.Errorf("after the first answer: got %d; want 400", r.code)
	}
}

// TestLimitBodyTimeout sends a body at 1 byte per second: the ingest must
// answer 408 and close the connection once the bound has passed.
func TestLimitBodyTimeout(t *testing.T) {
	const bound = time.Second
	_, url := limitEnv(t, Limits{BodyTimeout: bound})
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	head := "POST /v1/feeds/air HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + limTokA +
		"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n["
	if _, err := conn.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() { // 1 byte/s until the server gives up
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second)) // the test's own guard
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "did not arrive within 1s") {
		t.Fatalf("got %d %s; want 408 naming the bound", resp.StatusCode, body)
	}
	if took < bound || took > bound+3*time.Second {
		t.Errorf("answered after %s; want soon after the %s bound", took, bound)
	}
	// The connection is closed: the rest of that body cannot start a request.
	if _, err := br.ReadByte(); err == nil {
		t.Error("connection still open after 408")
	}
}

// TestLimitKeepsSourcesInFlight: the sources' buckets are bounded by
// MaxSources, but a source with a request in flight keeps its bucket however
// many sources come and go (forgotten, it would come back full); its count in
// flight is dropped with its last request. How the buckets are forgotten is
// tested in internal/keyrate.
func TestLimitKeepsSourcesInFlight(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC)
	now := t0
	l, err := newLimiter(Limits{MaxSources: 3, MaxConcurrent: 2, SourceRate: 1, SourceBurst: 2}, func() time.Time { return now }, nil)
	if err != nil {
		t.Fatal(err)
	}
	relA, ref := l.acquire("a") // one token of a's two
	if ref != nil {
		t.Fatal(ref.detail)
	}
	for i := range 50 {
		now = now.Add(time.Millisecond)
		rel, ref := l.acquire(fmt.Sprintf("s%d", i))
		if ref != nil {
			t.Fatalf("source s%d: %s", i, ref.detail)
		}
		rel()
		if n := l.rates.Len(); n > 3 {
			t.Fatalf("after s%d: %d buckets kept; want at most 3", i, n)
		}
	}
	if l.inflight("a") != 1 {
		t.Error("the count in flight of a was lost")
	}
	// 50 ms on, a's bucket holds 1.05 tokens: one more request, not two.
	rel, ref := l.acquire("a")
	if ref != nil {
		t.Fatalf("a's second token: %s", ref.detail)
	}
	rel()
	if rel, ref := l.acquire("a"); ref == nil {
		rel()
		t.Error("a's third request within 50 ms admitted: its bucket was forgotten while it had a request in flight")
	} else if ref.reason != "source_rate" {
		t.Errorf("a's third request within 50 ms refused for %s; want source_rate", ref.reason)
	}
	relA()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.sources) != 0 {
		t.Errorf("counts in flight kept for %d sources after every request ended; want 0", len(l.sources))
	}
}

func TestLimitsValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		l    Limits
		want string
	}{
		{"NaN rate", Limits{SourceRate: math.NaN()}, "SourceRate"},
		{"negative burst", Limits{SourceBurst: -1}, "SourceBurst"},
		{"map smaller than the cap", Limits{MaxSources: 10, MaxConcurrent: 10}, "MaxSources 10 must exceed MaxConcurrent 10"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Config{Limits: tt.l}.Validate()
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v; want ErrConfig naming %s", err, tt.want)
			}
		})
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("defaults: got %v; want nil", err)
	}
}
