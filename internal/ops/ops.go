// Package ops owns the operational endpoints every iochub role serves:
// /healthz (the process is alive), /readyz (its dependencies answer) and
// /metrics (Prometheus).
package ops

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/iochub/iochub/internal/routes"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check reports whether one dependency is usable; nil means ready.
type Check func(ctx context.Context) error

// Ops holds the readiness checks and the metrics registry of one process.
type Ops struct {
	Registry *prometheus.Registry
	// Log, when set, records why a check fails when a public /readyz
	// (RegisterProbes without detail) says only that it does.
	Log *slog.Logger

	mu     sync.RWMutex
	checks map[string]Check
}

// New returns an Ops with a registry that already carries the Go and process collectors.
func New() *Ops {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Ops{Registry: reg, checks: map[string]Check{}}
}

// AddCheck adds a named readiness check.
func (o *Ops) AddCheck(name string, c Check) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.checks[name] = c
}

// Register adds /healthz, /readyz and /metrics to mux, for the ops
// listener: /readyz says why a check fails (the error's text).
func (o *Ops) Register(mux routes.Mux) {
	o.RegisterProbes(mux, true)
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{Registry: o.Registry}))
}

// RegisterProbes adds /healthz and /readyz to mux. On a public listener
// (detail false) /readyz names a failing check without its error, whose
// text may hold the database's host and user: the ops listener's says it.
func (o *Ops) RegisterProbes(mux routes.Mux, detail bool) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { o.ready(w, r, detail) })
}

// RegisterMetrics adds /metrics to mux.
func (o *Ops) RegisterMetrics(mux routes.Mux) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{Registry: o.Registry}))
}

func (o *Ops) ready(w http.ResponseWriter, r *http.Request, detail bool) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	o.mu.RLock()
	names := make([]string, 0, len(o.checks))
	for n := range o.checks {
		names = append(names, n)
	}
	o.mu.RUnlock()
	sort.Strings(names)
	status := map[string]string{}
	ok := true
	for _, n := range names {
		o.mu.RLock()
		c := o.checks[n]
		o.mu.RUnlock()
		if err := c(ctx); err != nil {
			status[n] = "failing"
			if detail {
				status[n] = err.Error()
			} else if o.Log != nil {
				o.Log.Warn("readiness check failing", "check", n, "err", err)
			}
			ok = false
			continue
		}
		status[n] = "ok"
	}
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"ready": ok, "checks": status})
}

// Every calls refresh at once and then every d until ctx ends; a failure is
// handed to failed (when ctx is still alive) and the next tick tries again,
// so whatever refresh keeps stays as it was. It returns nil when ctx ends.
func Every(ctx context.Context, d time.Duration, refresh func(context.Context) error, failed func(error)) error {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		if err := refresh(ctx); err != nil && ctx.Err() == nil {
			failed(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
