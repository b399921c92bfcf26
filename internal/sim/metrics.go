package sim

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the simulator's Prometheus counters; Stats holds the same
// numbers for callers without a registry.
type metrics struct {
	items   *prometheus.CounterVec // kind, status: accepted | duplicate | rejected
	batches *prometheus.CounterVec // kind, result: delivered | failed
	retries *prometheus.CounterVec // kind
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iocsim_items_total",
			Help: "Simulated items by kind and the ingest's answer (accepted, duplicate, rejected).",
		}, []string{"kind", "status"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iocsim_batches_total",
			Help: "Simulated batches by kind and result (delivered, failed).",
		}, []string{"kind", "result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iocsim_retries_total",
			Help: "Extra attempts after a network error, 5xx, 429 or unpublished items, by kind.",
		}, []string{"kind"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []**prometheus.CounterVec{&m.items, &m.batches, &m.retries} {
		if err := reg.Register(*c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("registering simulator metrics: %w", err)
			}
			existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
			if !ok {
				return nil, fmt.Errorf("registering simulator metrics: %w", err)
			}
			*c = existing // a second Sim on the same registry adds to the same series
		}
	}
	return m, nil
}
