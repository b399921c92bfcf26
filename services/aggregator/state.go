package aggregator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// stateMsg builds the STATE message of one changed entity: the fields every
// state has here, the kind's by its state hook.
func stateMsg(dm decodedMsg, c postgis.Changed) (*nats.Msg, error) {
	d := dm.d
	if d.ops == nil || d.ops.state == nil {
		return nil, fmt.Errorf("building state of kind %q: %w", d.kind, ErrUnsupportedKind)
	}
	st := &iocv1.EntityState{
		Layer:     d.kind,
		Province:  d.province,
		Unit:      d.unit,
		UpdatedAt: timestamppb.New(c.UpdatedAt),
	}
	ev := ce.Event{Source: ce.SourceURN(d.province, d.unit), Type: ce.StateType(d.kind)}
	d.ops.state(&d, c, st, &ev)
	ev.Subject = st.EntityId
	var raw []byte
	if dm.msg != nil && !d.edited {
		raw = dm.msg.Data()
	}
	body, err := marshalState(st, d.msg, raw)
	if err != nil {
		return nil, fmt.Errorf("marshalling state of %s %s: %w", d.kind, st.EntityId, err)
	}
	return &nats.Msg{
		Subject: subjects.State(d.province, d.kind, st.EntityId),
		Header:  ev.Header(),
		Data:    body,
	}, nil
}

// latestOneof is EntityState's oneof latest: the event that made the state.
var latestOneof = (&iocv1.EntityState{}).ProtoReflect().Descriptor().Oneofs().ByName("latest")

// marshalState encodes st. When st's latest event is decoded, the message
// the kind decoded from the feed message's bytes raw, raw is written as that
// field instead of encoding decoded again: encoded once by the ingest, its
// bytes are shared. The caller passes raw only when decoded is as it came
// (decoded.edited: not a water observation given its station's alarm
// levels; reports' states are the stored report, never decoded). Protobuf reads a message's fields in
// any order and keeps unknown fields either way, so a reader gets what
// proto.Marshal(st) would give (TestMarshalStateSharesFeedBytes); the
// encoding of an air observation again was ~6 µs of each event's CPU in
// the drain (docs/benchmarks.md). st's latest is cleared when raw is used.
func marshalState(st *iocv1.EntityState, decoded proto.Message, raw []byte) ([]byte, error) {
	m := st.ProtoReflect()
	fd := m.WhichOneof(latestOneof)
	if fd == nil || decoded == nil || len(raw) == 0 || m.Get(fd).Message().Interface() != decoded {
		return proto.Marshal(st)
	}
	m.Clear(fd)
	// Room for st's own fields (ids, times, the VN_AQI) and raw's.
	b, err := proto.MarshalOptions{}.MarshalAppend(make([]byte, 0, 192+len(raw)), st)
	if err != nil {
		return nil, err
	}
	b = protowire.AppendTag(b, fd.Number(), protowire.BytesType)
	return protowire.AppendBytes(b, raw), nil
}

// noRetry keeps nats.go from publishing a state again by itself when
// JetStream had no responder (STATE unavailable): its retry, 250 ms later,
// could land after the newer state a later batch published meanwhile. The
// batch is naked instead, and its redelivery publishes only what is still
// the newest stored state.
var noRetry = jetstream.WithRetryAttempts(0)

// publishStates publishes the state of every changed entity and every
// roll-up the batch changed asynchronously; it returns the futures of their
// acks (see waitAcks).
func (s *Service) publishStates(p *pending, res postgis.Result) ([]jetstream.PubAckFuture, error) {
	var futures []jetstream.PubAckFuture
	publish := func(msg *nats.Msg) error {
		err := publishAsync(s.js, &futures, msg, noRetry)
		if errors.Is(err, nats.ErrMaxPayload) {
			// No retry publishes it, and its event is stored: the batch
			// goes on without it rather than being retried forever with
			// its batch-mates. (The ingest keeps room for what a state
			// adds to its event: only a server whose max payload shrank
			// since gets here.)
			s.m.errors.WithLabelValues("state-too-large").Inc()
			s.log.Error("a state is larger than the server's max payload; not published", "subject", msg.Subject,
				"bytes", len(msg.Data), "err", err)
			return nil
		}
		return err
	}
	for _, k := range kinds {
		items := p.items[k]
		if k.changed != nil {
			for _, c := range k.changed(res) {
				if c.Index < 0 || c.Index >= len(items) {
					return nil, fmt.Errorf("store reported changed %s row %d of %d: %w", k.name, c.Index, len(items), ErrBadResult)
				}
				msg, err := stateMsg(items[c.Index], c)
				if err != nil {
					return nil, err
				}
				if err := publish(msg); err != nil {
					return nil, err
				}
			}
		}
		if k.more == nil {
			continue
		}
		msgs, err := k.more(s, res)
		if err != nil {
			return nil, err
		}
		for _, msg := range msgs {
			if err := publish(msg); err != nil {
				return nil, err
			}
		}
	}
	for _, r := range res.Rollups {
		msg, err := rollupMsg(r)
		if err != nil {
			return nil, err
		}
		if err := publishAsync(s.js, &futures, msg, noRetry); err != nil {
			return nil, err
		}
	}
	return futures, nil
}

// publishAsync publishes msg without waiting for its ack and appends the
// ack's future to futures.
func publishAsync(js jetstream.JetStream, futures *[]jetstream.PubAckFuture, msg *nats.Msg, opts ...jetstream.PublishOpt) error {
	f, err := js.PublishMsgAsync(msg, opts...)
	if err != nil {
		return fmt.Errorf("publishing %s: %w", msg.Subject, err)
	}
	*futures = append(*futures, f)
	return nil
}

// waitAcks waits for every publish to be acked, for AckWait at most.
func (s *Service) waitAcks(ctx context.Context, futures []jetstream.PubAckFuture) (int, error) {
	timeout := time.NewTimer(s.cfg.AckWait)
	defer timeout.Stop()
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return 0, fmt.Errorf("publishing %s: %w", f.Msg().Subject, err)
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-timeout.C:
			return 0, fmt.Errorf("publishing %s: no ack within %s: %w", f.Msg().Subject, s.cfg.AckWait, nats.ErrTimeout)
		}
	}
	return len(futures), nil
}
