package aggregator

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/kind"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// kindOps is the aggregator's side of one kind: how its feed message becomes
// a row, where the row goes in a batch, and which states a stored batch
// changed. The pipeline (process, store, publishStates) calls these hooks for
// every kind of kinds and switches on none.
type kindOps struct {
	// name is the kind's name (its subject token and layer); "registered"
	// for registeredKind, which serves every kind registered with internal/kind.
	name string
	// decode reads data, the event of the kind, into d.msg and d.row; d's
	// kind, province, unit and event are set. Its error says what is wrong.
	decode func(d *decoded, data []byte, source string, now time.Time) error
	// add appends row, a d.row of the kind, to b.
	add func(b *postgis.Batch, row any)
	// prepare, optional, completes the kind's rows of p before the write
	// (the VN_AQI of air rows, the alarm level of water rows); it keeps the
	// rows of p.batch and p.items in step. It runs in the preparer goroutine,
	// batch after batch in order, while earlier batches are still being
	// written (pipeline.go): what depends on their commit is left to settle.
	prepare func(ctx context.Context, s *Service, p *pending, start time.Time)
	// settle, optional, finishes prepare's work in the committer right
	// before the write, after every earlier batch was committed or given up.
	settle func(ctx context.Context, s *Service, p *pending, start time.Time)
	// ready, with settle, reports whether settle would change nothing of p
	// that depends on the batches before it: p may then be written beside
	// the batch before it (overlap.go). Without it, a kind with settle
	// waits for the batch before.
	ready func(s *Service, p *pending) bool
	// release, optional, runs once the batch was committed or given up (failed,
	// naked, dead-lettered; in the committer, or in the preparer for a batch it
	// gives up at shutdown), whatever prepare held for it; it takes its own lock.
	release func(s *Service, p *pending)
	// committed, optional, runs once the batch is committed, before its
	// states are built (the AQI of the changed air stations).
	committed func(s *Service, p *pending, res postgis.Result, now time.Time)
	// changed is the kind's part of res: the entities whose state the batch
	// wrote, indexed like the kind's rows; nil for a kind whose states come
	// from more alone.
	changed func(res postgis.Result) []postgis.Changed
	// state fills the kind's fields of the state of one changed entity (its
	// entity id, latest and the kind's extras) and the event's id and time;
	// stateMsg sets the rest.
	state func(d *decoded, c postgis.Changed, st *iocv1.EntityState, ev *ce.Event)
	// more, optional, builds the further states the batch changed: the alerts
	// an Update or Cancel referred to, the reports whose state the report
	// store decided.
	more func(s *Service, res postgis.Result) ([]*nats.Msg, error)
	// warm, optional, loads what the kind's hooks keep in memory when the
	// aggregator starts (the stations' AQI hours, the alarm levels of water
	// stations), or brings the kind's stored rows in line with the
	// configuration (the default lifetime of alerts). A failure is logged;
	// the hooks must cope without.
	warm func(ctx context.Context, s *Service, now time.Time) error
	// tick, optional, runs between batches every Config.ExpiryInterval (the
	// expiry of alerts).
	tick func(ctx context.Context, s *Service) error
	// result is what the batch stored of the kind: its rows new and
	// duplicate, for the metrics and the sources' activity.
	result func(res postgis.Result) postgis.KindResult
}

// kinds are the aggregator's kinds, in the order a batch is split and its
// states published. A built-in kind is its file set (kind_<name>.go, its
// store in postgis) and one line here; a kind registered with internal/kind
// needs neither: registeredKind serves them all.
var kinds = []*kindOps{
	airKind,
	trafficKind,
	waterKind,
	weatherKind,
	reportKind,
	alertKind,
	registeredKind,
}

// lookupKind returns the ops of the kind named name: a built-in kind's, or
// registeredKind for a kind registered with internal/kind.
func lookupKind(name string) (*kindOps, bool) {
	for _, k := range kinds {
		if k != registeredKind && k.name == name {
			return k, true
		}
	}
	if _, ok := kind.Default.Lookup(name); ok {
		return registeredKind, true
	}
	return nil, false
}
