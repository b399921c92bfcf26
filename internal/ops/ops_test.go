package ops

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
}
