package aggregator

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/iochub/iochub/internal/auth"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

func TestIdentityActions(t *testing.T) {
	pool := testDB(t)
	ctx := context.Background()
	create, revoke := IdentityActions()
	apply := func(h ActionHandler, a *iocv1.Action) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := h(ctx, tx, a)
			return err
		})
	}
	_, sum := auth.NewToken()
	payload := func(change func(*IdentityPayload)) string {
		p := IdentityPayload{Name: "Wall, Hà Nội", Role: "viewer", Scopes: []string{"01"}, TokenSHA256: hex.EncodeToString(sum)}
		if change != nil {
			change(&p)
		}
		b, _ := json.Marshal(p)
		return string(b)
	}
	id := auth.NewID()
	act := func(typ, kind, target, body string) *iocv1.Action {
		return &iocv1.Action{Id: "x", Type: typ, Actor: "id_00000000000000aa", TargetKind: kind, Target: target, Payload: []byte(body)}
	}
	for _, tt := range []struct {
		name string
		h    ActionHandler
		a    *iocv1.Action
		want string
	}{
		{"not an identity", create, act(ActionIdentityCreate, "rule", id, payload(nil)), `target kind is "rule"`},
		{"not JSON", create, act(ActionIdentityCreate, "identity", id, "{"), "payload"},
		{"bad hash", create, act(ActionIdentityCreate, "identity", id, payload(func(p *IdentityPayload) { p.TokenSHA256 = "zz" })), "tokenSha256"},
		{"short hash", create, act(ActionIdentityCreate, "identity", id, payload(func(p *IdentityPayload) { p.TokenSHA256 = "abcd" })), "token hash"},
		{"bad role", create, act(ActionIdentityCreate, "identity", id, payload(func(p *IdentityPayload) { p.Role = "root" })), `role "root"`},
		{"bad scope", create, act(ActionIdentityCreate, "identity", id, payload(func(p *IdentityPayload) { p.Scopes = []string{"h n"} })), `scope "h n"`},
		{"bad id", create, act(ActionIdentityCreate, "identity", "admin", payload(nil)), `identity id "admin"`},
		{"revoke missing", revoke, act(ActionIdentityRevoke, "identity", id, ""), "identity not found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := apply(tt.h, tt.a)
			if !errors.Is(err, ErrActionRefused) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v; want a refusal naming %q", err, tt.want)
			}
		})
	}
	if err := apply(create, act(ActionIdentityCreate, "identity", id, payload(nil))); err != nil {
		t.Fatal(err)
	}
	var createdBy string
	var scopes []string
	if err := pool.QueryRow(ctx, `SELECT created_by, scopes FROM identity WHERE id = $1 AND revoked_at IS NULL`, id).Scan(&createdBy, &scopes); err != nil ||
		createdBy != "id_00000000000000aa" || len(scopes) != 1 || scopes[0] != "01" {
		t.Fatalf("stored identity: %q %v %v; want created by the actor, scopes [01]", createdBy, scopes, err)
	}
	// A duplicate is refused without aborting the transaction, which must
	// still record the refusal (else the action would be retried for ever).
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := create(ctx, tx, act(ActionIdentityCreate, "identity", auth.NewID(), payload(nil)))
		if !errors.Is(err, ErrActionRefused) {
			t.Errorf("a second identity with the same token hash: %v; want refused", err)
		}
		_, err = tx.Exec(ctx, `SELECT 1`)
		return err
	})
	if err != nil {
		t.Errorf("the transaction after a refused duplicate: %v; want it usable", err)
	}
	if err := apply(revoke, act(ActionIdentityRevoke, "identity", id, "")); err != nil {
		t.Fatal(err)
	}
	if err := apply(revoke, act(ActionIdentityRevoke, "identity", id, "")); err != nil {
		t.Errorf("revoking again: %v; want nothing done", err)
	}
	var revokedBy string
	if err := pool.QueryRow(ctx, `SELECT revoked_by FROM identity WHERE id = $1 AND revoked_at IS NOT NULL`, id).Scan(&revokedBy); err != nil || revokedBy != "id_00000000000000aa" {
		t.Errorf("revoked_by = %q, %v; want the actor", revokedBy, err)
	}
}

// TestActionOfRevokedActor: the gateway checks an identity when it queues
// its action; one revoked before the aggregator applies the action (or
// never stored) is refused there, the reason recorded, nothing changed.
func TestActionOfRevokedActor(t *testing.T) {
	ctx := context.Background()
	pool := testDB(t)
	acts, err := NewActions(ActionsConfig{}, testNATS(t).JS, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	create, revoke := IdentityActions()
	acts.RegisterAction(ActionIdentityCreate, create)
	acts.RegisterAction(ActionIdentityRevoke, revoke)
	acts.RegisterAction("test.write", func(ctx context.Context, tx pgx.Tx, a *iocv1.Action) ([]*iocv1.EntityState, error) {
		_, err := tx.Exec(ctx, `INSERT INTO audit_log (actor, action, target, detail) VALUES ($1, 'test.written', $2, '{}')`, a.GetActor(), a.GetId())
		return nil, err
	})
	_, sum := auth.NewToken()
	p, _ := json.Marshal(IdentityPayload{Name: "Ca đêm", Role: "operator", Scopes: []string{"01"}, TokenSHA256: hex.EncodeToString(sum)})
	op := auth.NewID()
	if _, applied, err := acts.Apply(ctx, &iocv1.Action{Id: "mk", Type: ActionIdentityCreate, Actor: "dev", TargetKind: "identity", Target: op, Payload: p}); err != nil || !applied {
		t.Fatalf("creating the operator: applied %v, %v", applied, err)
	}
	write := func(id, actor string) *iocv1.Action {
		return &iocv1.Action{Id: id, Type: "test.write", Actor: actor, Province: "01", TargetKind: "x", Target: id}
	}
	for _, tc := range []struct {
		name, actor string
		want        bool
	}{
		{"live", op + " as Lan", true},
		{"static", "dev", true},
		{"never stored", auth.NewID(), false},
	} {
		if _, applied, err := acts.Apply(ctx, write("w-"+tc.name, tc.actor)); err != nil || applied != tc.want {
			t.Errorf("%s actor: applied %v, %v; want %v", tc.name, applied, err, tc.want)
		}
	}
	// Queued while live, applied after the revocation.
	if _, applied, err := acts.Apply(ctx, &iocv1.Action{Id: "rv", Type: ActionIdentityRevoke, Actor: "dev", TargetKind: "identity", Target: op}); err != nil || !applied {
		t.Fatalf("revoking the operator: applied %v, %v", applied, err)
	}
	if _, applied, err := acts.Apply(ctx, write("w-revoked", op+" as Lan")); err != nil || applied {
		t.Fatalf("an action of the revoked operator: applied %v, %v; want refused", applied, err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'test.written' AND target = 'w-revoked'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the revoked operator's action wrote %d rows (%v); want none", n, err)
	}
	var result, reason string
	if err := pool.QueryRow(ctx, `SELECT result, reason FROM action_done WHERE id = 'w-revoked'`).Scan(&result, &reason); err != nil ||
		result != "refused" || !strings.Contains(reason, op+" was revoked") {
		t.Errorf("the revoked operator's action: %s %q (%v); want refused, naming the revocation", result, reason, err)
	}
}
