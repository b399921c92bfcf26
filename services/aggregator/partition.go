package aggregator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iochub/iochub/internal/flagx"
	"github.com/iochub/iochub/internal/subjects"
)

// Several aggregators share the feed consumer by province (docs/operations.md,
// "Several aggregators"). Each province is a partition with its own durable
// consumer on FEEDS (ioc.feed.<province>.>); an instance writes a partition
// only while it holds the partition's lease, a key of a NATS KV bucket whose
// TTL (the stream's MaxAge) ends a lease its holder stopped renewing:
//
//	members.<instance>     each instance's heartbeat (Put every LeaseTTL/3)
//	partitions.<province>  the lease of a partition (Create to take it,
//	                       Update with the last revision to renew it,
//	                       Delete with the last revision to release it)
//	singleton              the lease of the aggregator's global work
//
// Each instance aims at ceil(partitions/members) partitions: it releases what
// is above that share and takes free partitions up to it, so a new instance
// gets its share from the others and the partitions of a dead one are taken
// once its leases expired. The lease alone cannot stop a holder that was
// paused past its TTL from writing afterwards, so each partition also has an
// epoch in PostgreSQL (postgis.AcquirePartition) that its holder's write
// transactions check (postgis.WithFence): the new holder bumps it before it
// consumes, and a write of the old one fails with postgis.ErrFenced; its batch
// is naked, redelivered to the new holder and deduplicated by the store. A
// holder that cannot renew a lease stops its partition before the lease can
// expire, so the fence is only the last line.

// PartitionConfig configures the partitioning of the aggregator by province
// across instances. The zero value runs one feed consumer of every province.
type PartitionConfig struct {
	// Enabled shares the provinces with the other instances that have it
	// (each province a partition with its own durable consumer, held under
	// a lease); false consumes every province in this instance alone.
	Enabled bool
	// Instance names this instance among the others (letters, digits, -, _);
	// empty means the host name and a random suffix.
	Instance string
	// LeaseTTL is how long a lease outlives its holder's last renewal, so
	// how long the partitions of a dead instance wait before another takes
	// them; renewals and heartbeats come every LeaseTTL/3. 0 means 15s; at
	// least 3s.
	LeaseTTL time.Duration
	// Bucket is the NATS KV bucket of the leases; empty means
	// "aggregator-leases". Created with Replicas replicas when missing.
	Bucket string
	// Replicas is the replication of the lease bucket when an instance
	// creates it: 3 on a 3-node NATS cluster, so the leases survive a node;
	// 0 means 1. A bucket that exists is used as it is.
	Replicas int
	// Refresh is how often the list of partitions is read again (the
	// provinces valid now in admin_unit, and those with items on FEEDS);
	// 0 means 1m.
	Refresh time.Duration
}

// DefaultLeaseBucket is the KV bucket of a zero PartitionConfig.
const DefaultLeaseBucket = "aggregator-leases"

// MinLeaseTTL is the shortest PartitionConfig.LeaseTTL.
const MinLeaseTTL = 3 * time.Second

func (c PartitionConfig) withDefaults() PartitionConfig {
	if c.Instance == "" {
		c.Instance = defaultInstance()
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 15 * time.Second
	}
	if c.Bucket == "" {
		c.Bucket = DefaultLeaseBucket
	}
	if c.Refresh == 0 {
		c.Refresh = time.Minute
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c PartitionConfig) Validate() error {
	if c.LeaseTTL != 0 && c.LeaseTTL < MinLeaseTTL {
		return fmt.Errorf("%w: partition lease TTL %s is below %s", ErrConfig, c.LeaseTTL, MinLeaseTTL)
	}
	if c.Refresh < 0 {
		return fmt.Errorf("%w: partition refresh %s is negative", ErrConfig, c.Refresh)
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		return fmt.Errorf("%w: lease bucket replicas %d: want 1 to 5 (NATS's bound)", ErrConfig, c.Replicas)
	}
	if c.Instance != "" && strings.Trim(c.Instance, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
		return fmt.Errorf("%w: instance name %q: only letters, digits, - and _", ErrConfig, c.Instance)
	}
	return nil
}

// RegisterFlags registers the partitioning's settings on fs.
func (c *PartitionConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.BoolVar(&c.Enabled, "partitioned", false, "share the provinces with the other aggregators started with it: each province a durable consumer under a lease in NATS KV (IOCHUB_PARTITIONED)")
	fs.StringVar(&c.Instance, "partition-instance", "", "name of this aggregator among the partitioned ones; empty: host name and a random suffix (IOCHUB_PARTITION_INSTANCE)")
	flagx.Positive(fs, &c.LeaseTTL, "partition-lease-ttl", 15*time.Second, "how long a partition's lease outlives its holder: the pause before a dead aggregator's provinces move (IOCHUB_PARTITION_LEASE_TTL)")
	flagx.Positive(fs, &c.Replicas, "partition-lease-replicas", 1, "replicas of the lease bucket when this aggregator creates it: 3 on a 3-node NATS cluster (IOCHUB_PARTITION_LEASE_REPLICAS)")
}

// defaultInstance is the host name (cleaned for a KV key) and a random suffix.
func defaultInstance() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r < 128 && (r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return r
		}
		return '_'
	}, host)
	b := make([]byte, 4)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	if host == "" {
		host = "aggregator"
	}
	return host + "-" + hex.EncodeToString(b)
}

// Keys of the lease bucket.
const (
	memberPrefix    = "members."
	partitionPrefix = "partitions."
	singletonKey    = "singleton"
)

// partitioner runs this instance's share of the partitions and, when it holds
// the singleton lease, the global work (see the comment at the top).
type partitioner struct {
	cfg PartitionConfig
	kv  jetstream.KeyValue
	log *slog.Logger
	m   *partitionMetrics

	// list returns the partitions, sorted.
	list func(ctx context.Context) ([]string, error)
	// epoch bumps the fencing epoch of a partition taken (postgis.AcquirePartition).
	epoch func(ctx context.Context, partition string) (int64, error)
	// run runs a partition held at epoch until ctx ends or it finds itself
	// fenced (then it returns).
	run func(ctx context.Context, partition string, epoch int64) error
	// global runs the singleton work until ctx ends.
	global func(ctx context.Context) error

	parts   []string
	partsAt time.Time
	held    map[string]*lease // by key; only the Run goroutine touches it
	stopped chan *lease       // a lease's work returned
	quit    chan struct{}     // closed when Run returns
	members atomic.Int64
	// cooldown: no partition is taken before it (this instance gave one
	// back to a member below its floor).
	cooldown time.Time
	// beat is when the last heartbeat was stored (unix ns); Ready's clock.
	beat atomic.Int64
}

// lease is a key this instance holds and the work it runs under it.
type lease struct {
	key       string
	partition string // the province ("" is a province token too: "_")
	singleton bool   // the lease of the global work, not of a partition
	rev       uint64
	renewed   time.Time // when the write of rev was sent
	epoch     int64
	cancel    context.CancelFunc
	watchdog  *time.Timer // cancels the work when the lease was not renewed in time
	releasing bool        // its work was told to stop; delete the key once it did
	lost      bool        // the key is no longer ours
}

type partitionMetrics struct {
	held, known, members, singleton prometheus.Gauge
	changes                         *prometheus.CounterVec
}

func newPartitionMetrics(reg prometheus.Registerer) (*partitionMetrics, error) {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "iochub", Subsystem: "aggregator", Name: name, Help: help})
	}
	m := &partitionMetrics{
		held:      g("partitions_held", "Province partitions this aggregator holds the lease of and consumes."),
		known:     g("partitions", "Province partitions there are (provinces valid now and those with items on FEEDS)."),
		members:   g("partition_members", "Partitioned aggregators whose heartbeat this one sees, itself included."),
		singleton: g("singleton_held", "1 when this aggregator holds the singleton lease and runs the global work (actions, sweeps, rules)."),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "iochub", Subsystem: "aggregator", Name: "partition_changes_total",
			Help: "Leases taken (acquired), given back (released), found taken by another (lost) or let go for want of renewal (expired), by change."}, []string{"change"}),
	}
	for _, c := range []string{"acquired", "released", "lost", "expired"} {
		m.changes.WithLabelValues(c)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.held, m.known, m.members, m.singleton, m.changes} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering partition metrics: %w", err)
		}
	}
	return m, nil
}

// openLeaseBucket opens the lease bucket, creating it when missing.
func openLeaseBucket(ctx context.Context, js jetstream.JetStream, cfg PartitionConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if err == nil {
		st, err := kv.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading the lease bucket %s: %w", cfg.Bucket, err)
		}
		if st.TTL() != cfg.LeaseTTL {
			return nil, fmt.Errorf("%w: the lease bucket %s has a TTL of %s, this aggregator %s: give every aggregator the same --partition-lease-ttl",
				ErrConfig, cfg.Bucket, st.TTL(), cfg.LeaseTTL)
		}
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("opening the lease bucket %s: %w", cfg.Bucket, err)
	}
	kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: cfg.Bucket, Description: "iochub aggregators: membership and the leases of the province partitions",
		TTL: cfg.LeaseTTL, History: 1, Storage: jetstream.FileStorage, Replicas: max(cfg.Replicas, 1),
	})
	if errors.Is(err, jetstream.ErrBucketExists) { // another instance created it meanwhile
		return openLeaseBucket(ctx, js, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("creating the lease bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// tick is how often leases are renewed and the share is balanced.
func (p *partitioner) tick() time.Duration { return p.cfg.LeaseTTL / 3 }

// Ready reports whether this instance takes part: its last heartbeat was
// stored within the lease TTL (an instance holding no partition, because
// there are more instances than partitions, is ready).
func (p *partitioner) Ready(context.Context) error {
	b := p.beat.Load()
	if b == 0 {
		return errors.New("no heartbeat stored in the lease bucket yet")
	}
	if age := time.Since(time.Unix(0, b)); age > p.cfg.LeaseTTL {
		return fmt.Errorf("last heartbeat stored %s ago (lease TTL %s): the partitions' leases cannot be renewed", age.Round(time.Millisecond), p.cfg.LeaseTTL)
	}
	return nil
}

// Run holds this instance's share until ctx ends, then stops the work of
// every lease and releases them.
func (p *partitioner) Run(ctx context.Context) error {
	p.held = map[string]*lease{}
	p.stopped = make(chan *lease, 16)
	p.quit = make(chan struct{})
	defer close(p.quit) // a work that returns after Run gave up waiting for it does not block
	p.log.Info("partitioned aggregator starting", "instance", p.cfg.Instance, "lease_ttl", p.cfg.LeaseTTL, "bucket", p.cfg.Bucket)
	runCtx, cancelAll := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelAll()
	t := time.NewTicker(p.tick())
	defer t.Stop()
	p.round(ctx, runCtx)
	for {
		select {
		case <-ctx.Done():
			p.shutdown()
			return nil
		case l := <-p.stopped:
			p.ended(ctx, l)
		case <-t.C:
			p.round(ctx, runCtx)
		}
	}
}

// round renews the leases, stores the heartbeat and balances the share.
func (p *partitioner) round(ctx, runCtx context.Context) {
	p.renew(ctx)
	if ctx.Err() != nil {
		return
	}
	if _, err := p.kv.Put(ctx, memberPrefix+p.cfg.Instance, []byte(strconv.Itoa(len(p.heldPartitions())))); err != nil {
		p.log.Warn("storing the heartbeat failed", "err", err)
		return // taking more while unseen would only be undone
	}
	p.beat.Store(time.Now().UnixNano())
	p.balance(ctx, runCtx)
}

// renew renews every lease held. A lease whose key changed is lost at once;
// one that is not renewed for TTL − TTL/3 has its work stopped by its
// watchdog (take), before another may take it.
func (p *partitioner) renew(ctx context.Context) {
	for _, l := range p.sortedLeases() {
		if l.lost {
			continue
		}
		sent := time.Now()
		rev, err := p.kv.Update(ctx, l.key, []byte(p.cfg.Instance), l.rev)
		switch {
		case err == nil:
			l.rev, l.renewed = rev, sent
			if l.watchdog.Stop() { // else it fired: the work is stopping
				l.watchdog.Reset(p.cfg.LeaseTTL - p.tick() - time.Since(sent))
			}
		case ctx.Err() != nil:
			return
		case errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyNotFound):
			p.log.Warn("lease lost: another aggregator holds it", "key", l.key)
			p.m.changes.WithLabelValues("lost").Inc()
			p.stop(l, true)
		default: // the watchdog stops the work if this lasts
			p.log.Warn("renewing a lease failed; retrying", "key", l.key, "err", err)
		}
	}
}

// balance releases the partitions above this instance's share and takes
// free ones up to it, then the singleton if nobody holds it.
func (p *partitioner) balance(ctx, runCtx context.Context) {
	if p.parts == nil || time.Since(p.partsAt) >= p.cfg.Refresh {
		parts, err := p.list(ctx)
		if err != nil {
			p.log.Warn("listing the partitions failed; keeping the last list", "err", err)
		} else {
			p.parts, p.partsAt = parts, time.Now()
		}
	}
	members, err := p.memberCounts(ctx)
	if err != nil {
		p.log.Warn("listing the members failed", "err", err)
		return
	}
	members[p.cfg.Instance] = len(p.heldPartitions())
	p.members.Store(int64(len(members)))
	// Each holds floor or ceil of partitions/members: above ceil it gives
	// back at once; above floor while another is below it, one per round.
	floor := len(p.parts) / len(members)
	share := (len(p.parts) + len(members) - 1) / len(members)
	starving := false
	for who, n := range members {
		starving = starving || who != p.cfg.Instance && n < floor
	}

	var mine []*lease
	for _, l := range p.sortedLeases() {
		if l.singleton || l.releasing {
			continue
		}
		if !slices.Contains(p.parts, l.partition) {
			p.log.Info("releasing a partition no longer listed", "partition", l.partition)
			p.stop(l, false)
			continue
		}
		mine = append(mine, l)
	}
	keep := share
	if starving && len(mine) > floor && len(p.heldOrTaken(ctx)) == len(p.parts) {
		// Everything is leased and another has less than its floor: give
		// one back, and leave the free ones to it for a while.
		keep = len(mine) - 1
		p.cooldown = time.Now().Add(2 * p.tick())
	}
	for len(mine) > keep { // give back the last ones: the others take them
		l := mine[len(mine)-1]
		mine = mine[:len(mine)-1]
		p.log.Info("releasing a partition above this instance's share", "partition", l.partition, "share", share, "members", len(members))
		p.stop(l, false)
	}
	if n := share - len(mine); n > 0 && len(p.parts) > 0 && time.Now().After(p.cooldown) {
		taken := p.heldOrTaken(ctx)
		if taken != nil {
			// Start at a place of this instance's own, so that instances
			// taking at the same time seldom race for the same keys.
			h := fnv.New32a()
			_, _ = h.Write([]byte(p.cfg.Instance))
			start := int(h.Sum32() % uint32(len(p.parts))) //nolint:gosec // len > 0, and small
			for i := 0; i < len(p.parts) && n > 0 && ctx.Err() == nil; i++ {
				part := p.parts[(start+i)%len(p.parts)]
				if slices.Contains(taken, subjects.Token(part)) || p.held[partitionPrefix+subjects.Token(part)] != nil {
					continue
				}
				if p.take(ctx, runCtx, part, false) {
					n--
				}
				p.renewDue(ctx)
			}
		}
	}
	if p.held[singletonKey] == nil && ctx.Err() == nil {
		p.take(ctx, runCtx, "", true)
	}
	p.gauges()
}

// renewDue renews the leases when a tick has passed since the oldest renewal
// (balancing may take a while: each take waits for the database).
func (p *partitioner) renewDue(ctx context.Context) {
	for _, l := range p.held {
		if !l.lost && time.Since(l.renewed) >= p.tick() {
			p.renew(ctx)
			return
		}
	}
}

// take tries to take the lease of partition part (or, singleton, of the
// global work) and starts its work.
func (p *partitioner) take(ctx, runCtx context.Context, part string, singleton bool) bool {
	key := singletonKey
	if !singleton {
		key = partitionPrefix + subjects.Token(part)
	}
	sent := time.Now()
	rev, err := p.kv.Create(ctx, key, []byte(p.cfg.Instance))
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) && ctx.Err() == nil {
			p.log.Warn("taking a lease failed", "key", key, "err", err)
		}
		return false
	}
	l := &lease{key: key, partition: part, singleton: singleton, rev: rev, renewed: sent}
	if !singleton {
		// Bounded below the lease's life: the previous holder's last
		// transactions end first; an old holder stuck in one keeps the
		// partition from moving until the next round.
		ectx, cancel := context.WithTimeout(ctx, p.tick())
		l.epoch, err = p.epoch(ectx, part)
		cancel()
		if err != nil {
			p.log.Warn("bumping a partition's epoch failed; giving the lease back", "partition", part, "err", err)
			if err := p.kv.Delete(ctx, key, jetstream.LastRevision(rev)); err != nil && ctx.Err() == nil {
				p.log.Warn("giving a lease back failed; it expires", "key", key, "err", err)
			}
			return false
		}
	}
	wctx, cancel := context.WithCancel(runCtx)
	l.cancel = cancel
	// Stops the work when the lease was not renewed for TTL − TTL/3, even
	// if this goroutine is stuck in a slow call: before the lease can expire.
	l.watchdog = time.AfterFunc(p.cfg.LeaseTTL-p.tick()-time.Since(sent), func() {
		p.log.Error("lease not renewed in time; its work stops before it expires", "key", key)
		p.m.changes.WithLabelValues("expired").Inc()
		cancel()
	})
	p.held[key] = l
	p.m.changes.WithLabelValues("acquired").Inc()
	p.log.Info("lease taken", "key", key, "epoch", l.epoch)
	go func() {
		var err error
		if singleton {
			err = p.global(wctx)
		} else {
			err = p.run(wctx, part, l.epoch)
		}
		if err != nil && wctx.Err() == nil {
			p.log.Error("the work of a lease failed; giving the lease back", "key", key, "err", err)
		}
		select {
		case p.stopped <- l:
		case <-p.quit:
		}
	}()
	p.gauges()
	return true
}

// stop tells the work of l to stop; ended releases the key once it did
// (unless lost).
func (p *partitioner) stop(l *lease, lost bool) {
	l.lost = l.lost || lost
	l.releasing = true
	l.cancel()
	p.gauges()
}

// ended deletes the key of l, whose work returned, unless it was lost.
func (p *partitioner) ended(ctx context.Context, l *lease) {
	l.watchdog.Stop()
	delete(p.held, l.key)
	if !l.lost {
		if err := p.kv.Delete(ctx, l.key, jetstream.LastRevision(l.rev)); err != nil && ctx.Err() == nil {
			p.log.Warn("releasing a lease failed; it expires", "key", l.key, "err", err)
		} else if err == nil {
			p.m.changes.WithLabelValues("released").Inc()
			p.log.Info("lease released", "key", l.key)
		}
	}
	p.gauges()
}

// shutdown stops every lease's work, waits for it (renewing meanwhile) and
// releases the keys, so that the others take the partitions at once.
func (p *partitioner) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*p.cfg.LeaseTTL)
	defer cancel()
	for _, l := range p.held {
		p.stop(l, false)
	}
	t := time.NewTicker(p.tick())
	defer t.Stop()
	for len(p.held) > 0 {
		select {
		case l := <-p.stopped:
			p.ended(ctx, l)
		case <-t.C:
			p.renew(ctx)
		case <-ctx.Done():
			p.log.Error("partitions did not stop in time; their leases expire", "left", len(p.held))
			return
		}
	}
	if err := p.kv.Delete(ctx, memberPrefix+p.cfg.Instance); err != nil {
		p.log.Warn("removing the heartbeat failed; it expires", "err", err)
	}
	p.log.Info("partitioned aggregator stopped", "instance", p.cfg.Instance)
}

// heldOrTaken lists the partitions leased (by the token of their key), or
// nil when the bucket cannot be read.
func (p *partitioner) heldOrTaken(ctx context.Context) []string {
	taken, err := p.keys(ctx, partitionPrefix)
	if err != nil {
		p.log.Warn("listing the leases failed", "err", err)
		return nil
	}
	if taken == nil {
		taken = []string{}
	}
	return taken
}

// memberCounts reads the heartbeats: the partitions each member holds, by member.
func (p *partitioner) memberCounts(ctx context.Context) (map[string]int, error) {
	names, err := p.keys(ctx, memberPrefix)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(names))
	for _, name := range names {
		e, err := p.kv.Get(ctx, memberPrefix+name)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // expired meanwhile
		}
		if err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(string(e.Value()))
		if err != nil {
			n = 0 // an unknown value counts as holding nothing
		}
		out[name] = n
	}
	return out, nil
}

// keys lists the keys under prefix, without it, sorted.
func (p *partitioner) keys(ctx context.Context, prefix string) ([]string, error) {
	kl, err := p.kv.ListKeysFiltered(ctx, prefix+">")
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for k := range kl.Keys() { // closed once every key was listed
		out = append(out, strings.TrimPrefix(k, prefix))
	}
	slices.Sort(out)
	return out, nil
}

// sortedLeases returns the leases held, by key.
func (p *partitioner) sortedLeases() []*lease {
	out := make([]*lease, 0, len(p.held))
	for _, l := range p.held {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b *lease) int { return strings.Compare(a.key, b.key) })
	return out
}

// heldPartitions lists the partitions whose work runs and is not stopping.
func (p *partitioner) heldPartitions() []string {
	var out []string
	for _, l := range p.sortedLeases() {
		if !l.singleton && !l.releasing {
			out = append(out, l.partition)
		}
	}
	return out
}

func (p *partitioner) gauges() {
	p.m.held.Set(float64(len(p.heldPartitions())))
	p.m.known.Set(float64(len(p.parts)))
	p.m.members.Set(float64(p.members.Load()))
	single := 0.0
	if l := p.held[singletonKey]; l != nil && !l.releasing {
		single = 1
	}
	p.m.singleton.Set(single)
}

// feedProvinces lists the provinces that have items on FEEDS (the third
// token of their subjects).
func feedProvinces(ctx context.Context, js jetstream.JetStream) ([]string, error) {
	st, err := js.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", subjects.StreamFeeds, err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subjects.FeedsAll))
	if err != nil {
		return nil, fmt.Errorf("listing the subjects of %s: %w", subjects.StreamFeeds, err)
	}
	seen := map[string]bool{}
	for subj := range info.State.Subjects {
		if prov, _, _, err := subjects.ParseFeed(subj); err == nil {
			seen[prov] = true
		}
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	return out, nil
}
