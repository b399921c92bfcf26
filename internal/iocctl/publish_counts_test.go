package iocctl

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPublishCountsRetryableOnce checks that an item not published (and so
// answered rejected with retryable) is counted once in the error.
func TestPublishCountsRetryableOnce(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]any{"accepted": 1, "rejected": 2, "results": []map[string]any{
			{"index": 0, "status": "accepted"},
			{"index": 1, "status": "rejected", "reason": "id: missing field"},
			{"index": 2, "status": "rejected", "reason": "not published: no JetStream ack; safe to retry", "retryable": true}}})
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "air.json")
	if err := os.WriteFile(file, []byte(`[{"id":"a"},{},{"id":"c"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, Env{}, "publish", "air", file, "--url", srv.URL, "--token", "ioc_src")
	if err == nil || err.Error() != "1 rejected, 1 not published" {
		t.Errorf("err = %v; want 1 rejected, 1 not published", err)
	}
	if !strings.Contains(out, "3 items: 1 accepted, 0 duplicate, 1 rejected, 1 not published (retryable: send them again)") {
		t.Errorf("summary:\n%s", out)
	}
}
