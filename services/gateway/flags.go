package gateway

import (
	"cmp"
	"flag"
	"strings"

	"github.com/iochub/iochub/internal/flagx"
)

// DefaultMaxLive is the binary's cap on live views across provinces
// (--max-live): twice the 10,000 walls of issue 12's goal, ~300 MB of
// connections idle. Without it, identities of an OIDC provider (each
// subject its own, 20 views each) have no bound together.
const DefaultMaxLive = 20000

// RegisterFlags registers the gateway's settings on fs, with the defaults of
// withDefaults as flag defaults. Browsers may use the gateway from its own
// origin only unless --allowed-origins says otherwise.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := Config{}.withDefaults()
	fs.Var(listFlag{&c.AllowedOrigins}, "allowed-origins", "comma-separated browser origins allowed to use the gateway; empty means the same origin only, * any (IOCHUB_ALLOWED_ORIGINS)")
	flagx.Positive(fs, &c.MaxClientsPerIdentity, "max-live-per-identity", d.MaxClientsPerIdentity, "live views one identity may keep open (IOCHUB_MAX_LIVE_PER_IDENTITY)")
	fs.IntVar(&c.MaxClients, "max-live", cmp.Or(c.MaxClients, DefaultMaxLive), "live views open at once across provinces; more get 503; 0 means no cap (IOCHUB_MAX_LIVE)")
	flagx.Positive(fs, &c.SendQueue, "live-send-queue", d.SendQueue, "entities that may wait to be written to one live view before it is closed as too slow (IOCHUB_LIVE_SEND_QUEUE)")
	flagx.Positive(fs, &c.WriteTimeout, "live-write-timeout", d.WriteTimeout, "longest write of one batch of frames to a live view before it is dropped (IOCHUB_LIVE_WRITE_TIMEOUT)")
	flagx.Positive(fs, &c.PingInterval, "live-ping-interval", d.PingInterval, "how often the gateway pings each live view (IOCHUB_LIVE_PING_INTERVAL)")
	fs.DurationVar(&c.PongWait, "live-pong-wait", c.PongWait, "how long a live view may stay silent before it is closed; 0 means 2.5 × --live-ping-interval (IOCHUB_LIVE_PONG_WAIT)")
	flagx.Positive(fs, &c.SnapshotWait, "snapshot-wait", d.SnapshotWait, "longest wait of a new live view for its province's snapshot (IOCHUB_SNAPSHOT_WAIT)")
	fs.IntVar(&c.ResetAttempts, "live-reset-attempts", c.ResetAttempts, "recreations in a row of a province's STATE consumer before its live views fail; 0 means no limit (IOCHUB_LIVE_RESET_ATTEMPTS)")
	fs.Var(listFlag{&c.Provinces}, "live-provinces", "comma-separated province codes whose live state is loaded at start (IOCHUB_LIVE_PROVINCES)")
	flagx.Positive(fs, &c.FeaturesTimeout, "features-statement-timeout", d.FeaturesTimeout, "statement_timeout of each OGC API – Features query (IOCHUB_FEATURES_STATEMENT_TIMEOUT)")
	flagx.Positive(fs, &c.FeaturesWriteTimeout, "features-write-timeout", d.FeaturesWriteTimeout, "longest writing of one OGC API – Features page, which holds a database connection meanwhile; a slower client gets the page cut (IOCHUB_FEATURES_WRITE_TIMEOUT)")
	flagx.Positive(fs, &c.UnitsTTL, "units-ttl", d.UnitsTTL, "how long /v1/units answers are cached per province (IOCHUB_UNITS_TTL)")
	flagx.Positive(fs, &c.StreamQueue, "stream-queue", d.StreamQueue, "events that may wait to be written to one event stream (/v1/streams) (IOCHUB_STREAM_QUEUE)")
	flagx.Positive(fs, &c.StreamStall, "stream-stall", d.StreamStall, "how long an event stream's queue may stay full before the client is cut as too slow (4004) (IOCHUB_STREAM_STALL)")
	flagx.Positive(fs, &c.StreamFetch, "stream-fetch", d.StreamFetch, "messages each event stream's consumer pulls ahead of its client (IOCHUB_STREAM_FETCH)")
	flagx.NonZero(fs, &c.ReplayRate, "stream-replay-rate", d.ReplayRate, "no limit", "replayed events per second shared by all event streams; negative means no limit (IOCHUB_STREAM_REPLAY_RATE)")
	fs.Float64Var(&c.ReplayRatePerIdentity, "stream-replay-rate-per-identity", c.ReplayRatePerIdentity, "replayed events per second one identity's event streams share, within --stream-replay-rate; 0 means a quarter of it, negative no share of its own (IOCHUB_STREAM_REPLAY_RATE_PER_IDENTITY)")
	flagx.Positive(fs, &c.MaxStreamsPerIdentity, "max-streams-per-identity", d.MaxStreamsPerIdentity, "event streams one identity may keep open (IOCHUB_MAX_STREAMS_PER_IDENTITY)")
	fs.StringVar(&c.Level, "level", d.Level, "the hub's level: province, or national (its streams source province hubs' roll-ups and alerts; docs/edge.md) (IOCHUB_LEVEL)")
	flagx.Positive(fs, &c.ProvinceStaleAfter, "province-stale-after", d.ProvinceStaleAfter, "at the national level, how old a province's newest roll-up may be before the province is shown stale (IOCHUB_PROVINCE_STALE_AFTER)")
	flagx.NonZero(fs, &c.OpenRate, "open-rate-per-identity", d.OpenRate, "no limit", "live views and event streams one identity may open per second, after a burst of --open-burst-per-identity; more get 429; negative means no limit (IOCHUB_OPEN_RATE_PER_IDENTITY)")
	fs.IntVar(&c.OpenBurst, "open-burst-per-identity", c.OpenBurst, "live views and event streams one identity may open at once before --open-rate-per-identity applies; 0 means --max-live-per-identity + --max-streams-per-identity (IOCHUB_OPEN_BURST_PER_IDENTITY)")
	flagx.NonZero(fs, &c.MaxStreams, "max-streams", d.MaxStreams, "no cap", "event streams the gateway keeps open at once across identities; more get 503; negative means no cap (IOCHUB_MAX_STREAMS)")
}

// RegisterFlags registers the operator endpoints' settings on fs.
func (c *OperatorConfig) RegisterFlags(fs *flag.FlagSet) {
	flagx.Positive(fs, &c.PublishTimeout, "action-publish-timeout", defaultActionPublishTimeout, "longest wait for JetStream to store an operator action (IOCHUB_ACTION_PUBLISH_TIMEOUT)")
}

// listFlag is a comma-separated list flag; blanks around items are dropped.
type listFlag struct{ p *[]string }

func (f listFlag) String() string {
	if f.p == nil {
		return ""
	}
	return strings.Join(*f.p, ",")
}

func (f listFlag) Set(s string) error {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	*f.p = out
	return nil
}
