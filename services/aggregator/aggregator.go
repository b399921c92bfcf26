// Package aggregator consumes the FEEDS stream in batches, writes each batch
// to PostGIS in one transaction (through the postgis subpackage), publishes
// the latest state of every entity the batch changed to the STATE stream, and
// only then acknowledges the batch. A redelivery is harmless: the store drops
// events it already has and writes the state again, which republishes it.
// The stages run as a pipeline (pipeline.go): the next batch is fetched and
// decoded while one commits, and the last one's states are published and
// acked meanwhile.
package aggregator

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iochub/iochub/internal/deadletter"
	"github.com/iochub/iochub/internal/flagx"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// Store is what the aggregator needs of the database; *postgis.Store is one.
type Store interface {
	WriteBatch(ctx context.Context, b postgis.Batch) (postgis.Result, error)
	DueAlerts(ctx context.Context, province string, limit int) ([]postgis.AlertState, error)
	// MarkExpired returns the roll-ups the alerts it expired changed.
	MarkExpired(ctx context.Context, ids []string, at time.Time) ([]postgis.Rollup, error)
	// LoadBindings reads the sources and unit tree the items of edges are
	// checked against (edgecheck.go).
	LoadBindings(ctx context.Context) (postgis.Bindings, error)
}

var _ Store = (*postgis.Store)(nil)

// Config configures one aggregator: one durable consumer on FEEDS.
type Config struct {
	// Durable is the consumer's name; empty means "aggregator". Each province
	// partition needs its own.
	Durable string
	// FilterSubject selects the feed items; empty means every item (ioc.feed.>).
	// A province partition uses subjects.FeedProvince(p), ioc.feed.<p>.>.
	FilterSubject string
	// BatchSize is the most messages written in one transaction; 0 means 500.
	BatchSize int
	// BatchBytes is the most bytes of messages in one transaction, and in
	// what the reader keeps pulled ahead; 0 means 32 MiB. It is raised to
	// twice the server's max payload when that is more (a message larger
	// than a pull's bound would never be delivered).
	BatchBytes int
	// AckWait is how long JetStream waits for an ack before redelivering; 0 means 30s.
	AckWait time.Duration
	// RetryDelay is how long a batch that failed to store waits before it is
	// redelivered; 0 means 1s.
	RetryDelay time.Duration
	// MaxDeliver bounds the deliveries of a feed item that keeps failing for
	// a reason a retry may cure (database down, STATE unreachable); at its
	// last delivery the item is dead-lettered instead of being dropped by
	// JetStream. 0 means unbounded: such an item is retried until the cause
	// is fixed (items the database refuses are dead-lettered at once either way).
	MaxDeliver int
	// Province limits the expiry of alerts to one province, for a province
	// partition; empty means every province.
	Province string
	// ExpiryInterval is how often alerts whose expiry has passed are published
	// as expired; 0 means 30s, negative never.
	ExpiryInterval time.Duration
	// AlertDefaultTTL is the hub's lifetime of a feed's alert that names no
	// expiry: it expires at its sent plus AlertDefaultTTL, as if its message
	// said so (kind_alert.go, defaultExpiry). 0 or negative means never: it
	// stays active until a Cancel or Update refers to it. The
	// alert-default-ttl flag's default is DefaultAlertTTL.
	AlertDefaultTTL time.Duration
	// ReportSweepInterval is how often reports past their SLA are marked
	// overdue (raising an alert) and the alerts of closed reports cancelled;
	// 0 means 30s, negative never.
	ReportSweepInterval time.Duration
	// StaleSweepInterval is how often sources silent for 3× their interval
	// are marked stale (raising an alert) and the alerts of those that sent
	// again cancelled; 0 means 15s, negative never.
	StaleSweepInterval time.Duration
	// ObservationRetention is how long raw observations are kept: every
	// hour, the monthly partitions whose month ended longer ago are dropped
	// (roll-ups, current states, alerts and reports are kept). 0 keeps them
	// forever; otherwise at least MinObservationRetention.
	ObservationRetention time.Duration
	// MemberRetention is how long the roll-ups' distinct members (the
	// stations and segments counted once per window, rollup_member_day) are
	// kept: every hour, the days that ended longer ago are closed
	// (postgis.Store.CloseMemberDays) and an observation of a closed day
	// counts as late in its windows. 0 keeps them forever; otherwise at
	// least MinMemberRetention.
	MemberRetention time.Duration

	// afterCommit, when set (tests), runs right after a batch is committed and
	// before its state is published and it is acked.
	afterCommit func()
	// beforeAck, when set (tests), runs in the acker right before it waits
	// for a batch's publishes.
	beforeAck func()
	// beforeWrite, when set (tests), runs in the committer as it takes a
	// batch, with its rows, before it settles and writes it.
	beforeWrite func(b postgis.Batch)
}

// withDefaults returns c with zero fields set to their defaults (the one
// place they are set; RegisterFlags shows them).
func (c Config) withDefaults() Config {
	if c.Durable == "" {
		c.Durable = "aggregator"
	}
	if c.FilterSubject == "" {
		c.FilterSubject = subjects.FeedsAll
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = defaultBatchBytes
	}
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = time.Second
	}
	if c.ExpiryInterval == 0 {
		c.ExpiryInterval = 30 * time.Second
	}
	if c.ReportSweepInterval == 0 {
		c.ReportSweepInterval = 30 * time.Second
	}
	if c.StaleSweepInterval == 0 {
		c.StaleSweepInterval = 15 * time.Second
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.BatchSize < 0 || c.BatchBytes < 0 || c.AckWait < 0 || c.RetryDelay < 0 || c.MaxDeliver < 0 {
		return fmt.Errorf("%w: BatchSize, BatchBytes, AckWait, RetryDelay and MaxDeliver must not be negative", ErrConfig)
	}
	if c.ObservationRetention != 0 && c.ObservationRetention < MinObservationRetention {
		return fmt.Errorf("%w: ObservationRetention %s: 0 (forever) or at least %s (history, replay and the roll-ups' late corrections read the recent observations)",
			ErrConfig, c.ObservationRetention, MinObservationRetention)
	}
	if c.MemberRetention != 0 && c.MemberRetention < MinMemberRetention {
		return fmt.Errorf("%w: MemberRetention %s: 0 (forever) or at least %s (an observation of a closed day counts as late)",
			ErrConfig, c.MemberRetention, MinMemberRetention)
	}
	return nil
}

// MinObservationRetention is the shortest ObservationRetention.
const MinObservationRetention = 7 * 24 * time.Hour

// MinMemberRetention is the shortest MemberRetention: a day is closed
// MemberRetention after it ended, so at least two days after, well past the
// roll-ups' lateness (2 h by default): only observations held back that long
// (a feed's backlog, a dead letter driven again) meet a closed day.
const MinMemberRetention = 2 * 24 * time.Hour

// DefaultAlertTTL is the alert-default-ttl flag's default: a day, long
// enough for a warning of the day, short enough that one its sender forgot
// to cancel leaves the wall screen and the counts of active alerts by the
// next; an alert meant to last longer says so (CAP expires) or is sent again.
const DefaultAlertTTL = 24 * time.Hour

// DefaultMemberRetention is the aggregator-member-retention flag's default.
const DefaultMemberRetention = 14 * 24 * time.Hour

// MemberStore closes the roll-ups' member days before a time
// (postgis.Store.CloseMemberDays).
type MemberStore interface {
	CloseMemberDays(ctx context.Context, before time.Time) (time.Time, int64, error)
}

// closeMemberDays closes the member days past MemberRetention.
func (s *Service) closeMemberDays(ctx context.Context, db MemberStore) error {
	day, deleted, err := db.CloseMemberDays(ctx, s.now().Add(-s.cfg.MemberRetention))
	if err == nil && deleted > 0 {
		s.log.Info("closed the roll-ups' member days", "before", day.Format(time.DateOnly), "rows", deleted, "retention", s.cfg.MemberRetention)
	}
	return err
}

// RetentionStore drops raw observations older than a cutoff
// (postgis.Store.DropObservationsBefore).
type RetentionStore interface {
	DropObservationsBefore(ctx context.Context, cutoff time.Time) ([]string, error)
}

// dropObservations drops the observations past ObservationRetention.
func (s *Service) dropObservations(ctx context.Context, db RetentionStore) error {
	dropped, err := db.DropObservationsBefore(ctx, s.now().Add(-s.cfg.ObservationRetention))
	if err == nil && len(dropped) > 0 {
		s.log.Info("dropped observations past the retention", "partitions", dropped, "retention", s.cfg.ObservationRetention)
	}
	return err
}

// hourly runs sweep at start and every hour until ctx ends; a failure
// counts in the errors of stage and is logged with what the sweep does.
func (s *Service) hourly(ctx context.Context, stage, what string, sweep func(context.Context) error) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if err := sweep(ctx); err != nil && ctx.Err() == nil {
			s.m.errors.WithLabelValues(stage).Inc()
			s.log.Error("hourly sweep failed", "sweep", what, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RegisterFlags registers the feed consumer's settings on fs, named
// aggregator-* (Durable, FilterSubject and Province stay with the code that
// partitions the aggregator by province).
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := Config{}.withDefaults()
	flagx.Positive(fs, &c.BatchSize, "aggregator-batch-size", d.BatchSize, "most feed items written in one transaction (IOCHUB_AGGREGATOR_BATCH_SIZE)")
	flagx.Positive(fs, &c.BatchBytes, "aggregator-batch-bytes", d.BatchBytes, "most bytes of feed items fetched for one transaction, at least twice the NATS max payload (IOCHUB_AGGREGATOR_BATCH_BYTES)")
	flagx.Positive(fs, &c.AckWait, "aggregator-ack-wait", d.AckWait, "how long JetStream waits for the aggregator's ack before redelivering (IOCHUB_AGGREGATOR_ACK_WAIT)")
	flagx.Positive(fs, &c.RetryDelay, "aggregator-retry-delay", d.RetryDelay, "wait before a batch that failed to store is redelivered (IOCHUB_AGGREGATOR_RETRY_DELAY)")
	fs.IntVar(&c.MaxDeliver, "aggregator-max-deliver", c.MaxDeliver, "deliveries of a feed item that keeps failing before it is dead-lettered; 0 retries until the cause is fixed (IOCHUB_AGGREGATOR_MAX_DELIVER)")
	flagx.NonZero(fs, &c.ExpiryInterval, "alert-expiry-interval", d.ExpiryInterval, "never", "how often alerts past their expiry are published as expired; negative never (IOCHUB_ALERT_EXPIRY_INTERVAL)")
	fs.DurationVar(&c.AlertDefaultTTL, "alert-default-ttl", DefaultAlertTTL, "lifetime of a feed's alert that names no expiry, from its sent time (it then expires as if its CAP expires said so); 0 means never, as does a negative value (IOCHUB_ALERT_DEFAULT_TTL)")
	flagx.NonZero(fs, &c.ReportSweepInterval, "report-sweep", d.ReportSweepInterval, "never", "how often reports past their SLA are marked overdue; negative never (IOCHUB_REPORT_SWEEP)")
	fs.DurationVar(&c.ObservationRetention, "observation-retention", 0, "how long raw observations are kept (monthly partitions dropped once their month is older); 0 forever, else at least 168h (IOCHUB_OBSERVATION_RETENTION)")
	fs.DurationVar(&c.MemberRetention, "aggregator-member-retention", DefaultMemberRetention, "how long the roll-ups' distinct members are kept (days that ended longer ago are closed: an observation of a closed day counts as late); 0 forever, else at least 48h (IOCHUB_AGGREGATOR_MEMBER_RETENTION)")
	flagx.NonZero(fs, &c.StaleSweepInterval, "stale-sweep", d.StaleSweepInterval, "never", "how often sources silent for 3× their interval are marked stale (raising an alert); negative never (IOCHUB_STALE_SWEEP)")
}

// Deps are the aggregator's connections.
type Deps struct {
	JS     jetstream.JetStream // required
	Store  Store               // required
	Logger *slog.Logger        // nil discards logs
	// Metrics registers the aggregator's metrics, labelled with the durable's
	// name; nil registers nothing.
	Metrics prometheus.Registerer
	// Pool, when set, runs the consumer of operator actions (ACTIONS) and the
	// sweep of overdue reports beside the feed consumer; nil runs neither.
	Pool *pgxpool.Pool
	// Now is the clock of the report sweep; nil means time.Now.
	Now func() time.Time
}

// Service is a running aggregator.
type Service struct {
	cfg Config
	js  jetstream.JetStream
	db  Store
	log *slog.Logger
	m   *metrics
	// Reports and operator actions (reports.go, actions.go).
	pool     *pgxpool.Pool
	actions  *Actions
	now      func() time.Time
	sweepNow chan struct{}
	// msgIDs keys the message ids of the alerts the sweeps publish on FEEDS.
	msgIDs *natsx.LazyFeedMsgIDKey
	aqi    *aqiBook
	water  *waterBook
	// edges caches what the items of edges are checked against (edgecheck.go).
	edges edgeBindings
	// fenced, when set (a province partition), is called when a write was
	// refused because another aggregator took the partition.
	fenced func()
	// staleUnits are the units whose stale figure the stale sweep changed
	// and whose latest roll-ups it has not published again yet (one sweep
	// at a time: no lock).
	staleUnits []string
}

// New checks cfg and deps, fills the defaults and registers the metrics.
func New(cfg Config, deps Deps) (*Service, error) { return newService(cfg, deps, nil) }

// newService is New with the metrics m already registered (a partition
// taken again, partition_role.go); nil registers them.
func newService(cfg Config, deps Deps, m *metrics) (*Service, error) {
	if deps.JS == nil {
		return nil, fmt.Errorf("%w: Deps.JS is nil", ErrConfig)
	}
	if deps.Store == nil {
		return nil, fmt.Errorf("%w: Deps.Store is nil", ErrConfig)
	}
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		var err error
		if m, err = newMetrics(deps.Metrics, cfg.Durable); err != nil {
			return nil, err
		}
	}
	log = log.With("durable", cfg.Durable)
	s := &Service{cfg: cfg, js: deps.JS, db: deps.Store, log: log, m: m, aqi: newAQIBook(log), water: newWaterBook(),
		msgIDs: natsx.NewLazyFeedMsgIDKey(deps.JS)}
	if err := s.initReports(deps); err != nil {
		return nil, err
	}
	if s.actions != nil {
		redrive, discard := DeadletterActions(s.js, s.msgIDs, s.log)
		s.actions.RegisterAction(deadletter.ActionRedrive, redrive)
		s.actions.RegisterAction(deadletter.ActionDiscard, discard)
	}
	return s, nil
}

// Run consumes until ctx is done, then returns nil. A batch committed and
// not yet acked when ctx ends is neither acked nor naked: JetStream
// redelivers it after AckWait, and the store's idempotency makes that
// harmless; batches fetched and not yet written are naked.
func (s *Service) Run(ctx context.Context) error {
	maxDeliver := -1 // unbounded; see Config.MaxDeliver
	if s.cfg.MaxDeliver > 0 {
		maxDeliver = s.cfg.MaxDeliver
	}
	open := func(ctx context.Context) (jetstream.Consumer, error) {
		return s.js.CreateOrUpdateConsumer(ctx, subjects.StreamFeeds, jetstream.ConsumerConfig{
			Durable:       s.cfg.Durable,
			Description:   "iochub aggregator: FEEDS to PostGIS and STATE",
			FilterSubject: s.cfg.FilterSubject,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       s.cfg.AckWait,
			MaxAckPending: maxAckBatches * s.cfg.BatchSize,
			MaxDeliver:    maxDeliver,
			DeliverPolicy: jetstream.DeliverAllPolicy,
		})
	}
	cons, err := open(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("creating consumer %s on %s: %w", s.cfg.Durable, subjects.StreamFeeds, err)
	}
	s.log.Info("aggregator consuming", "stream", subjects.StreamFeeds, "filter", s.cfg.FilterSubject)
	stopReports := s.startReports(ctx)
	defer stopReports()
	for _, k := range kinds {
		if k.warm == nil {
			continue
		}
		if err := k.warm(ctx, s, time.Now()); err != nil && ctx.Err() == nil {
			// The kind's hooks then load each entity when a batch first brings it, or do without.
			s.m.errors.WithLabelValues("warm").Inc()
			s.log.Error("warming a kind failed", "kind", k.name, "err", err)
		}
	}
	s.pipeline(ctx, cons, open)
	s.log.Info("aggregator stopped")
	return nil
}

// defaultBatchBytes is Config.BatchBytes' default.
const defaultBatchBytes = 32 << 20

// batchBytes is the byte bound of a batch and of what the reader's pulls
// keep buffered: Config.BatchBytes, or twice the server's max payload when
// that is more (a message larger than a pull's bound would never be
// delivered).
func (s *Service) batchBytes() int {
	n := s.cfg.BatchBytes
	if c := s.js.Conn(); c != nil {
		n = max(n, 2*int(c.MaxPayload()))
	}
	return n
}

// pending is one batch on its way: decoded messages with the rows they became.
type pending struct {
	batch postgis.Batch
	// items are the decoded messages by kind, each kind's parallel to its
	// rows in batch.
	items map[*kindOps][]decodedMsg
	msgs  []jetstream.Msg // every message to ack after commit
	start time.Time       // when it was fetched
	aqi   aqiAhead        // what the preparer rated ahead (aqi.go)
	// pairs are the feed source and unit pairs in batch.Sources.
	pairs map[pairKey]bool
}

type decodedMsg struct {
	d   decoded
	msg jetstream.Msg
}

// rejected reports whether the database refused the batch's data, as opposed
// to failing for a reason a retry can cure (connection, the transaction's
// state, deadlock, serialisation, lack of resources, shutdown, an old
// snapshot) or timing out (see timedOut). The transaction's state (class 25)
// is the server's, never the data's: a primary demoted to a standby, or put
// in read-only mode while its disk is full, refuses every write with 25006
// until it is writable again, and a session ended by
// idle_in_transaction_session_timeout reports 25P03. JSON the store checks
// itself before sending it (postgis.ErrInvalidJSON) counts as refused, as
// the server refused it when it parsed it; so does a value the store's own
// COPY cannot encode (postgis.ErrUnencodable), which pgx's refused.
func rejected(err error) bool {
	if errors.Is(err, postgis.ErrInvalidJSON) || errors.Is(err, postgis.ErrUnencodable) {
		return true
	}
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || len(pg.Code) < 2 {
		return false
	}
	if pg.Code == sqlstateInFailedTransaction {
		// A statement after one that failed: the first one's error, had it
		// surfaced, would tell; the transaction's state is not the cause.
		return true
	}
	switch pg.Code {
	case "42501", "42P01", "42703", "42883":
		// The deployment's, not the data's: a privilege revoked, or a
		// table, column or function a migration not applied yet would
		// make. Every item would be dead-lettered; they wait instead.
		return false
	}
	switch pg.Code[:2] {
	case "08", "25", "40", "53", "55", "57", "58", "72":
		return false
	}
	return true
}

// sqlstateInFailedTransaction is in_failed_sql_transaction ("current
// transaction is aborted"), the one state of class 25 a batch's own data
// can cause.
const sqlstateInFailedTransaction = "25P02"

// all lists the decoded messages of every kind.
func (p *pending) all() []decodedMsg {
	out := make([]decodedMsg, 0, len(p.msgs))
	for _, k := range kinds {
		out = append(out, p.items[k]...)
	}
	return out
}

// add appends d, decoded from m, to the batch, which is redelivered when
// one of its messages was delivered before (postgis.Batch.Redelivered).
func (p *pending) add(d decoded, m jetstream.Msg) {
	p.msgs = append(p.msgs, m)
	if !p.batch.Redelivered {
		md, err := m.Metadata()
		p.batch.Redelivered = err == nil && md.NumDelivered > 1
	}
	if p.items == nil {
		p.items = map[*kindOps][]decodedMsg{}
	}
	d.ops.add(&p.batch, d.row)
	p.items[d.ops] = append(p.items[d.ops], decodedMsg{d: d, msg: m})
	if k := (pairKey{d.source, d.unit}); feedSource(d.source) && !p.pairs[k] {
		if p.pairs == nil {
			p.pairs = map[pairKey]bool{}
		}
		p.pairs[k] = true
		p.batch.Sources = append(p.batch.Sources, postgis.SourceUnit{SourceID: d.source, UnitCode: d.unit})
	}
}

// timedOutTwice reports whether m, which timed out on its own, has had its
// one retry: a timeout may come of a busy moment, so it gets a second chance.
func (s *Service) timedOutTwice(m jetstream.Msg) bool {
	md, err := m.Metadata()
	return err != nil || md.NumDelivered >= 2
}

// retryAll naks msgs to be redelivered after RetryDelay, except those at
// their last delivery (Config.MaxDeliver), which are dead-lettered with err.
func (s *Service) retryAll(ctx context.Context, msgs []jetstream.Msg, err error) {
	for _, m := range msgs {
		if s.lastDelivery(m) {
			s.deadLetter(ctx, m, deadletter.StageStore, errDeliveries(s.cfg.MaxDeliver, err))
			continue
		}
		if err := m.NakWithDelay(s.cfg.RetryDelay); err != nil {
			s.log.Warn("naking feed message failed", "subject", m.Subject(), "err", err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// of returns the decoded messages of the built-in kind named name.
func (p *pending) of(name string) []decodedMsg {
	for k, items := range p.items {
		if k.name == name {
			return items
		}
	}
	return nil
}
