package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iochub/iochub/internal/subjects"
)

// Items that leave the edge unsent (docs/edge.md, "The link-loss budget").
// The edge answers an item accepted once its FEEDS stored it; the hub's
// FEEDS copies it later through a consumer that nats-server creates on the
// edge's FEEDS for the hub's source. An item still uncopied when --retain
// (the stream's MaxAge) removes it is gone without a trace unless the edge
// notices: UnsentWatch compares how far the edge's FEEDS has been emptied
// (its first sequence) with how far the hub's sourcing consumer had got,
// and counts and logs the difference, and keeps the count in the edge's
// JetStream for the hub to read (status.go).
//
// What the edge can see of the hub's source: the consumer is a "sourcing"
// one (JS_SRC_<hash>), which neither the JetStream API's consumer list nor
// the stream's consumer count shows, and it lives only while the hub
// listens (nats-server drops it 10 s after the link goes down). The edge's
// server reports it through its monitoring (Jsz with DirectConsumer): its
// start sequence, which is exactly the one after the last the hub holds,
// and the last sequence it delivered. The watch remembers the latter while
// the consumer lives, and reads the former from each new consumer, when the
// hub resumes.

// ExpiredUnsentMetric is the name of the counter of items that left the
// edge's FEEDS before the hub copied them.
const ExpiredUnsentMetric = "iochub_edge_items_expired_unsent_total"

// Span is a run of sequences of the edge's FEEDS, From to To included.
type Span struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

func (s Span) items() uint64 { return s.To - s.From + 1 }

// loss is a run of items that left the edge's FEEDS before the hub copied them.
type loss struct {
	Span
	// StoredAfter and StoredBefore bound when the edge stored them; zero when not known.
	StoredAfter, StoredBefore time.Time
	// AtResume is set for a loss found when the hub resumed its sourcing
	// from before these items (they had been sent, but the hub had not
	// stored them when the link broke), rather than as the items left.
	AtResume bool
}

// feedsState is what the tracker reads of the edge's FEEDS.
type feedsState struct {
	first               uint64
	msgs                uint64
	firstTime, lastTime time.Time
}

// sourcing is what the edge sees of one sourcing consumer of the hub.
type sourcing struct {
	// id tells one consumer from the next: nats-server gives the consumer
	// it recreates for a source the same name, so id adds its creation time.
	id string
	// start is the sequence the hub asked the consumer to start from, the
	// one after the last it holds; 0 when it asked from a time instead.
	start uint64
	// delivered is the last sequence the consumer sent, or skipped past
	// because the stream no longer had it.
	delivered uint64
}

// maxLostSpans bounds the counted losses the tracker remembers; only the
// latest matter (those near what the hub was last sent).
const maxLostSpans = 32

// unsentTracker judges, once each, the sequences that left the edge's
// FEEDS: sent (to the hub, as far as the edge knows) or lost.
type unsentTracker struct {
	started bool
	// known is set once the edge has seen a sourcing consumer of the hub:
	// until then it cannot tell the sent from the lost (after a restart,
	// what the hub holds is only known when it sources again).
	known bool
	// hub is the last sequence the hub holds or was sent, as far as known.
	hub uint64
	// judged: every sequence up to it that left has been judged once.
	judged uint64
	// lost are the spans counted lost, latest last, merged, at most
	// maxLostSpans; total is how many items were counted in all.
	lost  []Span
	total uint64
	// unknownTo is the last sequence reported as left while not known.
	unknownTo uint64
	// prevFirst and prevFirstTime are the first sequence of FEEDS at the
	// previous look and a time it was stored at or after (lower bound of
	// when a later loss was stored).
	prevFirst     uint64
	prevFirstTime time.Time
	seen          map[string]bool
}

// observe takes one look at FEEDS and the hub's sourcing consumers and
// returns the losses found since the previous look, and the sequences that
// left while the edge does not know what the hub holds (to be judged when
// it learns; empty span To 0 when none).
func (t *unsentTracker) observe(st feedsState, cons []sourcing) ([]loss, Span) {
	left := st.first - 1 // every sequence up to left has left FEEDS
	if st.first == 0 {
		left = 0
	}
	if !t.started {
		t.started, t.unknownTo = true, left
		t.prevFirst, t.prevFirstTime = st.first, st.firstTime
	}
	var losses []loss
	// A new consumer says exactly what the hub holds: start-1. Judge with
	// it before the consumer's delivered sequence counts, as that one
	// skips past what the stream no longer has.
	seen := make(map[string]bool, len(cons))
	for _, c := range cons {
		seen[c.id] = true
		if t.seen[c.id] {
			continue
		}
		holds := c.delivered
		if c.start > 0 {
			holds = c.start - 1
		}
		if !t.known {
			t.known, t.hub, t.judged = true, holds, holds
			continue
		}
		// Sent but not stored by the hub before the link broke: each that
		// left since was judged sent; count it now. A new source of the hub
		// (edge-remove then edge-add) starts at 1 and tells nothing.
		if c.start > 1 && holds < t.hub {
			for _, s := range t.uncounted(Span{holds + 1, min(t.hub, t.judged, left)}) {
				losses = append(losses, t.count(s, st, true))
			}
		}
		t.hub = holds
	}
	if t.known && left > t.judged {
		// Without what was counted already: after a restart, the runs the
		// record says the edge counted before it (seed).
		for _, s := range t.uncounted(Span{max(t.judged, t.hub) + 1, left}) {
			losses = append(losses, t.count(s, st, false))
		}
		t.judged = left
	}
	for _, c := range cons {
		t.hub = max(t.hub, c.delivered)
	}
	t.seen = seen // a consumer gone never comes back: its next has another id
	var unknown Span
	if !t.known && left > t.unknownTo {
		unknown, t.unknownTo = Span{t.unknownTo + 1, left}, left
	}
	t.prevFirst, t.prevFirstTime = st.first, st.firstTime
	if st.msgs == 0 {
		// The next item stored is stored after the last one.
		t.prevFirstTime = st.lastTime
	}
	return losses, unknown
}

// seed makes the tracker of a restarted edge take counted, the runs its
// record says were counted lost before, as counted: it judges anew what
// left before its start once the hub sources it again, and must not count
// them twice.
func (t *unsentTracker) seed(counted []Span) {
	t.lost = append(t.lost[:0], counted...)
	if len(t.lost) > maxLostSpans {
		t.lost = t.lost[len(t.lost)-maxLostSpans:]
	}
}

// count records s as lost and describes it.
func (t *unsentTracker) count(s Span, st feedsState, atResume bool) loss {
	t.total += s.items()
	l := loss{Span: s, AtResume: atResume, StoredBefore: st.firstTime}
	if st.msgs == 0 {
		l.StoredBefore = st.lastTime
	}
	if s.From >= t.prevFirst {
		l.StoredAfter = t.prevFirstTime
	}
	if n := len(t.lost); n > 0 && t.lost[n-1].To+1 == s.From {
		t.lost[n-1].To = s.To
	} else {
		t.lost = append(t.lost, s)
	}
	if len(t.lost) > maxLostSpans {
		t.lost = t.lost[len(t.lost)-maxLostSpans:]
	}
	return l
}

// uncounted is s without what was counted lost already.
func (t *unsentTracker) uncounted(s Span) []Span {
	if s.From > s.To {
		return nil
	}
	out := []Span{s}
	for _, c := range t.lost {
		var next []Span
		for _, o := range out {
			if c.To < o.From || c.From > o.To {
				next = append(next, o)
				continue
			}
			if c.From > o.From {
				next = append(next, Span{o.From, c.From - 1})
			}
			if c.To < o.To {
				next = append(next, Span{c.To + 1, o.To})
			}
		}
		out = next
	}
	return out
}

// UnsentWatch counts and logs the items that leave the edge's FEEDS (by
// --retain, or a purge) before the hub copied them, and keeps the record
// of them for the hub (UnsentRecord, in StatusBucket); see Check.
type UnsentWatch struct {
	srv     *server.Server
	kv      jetstream.KeyValue
	log     *slog.Logger
	expired prometheus.Counter
	poke    chan struct{}

	// checking serialises Check (the record it writes is the latest) and
	// guards what follows.
	checking sync.Mutex
	// rec is the record as last written, or to be written when unsaved;
	// base is its Total at the start (what earlier runs counted).
	rec     UnsentRecord
	base    uint64
	unsaved bool
	t       unsentTracker
}

// NewUnsentWatch watches the FEEDS of n and registers its counter,
// ExpiredUnsentMetric, on reg. It creates the edge's StatusBucket and
// continues the record found there (its total, and the runs counted, which
// a restarted edge does not count again); it writes one with a total of 0
// when there is none, so that the hub can tell an edge that lost nothing.
func NewUnsentWatch(ctx context.Context, n *Node, log *slog.Logger, reg prometheus.Registerer) (*UnsentWatch, error) {
	w := &UnsentWatch{srv: n.Server, log: log, poke: make(chan struct{}, 1),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: ExpiredUnsentMetric,
			Help: "Items the edge accepted that left its FEEDS (--retain) before the hub copied them: lost to the hub (docs/edge.md).",
		})}
	kv, err := statusBucket(ctx, n.JS)
	if err != nil {
		return nil, err
	}
	w.kv = kv
	switch w.rec, err = readUnsentRecord(ctx, kv); {
	case errors.Is(err, ErrBadUnsentRecord):
		// The record is only for the hub to read: one that is not one
		// (a damaged store) must not keep the edge's ingest from starting.
		log.Error("the record of lost items is unreadable; starting a new one", "bucket", StatusBucket, "key", UnsentKey, "err", err)
		w.rec = UnsentRecord{}
		fallthrough
	case errors.Is(err, ErrNoUnsentRecord):
		w.rec.UpdatedAt = time.Now()
		if err := writeUnsentRecord(ctx, kv, w.rec); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	}
	w.base = w.rec.Total
	w.t.seed(w.rec.Counted)
	if err := reg.Register(w.expired); err != nil {
		return nil, fmt.Errorf("registering %s: %w", ExpiredUnsentMetric, err)
	}
	return w, nil
}

// Record is the record of lost items as the watch last wrote it (or is
// to write it, when writing failed).
func (w *UnsentWatch) Record() UnsentRecord {
	w.checking.Lock()
	defer w.checking.Unlock()
	return w.rec
}

// Expired is the counter's value: the items found lost since the start.
func (w *UnsentWatch) Expired() uint64 {
	w.checking.Lock()
	defer w.checking.Unlock()
	return w.t.total
}

// Poke asks Run for a check now (the link to the hub went up or down); it never blocks.
func (w *UnsentWatch) Poke() {
	select {
	case w.poke <- struct{}{}:
	default:
	}
}

// Run checks at once, then every interval (30 s when not positive) and
// when poked, until ctx ends. A check that fails is logged; the next one
// judges what it missed.
func (w *UnsentWatch) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = 30 * time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if err := w.Check(ctx); err != nil {
			w.log.Warn("edge: checking for items lost before the hub copied them", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-w.poke:
		}
	}
}

// errNoFeeds is returned by Check when the edge's server reports no FEEDS.
var errNoFeeds = errors.New("the edge's server reports no stream " + subjects.StreamFeeds)

// Check takes one look at the edge's FEEDS and the hub's sourcing
// consumers on it, through the server's monitoring (in process: no
// request crosses a network), counts and logs the items lost since the
// previous look, and writes the record of them. A record it fails to
// write is written at the next check.
func (w *UnsentWatch) Check(ctx context.Context) error {
	w.checking.Lock()
	defer w.checking.Unlock()
	st, cons, err := w.read()
	if err != nil {
		return err
	}
	losses, unknown := w.t.observe(st, cons)
	total, counted := w.t.total, slices.Clone(w.t.lost)
	now := time.Now()
	for _, l := range losses {
		w.expired.Add(float64(l.items()))
		run := lostRun(l, now)
		w.rec.setLast(run)
		w.unsaved = true
		attrs := []any{"items", l.items(), "from_seq", l.From, "to_seq", l.To, "found", run.Found}
		if !l.StoredAfter.IsZero() {
			attrs = append(attrs, "stored_after", l.StoredAfter)
		}
		if !l.StoredBefore.IsZero() {
			attrs = append(attrs, "stored_before", l.StoredBefore)
		}
		w.log.Error("edge: accepted items left the edge's FEEDS before the hub copied them; they are lost to the hub", attrs...)
	}
	if unknown.To > 0 {
		w.log.Warn("edge: items left the edge's FEEDS before the edge saw the hub source it since its start; "+
			"whether the hub has them is judged when it does", "items", unknown.items(), "from_seq", unknown.From, "to_seq", unknown.To)
	}
	if !w.unsaved {
		return nil
	}
	w.rec.Total, w.rec.Counted, w.rec.UpdatedAt = w.base+total, counted, now
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := writeUnsentRecord(ctx, w.kv, w.rec); err != nil {
		return fmt.Errorf("keeping the record of lost items for the hub: %w", err)
	}
	w.unsaved = false
	return nil
}

// read is the state of FEEDS and its sourcing consumers.
func (w *UnsentWatch) read() (feedsState, []sourcing, error) {
	acc, err := w.srv.JszAccount(&server.JSzOptions{Account: w.srv.GlobalAccount().GetName(),
		Streams: true, Consumer: true, DirectConsumer: true, Config: true})
	if err != nil {
		return feedsState{}, nil, fmt.Errorf("reading the edge's JetStream: %w", err)
	}
	for _, s := range acc.Streams {
		if s.Name != subjects.StreamFeeds {
			continue
		}
		st := feedsState{first: s.State.FirstSeq, msgs: s.State.Msgs,
			firstTime: s.State.FirstTime, lastTime: s.State.LastTime}
		var cons []sourcing
		for _, c := range s.DirectConsumer {
			if c == nil || c.Config == nil || !c.Config.Sourcing {
				continue
			}
			src := sourcing{id: c.Name + "@" + c.Created.Format(time.RFC3339Nano), delivered: c.Delivered.Stream}
			if c.Config.DeliverPolicy == server.DeliverByStartSequence {
				src.start = c.Config.OptStartSeq
			}
			cons = append(cons, src)
		}
		return st, cons, nil
	}
	return feedsState{}, nil, errNoFeeds
}
