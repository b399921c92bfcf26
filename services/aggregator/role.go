package aggregator

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/iochub/iochub/internal/edge"
	"github.com/iochub/iochub/services/aggregator/postgis"
	"github.com/iochub/iochub/services/aggregator/rules"
)

// RoleConfig configures the aggregator role of the binary: the feed
// consumer, the store it writes through, and the alert rules engine.
type RoleConfig struct {
	Aggregator Config
	Store      postgis.StoreConfig
	Rules      rules.Config
	// Partition shares the provinces with other instances (partition.go);
	// the zero value consumes every province here.
	Partition PartitionConfig
	// Edges is the poll of the edges' records of lost items for the
	// metrics (edge.LostPoller), run with the global work.
	Edges edge.LostPollConfig
}

// RegisterFlags registers the settings of every part of the role on fs.
func (c *RoleConfig) RegisterFlags(fs *flag.FlagSet) {
	c.Aggregator.RegisterFlags(fs)
	c.Store.RegisterFlags(fs)
	c.Rules.RegisterFlags(fs)
	c.Partition.RegisterFlags(fs)
	c.Edges.RegisterFlags(fs)
}

// Validate reports a configuration of any part that cannot work.
func (c RoleConfig) Validate() error {
	return errors.Join(c.Aggregator.Validate(), c.Store.Validate(), c.Rules.Validate(), c.Partition.Validate(), c.Edges.Validate())
}

// RoleDeps are the role's connections.
type RoleDeps struct {
	JS jetstream.JetStream // required
	// Pool is the migrated PostGIS database the role writes; required.
	Pool *pgxpool.Pool
	// Logger; the role adds role=aggregator and role=rules. Nil discards.
	Logger *slog.Logger
	// Metrics registers the series of every part; nil registers nothing.
	Metrics prometheus.Registerer
}

// Role is the aggregator with everything it owns: the feed consumer, the
// consumer of operator actions with all their handlers (reports, rules,
// identities, dead letters), the rules engine that reads STATE and
// raises alerts on FEEDS, and the poll of the edges' records of lost items.
type Role struct {
	svc       *Service
	eng       *rules.Engine
	edges     *edge.LostPoller
	log       *slog.Logger
	roleState // partition_role.go
}

// NewRole builds the role and registers its action handlers.
func NewRole(cfg RoleConfig, d RoleDeps) (*Role, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Pool == nil {
		return nil, fmt.Errorf("%w: RoleDeps.Pool is nil (the aggregator writes PostGIS)", ErrConfig)
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	store, err := postgis.NewStoreWith(d.Pool, cfg.Store)
	if err != nil {
		return nil, err
	}
	svc, err := New(cfg.Aggregator, Deps{JS: d.JS, Store: store, Pool: d.Pool, Logger: log.With("role", "aggregator"), Metrics: d.Metrics})
	if err != nil {
		return nil, err
	}
	// Rule changes arrive as actions, which nudge the engine to reload.
	if cfg.Rules.FeedsDurable == "" {
		cfg.Rules.FeedsDurable = cfg.Aggregator.Durable
	}
	if cfg.Partition.Enabled {
		cfg.Rules.FeedsPartitionPrefix = partitionDurablePrefix
	}
	eng, err := rules.New(cfg.Rules, rules.Deps{JS: d.JS, Store: store, Logger: log.With("role", "rules"), Metrics: d.Metrics})
	if err != nil {
		return nil, err
	}
	put, del := RuleActions(eng.Notify)
	create, revoke := IdentityActions()
	if err := errors.Join(
		svc.RegisterAction(ActionRulePut, put), svc.RegisterAction(ActionRuleDelete, del),
		svc.RegisterAction(ActionIdentityCreate, create), svc.RegisterAction(ActionIdentityRevoke, revoke),
		svc.RegisterAction(ActionUnitGroupPut, UnitGroupAction()),
		svc.RegisterAction(ActionUnitImport, UnitImportAction(d.JS, log.With("role", "aggregator"))),
	); err != nil {
		return nil, err
	}
	edges, err := edge.NewLostPoller(cfg.Edges, d.JS, log.With("role", "edge-status"), d.Metrics)
	if err != nil {
		return nil, err
	}
	r := &Role{svc: svc, eng: eng, edges: edges, log: log, roleState: roleState{cfg: cfg, deps: d, store: store}}
	if cfg.Partition.Enabled {
		if err := r.partitioned(cfg, d); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Service is the feed consumer of the role.
func (r *Role) Service() *Service { return r.svc }

// Run runs the feed consumer, the rules engine and the poll of the edges
// until ctx ends or one fails. Partitioned, it runs this instance's share of the province
// partitions, and the rules engine and the other global work only while it
// holds the singleton lease (partition.go).
func (r *Role) Run(ctx context.Context) error {
	if r.part != nil {
		kv, err := openLeaseBucket(ctx, r.deps.JS, r.part.cfg)
		if err != nil {
			return err
		}
		r.part.kv = kv
		return r.part.Run(ctx)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.svc.Run(gctx) })
	g.Go(func() error { return r.eng.Run(gctx) })
	g.Go(func() error { return r.edges.Run(gctx) })
	return g.Wait()
}
