// Package natsx owns iochub's NATS set-up: the embedded server of dev mode and
// tests, connections, and the streams FEEDS, STATE, ACTIONS, DEADLETTER and ROLLUPS.
package natsx

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/flagx"
	"github.com/iochub/iochub/internal/subjects"
)

// ErrNotReady is returned when an embedded server does not accept connections in time.
var ErrNotReady = errors.New("embedded NATS server not ready")

// EmbeddedConfig configures an in-process NATS server with JetStream on disk.
type EmbeddedConfig struct {
	// StoreDir is where JetStream keeps its files; required.
	StoreDir string
	// Host to listen on; empty means 127.0.0.1.
	Host string
	// Port to listen on; 0 means 4222, -1 a random free port.
	Port int
	// ServerName must stay the same across restarts so JetStream finds its state; empty means "iochub".
	ServerName string
	// HubPassword, when set, makes the server require authentication: the
	// user HubUser with this password may do everything (connect with
	// nats.UserInfo or a URL nats://hub:PASSWORD@host:port). Empty means no
	// authentication.
	HubPassword string
	// ReaderPassword, with HubPassword, adds the read-only user ReaderUser
	// (ReaderPermissions) with this password.
	ReaderPassword string
	// Domain is the server's JetStream domain; empty means none (a hub).
	// An edge node has its own (EdgeDomain), so that its JetStream API stays
	// its own across the leaf connection.
	Domain string
	// LeafPort, when not 0, makes the server accept leaf nodes (edges) on
	// Host at this port (-1: a random free port); with HubPassword they log
	// in as HubUser.
	LeafPort int
	// LeafRemotes are the hub URLs (nats-leaf://user:password@host:7422)
	// this server connects to as a leaf node; empty means none.
	LeafRemotes []*url.URL
	// LeafDeny are subjects the leaf connection to LeafRemotes neither
	// exports nor imports (EdgeLeafDeny).
	LeafDeny []string
	// LeafTLS, when set, makes the leaf connection to LeafRemotes require
	// TLS verified with it (RootCAs: the hub's private CA). nil means TLS
	// only when the hub asks for it, verified against the system's roots;
	// a hub that does not ask then gets the password in clear text.
	LeafTLS *tls.Config
	// LeafReconnect is how long a leaf node waits before redialling the
	// hub; 0 means 1s.
	LeafReconnect time.Duration
	// LeafUsers are users of edges (EdgeLeafUser), added to HubUser (and
	// ReaderUser); they need HubPassword.
	LeafUsers []*server.User
	// SyncAlways makes JetStream fsync every write before it acknowledges
	// it. Without it the server syncs every 2 minutes, so a power cut loses
	// what it acknowledged since: a single node whose acknowledgement is
	// answered "accepted" (an edge) needs it.
	SyncAlways bool
	// MaxPayload is the largest message the server takes, headers
	// included; 0 means 8 MiB.
	MaxPayload int32
}

// StartEmbedded starts a NATS server in this process and waits until it accepts connections.
func StartEmbedded(cfg EmbeddedConfig) (*server.Server, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("starting embedded NATS: StoreDir is required")
	}
	opts := &server.Options{
		ServerName: cfg.ServerName,
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		MaxPayload: cmp.Or(cfg.MaxPayload, 8<<20),
		SyncAlways: cfg.SyncAlways,
	}
	if opts.ServerName == "" {
		opts.ServerName = "iochub"
	}
	if cfg.HubPassword != "" {
		opts.Users = append(users(cfg.HubPassword, cfg.ReaderPassword), cfg.LeafUsers...)
	} else if cfg.ReaderPassword != "" || len(cfg.LeafUsers) > 0 {
		return nil, errors.New("starting embedded NATS: a reader password or edge users need a hub password (a server without authentication has no users)")
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		opts.Port = 4222
	}
	opts.JetStreamDomain = cfg.Domain
	if cfg.LeafPort != 0 {
		opts.LeafNode.Host, opts.LeafNode.Port = opts.Host, cfg.LeafPort
		// Edges dial the URL they are given (a proxy, a load balancer): do not
		// tell them this listener's own address to try behind its back.
		opts.LeafNode.NoAdvertise = true
	}
	if len(cfg.LeafRemotes) > 0 {
		opts.LeafNode.ReconnectInterval = cfg.LeafReconnect
		if opts.LeafNode.ReconnectInterval == 0 {
			opts.LeafNode.ReconnectInterval = time.Second
		}
		opts.LeafNode.Remotes = []*server.RemoteLeafOpts{{URLs: cfg.LeafRemotes, DenyImports: cfg.LeafDeny, DenyExports: cfg.LeafDeny,
			TLS: cfg.LeafTLS != nil, TLSConfig: cfg.LeafTLS}}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("starting embedded NATS: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("starting embedded NATS on %s:%d: %w", opts.Host, opts.Port, ErrNotReady)
	}
	return s, nil
}

// HubInboxPrefix is the prefix of the inboxes of the hub's own connections
// (Connect, HubInbox), on which the replies to its requests come: the
// JetStream API's answers, key-value reads (the key of the message ids on
// FEEDS among them, FeedMsgIDKey), dead letters listed. ReaderUser may
// subscribe to "_INBOX.>", the default inboxes, for its own replies: were
// the hub's replies there too, a reader could read every one of them.
const HubInboxPrefix = "_IOCHUB_INBOX"

// HubInbox is the option that gives a connection of the hub its inboxes
// under HubInboxPrefix.
func HubInbox() nats.Option { return nats.CustomInboxPrefix(HubInboxPrefix) }

// Connect dials urls (one URL or several, comma-separated) with reconnects
// that never give up, named for the role, with the hub's inboxes (HubInbox);
// opts add to them (nats.UserInfo for a server requiring authentication).
// Its error names the URLs without their credentials (RedactURLs).
func Connect(urls, name string, opts ...nats.Option) (*nats.Conn, error) {
	nc, err := nats.Connect(urls, append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		HubInbox(),
	}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", RedactURLs(urls), RedactError(err))
	}
	return nc, nil
}

// RedactError redacts the URL of a *url.Error in err's chain (RedactURLs) and
// returns err: nats.Connect answers a URL that does not parse with one,
// password and all.
func RedactError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = RedactURLs(ue.URL)
	}
	return err
}

// RedactURLs is urls, a comma-separated list as Connect takes, with each
// URL's credentials replaced by xxxxx, for logs, errors and --check-config:
// a password, or a user given alone, which NATS takes as a token. The
// iochub command redacts its PostgreSQL URLs with it too (a user alone is
// no secret there, and is hidden all the same).
func RedactURLs(urls string) string {
	list := strings.Split(urls, ",")
	for i, u := range list {
		list[i] = redactURL(u)
	}
	return strings.Join(list, ",")
}

// redactURL redacts one URL of RedactURLs. It does not parse u: a URL that
// does not parse (and so ends up in an error) is redacted too.
func redactURL(u string) string {
	start := 0 // NATS takes host:port without a scheme
	if i := strings.Index(u, "://"); i >= 0 {
		start = i + len("://")
	}
	at := strings.LastIndex(u, "@")
	if at < start {
		return u
	}
	if user, _, ok := strings.Cut(u[start:at], ":"); ok {
		return u[:start] + user + ":xxxxx" + u[at:]
	}
	return u[:start] + "xxxxx" + u[at:]
}

// StreamOptions sizes the streams; zero values take the defaults given per field.
type StreamOptions struct {
	// Replicas per stream; 0 means 1.
	Replicas int
	// FeedsMaxAge is how long FEEDS keeps items for replay; 0 means 7 days.
	FeedsMaxAge time.Duration
	// DuplicateWindow is how long JetStream remembers Nats-Msg-Id; 0 means 1 hour.
	DuplicateWindow time.Duration
	// DeadletterMaxAge is how long DEADLETTER keeps a dead letter nobody
	// redrove or discarded; 0 means 30 days.
	DeadletterMaxAge time.Duration
	// DeadletterMaxBytes bounds DEADLETTER; 0 means 1 GiB. A full DEADLETTER
	// refuses new dead letters (DiscardNew) instead of dropping old ones: the
	// aggregator then keeps the item on FEEDS and retries, counting
	// iochub_aggregator_errors_total{stage="deadletter"}.
	DeadletterMaxBytes int64
	// Memory keeps the streams in memory instead of on disk (benchmarks, tests).
	Memory bool
}

// withDefaults returns o with zero fields set to their defaults.
func (o StreamOptions) withDefaults() StreamOptions {
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.FeedsMaxAge == 0 {
		o.FeedsMaxAge = 7 * 24 * time.Hour
	}
	if o.DuplicateWindow == 0 {
		o.DuplicateWindow = time.Hour
	}
	if o.DeadletterMaxAge == 0 {
		o.DeadletterMaxAge = 30 * 24 * time.Hour
	}
	if o.DeadletterMaxBytes == 0 {
		o.DeadletterMaxBytes = 1 << 30
	}
	return o
}

// Validate reports a negative size or age.
func (o StreamOptions) Validate() error {
	if o.Replicas < 0 || o.FeedsMaxAge < 0 || o.DuplicateWindow < 0 || o.DeadletterMaxAge < 0 || o.DeadletterMaxBytes < 0 {
		return fmt.Errorf("stream options %+v: replicas, ages, window and bytes must not be negative", o)
	}
	return nil
}

// RegisterFlags registers the stream sizes on fs (Memory stays for tests).
func (o *StreamOptions) RegisterFlags(fs *flag.FlagSet) {
	d := StreamOptions{}.withDefaults()
	flagx.Positive(fs, &o.Replicas, "stream-replicas", d.Replicas, "replicas of each JetStream stream (IOCHUB_STREAM_REPLICAS)")
	flagx.Positive(fs, &o.FeedsMaxAge, "feeds-max-age", d.FeedsMaxAge, "how long stream FEEDS keeps accepted items for replay (IOCHUB_FEEDS_MAX_AGE)")
	flagx.Positive(fs, &o.DuplicateWindow, "duplicate-window", d.DuplicateWindow, "how long a repeated message id is recognised and stored once (IOCHUB_DUPLICATE_WINDOW)")
	flagx.Positive(fs, &o.DeadletterMaxAge, "deadletter-max-age", d.DeadletterMaxAge, "how long a dead letter nobody redrove or discarded is kept (IOCHUB_DEADLETTER_MAX_AGE)")
	flagx.Positive(fs, &o.DeadletterMaxBytes, "deadletter-max-bytes", d.DeadletterMaxBytes, "size bound of stream DEADLETTER; when full, items stay on FEEDS and are retried (IOCHUB_DEADLETTER_MAX_BYTES)")
}

// prepared validates o and returns it with its defaults and the storage it asks for.
func (o StreamOptions) prepared() (StreamOptions, jetstream.StorageType, error) {
	if err := o.Validate(); err != nil {
		return o, 0, err
	}
	o = o.withDefaults()
	if o.Memory {
		return o, jetstream.MemoryStorage, nil
	}
	return o, jetstream.FileStorage, nil
}

// EnsureStreams creates or updates FEEDS, STATE, ACTIONS, DEADLETTER and
// ROLLUPS, waiting (untilReady) for a JetStream that is not ready yet. It
// keeps the sources of a stream it updates, and updates under the lock of
// the sources, waiting for it up to startLockWait (updateStreams).
func EnsureStreams(ctx context.Context, js jetstream.JetStream, o StreamOptions) error {
	o, storage, err := o.prepared()
	if err != nil {
		return err
	}
	feeds := jetstream.StreamConfig{
		Name:        subjects.StreamFeeds,
		Description: "Every accepted feed item: ioc.feed.<province>.<unit>.<kind>",
		Subjects:    []string{subjects.FeedsAll},
		Storage:     storage,
		Replicas:    o.Replicas,
		MaxAge:      o.FeedsMaxAge,
		Duplicates:  o.DuplicateWindow,
		Discard:     jetstream.DiscardOld,
	}
	state := jetstream.StreamConfig{
		Name:              subjects.StreamState,
		Description:       "Latest state per entity: ioc.state.<province>.<layer>.<entity>",
		Subjects:          []string{subjects.StateAll},
		Storage:           storage,
		Replicas:          o.Replicas,
		MaxMsgsPerSubject: 1,
		Discard:           jetstream.DiscardOld,
	}
	actions := jetstream.StreamConfig{
		Name:        subjects.StreamActions,
		Description: "Operator actions and configuration changes: ioc.action.<province>.<target kind>.<target>",
		Subjects:    []string{subjects.ActionsAll},
		Storage:     storage,
		Replicas:    o.Replicas,
		MaxAge:      o.FeedsMaxAge,
		Duplicates:  o.DuplicateWindow,
		Discard:     jetstream.DiscardOld,
	}
	deadletter := jetstream.StreamConfig{
		Name:        subjects.StreamDeadletter,
		Description: "Feed items accepted but not stored, with the reason: ioc.deadletter.<province>.<kind>",
		Subjects:    []string{subjects.DeadletterAll},
		Storage:     storage,
		Replicas:    o.Replicas,
		MaxAge:      o.DeadletterMaxAge,
		MaxBytes:    o.DeadletterMaxBytes,
		Duplicates:  o.DuplicateWindow,
		// Never drop a dead letter to make room: a full stream refuses the
		// publish, and the aggregator keeps the item on FEEDS and retries.
		Discard: jetstream.DiscardNew,
	}
	rollups := jetstream.StreamConfig{
		Name:              subjects.StreamRollups,
		Description:       "Last roll-up per unit, layer and window: ioc.rollup.<province>.<unit>.<layer>.<window>",
		Subjects:          []string{subjects.RollupsAll},
		Storage:           storage,
		Replicas:          o.Replicas,
		MaxMsgsPerSubject: 1,
		Discard:           jetstream.DiscardOld,
	}
	// A stream already configured so is not written, and takes no lock:
	// every role's start runs this, and that start stays a read per stream.
	// A missing stream is created; one whose configuration changed (an
	// upgrade, a new flag) is updated under the lock of the sources
	// (updateStreams).
	var stale []jetstream.StreamConfig
	for _, cfg := range []jetstream.StreamConfig{feeds, state, actions, deadletter, rollups} {
		var ok bool
		err := untilReady(ctx, func() (err error) {
			ok, err = createStream(ctx, js, cfg)
			return err
		})
		if err != nil {
			return err
		}
		if !ok {
			stale = append(stale, cfg)
		}
	}
	if len(stale) == 0 {
		return nil
	}
	// A change of replicas makes every stream stale: the lock and key
	// buckets follow them then, and a start with nothing to change asks
	// nothing more.
	for _, b := range []string{BucketLocks, BucketKeys} {
		if err := rescaleBucket(ctx, js, b, o.Replicas); err != nil {
			return err
		}
	}
	return updateStreams(ctx, js, o.Replicas, stale)
}

// createStream creates the stream of cfg when it is missing, and reports
// whether the stream is as cfg wants (configured); false: it has to be
// updated. A new stream has no sources yet, so it needs no lock; one
// created meanwhile (by another hub starting) is left to updateStreams,
// which reads it again under the lock.
func createStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (bool, error) {
	st, err := js.Stream(ctx, cfg.Name)
	if err == nil {
		return configured(cfg, st.CachedInfo().Config), nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return false, fmt.Errorf("reading stream %s: %w", cfg.Name, err)
	}
	// CreateStream, not CreateOrUpdateStream: a stream created since the
	// read above is never written here without its sources.
	_, err = js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("creating stream %s: %w", cfg.Name, err)
	}
	return true, nil
}

// startLockWait bounds how long EnsureStreams waits for the lock of the
// sources before it updates a stream whose configuration changed. An admin
// command holds the lock for a second or so; one that died holding it
// blocks it until the bucket's TTL removes the key, SourcesLockTTL after
// the key was last written. So the wait is SourcesLockTTL and a margin for
// the server's expiry: the start of a hub after an edge-add was killed
// mid-way goes through, at most this much later. A lock still held after
// that is held by a live command renewing it, or the bucket's TTL is not
// SourcesLockTTL (set by hand): the start then fails, naming the holder,
// for the operator or the supervisor's restart to try again. It does not
// go on without the lock: that is the lost edge-add the lock exists to
// prevent, and it would be silent, while a failed start is loud and a
// retry cheap. A start that finds its streams configured takes no lock.
var startLockWait = SourcesLockTTL + 10*time.Second

// updateStreams updates the streams of stale, whose configuration
// EnsureStreams changes, under the lock of the sources: each is read again
// under it and keeps the sources it has then (those an admin added: the
// edges of FEEDS (AddEdgeSource), the province hubs of a national hub's
// ROLLUPS and STATE (AddProvinceSources), or an operator's own), so that
// a restarted hub goes on sourcing and an edge-add made while the hub
// starts is not written away (nats-server has no conditional update). The
// lock bucket, when missing, is created with the streams' replicas.
func updateStreams(ctx context.Context, js jetstream.JetStream, replicas int, stale []jetstream.StreamConfig) error {
	var names []string
	for _, cfg := range stale {
		names = append(names, cfg.Name)
	}
	what := strings.Join(names, ", ")
	lctx, cancel := context.WithTimeout(ctx, startLockWait)
	defer cancel()
	var l *sourcesLease
	err := untilReady(lctx, func() error {
		kv, err := openLocksBucket(lctx, js, replicas)
		if err != nil {
			return err
		}
		l, err = takeSourcesLock(lctx, kv, "iochub updating the configuration of "+what)
		return err
	})
	if err != nil {
		return fmt.Errorf("updating the configuration of %s: %w", what, err)
	}
	defer l.release(ctx)
	for _, cfg := range stale {
		if err := untilReady(ctx, func() error { return updateStream(ctx, js, l, cfg) }); err != nil {
			return err
		}
	}
	return nil
}

// updateStream reads the stream of cfg and, unless it is configured as cfg
// wants (by another hub's start meanwhile), renews the lock l and writes
// cfg with the sources the stream has.
func updateStream(ctx context.Context, js jetstream.JetStream, l *sourcesLease, cfg jetstream.StreamConfig) error {
	st, err := js.Stream(ctx, cfg.Name)
	if err != nil {
		return fmt.Errorf("reading stream %s: %w", cfg.Name, err)
	}
	have := st.CachedInfo().Config
	if configured(cfg, have) {
		return nil
	}
	cfg.Sources = have.Sources
	if err := l.renew(ctx); err != nil {
		return fmt.Errorf("updating stream %s: %w", cfg.Name, err)
	}
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("updating stream %s: %w", cfg.Name, err)
	}
	return nil
}

// configured reports whether have, a stream's configuration as the server
// reports it, already has every setting EnsureStreams gives in want (with
// nats-server's defaults for those want leaves zero: one replica, no
// limit, its own duplicate window); settings want does not name are not
// compared.
func configured(want, have jetstream.StreamConfig) bool {
	unlimited := func(n int64) int64 {
		if n == 0 {
			return -1
		}
		return n
	}
	return want.Name == have.Name && want.Description == have.Description &&
		slices.Equal(want.Subjects, have.Subjects) && want.Storage == have.Storage &&
		max(want.Replicas, 1) == have.Replicas && want.MaxAge == have.MaxAge &&
		unlimited(want.MaxBytes) == have.MaxBytes && unlimited(want.MaxMsgsPerSubject) == have.MaxMsgsPerSubject &&
		(want.Duplicates == 0 || want.Duplicates == have.Duplicates) && want.Discard == have.Discard
}

// readyWait bounds how long untilReady tries again: a cluster electing its
// leaders on a loaded machine answers within seconds, a misconfigured one
// never.
const readyWait = 2 * time.Minute

// untilReady runs f, and again, after a growing pause, while it fails
// because JetStream is not ready yet (transient), for up to readyWait or
// until ctx ends; it returns f's last error.
func untilReady(ctx context.Context, f func() error) error {
	deadline := time.Now().Add(readyWait)
	pause := 100 * time.Millisecond
	for {
		err := f()
		if err == nil || !transient(ctx, err) {
			return err
		}
		if time.Now().Add(pause).After(deadline) {
			return fmt.Errorf("JetStream not ready after %s: %w", readyWait, err)
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		pause = min(2*pause, 2*time.Second)
	}
}

// transient reports whether err, from a JetStream API request made with
// ctx, says that JetStream is not ready yet rather than that the request is
// wrong: the request timed out (ctx itself not done), nothing answered, the
// server answered 503 (JetStream starting, a cluster without a meta leader),
// or a cluster found no peers for the replicas because one it knows is
// offline (a cluster still forming: code 400, err_code 10005, "peer
// offline"); not when JetStream is off for the account.
func transient(ctx context.Context, err error) bool {
	if unanswered(ctx, err) {
		return true
	}
	if ctx.Err() != nil {
		return false
	}
	var api *jetstream.APIError
	if errors.As(err, &api) {
		return api.ErrorCode == errCodeClusterNoPeers && strings.Contains(api.Description, "peer offline")
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
}

// unanswered reports whether a JetStream request made with ctx reached no
// one that could act on it: nothing answered, or the server answered 503
// (JetStream starting, a cluster without a meta leader); not when
// JetStream is off for the account (503 too), nor a timeout, after which
// the request may have been carried out (transient counts those too).
func unanswered(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
		return false
	}
	var api *jetstream.APIError // ErrJetStreamNotEnabled among them
	if errors.As(err, &api) {
		return api.Code == 503
	}
	return errors.Is(err, nats.ErrNoResponders)
}

// errCodeClusterNoPeers is JetStream's err_code for "no suitable peers for
// placement" (nats-server's JSClusterNoPeersErrF).
const errCodeClusterNoPeers jetstream.ErrorCode = 10005
