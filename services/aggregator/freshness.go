package aggregator

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/alertrule"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"

	"github.com/iochub/iochub/services/aggregator/postgis"
)

// Source freshness: each batch records, in its own transaction, per source
// and unit, the events, duplicates, last event time and the gap since the
// last arrival (on the hub's clock, Deps.Now; Batch.Activity, from
// sourceActivity); a periodic sweep raises a
// CAP alert (sender iochub) for each pair silent for 3× its interval and
// cancels it once data returns. The sweep reads only due rows through the
// partial index source_stats_due: no full scan per tick.

// StaleFactor is how many intervals of silence make a source stale.
const StaleFactor = 3

// FreshnessStore is what the freshness bookkeeping needs of the database;
// *postgis.Store is one.
type FreshnessStore interface {
	DueStaleSources(ctx context.Context, province string, now time.Time, limit int) ([]postgis.SourceStale, error)
	MarkSourcesStale(ctx context.Context, pairs []postgis.SourceStale, now, sent time.Time) error
	ReturnedSources(ctx context.Context, province string, limit int) ([]postgis.SourceStale, error)
	MarkSourcesCleared(ctx context.Context, pairs []postgis.SourceStale) error
	LatestRollupsOf(ctx context.Context, units []string) ([]postgis.Rollup, error)
}

var _ FreshnessStore = (*postgis.Store)(nil)

type pairKey struct{ source, unit string }

// hubSources are the sources of the hub's own alerts (overdue reports,
// stale sources, rules).
var hubSources = []string{HubSource, alertrule.SourceID}

// feedSource reports whether source is a feed source, not "" nor one of
// hubSources.
func feedSource(source string) bool {
	return source != "" && !slices.Contains(hubSources, source)
}

// sourceActivity sums what batch p brought per source and unit. The
// duplicates of a kind are attributed to their pairs by the rows the store
// says it inserted (KindResult.Inserted, which lists every new row); a
// result that does not add up to the kind's items (New + Duplicates, and
// one position per new row) leaves which were duplicates unknown, and none
// is counted.
//
// A message delivered before (the hub's own redelivery: its batch committed
// but its ack was lost or late, or the aggregator stopped before acking)
// whose row the store found already there is not the source's doing: it
// counts neither as an event nor as a duplicate, since the batch that stored
// it counted it in the same transaction. (A source's own duplicate redelivered after its first
// batch rolled back goes uncounted too: rare, and an undercount.) A pair
// whose every item was such a redelivery records no activity, so that a
// redelivery neither refreshes its last arrival nor adds a gap to its learnt
// interval.
func sourceActivity(p *pending, res postgis.Result) []postgis.SourceActivity {
	acts := map[pairKey]*postgis.SourceActivity{}
	var order []pairKey
	for _, k := range kinds {
		items := p.items[k]
		if len(items) == 0 {
			continue
		}
		// isNew says, when known, which items the store inserted.
		var isNew []bool
		if r := k.result(res); len(r.Inserted) == r.New && r.New+r.Duplicates == len(items) {
			isNew = make([]bool, len(items))
			for _, i := range r.Inserted {
				if i >= 0 && i < len(items) {
					isNew[i] = true
				}
			}
		}
		for i, dm := range items {
			d := dm.d
			if !feedSource(d.source) {
				continue
			}
			dup := isNew != nil && !isNew[i]
			if dup && redelivered(dm.msg) {
				continue
			}
			key := pairKey{d.source, d.unit}
			a, ok := acts[key]
			if !ok {
				a = &postgis.SourceActivity{SourceID: d.source, UnitCode: d.unit, Province: d.province}
				acts[key] = a
				order = append(order, key)
			}
			a.Events++
			if t := d.event.Time; t.After(a.LastEvent) {
				a.LastEvent = t
			}
			if dup {
				a.Duplicates++
			}
		}
	}
	out := make([]postgis.SourceActivity, 0, len(order))
	for _, key := range order {
		a := acts[key]
		if a.LastEvent.IsZero() {
			a.LastEvent = time.Time{}.Add(1) // never before; kept for the NOT NULL column
		}
		out = append(out, *a)
	}
	return out
}

// redelivered reports whether m was delivered before (a message without
// metadata, as in tests, was not).
func redelivered(m jetstream.Msg) bool {
	if m == nil {
		return false
	}
	md, err := m.Metadata()
	return err == nil && md.NumDelivered > 1
}

// staleAlertIdentifier is the CAP identifier of the stale alert of a pair
// raised at sent (one per silence, so a later silence raises a new alert).
func staleAlertIdentifier(source, unit string, sent time.Time) string {
	return "source-stale:" + source + "/" + unit + ":" + strconv.FormatInt(sent.Unix(), 10)
}

// staleAlert is the alert the hub raises for a stale pair, sent at sent, or
// its Cancel (now) once data returned.
func staleAlert(x postgis.SourceStale, sent time.Time, cancel bool, now time.Time) *iocv1.Alert {
	ident := staleAlertIdentifier(x.SourceID, x.UnitCode, sent)
	area := &iocv1.AlertArea{AreaDesc: "unit " + x.UnitCode, NoGeometry: true,
		Geocode: []*iocv1.Geocode{{ValueName: "iochub:unit", Value: x.UnitCode}}}
	last := x.LastSeen.UTC().Format(time.RFC3339)
	iv := x.Interval.Round(time.Second).String()
	a := &iocv1.Alert{
		Id: ident, Identifier: ident, Sender: HubSource, Sent: timestamppb.New(sent), Status: "Actual",
		MsgType: "Alert", Scope: "Restricted", Restriction: "IOC operators",
		Origin: &iocv1.Origin{SourceId: HubSource, Province: x.Province, Unit: x.UnitCode, ReceivedAt: timestamppb.New(now)},
		Info: []*iocv1.AlertInfo{
			{Language: "vi-VN", Category: []string{"Infra"}, Event: "Nguồn dữ liệu ngừng gửi", Urgency: "Immediate",
				Severity: "Minor", Certainty: "Observed",
				Headline:    fmt.Sprintf("Nguồn %s (đơn vị %s) không gửi dữ liệu", x.SourceID, x.UnitCode),
				Description: fmt.Sprintf("Lần nhận cuối %s; chu kỳ dự kiến %s.", last, iv),
				Area:        []*iocv1.AlertArea{area}},
			{Language: "en-US", Category: []string{"Infra"}, Event: "Data source stale", Urgency: "Immediate",
				Severity: "Minor", Certainty: "Observed",
				Headline:    fmt.Sprintf("Source %s (unit %s) stopped sending", x.SourceID, x.UnitCode),
				Description: fmt.Sprintf("Last received %s; expected every %s.", last, iv),
				Area:        []*iocv1.AlertArea{area}},
		},
	}
	if cancel {
		hubCancel(a, ident, sent, now)
		a.Info[0].Headline = fmt.Sprintf("Nguồn %s (đơn vị %s) đã gửi lại dữ liệu", x.SourceID, x.UnitCode)
		a.Info[1].Headline = fmt.Sprintf("Source %s (unit %s) is sending again", x.SourceID, x.UnitCode)
	}
	return a
}

// staleSent is the CAP sent time of a pair's stale alert: when it became
// stale (last arrival + 3 × interval), to the second.
func staleSent(x postgis.SourceStale) time.Time {
	return x.LastSeen.Add(StaleFactor * x.Interval).UTC().Truncate(time.Second)
}

// sweepStale raises the alert of every pair silent for 3× its interval and
// cancels the alert of every stale pair that sent again. Like the report
// sweep, it publishes first and records after: a crash in between publishes
// again, and FEEDS drops the repeat by its Nats-Msg-Id.
func (s *Service) sweepStale(ctx context.Context, db FreshnessStore) error {
	const limit = 500
	now := s.now()
	keys, err := s.msgIDs.Get(ctx)
	if err != nil {
		return err
	}
	due, err := db.DueStaleSources(ctx, s.cfg.Province, now, limit)
	if err != nil {
		return err
	}
	var futures []jetstream.PubAckFuture
	publish := func(m *nats.Msg) error { return publishAsync(s.js, &futures, m) }
	for _, x := range due {
		m, err := feedAlertMsg(staleAlert(x, staleSent(x), false, now), keys)
		if err != nil {
			return err
		}
		if err := publish(m); err != nil {
			return err
		}
	}
	back, err := db.ReturnedSources(ctx, s.cfg.Province, limit)
	if err != nil {
		return err
	}
	for _, x := range back {
		m, err := feedAlertMsg(staleAlert(x, x.AlertSent.UTC(), true, now), keys)
		if err != nil {
			return err
		}
		if err := publish(m); err != nil {
			return err
		}
	}
	if len(futures) == 0 {
		return s.republishStale(ctx, db)
	}
	if _, err := s.waitAcks(ctx, futures); err != nil {
		return err
	}
	// Before the marks: a sweep failing after one publishes their roll-ups
	// at the next.
	for _, xs := range [][]postgis.SourceStale{due, back} {
		for _, x := range xs {
			s.staleUnits = append(s.staleUnits, x.UnitCode)
		}
	}
	for _, x := range due {
		if err := db.MarkSourcesStale(ctx, []postgis.SourceStale{x}, now, staleSent(x)); err != nil {
			return err
		}
	}
	if len(due) > 0 {
		s.log.Info("sources stale", "count", len(due))
	}
	if len(back) > 0 {
		if err := db.MarkSourcesCleared(ctx, back); err != nil {
			return err
		}
		s.log.Info("stale source alerts cancelled", "count", len(back))
	}
	return s.republishStale(ctx, db)
}

// republishStale publishes again on ROLLUPS the latest roll-ups of the units
// of s.staleUnits and of the units above them, with their stale figures as
// they now are: a unit whose only source went silent has no batch to
// publish that, and a source's return changes the figure of the unit's
// other layers too. The units are forgotten once published; after a failure
// the next sweep tries again.
func (s *Service) republishStale(ctx context.Context, db FreshnessStore) error {
	if len(s.staleUnits) == 0 {
		return nil
	}
	slices.Sort(s.staleUnits)
	s.staleUnits = slices.Compact(s.staleUnits)
	rs, err := db.LatestRollupsOf(ctx, s.staleUnits)
	if err != nil {
		return err
	}
	var futures []jetstream.PubAckFuture
	for _, r := range rs {
		msg, err := rollupMsg(r)
		if err != nil {
			return err
		}
		if err := publishAsync(s.js, &futures, msg, noRetry); err != nil {
			return err
		}
	}
	if _, err := s.waitAcks(ctx, futures); err != nil {
		return err
	}
	s.staleUnits = nil
	return nil
}

// ActionSourceRejections is the type of the action by which the ingest
// reports the items it rejected per source and reason since its last
// summary (services/ingest/rejections.go); its payload is
// SourceRejectionsPayload.
const ActionSourceRejections = "source.rejections"

// SourceRejectionsPayload is the payload of a source.rejections action:
// counts by source id, then by reason key.
type SourceRejectionsPayload struct {
	Sources map[string]map[string]int64 `json:"sources"`
}

// Bounds of a rejection summary.
const (
	maxSummarySources = 4096
	maxSummaryReasons = 64
	maxSummaryKey     = 64
)

// applySourceRejections adds the counts of a rejection summary to
// source_rejection; the action's id makes it count once.
func applySourceRejections(ctx context.Context, tx pgx.Tx, a *iocv1.Action) ([]*iocv1.EntityState, error) {
	var p SourceRejectionsPayload
	if err := json.Unmarshal(a.GetPayload(), &p); err != nil {
		return nil, Refuse(fmt.Sprintf("payload is not a rejection summary: %v", err))
	}
	if len(p.Sources) > maxSummarySources {
		return nil, Refuse(fmt.Sprintf("summary has %d sources; at most %d", len(p.Sources), maxSummarySources))
	}
	var rows []postgis.SourceRejection
	for src, reasons := range p.Sources {
		if src == "" || len(src) > maxSummaryKey || len(reasons) > maxSummaryReasons {
			return nil, Refuse(fmt.Sprintf("source %.64q: want an id of 1 to %d bytes with at most %d reasons", src, maxSummaryKey, maxSummaryReasons))
		}
		for reason, n := range reasons {
			if reason == "" || len(reason) > maxSummaryKey || !utf8.ValidString(reason) || n <= 0 {
				return nil, Refuse(fmt.Sprintf("source %s: reason %.64q with count %d: want 1 to %d bytes and a positive count", src, reason, n, maxSummaryKey))
			}
			rows = append(rows, postgis.SourceRejection{SourceID: src, Reason: reason, Count: n})
		}
	}
	at := time.Now()
	if a.GetAt() != nil {
		at = a.GetAt().AsTime()
	}
	return nil, postgis.AddSourceRejections(ctx, tx, rows, at)
}
