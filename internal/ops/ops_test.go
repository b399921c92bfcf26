package ops

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/testkit"
)

func TestEndpoints(t *testing.T) {
	o := New()
	mux := http.NewServeMux()
	o.Register(mux)
	var fail error
	o.AddCheck("nats", func(context.Context) error { return fail })

	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
	if code, body := get("/readyz"); code != 200 || !strings.Contains(body, `"nats":"ok"`) {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	fail = errors.New("not connected")
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "not connected") {
		t.Fatalf("/readyz when failing = %d %s", code, body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics = %d", code)
	}

	// A public listener's probes name the failing check, not its error.
	public := http.NewServeMux()
	o.RegisterProbes(public, false)
	fail = errors.New("failed to connect to `user=iochub database=iochub`: dial tcp 10.1.2.3:5432")
	rec := httptest.NewRecorder()
	public.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if body := rec.Body.String(); rec.Code != 503 || !strings.Contains(body, `"nats":"failing"`) || strings.Contains(body, "10.1.2.3") || strings.Contains(body, "user=") {
		t.Fatalf("public /readyz when failing = %d %s; want 503 naming the check only", rec.Code, body)
	}
	rec = httptest.NewRecorder()
	public.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("public probes serve /metrics: %d", rec.Code)
	}
}

func TestEvery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	failures := make(chan error, 10)
	done := make(chan error, 1)
	go func() {
		done <- Every(ctx, time.Millisecond, func(context.Context) error {
			if calls.Add(1) == 2 {
				return errors.New("second refresh fails")
			}
			return nil
		}, func(err error) { failures <- err })
	}()
	select {
	case err := <-failures:
		if err.Error() != "second refresh fails" {
			t.Errorf("failure = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the failing refresh was not reported")
	}
	testkit.Eventually(t, 10*time.Second, "a refresh after the failure", func() (bool, string) {
		n := calls.Load()
		return n >= 3, fmt.Sprintf("%d refreshes", n)
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Every = %v; want nil when ctx ends", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Every did not return after ctx ended")
	}
}
