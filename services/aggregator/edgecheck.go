package aggregator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// An edge node (docs/edge.md) stores what its ingest accepts in its own
// FEEDS, and the hub's FEEDS sources it through the subject filters of the
// edge's units (natsx.AddEdgeSource). Its ingest checks every item against
// the catalogue of its units and sources; the hub does not take that on
// trust. Whoever holds an edge's machine could write anything into its
// FEEDS: an item of a source the hub never registered, or one naming a
// source of another unit. The filters keep out the items of other units;
// the aggregator checks the rest here, for every item that
// came through sourcing (it alone has the Nats-Stream-Source header, which
// nats-server writes at the hub and refuses on any publish):
//
//   - it names its source in the Iochub-Source header (the edge's ingest
//     always does: the payload's origin could say another);
//   - the source is registered at the hub, and the item's unit is the
//     source's unit or below it, in the item's province;
//   - when the edge is sourced through filters, the source's unit is one of
//     the edge's units or below one (a source of the province cannot be
//     claimed by an edge of one of its wards).
//
// An item that fails is dead-lettered with the reason: permanent, visible to
// operators, re-drivable (a redriven item is published by the hub and
// carries no Nats-Stream-Source header). The hub's FEEDS drops a repeated
// Nats-Msg-Id as it stores a sourced item, before the aggregator sees it:
// a forgery cannot take a real item's id because the hub keys the ids it
// puts on FEEDS with a key no edge can read (ce.MsgIDKey, docs/edge.md).

// headerStreamSource is the header nats-server adds to a sourced message:
// "<stream>[:<hash>] <seq> <filters> <destinations> <subject> …", the filters
// joined by form feeds.
const headerStreamSource = "Nats-Stream-Source"

// errEdgeItem wraps every refusal of an edge's item.
var errEdgeItem = errors.New("edge item refused")

// bindingsMaxAge is how long loaded bindings serve before they are read
// again; bindingsRetryAfter how soon an item they refuse reads them again
// (a source registered a moment ago).
const (
	bindingsMaxAge     = time.Minute
	bindingsRetryAfter = time.Second
)

// edgeBindings caches the hub's sources and unit tree for the checks of the
// reader goroutine (one per Service: no lock), and the verdict of each
// source, place and edge it checked, so that an edge's items of one source
// and unit (most of them) cost a map look-up each.
type edgeBindings struct {
	b        postgis.Bindings
	loaded   time.Time
	verdicts map[edgeKey]string // "" passes; else why not
}

// edgeKey is what an edge item's verdict depends on; filters is the
// filters field of its Nats-Stream-Source value.
type edgeKey struct{ source, province, unit, filters string }

// maxVerdicts bounds edgeBindings.verdicts (forgotten all at once past it).
const maxVerdicts = 4096

// checkEdgeItem checks the decoded item d, which came through sourcing
// with the Nats-Stream-Source value hdr: nil when it passes; an error
// wrapping errEdgeItem when it does not; any other error when the bindings
// could not be read (retry later).
func (s *Service) checkEdgeItem(ctx context.Context, d *decoded, hdr string) error {
	if d.source == "" {
		return fmt.Errorf("%w: it names no source in the %s header", errEdgeItem, HeaderSource)
	}
	k := edgeKey{d.source, d.province, d.unit, headerFilters(hdr)}
	now := time.Now()
	if s.edges.loaded.IsZero() || now.Sub(s.edges.loaded) > bindingsMaxAge {
		if err := s.loadBindings(ctx, now); err != nil {
			return err
		}
	}
	why := s.edges.verdict(k)
	if why != "" && now.Sub(s.edges.loaded) > bindingsRetryAfter {
		if err := s.loadBindings(ctx, now); err != nil {
			return err
		}
		why = s.edges.verdict(k)
	}
	if why != "" {
		return fmt.Errorf("%w: %s", errEdgeItem, why)
	}
	return nil
}

// verdict is edgeItemFault of k, remembered.
func (e *edgeBindings) verdict(k edgeKey) string {
	if why, ok := e.verdicts[k]; ok {
		return why
	}
	if len(e.verdicts) >= maxVerdicts {
		clear(e.verdicts)
	}
	why := edgeItemFault(e.b, k.source, k.province, k.unit, edgeRoots(k.filters))
	e.verdicts[k] = why
	return why
}

func (s *Service) loadBindings(ctx context.Context, now time.Time) error {
	b, err := s.db.LoadBindings(ctx)
	if err != nil {
		return fmt.Errorf("reading the sources and units to check an edge's item: %w", err)
	}
	s.edges = edgeBindings{b: b, loaded: now, verdicts: map[edgeKey]string{}}
	return nil
}

// edgeItemFault says why an item of source in unit of province, sourced
// from an edge of the units roots (none: an edge sourced whole, added before
// filters were), does not fit b; "" when it does.
func edgeItemFault(b postgis.Bindings, source, province, unit string, roots []string) string {
	bound, ok := b.Sources[source]
	if !ok {
		return fmt.Sprintf("source %q is not registered at the hub", source)
	}
	up := b.Parents.Up(unit)
	if !up[province] {
		return fmt.Sprintf("unit %s is not in province %s", unit, province)
	}
	if !up[bound] {
		return fmt.Sprintf("source %q is bound to unit %s, and unit %s is not in it", source, bound, unit)
	}
	if len(roots) == 0 {
		return ""
	}
	sourceUp := b.Parents.Up(bound)
	for _, r := range roots {
		if sourceUp[r] {
			return ""
		}
	}
	return fmt.Sprintf("source %q is bound to unit %s, which is not among the edge's units (%s)", source, bound, strings.Join(roots, ", "))
}

// headerFilters is the filters field of a Nats-Stream-Source value hdr
// (the third of "<stream> <seq> <filters> <destinations> …"); "" when hdr
// has no such field.
func headerFilters(hdr string) string {
	_, rest, ok := strings.Cut(hdr, " ")
	if !ok {
		return ""
	}
	if _, rest, ok = strings.Cut(rest, " "); !ok {
		return ""
	}
	filters, _, ok := strings.Cut(rest, " ")
	if !ok {
		return ""
	}
	return filters
}

// edgeRoots are the units (or provinces) the subject filters of a
// Nats-Stream-Source filters field (headerFilters, joined by form feeds)
// name; none when the source has no filter or one that is not of a province
// or unit (an edge added before filters were).
func edgeRoots(filters string) []string {
	if filters == "" {
		return nil
	}
	var roots []string
	for filter := range strings.SplitSeq(filters, "\f") {
		province, unit, ok := subjects.ParseFeedFilter(filter)
		if !ok {
			return nil
		}
		if unit == "" {
			unit = province
		}
		roots = append(roots, unit)
	}
	return roots
}
