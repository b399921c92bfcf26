package edge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/iochub/iochub/internal/natsx"
)

// How the hub reads the edges' records of lost items: iochub edge-list
// shows them, and the hub's aggregator exports them on its /metrics
// (LostPoller). Both ask each edge itself, through its domain, on a
// connection of their own whose replies come under natsx.EdgeReplyInbox,
// the only replies the edge's leaf user may send the hub.

// EdgeUnsent is the answer of one edge to ReadUnsentOf.
type EdgeUnsent struct {
	Domain string
	Record UnsentRecord
	// Err is why the edge's record could not be read: ErrNoUnsentRecord
	// for an edge that keeps none, context.DeadlineExceeded for one that
	// did not answer in time, nats.ErrNoResponders for one cut off.
	Err error
	// timeout is how long the read waited (Reason).
	timeout time.Duration
}

// Reason says why the record could not be read, in the words an operator
// acts on (iochub edge-list, the poll's log); "" when it was read.
func (u EdgeUnsent) Reason() string {
	switch {
	case u.Err == nil:
		return ""
	case errors.Is(u.Err, ErrNoUnsentRecord):
		return "the edge keeps no record: update it"
	case errors.Is(u.Err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer in %s", u.timeout)
	case errors.Is(u.Err, nats.ErrNoResponders):
		return "unreachable"
	}
	return u.Err.Error()
}

// DefaultStatusQueries is how many edges ReadUnsentOf asks at once unless
// told otherwise.
const DefaultStatusQueries = 16

// ReadUnsentOf reads the records of the edges of srcs, at most limit at once
// (0: DefaultStatusQueries), each within timeout, each on a connection of
// its own opened with opts (the hub's URL and credentials, as a service's
// nats.Conn.Opts): name names the connections. The answers are in the order
// of srcs.
func ReadUnsentOf(ctx context.Context, opts nats.Options, name string, srcs []natsx.EdgeSourceState, timeout time.Duration, limit int) []EdgeUnsent {
	if limit <= 0 {
		limit = DefaultStatusQueries
	}
	out := make([]EdgeUnsent, len(srcs))
	var g errgroup.Group
	g.SetLimit(limit)
	for i, src := range srcs {
		d := src.Domain
		g.Go(func() error {
			r, err := readUnsentAt(ctx, opts, name, d, timeout)
			out[i] = EdgeUnsent{Domain: d, Record: r, Err: err, timeout: timeout}
			return nil
		})
	}
	_ = g.Wait() // each answer carries its error
	return out
}

// readUnsentAt reads the record of the edge of domain within timeout on a
// connection opened with opts and closed before it returns.
func readUnsentAt(parent context.Context, opts nats.Options, name, domain string, timeout time.Duration) (UnsentRecord, error) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	opts.Name, opts.Timeout = name, timeout
	// One dial, no retries: opts may come from a service's connection
	// (natsx.Connect retries a failed first dial in the background, which
	// would leave the read waiting out its timeout and the hub's own NATS
	// being down blamed on the edge).
	opts.AllowReconnect, opts.RetryOnFailedConnect = false, false
	if err := nats.CustomInboxPrefix(natsx.EdgeReplyInbox(domain))(&opts); err != nil {
		return UnsentRecord{}, err
	}
	if err := ctx.Err(); err != nil { // the poll stopped while this edge waited for its turn
		return UnsentRecord{}, err
	}
	nc, err := opts.Connect()
	if err != nil {
		return UnsentRecord{}, fmt.Errorf("connecting: %w", natsx.RedactError(err))
	}
	defer nc.Close()
	js, err := jetstream.NewWithDomain(nc, domain)
	if err != nil {
		return UnsentRecord{}, err
	}
	return ReadUnsent(ctx, js)
}
