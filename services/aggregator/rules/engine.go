package rules

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/iochub/iochub/internal/alertrule"
	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/flagx"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// HeaderRule names the rule that raised (or cancelled) an alert the engine
// publishes on FEEDS, next to ce.HeaderFeedSource "rules".
const HeaderRule = "Iochub-Rule"

// Store is what the engine reads of the database; *postgis.Store is one.
type Store interface {
	// Rules returns every rule of province (every province when empty), enabled or not.
	Rules(ctx context.Context, province string) ([]alertrule.Rule, error)
	// RulesVersion changes whenever a rule of province is added, changed or deleted.
	RulesVersion(ctx context.Context, province string) (string, error)
	// RaisedAlerts returns the alerts of the source "rules" that are active
	// (msgType Alert) in province, to rebuild the engine's state after a restart.
	RaisedAlerts(ctx context.Context, province string) ([]Raised, error)
}

// Config configures the engine.
type Config struct {
	// Province limits the engine to one province's rules and states; empty
	// means every province.
	Province string
	// PollInterval is how often the engine checks whether the rules changed;
	// 0 means 2s. Notify makes it check at once.
	PollInterval time.Duration
	// RetryDelay is how long the engine waits before recreating its STATE
	// consumer after a failure, and before publishing a failed Cancel again;
	// 0 means 1s.
	RetryDelay time.Duration
	// AckWait bounds the wait for JetStream to store the alerts published; 0 means 10s.
	AckWait time.Duration
	// CatchUpWait bounds the wait at start for the aggregator's FEEDS
	// consumers to take every item FEEDS held then (awaitFeeds); 0 means 2
	// minutes, negative means no wait.
	CatchUpWait time.Duration
	// FeedsDurable is the durable name of the aggregator's FEEDS consumer;
	// "" means "aggregator". FeedsPartitionPrefix, when the aggregator runs
	// partitioned, starts the names of its consumers instead, one a
	// partition (the aggregator's partitionDurable).
	FeedsDurable         string
	FeedsPartitionPrefix string
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.PollInterval == 0 {
		c.PollInterval = 2 * time.Second
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = time.Second
	}
	if c.AckWait == 0 {
		c.AckWait = 10 * time.Second
	}
	if c.CatchUpWait == 0 {
		c.CatchUpWait = 2 * time.Minute
	}
	if c.FeedsDurable == "" {
		c.FeedsDurable = "aggregator"
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.PollInterval < 0 || c.RetryDelay < 0 || c.AckWait < 0 {
		return fmt.Errorf("%w: PollInterval, RetryDelay and AckWait must not be negative", ErrConfig)
	}
	if c.Province != "" && !alertrule.ProvinceCode(c.Province) {
		return fmt.Errorf("%w: Province %q is not a province code", ErrConfig, c.Province)
	}
	return nil
}

// RegisterFlags registers the engine's settings on fs, named rules-*.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := Config{}.withDefaults()
	flagx.Positive(fs, &c.PollInterval, "rules-poll-interval", d.PollInterval, "how often the rules engine checks whether the alert rules changed (IOCHUB_RULES_POLL_INTERVAL)")
	flagx.Positive(fs, &c.RetryDelay, "rules-retry-delay", d.RetryDelay, "wait of the rules engine before it retries a failed consumer or publication (IOCHUB_RULES_RETRY_DELAY)")
	flagx.Positive(fs, &c.AckWait, "rules-ack-wait", d.AckWait, "longest wait for JetStream to store an alert the rules raise (IOCHUB_RULES_ACK_WAIT)")
	flagx.NonZero(fs, &c.CatchUpWait, "rules-catch-up-wait", d.CatchUpWait, "no wait", "longest wait of the rules engine, at start, for the aggregator to take what FEEDS holds (the alerts it raised just before a restart); negative means no wait (IOCHUB_RULES_CATCH_UP_WAIT)")
}

// Deps are the engine's connections.
type Deps struct {
	JS     jetstream.JetStream // required
	Store  Store               // required
	Logger *slog.Logger        // nil discards logs
	// Metrics registers iochub_rules_* metrics; nil registers nothing.
	Metrics prometheus.Registerer
	// Now is the wall clock: the sent time of Cancels of deleted rules and of
	// silent entities, and what silence is measured against; nil means time.Now.
	Now func() time.Time
}

// Engine evaluates the rules against STATE and publishes their alerts on FEEDS.
type Engine struct {
	cfg    Config
	js     jetstream.JetStream
	msgIDs *natsx.LazyFeedMsgIDKey
	store  Store
	log    *slog.Logger
	now    func() time.Time
	ev     *Evaluator
	notify chan struct{}
	// retry are Cancels whose publication failed, published again on each tick.
	retry   []Transition
	version string
	// ready is closed once the first consumer has delivered the last state of every entity.
	ready     chan struct{}
	readyOnce sync.Once
	// caughtUp is, for the current run (start), whether the consumer has
	// delivered the last state of every entity: the silence sweep waits for
	// it. Unlike ready it starts false again when Run runs again (the
	// singleton lease of a partitioned aggregator taken back), since start
	// restores the alerts into a fresh evaluator.
	caughtUp bool

	alerts  *prometheus.CounterVec
	states  prometheus.Counter
	errs    *prometheus.CounterVec
	inForce prometheus.Gauge
}

// New checks cfg and deps and fills the defaults.
func New(cfg Config, deps Deps) (*Engine, error) {
	if deps.JS == nil {
		return nil, fmt.Errorf("%w: Deps.JS is nil", ErrConfig)
	}
	if deps.Store == nil {
		return nil, fmt.Errorf("%w: Deps.Store is nil", ErrConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	e := &Engine{
		cfg: cfg, js: deps.JS, store: deps.Store, log: log, now: now, ev: NewEvaluator(now),
		msgIDs: natsx.NewLazyFeedMsgIDKey(deps.JS),
		notify: make(chan struct{}, 1),
		ready:  make(chan struct{}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iochub_rules_alerts_total", Help: "Alerts published by the rules engine, by action (raise, cancel).",
		}, []string{"action"}),
		states: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "iochub_rules_states_total", Help: "Entity states evaluated by the rules engine.",
		}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iochub_rules_errors_total", Help: "Failures of the rules engine, by stage.",
		}, []string{"stage"}),
		inForce: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "iochub_rules_in_force", Help: "Enabled alert rules the engine has loaded.",
		}),
	}
	if deps.Metrics != nil {
		for _, c := range []prometheus.Collector{e.alerts, e.states, e.errs, e.inForce} {
			if err := deps.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("registering rules metrics: %w", err)
			}
		}
	}
	return e, nil
}

// Ready is closed once the engine has loaded its rules and evaluated the
// last state of every entity STATE held when it started.
func (e *Engine) Ready() <-chan struct{} { return e.ready }

func (e *Engine) markReady() {
	e.caughtUp = true
	e.readyOnce.Do(func() { close(e.ready) })
}

// Notify asks the engine to reload the rules now rather than at its next
// poll. It never blocks.
func (e *Engine) Notify() {
	select {
	case e.notify <- struct{}{}:
	default:
	}
}

// Run loads the rules and the alerts raised before, then evaluates every
// state of STATE (the last of each entity first, then the new ones) until ctx
// ends; it returns nil then. Losing the consumer is retried, never fatal.
func (e *Engine) Run(ctx context.Context) error {
	e.awaitFeeds(ctx)
	for {
		// The key of the alerts' message ids first, so that no publish, on
		// the goroutine that reads STATE, waits for it.
		_, err := e.msgIDs.Get(ctx)
		if err == nil {
			err = e.start(ctx)
		}
		if err == nil || ctx.Err() != nil {
			break
		}
		e.errs.WithLabelValues("load").Inc()
		e.log.Error("loading rules failed; retrying", "err", err)
		sleep(ctx, e.cfg.RetryDelay)
	}
	filter := subjects.StateAll
	if e.cfg.Province != "" {
		filter = subjects.StateProvince(e.cfg.Province)
	}
	for ctx.Err() == nil {
		if err := e.consume(ctx, filter); err != nil && ctx.Err() == nil {
			e.errs.WithLabelValues("consume").Inc()
			e.log.Error("consuming STATE failed; recreating the consumer", "err", err)
			sleep(ctx, e.cfg.RetryDelay)
		}
	}
	e.log.Info("rules engine stopped")
	return nil
}

// awaitFeeds waits, at most Config.CatchUpWait, until the aggregator's FEEDS
// consumers have taken every item FEEDS held when it was called. The alerts
// the engine raised just before a restart may still be there, not yet
// stored: start reads the raised alerts from the table, and one it does not
// find would be raised again under another identifier once its entity's
// last state came back, the first left active for ever. Past the wait (an
// aggregator that cannot store) it goes on, counted and logged.
func (e *Engine) awaitFeeds(ctx context.Context) {
	if e.cfg.CatchUpWait < 0 {
		return
	}
	deadline := time.Now().Add(e.cfg.CatchUpWait)
	var (
		last   uint64
		behind string
		err    error
	)
	for ctx.Err() == nil {
		var st jetstream.Stream
		if st, err = e.js.Stream(ctx, subjects.StreamFeeds); err == nil {
			if last == 0 {
				// What FEEDS held at the first look; 1 for an empty
				// stream, which every consumer has taken.
				last = max(1, st.CachedInfo().State.LastSeq)
			}
			if behind, err = e.feedsBehind(ctx, st, last); err == nil && behind == "" {
				return
			}
		} else {
			err = fmt.Errorf("looking up FEEDS: %w", err)
		}
		if time.Now().After(deadline) {
			e.errs.WithLabelValues("catch-up").Inc()
			e.log.Warn("the aggregator has not taken what FEEDS held at the engine's start; starting anyway: an alert raised just before may be raised again",
				"behind", behind, "err", err, "waited", e.cfg.CatchUpWait)
			return
		}
		sleep(ctx, 500*time.Millisecond)
	}
}

// abandonedAfter is how long a FEEDS consumer of the aggregator's names may
// go without a delivery and without a pull waiting before awaitFeeds takes
// it for one nobody runs (an "aggregator" left behind by a switch to
// partitions, or the reverse): its backlog is nobody's to wait for.
const abandonedAfter = 10 * time.Minute

// feedsBehind names a FEEDS consumer of the aggregator that has not taken
// every item up to last (its ack floor below it, with items still pending
// or unacked); "" when none has. Its consumer is Config.FeedsDurable, or,
// partitioned, every one named with Config.FeedsPartitionPrefix (other
// instances run some); one nobody runs (abandonedAfter) is not waited for.
func (e *Engine) feedsBehind(ctx context.Context, st jetstream.Stream, last uint64) (string, error) {
	var infos []*jetstream.ConsumerInfo
	if e.cfg.FeedsPartitionPrefix != "" {
		list := st.ListConsumers(ctx)
		for info := range list.Info() {
			if strings.HasPrefix(info.Config.Durable, e.cfg.FeedsPartitionPrefix) {
				infos = append(infos, info)
			}
		}
		if err := list.Err(); err != nil {
			return "", fmt.Errorf("listing the consumers of FEEDS: %w", err)
		}
	} else {
		c, err := st.Consumer(ctx, e.cfg.FeedsDurable)
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			return "", nil // not created yet: a new hub
		case err != nil:
			return "", fmt.Errorf("looking up FEEDS consumer %s: %w", e.cfg.FeedsDurable, err)
		}
		infos = append(infos, c.CachedInfo())
	}
	now := time.Now() // NATS's clock, not the engine's (Deps.Now)
	for _, info := range infos {
		if info.AckFloor.Stream >= last || (info.NumPending == 0 && info.NumAckPending == 0) {
			continue
		}
		if info.NumWaiting == 0 && (info.Delivered.Last == nil || now.Sub(*info.Delivered.Last) > abandonedAfter) {
			continue
		}
		return fmt.Sprintf("%s (acked up to %d of %d)", info.Name, info.AckFloor.Stream, last), nil
	}
	return "", nil
}

// start loads the rules and the raised alerts into a fresh evaluator.
func (e *Engine) start(ctx context.Context) error {
	raised, err := e.store.RaisedAlerts(ctx, e.cfg.Province)
	if err != nil {
		return err
	}
	version, err := e.store.RulesVersion(ctx, e.cfg.Province)
	if err != nil {
		return err
	}
	rules, err := e.store.Rules(ctx, e.cfg.Province)
	if err != nil {
		return err
	}
	e.ev = NewEvaluator(e.now)
	e.caughtUp = false
	dups, skipped := e.ev.Restore(raised)
	if len(skipped) > 0 {
		e.log.Warn("alerts of the rules source with foreign identifiers left alone", "identifiers", skipped)
	}
	if len(dups) > 0 {
		byID := make(map[string]alertrule.Rule, len(rules))
		for _, r := range rules {
			byID[r.ID] = r
		}
		for i := range dups {
			if r, ok := byID[dups[i].Rule.ID]; ok {
				dups[i].Rule = r
			}
		}
		e.log.Warn("cancelling alerts raised twice for one rule and entity", "count", len(dups))
	}
	e.version = version
	e.publish(ctx, append(dups, e.ev.SetRules(rules, e.now())...))
	e.inForce.Set(float64(inForce(rules)))
	e.log.Info("rules engine started", "rules", len(rules), "raised", len(raised), "province", e.cfg.Province)
	return nil
}

// consume runs one ordered consumer on STATE until it fails or ctx ends.
func (e *Engine) consume(ctx context.Context, filter string) error {
	cons, err := e.js.OrderedConsumer(ctx, subjects.StreamState, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return fmt.Errorf("creating STATE consumer on %s: %w", filter, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("consuming STATE on %s: %w", filter, err)
	}
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		e.markReady() // STATE holds nothing for us yet
	}
	msgs := make(chan jetstream.Msg, 256)
	failed := make(chan error, 1)
	go func() {
		defer close(msgs)
		for {
			m, err := it.Next(jetstream.NextContext(ctx))
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					failed <- fmt.Errorf("consuming STATE on %s: %w", filter, err)
				}
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() {
		it.Stop()
		for range msgs { // let the reader end
		}
	}()
	tick := time.NewTicker(e.cfg.PollInterval)
	defer tick.Stop()
	var (
		fast     *time.Ticker
		fastLeft int
	)
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-failed:
			return err
		case m, ok := <-msgs:
			if !ok {
				select {
				case err := <-failed:
					return err
				default:
					return nil
				}
			}
			// Evaluate what is waiting, then publish its transitions together.
			out := e.handle(m)
		drain:
			for range cap(msgs) {
				select {
				case m, ok := <-msgs:
					if !ok {
						break drain
					}
					out = append(out, e.handle(m)...)
				default:
					break drain
				}
			}
			e.publish(ctx, out)
		case <-tick.C:
			e.reload(ctx, false)
			e.sweep(ctx)
		case <-e.notify:
			// A change is being committed: poll quickly until it shows.
			if fast == nil {
				fast = time.NewTicker(notifyPoll)
				defer fast.Stop()
			}
			fast.Reset(notifyPoll)
			fastLeft = notifyPolls
		case <-fastC(fast):
			fastLeft--
			if e.reload(ctx, false) || fastLeft <= 0 {
				fast.Stop()
				fastLeft = 0
			}
		}
	}
}

// After Notify the engine polls the rules' version every notifyPoll, at most
// notifyPolls times, until it changes: the action that notifies it has not
// committed yet when it does.
const (
	notifyPoll  = 25 * time.Millisecond
	notifyPolls = 80
)

// fastC is the channel of t, nil (never ready) when there is no ticker.
func fastC(t *time.Ticker) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

// handle evaluates one STATE message.
func (e *Engine) handle(m jetstream.Msg) []Transition {
	// The time the state was stored in STATE, kept when it is redelivered:
	// silence is measured from it.
	received := e.now()
	if meta, err := m.Metadata(); err == nil {
		if !meta.Timestamp.IsZero() {
			received = meta.Timestamp
		}
		if meta.NumPending == 0 {
			defer e.markReady()
		}
	}
	var st iocv1.EntityState
	if err := proto.Unmarshal(m.Data(), &st); err != nil {
		e.errs.WithLabelValues("decode").Inc()
		e.log.Warn("skipping undecodable state", "subject", m.Subject(), "err", err)
		return nil
	}
	e.states.Inc()
	return e.ev.Observe(&st, received)
}

// reload reads the rules again when their version changed (or always when
// forced), and publishes the Cancels left to retry. It reports whether it
// read the rules.
func (e *Engine) reload(ctx context.Context, force bool) bool {
	if len(e.retry) > 0 {
		retry := e.retry
		e.retry = nil
		e.publish(ctx, retry)
	}
	version, err := e.store.RulesVersion(ctx, e.cfg.Province)
	if err != nil {
		if ctx.Err() == nil {
			e.errs.WithLabelValues("load").Inc()
			e.log.Warn("checking the rules' version failed", "err", err)
		}
		return false
	}
	if version == e.version && !force {
		return false
	}
	rules, err := e.store.Rules(ctx, e.cfg.Province)
	if err != nil {
		if ctx.Err() == nil {
			e.errs.WithLabelValues("load").Inc()
			e.log.Warn("loading the rules failed", "err", err)
		}
		return false
	}
	e.version = version
	e.log.Info("rules reloaded", "rules", len(rules))
	e.publish(ctx, e.ev.SetRules(rules, e.now()))
	e.inForce.Set(float64(inForce(rules)))
	return true
}

// sweep cancels the alerts of silent entities, once the last state of every
// entity has been evaluated (before, a restored alert looks silent).
func (e *Engine) sweep(ctx context.Context) {
	if e.caughtUp {
		e.publish(ctx, e.ev.Sweep())
	}
}

func inForce(rs []alertrule.Rule) int {
	n := 0
	for _, r := range rs {
		if r.Enabled {
			n++
		}
	}
	return n
}

// publish sends the alerts of the transitions to FEEDS and waits for
// JetStream to store them. A raise that fails is forgotten (the next state
// that holds raises it again, with the same identifier and Nats-Msg-Id); a
// Cancel that fails is kept and sent again at the next tick.
func (e *Engine) publish(ctx context.Context, ts []Transition) {
	if len(ts) == 0 {
		return
	}
	type sent struct {
		t Transition
		f jetstream.PubAckFuture
	}
	pending := make([]sent, 0, len(ts))
	failed := func(t Transition, err error) {
		e.errs.WithLabelValues("publish").Inc()
		e.log.Error("publishing a rule's alert failed", "action", t.Action.String(), "rule", t.Rule.ID,
			"entity", t.Entity, "identifier", t.Identifier, "err", err)
		if t.Action == Raise {
			e.ev.Unraise(t)
		} else {
			e.retry = append(e.retry, t)
		}
	}
	ids, err := e.msgIDs.Get(ctx)
	if err != nil {
		for _, t := range ts {
			failed(t, err)
		}
		return
	}
	now := e.now()
	for _, t := range ts {
		msg, err := Message(t, now, ids)
		if err != nil {
			// Not retryable: the alert cannot be built from this state.
			e.errs.WithLabelValues("build").Inc()
			e.log.Error("building a rule's alert failed", "rule", t.Rule.ID, "entity", t.Entity, "err", err)
			continue
		}
		f, err := e.js.PublishMsgAsync(msg)
		if err != nil {
			failed(t, fmt.Errorf("publishing %s: %w", msg.Subject, err))
			continue
		}
		pending = append(pending, sent{t, f})
	}
	timeout := time.NewTimer(e.cfg.AckWait)
	defer timeout.Stop()
	for i, p := range pending {
		select {
		case <-p.f.Ok():
			e.alerts.WithLabelValues(p.t.Action.String()).Inc()
			e.log.Info("rule alert published", "action", p.t.Action.String(), "rule", p.t.Rule.ID,
				"entity", p.t.Entity, "identifier", p.t.Identifier)
			continue
		case err := <-p.f.Err():
			failed(p.t, fmt.Errorf("publishing %s: %w", p.f.Msg().Subject, err))
			continue
		case <-ctx.Done():
			// Shutting down: the raises are made again from the states
			// redelivered at the next start (same ids, deduplicated).
			return
		case <-timeout.C:
		}
		for _, q := range pending[i:] {
			failed(q.t, fmt.Errorf("publishing %s: no ack: %w", q.f.Msg().Subject, nats.ErrTimeout))
		}
		return
	}
}

// Message is the FEEDS message of a transition's alert: the subject, the
// CloudEvents headers, Nats-Msg-Id rules/<event id> keyed with ids (an
// edge could otherwise send an item under it first, and FEEDS would drop
// the alert as a duplicate), Iochub-Source and Iochub-Rule, and the
// marshalled ioc.v1.Alert.
func Message(t Transition, receivedAt time.Time, ids *ce.MsgIDKey) (*nats.Msg, error) {
	if t.Province == "" || t.Unit == "" {
		return nil, fmt.Errorf("alert %s has no province or unit: %w", t.Identifier, ErrNotRuleAlert)
	}
	a, err := Alert(t, receivedAt)
	if err != nil {
		return nil, err
	}
	body, err := proto.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("marshalling alert %s: %w", a.GetId(), err)
	}
	h := ce.Event{ID: a.GetId(), Source: ce.SourceURN(t.Province, t.Unit), Type: ce.AlertType,
		Subject: a.GetIdentifier(), Time: t.At}.Header()
	h[jetstream.MsgIDHeader] = []string{ids.ID(ce.MsgID(alertrule.SourceID, a.GetId()))}
	h[ce.HeaderFeedSource] = []string{alertrule.SourceID}
	h[HeaderRule] = []string{t.Rule.ID}
	return &nats.Msg{Subject: subjects.Feed(t.Province, t.Unit, subjects.KindAlert), Header: h, Data: body}, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
