package aggregator

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iochub/iochub/internal/deadletter"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

type metrics struct {
	batches prometheus.Counter
	// overlapped counts the batches started beside the batch before (overlap.go).
	overlapped prometheus.Counter
	rows       *prometheus.CounterVec // by kind: rows stored for the first time
	duplicates *prometheus.CounterVec // by kind
	states     prometheus.Counter
	errors     *prometheus.CounterVec // by stage: fetch, decode, write, publish, ack, deadletter
	// deadletters counts feed items moved to DEADLETTER, by kind and stage (decode, store).
	deadletters *prometheus.CounterVec
	latency     prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, durable string) (*metrics, error) {
	labels := prometheus.Labels{"durable": durable}
	counter := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "iochub", Subsystem: "aggregator", Name: name, ConstLabels: labels, Help: help}
	}
	m := &metrics{
		batches: prometheus.NewCounter(counter("batches_total", "Batches stored, published and acked.")),
		overlapped: prometheus.NewCounter(counter("batches_overlapped_total",
			"Batches whose rows were copied while the batch before was still being committed (two transactions in flight).")),
		rows: prometheus.NewCounterVec(counter("rows_total", "Feed items stored for the first time, by kind (registered: the kinds registered with internal/kind)."), []string{"kind"}),
		duplicates: prometheus.NewCounterVec(counter("duplicates_total",
			"Feed items already stored (redeliveries, resent events), by kind."), []string{"kind"}),
		states: prometheus.NewCounter(counter("states_published_total", "Entity states published to STATE.")),
		errors: prometheus.NewCounterVec(counter("errors_total",
			"Errors by stage: fetch, decode (message dead-lettered), write, publish, ack, expire, deadletter (publishing a dead letter failed; the item is retried), fenced (a write refused because another aggregator took the partition; the batch is naked), state-too-large (a stored event's state over the server's max payload, not published)."), []string{"stage"}),
		deadletters: prometheus.NewCounterVec(counter("deadletters_total",
			"Feed items moved to the DEADLETTER stream, by kind (other: not a known kind) and stage (decode, store)."), []string{"kind", "stage"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "iochub", Subsystem: "aggregator", Name: "batch_duration_seconds", ConstLabels: labels,
			Help:    "Time from fetching a batch to acking it.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
	}
	for _, k := range kinds {
		m.rows.WithLabelValues(k.name)
		m.duplicates.WithLabelValues(k.name)
	}
	for _, st := range []string{"fetch", "decode", "write", "publish", "ack", "expire", "warm", "deadletter", "fenced", "state-too-large", "edge"} {
		m.errors.WithLabelValues(st)
	}
	for _, k := range subjects.Kinds {
		for _, st := range []string{deadletter.StageDecode, deadletter.StageStore} {
			m.deadletters.WithLabelValues(k, st)
		}
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.batches, m.overlapped, m.rows, m.duplicates, m.states, m.errors, m.deadletters, m.latency} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("%w: metrics of durable %q registered twice", ErrConfig, durable)
			}
			return nil, fmt.Errorf("registering aggregator metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(res postgis.Result, published int, took time.Duration) {
	m.batches.Inc()
	for _, k := range kinds {
		r := k.result(res)
		m.rows.WithLabelValues(k.name).Add(float64(r.New))
		m.duplicates.WithLabelValues(k.name).Add(float64(r.Duplicates))
	}
	m.states.Add(float64(published))
	m.latency.Observe(took.Seconds())
}
