package iocctl

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestPublishReportsChunksBeforeAFailure sends three chunks: the first has
// a rejected item, the second is refused whole. What the first chunk's
// answer said is printed all the same, with the totals of what was sent,
// and the third chunk is not sent.
func TestPublishReportsChunksBeforeAFailure(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch posts.Add(1) {
		case 1:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusAccepted)
			_ = json.NewEncoder(w).Encode(map[string]any{"accepted": 1, "rejected": 1, "results": []map[string]any{
				{"index": 0, "status": "accepted"},
				{"index": 1, "id": "b", "status": "rejected", "reason": "pm25: want a number", "pointer": "/1/pm25"}}})
		default:
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"title":"Malformed body","detail":"the body could not be read at byte 3"}`))
		}
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "air.ndjson")
	if err := os.WriteFile(file, []byte("{\"id\":\"a\"}\n{\"id\":\"b\"}\n{\"id\":\"c\"}\n{\"id\":\"d\"}\n{\"id\":\"e\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, Env{}, "publish", "air", file, "--url", srv.URL, "--token", "ioc_src", "--chunk", "2")
	if err == nil || !strings.Contains(err.Error(), "items 2 to 3") || !strings.Contains(err.Error(), "byte 3") {
		t.Errorf("err = %v; want the refusal of items 2 to 3", err)
	}
	if n := posts.Load(); n != 2 {
		t.Errorf("%d requests; want 2 (nothing after the refused chunk)", n)
	}
	for _, want := range []string{"item 1 (b): rejected: pm25: want a number [/1/pm25]",
		"5 items: 1 accepted, 0 duplicate, 1 rejected, 3 not sent"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
}
