package edge

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iochub/iochub/internal/flagx"
	"github.com/iochub/iochub/internal/natsx"
)

// The hub's metrics of its edges' losses: the hub's aggregator reads the
// record of lost items of every edge its FEEDS sources (ReadUnsentOf) every
// LostPollConfig.Interval and exports it, so that an operator alerts on an
// edge's losses without running iochub edge-list (docs/edge.md,
// docs/operations.md). A partitioned aggregator polls from the instance
// holding the singleton lease only; two that poll would export the same
// values under the same labels, each read from the edge.

// The series of LostPoller, each labelled with the edge's domain.
const (
	// LostItemsMetric is the total of the edge's record: the items it
	// counted lost since its store was created. It keeps its last value
	// while the edge does not answer.
	LostItemsMetric = "iochub_edge_lost_items"
	// LastLossMetric is when the edge last counted items lost (unix
	// seconds); absent for an edge that never did.
	LastLossMetric = "iochub_edge_last_loss_timestamp_seconds"
	// StatusReadOKMetric is 1 when the last read of the edge's record
	// answered, 0 when it did not (the edge cut off, slow, or keeping no
	// record).
	StatusReadOKMetric = "iochub_edge_status_read_ok"
)

// LostPollConfig configures the LostPoller.
type LostPollConfig struct {
	// Interval is how often every edge's record is read; 0 means 60s,
	// negative never.
	Interval time.Duration
	// Timeout is how long one edge has to answer; 0 means 5s.
	Timeout time.Duration
	// Concurrency is how many edges are asked at once; 0 means DefaultStatusQueries.
	Concurrency int
}

func (c LostPollConfig) withDefaults() LostPollConfig {
	if c.Interval == 0 {
		c.Interval = time.Minute
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultStatusQueries
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c LostPollConfig) Validate() error {
	if c.Timeout < 0 || c.Concurrency < 0 {
		return fmt.Errorf("edge status: Timeout %s and Concurrency %d must not be negative", c.Timeout, c.Concurrency)
	}
	return nil
}

// RegisterFlags registers the settings on fs.
func (c *LostPollConfig) RegisterFlags(fs *flag.FlagSet) {
	d := LostPollConfig{}.withDefaults()
	flagx.NonZero(fs, &c.Interval, "edge-status-interval", d.Interval, "never",
		"how often the aggregator reads every sourced edge's record of lost items for its metrics (iochub_edge_lost_items); negative never (IOCHUB_EDGE_STATUS_INTERVAL)")
	flagx.Positive(fs, &c.Timeout, "edge-status-timeout", d.Timeout, "how long the aggregator waits for one edge's record of lost items (IOCHUB_EDGE_STATUS_TIMEOUT)")
	flagx.Positive(fs, &c.Concurrency, "edge-status-concurrency", d.Concurrency, "how many edges the aggregator asks for their records of lost items at once (IOCHUB_EDGE_STATUS_CONCURRENCY)")
}

// LostPoller reads the edges' records of lost items from the hub and keeps
// them in its gauges.
type LostPoller struct {
	cfg  LostPollConfig
	js   jetstream.JetStream
	log  *slog.Logger
	lost *prometheus.GaugeVec
	last *prometheus.GaugeVec
	ok   *prometheus.GaugeVec

	mu    sync.Mutex
	known map[string]bool // domain: its last read answered
}

// NewLostPoller builds the poller of the edges sourced by the FEEDS of js,
// the hub's JetStream (its connection's options open the connections to
// the edges), and registers its series on reg (nil registers nothing).
func NewLostPoller(cfg LostPollConfig, js jetstream.JetStream, log *slog.Logger, reg prometheus.Registerer) (*LostPoller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &LostPoller{cfg: cfg.withDefaults(), js: js, log: log, known: map[string]bool{},
		lost: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: LostItemsMetric,
			Help: "Items the edge counted lost (expired before the hub copied them) since its store was created, from its record (docs/edge.md); kept while the edge does not answer."}, []string{"domain"}),
		last: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: LastLossMetric,
			Help: "When the edge last counted items lost, unix seconds, from its record; absent when it never did."}, []string{"domain"}),
		ok: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: StatusReadOKMetric,
			Help: "1 when the hub's last read of the edge's record of lost items answered, else 0."}, []string{"domain"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{p.lost, p.last, p.ok} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering the edges' metrics: %w", err)
			}
		}
	}
	return p, nil
}

// Run polls every Interval until ctx ends, then drops every series it set:
// an aggregator that stops polling (it lost the singleton lease) exports
// no stale values beside those of the one that took over.
func (p *LostPoller) Run(ctx context.Context) error {
	if p.cfg.Interval < 0 {
		return nil
	}
	defer p.forget()
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		if err := p.Poll(ctx); err != nil && ctx.Err() == nil {
			p.log.Error("reading the edges' records of lost items failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Poll reads the record of every edge the hub sources now and sets their
// series; those of edges no longer sourced are dropped.
func (p *LostPoller) Poll(ctx context.Context) error {
	srcs, err := natsx.EdgeSources(ctx, p.js)
	if err != nil {
		return err
	}
	answers := ReadUnsentOf(ctx, p.js.Conn().Opts, "iochub-edge-status", srcs, p.cfg.Timeout, p.cfg.Concurrency)
	if ctx.Err() != nil {
		return ctx.Err() // the answers say that the poll stopped, not the edges
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	sourced := map[string]bool{}
	for _, a := range answers {
		sourced[a.Domain] = true
		p.set(a)
	}
	for d := range p.known {
		if !sourced[d] {
			p.drop(d)
		}
	}
	return nil
}

// set sets the series of the edge that gave a; p.mu held.
func (p *LostPoller) set(a EdgeUnsent) {
	wasOK, seen := p.known[a.Domain]
	p.known[a.Domain] = a.Err == nil
	if a.Err != nil {
		p.ok.WithLabelValues(a.Domain).Set(0)
		if !seen || wasOK {
			p.log.Warn("the edge's record of lost items could not be read", "domain", a.Domain, "reason", a.Reason())
		}
		return
	}
	p.ok.WithLabelValues(a.Domain).Set(1)
	p.lost.WithLabelValues(a.Domain).Set(float64(a.Record.Total))
	if l := a.Record.Last; l != nil {
		p.last.WithLabelValues(a.Domain).Set(float64(l.DetectedAt.Unix()))
	} else {
		p.last.DeleteLabelValues(a.Domain)
	}
	if seen && !wasOK {
		p.log.Info("the edge's record of lost items is read again", "domain", a.Domain, "lost", a.Record.Total)
	}
}

// drop deletes the series of domain; p.mu held.
func (p *LostPoller) drop(domain string) {
	delete(p.known, domain)
	for _, v := range []*prometheus.GaugeVec{p.lost, p.last, p.ok} {
		v.DeleteLabelValues(domain)
	}
}

// forget drops every series.
func (p *LostPoller) forget() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for d := range p.known {
		p.drop(d)
	}
}
