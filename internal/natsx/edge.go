package natsx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/subjects"
)

// Edge nodes (docs/edge.md): a lower-level IOC runs an embedded NATS server
// that is a leaf node of the hub with its own JetStream domain, EdgeDomain(unit),
// and keeps the items it accepts in its own stream FEEDS. The hub's FEEDS
// lists that stream among its sources (StreamConfig.Sources with External
// APIPrefix $JS.<domain>.API), so JetStream itself copies what the edge
// accepted, in the edge's order, resuming where it stopped after a cut.

// ErrEdgeUnit is returned for a unit code that cannot name a JetStream domain.
var ErrEdgeUnit = errors.New("unit code cannot name an edge domain (letters, digits, '-' and '_' only)")

// ErrHubWindow is returned when the hub's FEEDS remembers message ids for a
// shorter time than an edge's catch-up needs (MinHubDuplicateWindow).
var ErrHubWindow = errors.New("the hub's FEEDS duplicate window is too short for edge sourcing")

// edgeUnitRE is what a unit code must look like to name a domain: a domain
// becomes a subject token ($JS.<domain>.API), so no dots, wildcards or spaces.
var edgeUnitRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// EdgeDomain is the JetStream domain of the edge node of unit, e.g.
// "edge-00070"; it fails with ErrEdgeUnit for a code that cannot name one.
func EdgeDomain(unit string) (string, error) {
	if !edgeUnitRE.MatchString(unit) {
		return "", fmt.Errorf("unit %q: %w", unit, ErrEdgeUnit)
	}
	return "edge-" + unit, nil
}

// EdgeServerName is the persistent server name of the edge node of unit:
// JetStream finds its state under it after a restart, and the hub tells
// leaf nodes apart by it.
func EdgeServerName(unit string) string { return "iochub-edge-" + unit }

// EdgeAPIPrefix is the JetStream API prefix that reaches domain from the hub
// across the leaf connection.
func EdgeAPIPrefix(domain string) string { return "$JS." + domain + ".API" }

// EdgeLeafDeny are the subjects a leaf connection of an edge neither exports
// nor imports: the edge's ingest publishes items on ioc.feed.> to its own
// stream, and only sourcing may bring them to the hub (never a core publish
// reaching the hub's FEEDS directly, which would store an item twice and
// answer the edge's publisher from the hub).
var EdgeLeafDeny = []string{subjects.FeedsAll, subjects.ActionsAll}

// MinHubDuplicateWindow is the shortest duplicate window of the hub's FEEDS
// that AddEdgeSource accepts. JetStream deduplicates a sourced item on its
// arrival at the hub against the ids that arrived within the window; within
// sourcing a repeat arrives seconds after the first copy (a source consumer
// recreated after a reconnect or a leader change), and the aggregator's
// unique (source, event id) is the last guard beyond the window. Two
// minutes is ample for the first and small enough for any hub.
const MinHubDuplicateWindow = 2 * time.Minute

// EdgeStreamOptions sizes an edge's own FEEDS; zero values take the defaults given per field.
type EdgeStreamOptions struct {
	// Retain is the link-loss budget: how long the edge keeps an accepted
	// item for the hub to source; 0 means 7 days. An item the hub has not
	// sourced within Retain is lost (docs/edge.md).
	Retain time.Duration
	// MaxBytes bounds the stream on the edge's disk; 0 means 8 GiB. A full
	// stream refuses new items (DiscardNew: the edge answers them failed, and
	// the sender retries) rather than drop accepted ones.
	MaxBytes int64
	// DuplicateWindow is how long the edge recognises a repeated message id; 0 means 1 hour.
	DuplicateWindow time.Duration
	// Memory keeps the stream in memory (benchmarks).
	Memory bool
}

func (o EdgeStreamOptions) withDefaults() EdgeStreamOptions {
	if o.Retain == 0 {
		o.Retain = 7 * 24 * time.Hour
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = 8 << 30
	}
	if o.DuplicateWindow == 0 {
		o.DuplicateWindow = time.Hour
	}
	return o
}

// Validate reports a negative size or age.
func (o EdgeStreamOptions) Validate() error {
	if o.Retain < 0 || o.MaxBytes < 0 || o.DuplicateWindow < 0 {
		return fmt.Errorf("edge stream options %+v: retain, bytes and window must not be negative", o)
	}
	return nil
}

// EdgeStreamConfig is the configuration of an edge's own FEEDS.
func EdgeStreamConfig(o EdgeStreamOptions) (jetstream.StreamConfig, error) {
	if err := o.Validate(); err != nil {
		return jetstream.StreamConfig{}, err
	}
	o = o.withDefaults()
	storage := jetstream.FileStorage
	if o.Memory {
		storage = jetstream.MemoryStorage
	}
	return jetstream.StreamConfig{
		Name:        subjects.StreamFeeds,
		Description: "Feed items accepted by this edge node, sourced by the hub's FEEDS: ioc.feed.<province>.<unit>.<kind>",
		Subjects:    []string{subjects.FeedsAll},
		Storage:     storage,
		Replicas:    1,
		MaxAge:      o.Retain,
		MaxBytes:    o.MaxBytes,
		Duplicates:  o.DuplicateWindow,
		Discard:     jetstream.DiscardNew,
	}, nil
}

// EnsureEdgeStream creates or updates an edge's own FEEDS on js (the edge's
// server, in its domain).
func EnsureEdgeStream(ctx context.Context, js jetstream.JetStream, o EdgeStreamOptions) error {
	cfg, err := EdgeStreamConfig(o)
	if err != nil {
		return err
	}
	if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("creating edge stream %s: %w", cfg.Name, err)
	}
	return nil
}

// EdgeDeliverPrefix is the prefix of the subjects on which the edge of
// domain delivers its items to the hub's sourcing consumer: one per edge, so
// that an edge's user may publish on its own deliveries only (EdgeLeafUser),
// never on another edge's.
func EdgeDeliverPrefix(domain string) string { return "iochub.edge." + domain + ".deliver" }

// ErrEdgeFilters is returned for an edge source without subject filters, or
// with one that is not a feed filter of a province or unit.
var ErrEdgeFilters = errors.New("an edge is sourced through the feed filters of its province or units only")

// edgeSource is the source of the hub's FEEDS that copies the items of
// domain's FEEDS on filters (edge.SubjectFilters), from sequence start: 1
// for a new edge, since without a start nats-server starts a new source of a
// stream whose first sequence is past 1 (every hub FEEDS once its max age
// removed an item) at the time of the stream's last message, and every item
// the edge stored before it was skipped.
func edgeSource(domain string, filters []string, start uint64) *jetstream.StreamSource {
	s := &jetstream.StreamSource{
		Name:        subjects.StreamFeeds,
		OptStartSeq: start,
		External:    &jetstream.ExternalStream{APIPrefix: EdgeAPIPrefix(domain), DeliverPrefix: EdgeDeliverPrefix(domain)},
	}
	if len(filters) == 1 {
		s.FilterSubject = filters[0]
		return s
	}
	for _, f := range filters {
		s.SubjectTransforms = append(s.SubjectTransforms, jetstream.SubjectTransformConfig{Source: f})
	}
	return s
}

// sourceFilters are the subject filters of s, sorted; none for a source of
// the whole stream.
func sourceFilters(filter string, transforms []jetstream.SubjectTransformConfig) []string {
	var out []string
	if filter != "" {
		out = append(out, filter)
	}
	for _, t := range transforms {
		out = append(out, t.Source)
	}
	slices.Sort(out)
	return out
}

// isEdgeSource reports whether s is the source of domain's FEEDS.
func isEdgeSource(s *jetstream.StreamSource, domain string) bool {
	return s != nil && s.Name == subjects.StreamFeeds && s.External != nil && s.External.APIPrefix == EdgeAPIPrefix(domain)
}

// EdgeAdded says what AddEdgeSource changed.
type EdgeAdded int

const (
	// EdgeUnchanged: the edge was sourced already, through the same filters.
	EdgeUnchanged EdgeAdded = iota
	// EdgeNew: the hub's FEEDS sources the edge from its first item.
	EdgeNew
	// EdgeRefiltered: the edge was sourced through other filters (or none,
	// before filters were set); it now is through the new ones, from the
	// item after the last one copied.
	EdgeRefiltered
)

// AddEdgeSource makes the hub's FEEDS (on js) source the FEEDS of the edge
// of domain through filters (edge.SubjectFilters: the feed filters of the
// edge's province or units, never the whole stream). An edge sourced
// already through the same filters is left as it is; one sourced through
// others is sourced through the new ones from the item after the last one
// the hub copied (StreamSourceInfo.Seq): a source with new filters is a new
// source to nats-server, which would otherwise start it from the edge's
// first item. It refuses with ErrHubWindow when the hub's duplicate window
// is below MinHubDuplicateWindow, and with ErrEdgeFilters for no filter or
// one not of a province or unit.
func AddEdgeSource(ctx context.Context, js jetstream.JetStream, domain string, filters []string) (EdgeAdded, error) {
	if len(filters) == 0 {
		return EdgeUnchanged, fmt.Errorf("edge %s: no subject filter: %w", domain, ErrEdgeFilters)
	}
	for _, f := range filters {
		if _, _, ok := subjects.ParseFeedFilter(f); !ok {
			return EdgeUnchanged, fmt.Errorf("edge %s: filter %q: %w", domain, f, ErrEdgeFilters)
		}
	}
	filters = slices.Sorted(slices.Values(filters))
	filters = slices.Compact(filters)
	added := EdgeUnchanged
	err := changeSourcesLocked(ctx, js, subjects.StreamFeeds, "adding edge "+domain+" to", func(st jetstream.Stream, cfg *jetstream.StreamConfig) (bool, error) {
		if cfg.Duplicates < MinHubDuplicateWindow {
			return false, fmt.Errorf("%s duplicate window %s < %s (raise --duplicate-window of iochub serve): %w",
				subjects.StreamFeeds, cfg.Duplicates, MinHubDuplicateWindow, ErrHubWindow)
		}
		i := slices.IndexFunc(cfg.Sources, func(s *jetstream.StreamSource) bool { return isEdgeSource(s, domain) })
		if i < 0 {
			cfg.Sources = append(cfg.Sources, edgeSource(domain, filters, 1))
			added = EdgeNew
			return true, nil
		}
		old := cfg.Sources[i]
		if slices.Equal(sourceFilters(old.FilterSubject, old.SubjectTransforms), filters) {
			return false, nil
		}
		start := old.OptStartSeq
		for _, si := range st.CachedInfo().Sources {
			if si != nil && si.External != nil && si.External.APIPrefix == EdgeAPIPrefix(domain) && si.Seq > 0 {
				start = si.Seq + 1
			}
		}
		cfg.Sources[i] = edgeSource(domain, filters, max(start, 1))
		added = EdgeRefiltered
		return true, nil
	})
	if err != nil {
		return EdgeUnchanged, err
	}
	return added, nil
}

// RemoveEdgeSource stops the hub's FEEDS sourcing the edge of domain; what
// was sourced stays. Removing one not there changes nothing.
func RemoveEdgeSource(ctx context.Context, js jetstream.JetStream, domain string) error {
	return changeSourcesLocked(ctx, js, subjects.StreamFeeds, "removing edge "+domain+" from", deleteSources(func(s *jetstream.StreamSource) bool {
		return isEdgeSource(s, domain)
	}))
}

// sourceChange edits the config of a stream, read from the server with the
// stream (st), and reports whether it changed anything (false: the change
// is in place already). It must be idempotent: changeSources runs it again
// on the config read back after its write, to check the write kept.
type sourceChange func(st jetstream.Stream, cfg *jetstream.StreamConfig) (bool, error)

// changeSourcesLocked is changeSources under the lock of the sources
// (withSourcesLock), for a caller that changes one stream.
func changeSourcesLocked(ctx context.Context, js jetstream.JetStream, stream, what string, change sourceChange) error {
	return withSourcesLock(ctx, js, stream, what+" "+stream, func(l *sourcesLease) error {
		return changeSources(ctx, js, l, stream, what, change)
	})
}

// sourceWrites bounds how many times changeSources writes a stream whose
// change does not keep.
const sourceWrites = 3

// changeSources reads the config of stream, lets change edit it and, when
// it did, renews the lock l and updates the stream; what names the change
// in an error ("adding edge X to"). The caller holds l, so no other admin
// command writes the stream between the read and the write; the config is
// then read back and change run on it again, and written again while it
// still changes something: a writer that takes no lock (an older iochub's
// admin command or start) may have written the old sources back meanwhile.
func changeSources(ctx context.Context, js jetstream.JetStream, l *sourcesLease, stream, what string, change sourceChange) error {
	for writes := 0; ; writes++ {
		st, err := js.Stream(ctx, stream)
		if err != nil {
			return fmt.Errorf("reading stream %s: %w", stream, err)
		}
		cfg := st.CachedInfo().Config
		changed, err := change(st, &cfg)
		if err != nil || !changed {
			return err
		}
		if writes == sourceWrites {
			return fmt.Errorf("%s the sources of %s: another writer wrote them back each of %d times", what, stream, writes)
		}
		if err := l.renew(ctx); err != nil {
			return fmt.Errorf("%s the sources of %s: %w", what, stream, err)
		}
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("%s the sources of %s: %w", what, stream, err)
		}
	}
}

// deleteSources is a change of changeSources that deletes the sources
// match selects.
func deleteSources(match func(*jetstream.StreamSource) bool) sourceChange {
	return func(_ jetstream.Stream, cfg *jetstream.StreamConfig) (bool, error) {
		n := len(cfg.Sources)
		cfg.Sources = slices.DeleteFunc(cfg.Sources, match)
		return len(cfg.Sources) != n, nil
	}
}

// sourceInfos are the sources of stream with their state, as the stream's
// info (one request) gives them.
func sourceInfos(ctx context.Context, js jetstream.JetStream, stream string) ([]*jetstream.StreamSourceInfo, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("reading stream %s: %w", stream, err)
	}
	return st.CachedInfo().Sources, nil
}

// sourceState is the state of one source of a stream sourced from domain.
func sourceState(domain string, s *jetstream.StreamSourceInfo) EdgeSourceState {
	e := EdgeSourceState{Domain: domain, Lag: s.Lag, Active: s.Active, Seq: s.Seq, Filters: sourceFilters(s.FilterSubject, s.SubjectTransforms)}
	if s.Error != nil {
		e.Error = s.Error.Error()
	}
	return e
}

// EdgeSourceState is what the hub knows of one edge it sources.
type EdgeSourceState struct {
	// Domain of the edge.
	Domain string
	// Lag is how many of the edge's items the hub has yet to copy, as last
	// reported; Active how long ago it last heard from the edge (-1: never
	// since the hub's stream started).
	Lag    uint64
	Active time.Duration
	// Seq is the last sequence of the edge's FEEDS the hub copied.
	Seq uint64
	// Error is the last sourcing error, if any.
	Error string
	// Filters are the subject filters the hub sources the edge through;
	// none for an edge added before filters were (the whole of its FEEDS).
	Filters []string
}

// EdgeSources lists the edges the hub's FEEDS sources, with their state.
func EdgeSources(ctx context.Context, js jetstream.JetStream) ([]EdgeSourceState, error) {
	infos, err := sourceInfos(ctx, js, subjects.StreamFeeds)
	if err != nil {
		return nil, err
	}
	var out []EdgeSourceState
	for _, s := range infos {
		if s == nil || s.External == nil || s.Name != subjects.StreamFeeds {
			continue
		}
		if dom, ok := edgeDomainOf(s.External.APIPrefix); ok {
			out = append(out, sourceState(dom, s))
		}
	}
	return out, nil
}

// edgeDomainOf is the domain of an API prefix $JS.<domain>.API.
func edgeDomainOf(prefix string) (string, bool) {
	const head, tail = "$JS.", ".API"
	if len(prefix) <= len(head)+len(tail) || prefix[:len(head)] != head || prefix[len(prefix)-len(tail):] != tail {
		return "", false
	}
	return prefix[len(head) : len(prefix)-len(tail)], true
}

// LeafURL is the URL edges dial to reach s as a leaf node (nats-leaf://host:port),
// or "" when s accepts no leaf nodes.
func LeafURL(s *server.Server) string {
	v, err := s.Varz(nil)
	if err != nil || v.LeafNode.Port == 0 {
		return ""
	}
	return "nats-leaf://" + net.JoinHostPort(v.LeafNode.Host, strconv.Itoa(v.LeafNode.Port))
}

// EdgeReplyInbox is the inbox prefix (nats.CustomInboxPrefix) of a hub
// connection that makes JetStream API requests of the edge of domain
// itself, as iochub edge-list reads the edge's record of lost items: the
// edge's leaf user (EdgeLeafUser) may send the hub no replies but those
// under $JSC.R, the prefix of the replies to the hub's own requests. The
// domain in it follows nats-server's scoped reply format ($JSC.R.<domain>.…,
// feature flag js_api_reply_v2), so that a leaf user narrowed to its
// domain's replies would still answer. It isolates nothing today: every
// edge's leaf user may publish on all of $JSC.R.>, so an edge that learns
// another's reply subject could answer for it.
func EdgeReplyInbox(domain string) string { return "$JSC.R." + domain + ".iochub" }

// EdgeUser is the user the edge of unit logs in as on the hub's leaf-node
// listener: "edge-<unit>".
func EdgeUser(unit string) string { return "edge-" + unit }

// EdgeLeafUser is the hub's user for the leaf connection of the edge of
// domain, with password: it may connect only as a leaf node, and only the
// traffic of the hub sourcing the edge's FEEDS crosses the connection. For
// a leaf connection, what the user may publish is what the edge may send to
// the hub: the replies to the hub's JetStream API requests ($JSC.R.>) and
// the deliveries and heartbeats of its sourcing consumer (EdgeDeliverPrefix); what it
// may subscribe to is what the hub may send to the edge: JetStream API
// requests of the edge's domain and flow-control replies ($JS.FC.>). So a
// compromised edge can neither publish on the hub's subjects nor reach the
// hub's JetStream API.
func EdgeLeafUser(domain, password string) *server.User {
	// The user is EdgeUser of the edge's unit: the domain is "edge-<unit>".
	return sourcedLeafUser(domain, password, EdgeDeliverPrefix(domain))
}

// sourcedLeafUser is the user, named domain, of a leaf node whose streams
// the server sources through deliverPrefix (an edge, a province hub under
// the national hub): leaf connections only, carrying only that sourcing.
func sourcedLeafUser(domain, password, deliverPrefix string) *server.User {
	return &server.User{
		Username: domain,
		Password: password,
		Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{"$JSC.R.>", deliverPrefix + ".>"}},
			Subscribe: &server.SubjectPermission{Allow: []string{EdgeAPIPrefix(domain) + ".>", "$JS.FC.>"}},
		},
		AllowedConnectionTypes: map[string]struct{}{"LEAFNODE": {}}, // jwt.ConnectionTypeLeafnode
	}
}

// EdgeUserConfig is the entry of the users list of a hub's nats-server
// configuration (authorization { users: [...] }, beside those of
// AuthorizationConfig) for the edge of unit: EdgeLeafUser, its password given
// as the nats-server variable passwordVar (e.g. "$NATS_EDGE_00070_PASSWORD").
func EdgeUserConfig(unit, passwordVar string) (string, error) {
	domain, err := EdgeDomain(unit)
	if err != nil {
		return "", err
	}
	comment := fmt.Sprintf("The edge of unit %s (generated by `iochub edge-nats-user`, from internal/natsx.EdgeLeafUser): leaf connections only.", unit)
	return leafUserConfig(comment, EdgeLeafUser(domain, passwordVar), passwordVar), nil
}

// leafUserConfig is the nats-server configuration entry of u, a leaf node's
// user, its password given as the variable passwordVar, after comment.
func leafUserConfig(comment string, u *server.User, passwordVar string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "    # %s\n", comment)
	fmt.Fprintf(&b, "    { user: %s, password: %s, allowed_connection_types: [\"LEAFNODE\"], permissions: {\n", strconv.Quote(u.Username), passwordVar)
	fmt.Fprintf(&b, "        publish: { allow: %s }\n", quoteList(u.Permissions.Publish.Allow))
	fmt.Fprintf(&b, "        subscribe: { allow: %s }\n", quoteList(u.Permissions.Subscribe.Allow))
	b.WriteString("    } }\n")
	return b.String()
}
