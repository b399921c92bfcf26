package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// Rejections per source: the ingest counts the items it rejects by source
// and a short reason key, in memory and bounded, and every
// Config.RejectionSummaryEvery publishes what it counted, per province, as
// one action (type ActionSourceRejections) on ACTIONS. The aggregator applies
// it once (actions are claimed by id) and adds the counts to
// source_rejection: the ingest writes no database, the counts survive a
// restart of the aggregator (JetStream keeps the action), and a summary that
// cannot be published is kept and merged into the next one.

// ActionSourceRejections is the type of the action carrying a summary;
// its payload is RejectionSummary.
const ActionSourceRejections = "source.rejections"

// RejectionSummary is the payload of a source.rejections action: counts by
// source id, then by reason key.
type RejectionSummary struct {
	Sources map[string]map[string]int64 `json:"sources"`
}

// Bounds of the counts kept between summaries.
const (
	maxRejectKeys      = 2048 // (source, reason) pairs in all
	maxReasonsPerSrc   = 16   // then "other"
	maxReasonKeyLength = 48
	reasonOther        = "other"
)

type rejectKey struct{ province, source, reason string }

// rejections counts rejected items between summaries.
type rejections struct {
	mu     sync.Mutex
	counts map[rejectKey]int64
	per    map[string]int // distinct reasons per source
	seq    uint64
	inst   string // tells this ingest's summaries apart from another's
	// dropped are the rejections not counted because the table was full.
	dropped int64
}

func newRejections(now time.Time) *rejections {
	return &rejections{counts: map[rejectKey]int64{}, per: map[string]int{},
		inst: strconv.FormatInt(now.UnixNano(), 36)}
}

// add counts n rejections of source (in province) for reason.
func (r *rejections) add(province, source, reason string, n int64) {
	if province == "" || source == "" || n <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	k := rejectKey{province, source, reason}
	if _, ok := r.counts[k]; !ok {
		if r.per[source] >= maxReasonsPerSrc {
			k.reason = reasonOther
		}
		if _, ok := r.counts[k]; !ok {
			if len(r.counts) >= maxRejectKeys {
				r.dropped += n
				return
			}
			if k.reason != reasonOther {
				r.per[source]++
			}
		}
	}
	r.counts[k] += n
}

// take returns the counts and starts afresh.
func (r *rejections) take() map[rejectKey]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.counts
	r.counts, r.per = map[rejectKey]int64{}, map[string]int{}
	return c
}

// putBack merges counts that could not be published into the next summary.
func (r *rejections) putBack(c map[rejectKey]int64) {
	for k, n := range c {
		r.add(k.province, k.source, k.reason, n)
	}
}

// rejectReason is the bounded key of why an item was rejected: the item's
// top-level field when the error names one, else its kind of failure.
func rejectReason(ierr *itemError) string {
	switch {
	case ierr == nil:
		return "unreadable"
	case ierr.outside:
		return "outside-unit"
	}
	field := strings.TrimPrefix(ierr.pointer, "/")
	if i := strings.IndexByte(field, '/'); i >= 0 {
		field = field[:i]
	}
	if field == "" {
		return "invalid"
	}
	var b strings.Builder
	b.WriteString("invalid:")
	for _, c := range field {
		if b.Len() >= maxReasonKeyLength {
			break
		}
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// countRejected records a rejected item of principal p.
func (s *Service) countRejected(cat *catalog, p principal, reason string) {
	if s.rejects == nil || p.unit == "" {
		return // the dev token has no unit, hence no province
	}
	prov, ok := cat.ix.Province(p.unit)
	if !ok {
		return
	}
	s.rejects.add(prov, p.sourceID, reason, 1)
}

// publishRejections publishes the counts since the last summary, one action
// per province; what fails to publish is kept for the next.
func (s *Service) publishRejections(ctx context.Context) error {
	counts := s.rejects.take()
	if len(counts) == 0 {
		return nil
	}
	byProv := map[string]map[rejectKey]int64{}
	for k, n := range counts {
		if byProv[k.province] == nil {
			byProv[k.province] = map[rejectKey]int64{}
		}
		byProv[k.province][k] = n
	}
	provs := make([]string, 0, len(byProv))
	for p := range byProv {
		provs = append(provs, p)
	}
	sort.Strings(provs)
	var firstErr error
	for _, prov := range provs {
		part := byProv[prov]
		if err := s.publishSummary(ctx, prov, part); err != nil {
			s.rejects.putBack(part)
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}

func (s *Service) publishSummary(ctx context.Context, prov string, part map[rejectKey]int64) error {
	sum := RejectionSummary{Sources: map[string]map[string]int64{}}
	for k, n := range part {
		if sum.Sources[k.source] == nil {
			sum.Sources[k.source] = map[string]int64{}
		}
		sum.Sources[k.source][k.reason] += n
	}
	payload, err := json.Marshal(sum)
	if err != nil {
		return fmt.Errorf("encoding the rejection summary of %s: %w", prov, err)
	}
	s.rejects.mu.Lock()
	s.rejects.seq++
	id := "ingest-rejections:" + s.rejects.inst + ":" + strconv.FormatUint(s.rejects.seq, 10)
	s.rejects.mu.Unlock()
	now := s.now()
	act := &iocv1.Action{Id: id, Type: ActionSourceRejections, Actor: "ingest", Province: prov,
		TargetKind: "source", Target: "rejections", At: timestamppb.New(now), Payload: payload}
	body, err := proto.Marshal(act)
	if err != nil {
		return fmt.Errorf("marshalling the rejection summary of %s: %w", prov, err)
	}
	subj := subjects.Action(prov, act.TargetKind, act.Target)
	h := ce.Event{ID: id, Source: "urn:ioc:" + prov + ":ingest", Type: "vn.ioc.action." + act.Type + ".v1",
		Subject: act.Target, Time: now}.Header()
	h[jetstream.MsgIDHeader] = []string{id}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	if _, err := s.js.PublishMsg(ctx, &nats.Msg{Subject: subj, Header: h, Data: body}); err != nil {
		return fmt.Errorf("publishing the rejection summary of %s: %w", prov, err)
	}
	return nil
}

// runRejections publishes the summaries every Config.RejectionSummaryEvery
// until ctx ends, then once more.
func (s *Service) runRejections(ctx context.Context) {
	if s.rejects == nil || s.cfg.RejectionSummaryEvery <= 0 {
		return
	}
	t := time.NewTicker(s.cfg.RejectionSummaryEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), s.cfg.PublishTimeout)
			if err := s.publishRejections(fctx); err != nil {
				s.log.Warn("publishing the last rejection summary failed", "err", err)
			}
			cancel()
			return
		case <-t.C:
			if err := s.publishRejections(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("publishing the rejection summary failed; kept for the next", "err", err)
			}
		}
	}
}
