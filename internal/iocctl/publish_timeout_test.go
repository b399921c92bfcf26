package iocctl

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPublishTimeout: a hub that takes the request and never answers (a
// stalled network, a hung proxy) fails the publish after --timeout, saying
// the items may be stored or not and that publishing again is safe,
// instead of hanging until the user interrupts it.
func TestPublishTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	file := filepath.Join(t.TempDir(), "air.json")
	if err := os.WriteFile(file, []byte(`[{"id":"a"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := run(t, Env{}, "publish", "air", file, "--url", srv.URL, "--token", "ioc_src", "--timeout", "200ms")
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "no answer from the hub within --timeout 200ms") || !strings.Contains(err.Error(), "publish them again") {
			t.Fatalf("err = %v; want the timeout named, and that publishing again is safe", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("publish still waiting a minute after its --timeout of 200ms")
	}
	if _, _, err := run(t, Env{}, "publish", "air", file, "--url", srv.URL, "--timeout", "0s"); err == nil || !strings.Contains(err.Error(), "--timeout must be positive") {
		t.Errorf("--timeout 0s: %v; want refused", err)
	}
}
