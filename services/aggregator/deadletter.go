package aggregator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/deadletter"
	"github.com/iochub/iochub/internal/kind"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// Dead letters: an accepted feed item the aggregator cannot store (it does
// not decode, or the database refuses it on its own) is never just
// terminated. Its dead letter (the whole message with the reason, see
// internal/deadletter) is published on DEADLETTER and acked by JetStream
// first; only then is the FEEDS message acked. When that publish fails the
// item stays on FEEDS and is retried after RetryDelay; at its last delivery
// (Config.MaxDeliver), when a nak would let JetStream drop it, the publish is
// retried in place instead.

// deadLetterTimeout bounds the wait for DEADLETTER's ack.
const deadLetterTimeout = 5 * time.Second

// deadLetter moves m to DEADLETTER with the reason err, at stage
// (deadletter.StageDecode or StageStore), and acks it; when the move fails,
// it naks m with RetryDelay so that nothing is lost, or at m's last delivery
// retries the publish until it succeeds or ctx ends.
func (s *Service) deadLetter(ctx context.Context, m jetstream.Msg, stage string, reason error) {
	info := deadletter.Info{Subject: m.Subject(), Stage: stage, Reason: reason.Error(), Time: time.Now()}
	if nc := s.js.Conn(); nc != nil {
		info.MaxPayload = nc.MaxPayload()
	}
	if md, err := m.Metadata(); err == nil {
		info.FeedsSeq, info.Delivered = md.Sequence.Stream, md.NumDelivered
	}
	kind := metricKind(m.Subject())
	letter := deadletter.Build(m.Headers(), m.Data(), info)
	var ack *jetstream.PubAck
	for {
		pctx, cancel := context.WithTimeout(ctx, deadLetterTimeout)
		a, err := s.js.PublishMsg(pctx, letter)
		cancel()
		if err == nil {
			ack = a
			break
		}
		s.m.errors.WithLabelValues("deadletter").Inc()
		s.log.Error("dead-lettering feed message failed; retrying", "subject", m.Subject(), "stage", stage,
			"reason", reason, "err", err)
		if !s.lastDelivery(m) {
			if err := m.NakWithDelay(s.cfg.RetryDelay); err != nil {
				s.log.Warn("naking feed message failed", "subject", m.Subject(), "err", err)
			}
			return
		}
		// At its last delivery a nak would let JetStream drop it: retry here,
		// holding it in progress, until DEADLETTER takes it or shutdown.
		if err := m.InProgress(); err != nil {
			s.log.Warn("extending feed message's ack wait failed", "subject", m.Subject(), "err", err)
		}
		sleep(ctx, s.cfg.RetryDelay)
		if ctx.Err() != nil {
			return
		}
	}
	if !ack.Duplicate { // a retry of one already moved is not a second dead letter
		s.m.deadletters.WithLabelValues(kind, stage).Inc()
	}
	s.log.Error("feed message dead-lettered", "subject", m.Subject(), "stage", stage, "reason", reason,
		"feeds_seq", info.FeedsSeq, "deadletter_seq", ack.Sequence)
	if err := m.Ack(); err != nil {
		// Redelivered, then dead-lettered again under the same Nats-Msg-Id: one dead letter.
		s.m.errors.WithLabelValues("ack").Inc()
		s.log.Warn("acking dead-lettered feed message failed", "subject", m.Subject(), "err", err)
	}
}

// metricKind is the kind of a feed subject as a metric label: one of
// subjects.Kinds or a registered kind, or "other" so that bad subjects cannot
// grow the label set.
func metricKind(subject string) string {
	if _, _, k, err := subjects.ParseFeed(subject); err == nil && kind.Default.Known(k) {
		return k
	}
	return "other"
}

// lastDelivery reports whether m is at its last delivery when the consumer's
// MaxDeliver is bounded: past it, JetStream would drop it silently.
func (s *Service) lastDelivery(m jetstream.Msg) bool {
	if s.cfg.MaxDeliver <= 0 {
		return false
	}
	md, err := m.Metadata()
	return err == nil && md.NumDelivered >= uint64(s.cfg.MaxDeliver)
}

// errDeliveries is the reason of an item dead-lettered at its last delivery.
func errDeliveries(max int, last error) error {
	return fmt.Errorf("not stored after %d deliveries (MaxDeliver); last error: %w", max, last)
}

// DeadletterActions returns the handlers of the operator actions
// deadletter.redrive and deadletter.discard, which act on DEADLETTER through
// js; Apply records each in audit_log. A dead letter that is no longer there
// (redriven, discarded or aged out) refuses the action.
func DeadletterActions(js jetstream.JetStream, keys *natsx.LazyFeedMsgIDKey, log *slog.Logger) (redrive, discard ActionHandler) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if keys == nil {
		keys = natsx.NewLazyFeedMsgIDKey(js)
	}
	target := func(ctx context.Context, tx pgx.Tx, a *iocv1.Action) (deadletter.Letter, error) {
		if a.GetTargetKind() != deadletter.TargetKind {
			return deadletter.Letter{}, Refuse(fmt.Sprintf("target kind is %q; want %s", a.GetTargetKind(), deadletter.TargetKind))
		}
		seq, err := strconv.ParseUint(a.GetTarget(), 10, 64)
		if err != nil || seq == 0 {
			return deadletter.Letter{}, Refuse(fmt.Sprintf("target %q is not a dead letter's sequence", a.GetTarget()))
		}
		l, err := deadletter.Get(ctx, js, seq)
		if errors.Is(err, deadletter.ErrNotFound) {
			return l, Refuse(fmt.Sprintf("dead letter %d does not exist (redriven, discarded or aged out)", seq))
		}
		if err == nil && l.Province != a.GetProvince() {
			return l, Refuse(fmt.Sprintf("dead letter %d is of province %q, the action of %q", seq, l.Province, a.GetProvince()))
		}
		if err == nil {
			err = letterActable(ctx, tx, a.GetType(), l)
		}
		return l, err
	}
	// The dead letter is deleted once the action's transaction has
	// committed (AfterCommit): deleted before, a transaction rolled back
	// after (the commit failing) left the action to be applied again, which
	// found the letter gone and recorded the redrive as refused. Published
	// again instead, the item is one on FEEDS (its message id) and in the
	// store ((source, event id)).
	drop := func(ctx context.Context, l deadletter.Letter, what string) {
		AfterCommit(ctx, func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := deadletter.Discard(dctx, js, l.Sequence); err != nil && !errors.Is(err, deadletter.ErrNotFound) {
				log.Warn("deleting a dead letter failed; it stays listed", "after", what, "seq", l.Sequence, "err", err)
			}
		})
	}
	redrive = func(ctx context.Context, tx pgx.Tx, a *iocv1.Action) ([]*iocv1.EntityState, error) {
		l, err := target(ctx, tx, a)
		if err != nil {
			return nil, err
		}
		k, err := keys.Get(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := deadletter.Republish(ctx, js, k, l.Sequence); err != nil {
			if errors.Is(err, deadletter.ErrNotRedrivable) || errors.Is(err, deadletter.ErrNotFound) {
				return nil, Refuse(err.Error())
			}
			return nil, err
		}
		drop(ctx, l, "redriven")
		log.Info("dead letter redriven", "seq", l.Sequence, "subject", l.Subject, "event", l.EventID, "actor", a.GetActor())
		return nil, nil
	}
	discard = func(ctx context.Context, tx pgx.Tx, a *iocv1.Action) ([]*iocv1.EntityState, error) {
		l, err := target(ctx, tx, a)
		if err != nil {
			return nil, err
		}
		drop(ctx, l, "discarded")
		log.Info("dead letter discarded", "seq", l.Sequence, "subject", l.Subject, "event", l.EventID,
			"reason", l.Reason, "actor", a.GetActor())
		return nil, nil
	}
	return redrive, discard
}

// letterActable refuses an action of type typ on dead letter l by an
// acting stored identity that may not act on it as it is now
// (auth.Principal.CanActDeadLetter, the gateway's rule at queue time), the
// unit its original subject names placed in the current units.
func letterActable(ctx context.Context, tx pgx.Tx, typ string, l deadletter.Letter) error {
	who, ok := actingAs(ctx)
	if !ok {
		return nil
	}
	codes := []string{l.Province}
	if _, unit, _, err := subjects.ParseFeed(l.Subject); err == nil {
		codes = append(codes, unit)
	}
	tree, err := postgis.UnitTreeOf(ctx, tx, codes)
	if err != nil {
		return err
	}
	if !who.CanActDeadLetter(tree, l.Province, l.Kind, l.Subject) {
		what := "redrive"
		if typ == deadletter.ActionDiscard {
			what = "discard"
		}
		return actorMayNot(who, fmt.Sprintf("%s dead letter %d of province %q, subject %s (operator role in its province or unit, reading kind %q, needed)",
			what, l.Sequence, l.Province, l.Subject, l.Kind))
	}
	return nil
}
