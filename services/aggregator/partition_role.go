package aggregator

import (
	"context"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// partitioned builds the partitioner of a role whose cfg.Partition is
// enabled (partition.go).
func (r *Role) partitioned(cfg RoleConfig, d RoleDeps) error {
	pm, err := newPartitionMetrics(d.Metrics)
	if err != nil {
		return err
	}
	pc := cfg.Partition.withDefaults()
	r.part = &partitioner{cfg: pc, m: pm, log: r.log.With("instance", pc.Instance),
		list: r.partitions, epoch: func(ctx context.Context, part string) (int64, error) {
			return r.store.AcquirePartition(ctx, part, pc.Instance, pc.LeaseTTL/3)
		},
		run: r.runPartition, global: r.runGlobal}
	r.partMetrics = map[string]*metrics{}
	return nil
}

// partitions lists the provinces valid now and those with items on FEEDS,
// sorted: the partitions are data (admin_unit and the stream), not code.
func (r *Role) partitions(ctx context.Context) ([]string, error) {
	now, err := r.store.CurrentProvinces(ctx)
	if err != nil {
		return nil, err
	}
	seen, err := feedProvinces(ctx, r.deps.JS)
	if err != nil {
		return nil, err
	}
	all := append(now, seen...)
	slices.Sort(all)
	return slices.Compact(all), nil
}

// runPartition consumes the items of province part under its fence until
// ctx ends or a write finds the partition taken. The global work (actions,
// sweeps) runs under the singleton lease instead; the expiry of the
// province's alerts runs here.
func (r *Role) runPartition(ctx context.Context, part string, epoch int64) error {
	cfg := r.cfg.Aggregator
	cfg.Durable = partitionDurable(part)
	cfg.FilterSubject = subjects.FeedProvince(part)
	cfg.Province = part
	cfg.ReportSweepInterval, cfg.StaleSweepInterval, cfg.ObservationRetention, cfg.MemberRetention = -1, -1, 0, 0
	m, err := r.metricsOf(cfg.Durable)
	if err != nil {
		return err
	}
	// A new service each time the partition is taken: its in-memory books
	// (VN_AQI, water levels) warm from the database, which the previous
	// holder left as it was.
	svc, err := newService(cfg, Deps{JS: r.deps.JS, Store: r.store, Logger: r.log.With("role", "aggregator", "partition", part)}, m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(postgis.WithFence(ctx, postgis.Fence{Partition: part, Epoch: epoch}))
	defer cancel()
	svc.fenced = cancel
	return svc.Run(ctx)
}

// partitionDurable is the name of the durable consumer of province part.
func partitionDurable(part string) string { return partitionDurablePrefix + subjects.Token(part) }

// partitionDurablePrefix starts the name of every partition's FEEDS consumer
// (the rules engine waits for them at its start: rules.Config.FeedsPartitionPrefix).
const partitionDurablePrefix = "aggregator-"

// metricsOf returns the metrics of durable, registered the first time.
func (r *Role) metricsOf(durable string) (*metrics, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := r.partMetrics[durable]; m != nil {
		return m, nil
	}
	m, err := newMetrics(r.deps.Metrics, durable)
	if err != nil {
		return nil, err
	}
	r.partMetrics[durable] = m
	return m, nil
}

// runGlobal runs what one instance does for all: the consumer of operator
// actions, the sweeps of reports, stale sources and old observations, the
// rules engine, and the poll of the edges' records of lost items (one
// instance exports them).
func (r *Role) runGlobal(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		wait := r.svc.startReports(gctx)
		<-gctx.Done()
		wait()
		return nil
	})
	g.Go(func() error { return r.eng.Run(gctx) })
	g.Go(func() error { return r.edges.Run(gctx) })
	return g.Wait()
}

// Ready reports whether the role can do its work: a partitioned role must
// have stored its heartbeat in the lease bucket within the lease TTL.
func (r *Role) Ready(ctx context.Context) error {
	if r.part == nil {
		return nil
	}
	return r.part.Ready(ctx)
}

// roleState is what a partitioned Role keeps besides the services.
type roleState struct {
	cfg         RoleConfig
	deps        RoleDeps
	store       *postgis.Store
	part        *partitioner
	mu          sync.Mutex
	partMetrics map[string]*metrics
}
