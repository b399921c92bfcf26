package aggregator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/deadletter"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// ActionHandler applies one operator action of its type in tx and returns
// the entity states the action changed, which are published on STATE once
// tx is committed. To refuse an action (an invalid transition, a missing
// target), return an error made by Refuse before changing anything: tx is
// then still committed with whatever the handler wrote to record the
// refusal, and the action is recorded as refused. Any other error rolls tx
// back and the action is retried.
type ActionHandler func(ctx context.Context, tx pgx.Tx, a *iocv1.Action) ([]*iocv1.EntityState, error)

// Refusal is an action refused, with the reason a person can act on.
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return "action refused: " + r.Reason }

// Is makes errors.Is(err, ErrActionRefused) true for every Refusal.
func (r *Refusal) Is(target error) bool { return target == ErrActionRefused }

// Refuse is the error a handler returns to refuse an action for reason.
func Refuse(reason string) error { return &Refusal{Reason: reason} }

// ActionsConfig configures the consumer of the ACTIONS stream.
type ActionsConfig struct {
	// Durable is the consumer's name; empty means "aggregator-actions".
	Durable string
	// FilterSubject selects the actions; empty means every action (ioc.action.>).
	FilterSubject string
	// AckWait is how long JetStream waits for an ack before redelivering; 0 means 30s.
	AckWait time.Duration
	// RetryDelay is how long a failed action waits before it is redelivered; 0 means 1s.
	RetryDelay time.Duration
	// StatementTimeout bounds each statement of an action (a group's union
	// of 5,000 boundaries, say): actions are applied one at a time, and one
	// that ran unbounded would hold every other. An action past it is
	// refused, saying so. 0 means 1 minute; ImportTimeout (0: 30 minutes)
	// bounds those of a map import (unit.import), a whole country's
	// boundaries.
	StatementTimeout, ImportTimeout time.Duration
	// MaxAttempts is how many deliveries an action that fails (an error,
	// not a refusal) gets: at the last, its failure is recorded as its
	// refusal, with the error, rather than retried for ever (a poison
	// action that fails the same way each time). A failure the refusal
	// cannot be recorded in either (the database down) is still retried.
	// 0 means 20.
	MaxAttempts int
}

// Actions consumes operator actions from the ACTIONS stream and applies each
// with the handler registered for its type, in one transaction with its
// audit_log row and the record of its id (so it is applied once however
// often it is delivered), then publishes the states it changed.
type Actions struct {
	cfg     ActionsConfig
	js      jetstream.JetStream
	pool    *pgxpool.Pool
	log     *slog.Logger
	mu      sync.RWMutex
	byType  map[string]ActionHandler
	applied func(a *iocv1.Action) // called after an action is applied (nudges the report sweep)
}

// NewActions returns the consumer; handlers are added with RegisterAction before Run.
func NewActions(cfg ActionsConfig, js jetstream.JetStream, pool *pgxpool.Pool, log *slog.Logger) (*Actions, error) {
	if js == nil || pool == nil {
		return nil, fmt.Errorf("%w: the actions consumer needs JetStream and a database pool", ErrConfig)
	}
	if cfg.Durable == "" {
		cfg.Durable = "aggregator-actions"
	}
	if cfg.FilterSubject == "" {
		cfg.FilterSubject = subjects.ActionsAll
	}
	if cfg.AckWait == 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = time.Second
	}
	if cfg.StatementTimeout == 0 {
		cfg.StatementTimeout = time.Minute
	}
	if cfg.ImportTimeout == 0 {
		cfg.ImportTimeout = 30 * time.Minute
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 20
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Actions{cfg: cfg, js: js, pool: pool, log: log.With("consumer", cfg.Durable), byType: map[string]ActionHandler{}}, nil
}

// RegisterAction makes h the handler of actions of type typ (e.g.
// "report.status", "rule.put"), replacing any earlier one.
func (a *Actions) RegisterAction(typ string, h ActionHandler) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.byType[typ] = h
}

func (a *Actions) handler(typ string) (ActionHandler, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	h, ok := a.byType[typ]
	return h, ok
}

// Run consumes actions until ctx is done, then returns nil. A subscription
// that fails is started again after RetryDelay, on the consumer made again
// (a deleted durable comes back), as the feed reader does.
func (a *Actions) Run(ctx context.Context) error {
	open := func() (jetstream.Consumer, error) {
		return a.js.CreateOrUpdateConsumer(ctx, subjects.StreamActions, jetstream.ConsumerConfig{
			Durable:       a.cfg.Durable,
			Description:   "iochub aggregator: operator actions to PostGIS and STATE",
			FilterSubject: a.cfg.FilterSubject,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       a.cfg.AckWait,
			MaxAckPending: 64,
			DeliverPolicy: jetstream.DeliverAllPolicy,
		})
	}
	cons, err := open()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("creating consumer %s on %s: %w", a.cfg.Durable, subjects.StreamActions, err)
	}
	a.log.Info("actions consumer running", "stream", subjects.StreamActions, "filter", a.cfg.FilterSubject)
	for ctx.Err() == nil {
		if cons == nil {
			if cons, err = open(); err != nil {
				if ctx.Err() == nil {
					a.log.Warn("creating the actions consumer again failed", "err", err)
					sleep(ctx, a.cfg.RetryDelay)
				}
				continue
			}
		}
		if err := a.consume(ctx, cons); err != nil && ctx.Err() == nil {
			a.log.Warn("consuming actions failed; starting again", "err", err)
			cons = nil
			sleep(ctx, a.cfg.RetryDelay)
		}
	}
	return nil
}

// consume handles the actions of one pull subscription, each as it
// arrives, until ctx is done or the subscription fails. The subscription
// lives as long as that (Messages), not a fetch's while: a fetch's inbox
// goes when the server says the fetch is over, and on a replicated
// consumer that word can overtake the deliveries it closes (see
// consume.go), which would then wait AckWait to come again.
func (a *Actions) consume(ctx context.Context, cons jetstream.Consumer) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(16))
	if err != nil {
		return err
	}
	defer it.Stop()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		switch {
		case err == nil:
			a.handle(ctx, m)
		case ctx.Err() != nil:
			a.nakHeld(it)
			return nil
		case errors.Is(err, jetstream.ErrNoHeartbeat):
			// nats.go pulls again at the next Next; the subscription goes on.
			a.log.Warn("actions: a pull's heartbeat was missed", "err", err)
		default:
			return err
		}
	}
}

// nakHeld, once ctx is done, naks the actions the subscription pulled and
// did not hand over yet, so that the next consumer gets them at once, not
// after AckWait: Drain unsubscribes and leaves them to Next, which it waits
// on for stopWait at most (a server out of reach).
func (a *Actions) nakHeld(it jetstream.MessagesContext) {
	it.Drain()
	ctx, cancel := context.WithTimeout(context.Background(), stopWait)
	defer cancel()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return // jetstream.ErrMsgIteratorClosed once all were handed over
		}
		if err := m.Nak(); err != nil {
			a.log.Warn("naking an action at the stop failed", "subject", m.Subject(), "err", err)
		}
	}
}

// handle applies one action message and acks, terms or naks it.
func (a *Actions) handle(ctx context.Context, m jetstream.Msg) {
	act := &iocv1.Action{}
	var reason string
	switch err := proto.Unmarshal(m.Data(), act); {
	case err != nil:
		reason = "unmarshalling Action: " + err.Error()
	case act.GetId() == "" || act.GetType() == "":
		reason = "action has no id or type"
	default:
		reason = unstorableHead(act)
	}
	if reason != "" {
		a.log.Error("terminating undecodable action", "subject", m.Subject(), "reason", reason)
		if err := m.TermWithReason(reason); err != nil {
			a.log.Warn("terminating action failed", "subject", m.Subject(), "err", err)
		}
		return
	}
	states, applied, err := a.Apply(ctx, act)
	if err != nil {
		if ctx.Err() != nil {
			// Stopping: its transaction did not commit, or a redelivery
			// finds it done. Either way the next consumer may have it now.
			if err := m.Nak(); err != nil {
				a.log.Warn("naking action failed", "action", act.GetId(), "err", err)
			}
			return
		}
		if md, merr := m.Metadata(); merr == nil && md.NumDelivered >= uint64(a.cfg.MaxAttempts) {
			rerr := a.refuseFailed(ctx, act, int(md.NumDelivered), err)
			if rerr == nil {
				if err := m.Ack(); err != nil {
					a.log.Warn("acking action failed", "action", act.GetId(), "err", err)
				}
				return
			}
			err = errors.Join(err, rerr)
		}
		a.log.Error("applying action failed; retrying", "action", act.GetId(), "type", act.GetType(), "err", err)
		if err := m.NakWithDelay(a.cfg.RetryDelay); err != nil {
			a.log.Warn("naking action failed", "action", act.GetId(), "err", err)
		}
		return
	}
	// The action is committed, and a redelivery would be recognised as done,
	// so its states are published here or not at all: retry a few times.
	for attempt := 1; ; attempt++ {
		err := a.publish(ctx, states)
		if err == nil || ctx.Err() != nil {
			break
		}
		if attempt == 3 {
			a.log.Error("publishing the states of an action failed; they are published again with the next change", "action", act.GetId(), "err", err)
			break
		}
		a.log.Warn("publishing the states of an action failed; retrying", "action", act.GetId(), "attempt", attempt, "err", err)
		sleep(ctx, a.cfg.RetryDelay)
	}
	if err := m.Ack(); err != nil {
		a.log.Warn("acking action failed", "action", act.GetId(), "err", err)
	}
	if applied && a.applied != nil {
		a.applied(act)
	}
}

// Apply applies act in one transaction: the record of its id, its handler's
// changes and its audit_log row. It returns the states to publish and whether
// the action was applied (false when refused or already handled).
func (a *Actions) Apply(ctx context.Context, act *iocv1.Action) ([]*iocv1.EntityState, bool, error) {
	var (
		states  []*iocv1.EntityState
		applied bool
	)
	rec := postgis.ActionRecord{ID: act.GetId(), Type: act.GetType(), Actor: act.GetActor(), Province: act.GetProvince(),
		TargetKind: act.GetTargetKind(), Target: act.GetTarget()}
	if act.GetAt() != nil {
		rec.At = act.GetAt().AsTime()
	}
	var after []func()
	hctx := context.WithValue(ctx, afterCommitKey{}, &after)
	err := pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
		states, applied, after = nil, false, nil
		fresh, err := postgis.ClaimAction(ctx, tx, rec)
		if err != nil {
			return err
		}
		if !fresh {
			a.log.Debug("action already handled", "action", act.GetId())
			return nil
		}
		result, reason := "applied", ""
		limit := a.cfg.StatementTimeout
		if act.GetType() == ActionUnitImport {
			limit = a.cfg.ImportTimeout
		}
		if err := postgis.SetStatementTimeout(ctx, tx, limit); err != nil {
			return err
		}
		h, ok := a.handler(act.GetType())
		who, stored, why, err := actorNow(ctx, tx, act.GetActor())
		switch {
		case err != nil:
			return err
		case why != "":
			err = Refuse(why)
		case !ok:
			err = Refuse(fmt.Sprintf("action type %q is not known", act.GetType()))
		default:
			actx := hctx
			if stored {
				actx = context.WithValue(hctx, actorKey{}, who)
			}
			states, err = applyIn(actx, tx, h, act, limit)
		}
		var ref *Refusal
		switch {
		case errors.Is(err, errAlreadyDone):
			// Done by an earlier action (an alert acknowledged twice): the
			// earlier one's audit row stands for it; the states, if any, are
			// published again.
			a.log.Debug("action already done by an earlier one", "action", act.GetId(), "type", act.GetType())
			return nil
		case errors.As(err, &ref):
			states, result, reason = nil, "refused", ref.Reason
			if err := postgis.RefuseAction(ctx, tx, act.GetId(), reason); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			applied = true
		}
		detail := map[string]any{"id": act.GetId(), "province": act.GetProvince(), "result": result}
		if reason != "" {
			detail["reason"] = reason
		}
		// The audit row keeps what jsonb can hold: a note or payload with
		// a NUL or bytes not UTF-8 (which the handler then refused, or did
		// without) is named as left out, so that the row, and with it the
		// action's outcome, is stored.
		if n := act.GetNote(); n != "" && storableText("note", n) == nil {
			detail["note"] = n
		} else if n != "" {
			detail["note_left_out"] = "holds a NUL or bytes not UTF-8"
		}
		if p := act.GetPayload(); len(p) > 0 && json.Valid(p) && utf8.Valid(p) && !jsonHasNUL(p) {
			detail["payload"] = json.RawMessage(p)
		} else if len(p) > 0 {
			detail["payload_left_out"] = "not JSON jsonb can hold (a NUL, or bytes not UTF-8)"
		}
		if err := postgis.Audit(ctx, tx, act.GetActor(), act.GetType(), act.GetTargetKind()+":"+act.GetTarget(), detail); err != nil {
			return err
		}
		if result == "refused" {
			a.log.Info("action refused", "action", act.GetId(), "type", act.GetType(), "target", act.GetTarget(), "reason", reason)
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("applying action %s (%s): %w", act.GetId(), act.GetType(), err)
	}
	for _, f := range after {
		f()
	}
	return states, applied, nil
}

// refuseFailed records act as refused after attempts failed deliveries, the
// last failing with cause, in a transaction of its own with its audit row:
// an action that fails the same way at every delivery is not retried for
// ever. An action handled meanwhile (its record committed by an earlier
// delivery) is left as it is.
func (a *Actions) refuseFailed(ctx context.Context, act *iocv1.Action, attempts int, cause error) error {
	reason := fmt.Sprintf("not applied after %d attempts; the last failed: %s", attempts, deadletter.CleanText(cause.Error(), maxFailureReason))
	rec := postgis.ActionRecord{ID: act.GetId(), Type: act.GetType(), Actor: act.GetActor(), Province: act.GetProvince(),
		TargetKind: act.GetTargetKind(), Target: act.GetTarget()}
	if act.GetAt() != nil {
		rec.At = act.GetAt().AsTime()
	}
	err := pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
		fresh, err := postgis.ClaimAction(ctx, tx, rec)
		if err != nil || !fresh {
			return err
		}
		if err := postgis.RefuseAction(ctx, tx, act.GetId(), reason); err != nil {
			return err
		}
		detail := map[string]any{"id": act.GetId(), "province": act.GetProvince(), "result": "refused", "reason": reason}
		return postgis.Audit(ctx, tx, act.GetActor(), act.GetType(), act.GetTargetKind()+":"+act.GetTarget(), detail)
	})
	if err != nil {
		return fmt.Errorf("recording the refusal of action %s: %w", act.GetId(), err)
	}
	a.log.Error("action refused after failing at every attempt", "action", act.GetId(), "type", act.GetType(),
		"attempts", attempts, "err", cause)
	return nil
}

// maxFailureReason bounds the error kept as the reason of a failed action.
const maxFailureReason = 1024

type afterCommitKey struct{}

type actorKey struct{}

// actorNow looks up the actor of an action as it is when the action is
// applied. An actor that is a stored identity (stored true) is returned as
// the principal it now is, which handlers check their targets against
// (actingAs): the gateway checked the identity's scope when it queued the
// action, and it may have narrowed since (the gateway caches identities for
// seconds) or the action may not come from the gateway at all. why says why
// the actor may not act any more, "" when it may: one revoked since (or
// never stored) acts no more once the action is applied, as it would be
// refused at the gateway by then. Actors that are no stored identity (the
// dev token, OIDC subjects, the hub's own: "ingest", "cli") are not looked
// up: nothing here can revoke or narrow them.
func actorNow(ctx context.Context, tx pgx.Tx, actor string) (who auth.Principal, stored bool, why string, err error) {
	id, _, _ := strings.Cut(actor, " as ")
	if auth.CheckID(id) != nil {
		return auth.Principal{}, false, "", nil
	}
	ident, err := postgis.IdentityByID(ctx, tx, id)
	switch {
	case errors.Is(err, postgis.ErrIdentityNotFound):
		return auth.Principal{}, false, fmt.Sprintf("the actor %s is no stored identity", id), nil
	case err != nil:
		return auth.Principal{}, false, "", err
	case ident.Revoked:
		return auth.Principal{}, false, fmt.Sprintf("the actor %s was revoked before the action was applied", id), nil
	}
	return ident.Principal(), true, "", nil
}

// actingAs returns the stored identity that acts in a handler's ctx, as it
// is when the action is applied; false for an actor that is no stored
// identity (or a handler run outside Apply): nothing narrows it.
func actingAs(ctx context.Context) (auth.Principal, bool) {
	p, ok := ctx.Value(actorKey{}).(auth.Principal)
	return p, ok
}

// actorMayNot is the refusal of an action whose actor, as it is now, may
// not do what (as auth words it, to follow "may not").
func actorMayNot(who auth.Principal, what string) error {
	return Refuse(mayNot(who, what))
}

// mayNot is the reason of actorMayNot, for a handler that records it
// elsewhere too (an import's progress record).
func mayNot(who auth.Principal, what string) string {
	return fmt.Sprintf("the actor %s (%s of %s when the action was applied) may not %s",
		who.ID, who.Role, strings.Join(who.Scopes, ","), what)
}

// unstorableHead says what of an action's identifying fields (id, type,
// actor, province, target) PostgreSQL's text cannot hold, "" when all can:
// such an action cannot even be recorded as handled, and is terminated.
func unstorableHead(a *iocv1.Action) string {
	for _, f := range [...]struct{ name, v string }{{"id", a.GetId()}, {"type", a.GetType()}, {"actor", a.GetActor()},
		{"province", a.GetProvince()}, {"target_kind", a.GetTargetKind()}, {"target", a.GetTarget()}} {
		if err := storableText("action "+f.name, f.v); err != nil {
			return err.Error()
		}
	}
	return ""
}

// applyIn runs h in a savepoint of tx. A value of the action the database
// refuses (refusedValue: the same at every delivery) rolls back what h
// wrote and forgets its AfterCommit hooks, and is the action's refusal,
// recorded in tx; without the savepoint the error would abort tx, and the
// action would be retried forever. A handler's refusal, or an action done
// before, keeps what h wrote, as before the savepoint.
func applyIn(ctx context.Context, tx pgx.Tx, h ActionHandler, act *iocv1.Action, limit time.Duration) ([]*iocv1.EntityState, error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("savepoint: %w", err)
	}
	hooks := 0
	after, _ := ctx.Value(afterCommitKey{}).(*[]func())
	if after != nil {
		hooks = len(*after)
	}
	states, err := h(ctx, sp, act)
	var ref *Refusal
	if err == nil || errors.Is(err, errAlreadyDone) || errors.As(err, &ref) {
		if cerr := sp.Commit(ctx); cerr != nil {
			return nil, fmt.Errorf("releasing savepoint: %w", cerr)
		}
		return states, err
	}
	if rerr := sp.Rollback(ctx); rerr != nil {
		return nil, errors.Join(err, fmt.Errorf("rolling back to savepoint: %w", rerr))
	}
	why, ok := refusedValue(err)
	if !ok && ctx.Err() == nil && postgis.ServerTimedOut(err) {
		why, ok = fmt.Sprintf("the action's work ran past its %s limit (a statement was cancelled); ask for less at once", limit), true
	}
	if ok {
		if after != nil {
			*after = (*after)[:hooks]
		}
		return nil, Refuse(why)
	}
	return nil, err
}

// refusedValue reports whether err is the database refusing a value it was
// given (SQLSTATE class 22, data exception: text with a NUL, a time out of
// range; 23514, a check constraint), which no retry changes, and says what
// it refused. A not-null violation is left to retry: a missing value is the
// handler's fault, which a fixed release mends.
func refusedValue(err error) (string, bool) {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return "", false
	}
	if !strings.HasPrefix(pg.Code, "22") && pg.Code != "23514" {
		return "", false
	}
	return fmt.Sprintf("the database refused a value of the action: %s (SQLSTATE %s)", pg.Message, pg.Code), true
}

// AfterCommit makes f run once the transaction of the action whose handler
// got ctx is committed (not when it is rolled back), e.g. to report an
// outcome outside the database only when it is stored. Outside a handler f
// never runs.
func AfterCommit(ctx context.Context, f func()) {
	if after, ok := ctx.Value(afterCommitKey{}).(*[]func()); ok {
		*after = append(*after, f)
	}
}

// publish publishes the states an action changed and waits for their acks.
func (a *Actions) publish(ctx context.Context, states []*iocv1.EntityState) error {
	var futures []jetstream.PubAckFuture
	for _, st := range states {
		at := st.GetUpdatedAt().AsTime()
		msg, err := entityStateMsg(st, st.GetEntityId()+"@"+at.UTC().Format(time.RFC3339Nano), at)
		if err != nil {
			return err
		}
		if err := publishAsync(a.js, &futures, msg); err != nil {
			return err
		}
	}
	timeout := time.NewTimer(a.cfg.AckWait)
	defer timeout.Stop()
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publishing %s: %w", f.Msg().Subject, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout.C:
			return fmt.Errorf("publishing %s: no ack within %s", f.Msg().Subject, a.cfg.AckWait)
		}
	}
	return nil
}
