package ingest

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLimitAfterPermanentRefusals checks that a request that can never
// succeed (an unknown kind, a Content-Type the ingest does not read, a
// declared body over the limit) is answered so, with its 4xx, by a source
// over its rate too: a 429 would tell it to send the same request again.
func TestLimitAfterPermanentRefusals(t *testing.T) {
	s, url := limitEnv(t, Limits{SourceRate: 0.5, SourceBurst: 1})
	t0 := time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC)
	s.lim.now = func() time.Time { return t0 } // no token comes back during the test
	if r := limitPost(t, url, limTokA, strings.NewReader("[]")); r.code != http.StatusBadRequest {
		t.Fatalf("the burst's request: got %d; want 400 (no items)", r.code)
	}
	if r := limitPost(t, url, limTokA, strings.NewReader("[]")); r.code != http.StatusTooManyRequests {
		t.Fatalf("past the burst: got %d; want 429", r.code)
	}
	for _, c := range []struct {
		name, path, ctype string
		length            int64
		want              int
	}{
		{"unknown kind", "/v1/feeds/noise", "application/json", 1 << 20, http.StatusNotFound},
		{"media type", "/v1/feeds/air", "text/csv", 1 << 20, http.StatusUnsupportedMediaType},
		{"CAP on air", "/v1/feeds/air", "application/cap+xml", 1 << 20, http.StatusUnsupportedMediaType},
		{"declared size", "/v1/feeds/air", "application/json", 1 << 40, http.StatusRequestEntityTooLarge},
	} {
		// A body that never comes: each refusal is answered before the body
		// is read (and, declared larger than net/http reads ahead after an
		// answer, on a connection then closed).
		pr, pw := io.Pipe()
		req, err := http.NewRequest(http.MethodPost, url+c.path, pr)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = c.length
		req.Header.Set("Authorization", "Bearer "+limTokA)
		req.Header.Set("Content-Type", c.ctype)
		resp, err := http.DefaultClient.Do(req)
		pw.Close()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s, source over its rate: got %d; want %d", c.name, resp.StatusCode, c.want)
		}
	}
}
