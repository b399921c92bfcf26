package gateway

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus series.
type metrics struct {
	clients        prometheus.Gauge
	framesSent     prometheus.Counter
	framesConflate prometheus.Counter
	dropped        *prometheus.CounterVec
	hubMessages    *prometheus.CounterVec
	hubBadMessages *prometheus.CounterVec
	hubs           prometheus.Gauge
	provincesStale prometheus.Gauge
	streamClients  prometheus.Gauge
	streamEvents   prometheus.Counter
	streamClosed   *prometheus.CounterVec
	opensLimited   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "iochub", Subsystem: "gateway", Name: "clients",
			Help: "Live WebSocket clients connected.",
		}),
		framesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "iochub", Subsystem: "gateway", Name: "frames_sent_total",
			Help: "Frames (snapshots and updates) written to live clients; each update of a batch frame counts as one.",
		}),
		framesConflate: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "iochub", Subsystem: "gateway", Name: "frames_conflated_total",
			Help: "States replaced by a newer state of the same entity before being sent: in the hub within a tick, or for a client that lagged over several ticks.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "iochub", Subsystem: "gateway", Name: "clients_dropped_total",
			Help: "Live clients disconnected, by reason (client_closed, shutdown, too_slow, ping_timeout, stream_failure, write_error, policy, internal).",
		}, []string{"reason"}),
		hubMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "iochub", Subsystem: "gateway", Name: "hub_messages_total",
			Help: "STATE messages consumed by the province hubs.",
		}, []string{"province"}),
		hubBadMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "iochub", Subsystem: "gateway", Name: "hub_bad_messages_total",
			Help: "STATE messages a province hub could not decode and skipped.",
		}, []string{"province"}),
		hubs: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "iochub", Subsystem: "gateway", Name: "hubs",
			Help: "Province hubs running.",
		}),
		provincesStale: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "iochub", Subsystem: "gateway", Name: "provinces_stale",
			Help: "Province hubs the national view shows stale: their newest roll-up is older than --province-stale-after.",
		}),
		streamClients: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "iochub", Subsystem: "gateway", Name: "stream_clients",
			Help: "Event stream clients (/v1/streams, WebSocket and SSE) connected.",
		}),
		streamEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "iochub", Subsystem: "gateway", Name: "stream_events_sent_total",
			Help: "CloudEvents written to event stream clients.",
		}),
		streamClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "iochub", Subsystem: "gateway", Name: "stream_clients_closed_total",
			Help: "Event stream clients ended, by reason (client_closed, shutdown, stream_too_slow, stream_failure, revoked, write_error).",
		}, []string{"reason"}),
		opensLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "iochub", Subsystem: "gateway", Name: "opens_limited_total",
			Help: "Live views and event streams refused with 429 because their identity opened them faster than --open-rate-per-identity, by endpoint (live, streams).",
		}, []string{"endpoint"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.clients, m.framesSent, m.framesConflate, m.dropped, m.hubMessages, m.hubBadMessages, m.hubs, m.provincesStale, m.streamClients, m.streamEvents, m.streamClosed, m.opensLimited} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering gateway metrics: %w", err)
		}
	}
	return m, nil
}
