package aggregator

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/testenv"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
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

// storeIdentity stores an identity of role, scopes and kinds as the iochub
// command does and returns its id.
func storeIdentity(t *testing.T, pool *pgxpool.Pool, role auth.Role, scopes []string, kinds ...string) string {
	t.Helper()
	id, _, err := postgis.CreateIdentityCLI(context.Background(), pool, "Ca "+string(role), role, scopes, kinds)
	if err != nil {
		t.Fatal(err)
	}
	return id.ID
}

// narrowIdentity gives identity id the scopes, as if narrowed after it
// queued an action and before the action is applied.
func narrowIdentity(t *testing.T, pool *pgxpool.Pool, id string, scopes ...string) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `UPDATE identity SET scopes = $2 WHERE id = $1`, id, scopes); err != nil {
		t.Fatal(err)
	}
}

// actionOutcome is the result and reason recorded for action id, as
// GET /v1/actions/{id} shows them.
func actionOutcome(t *testing.T, pool *pgxpool.Pool, id string) (result, reason string) {
	t.Helper()
	if err := pool.QueryRow(context.Background(), `SELECT result, reason FROM action_done WHERE id = $1`, id).Scan(&result, &reason); err != nil {
		t.Fatalf("the outcome of action %s: %v", id, err)
	}
	return result, reason
}

// TestIdentityCreateWithinActorScope: an identity.create is applied only
// when its actor, as it is when the action is applied, may grant what it
// grants (the gateway's rule at queue time): an admin whose scope narrowed
// since, or an action queued by something other than the gateway, grants
// nothing beyond the actor's scopes, kinds and role. The refusal is
// recorded with its reason and no identity is stored.
func TestIdentityCreateWithinActorScope(t *testing.T) {
	ctx := context.Background()
	pool := testenv.PostGISWithUnits(t).Pool
	acts, err := NewActions(ActionsConfig{}, testNATS(t).JS, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	create, _ := IdentityActions()
	acts.RegisterAction(ActionIdentityCreate, create)
	admin01 := storeIdentity(t, pool, auth.RoleAdmin, []string{"01"})
	adminWard := storeIdentity(t, pool, auth.RoleAdmin, []string{"00070"}) // a ward of Hà Nội (01)
	adminAir := storeIdentity(t, pool, auth.RoleAdmin, []string{"01"}, "air")
	operator01 := storeIdentity(t, pool, auth.RoleOperator, []string{"01"})
	narrowed := storeIdentity(t, pool, auth.RoleAdmin, []string{"01"})
	narrowIdentity(t, pool, narrowed, "00070")

	grant := func(actionID, actor, role string, scopes []string, kinds ...string) *iocv1.Action {
		_, sum := auth.NewToken()
		p, _ := json.Marshal(IdentityPayload{Name: "Ca đêm", Role: role, Scopes: scopes, Kinds: kinds, TokenSHA256: hex.EncodeToString(sum)})
		return &iocv1.Action{Id: actionID, Type: ActionIdentityCreate, Actor: actor, Province: "01", TargetKind: "identity",
			Target: auth.NewID(), Payload: p}
	}
	for _, tc := range []struct {
		name string
		a    *iocv1.Action
		want string // in the refusal's reason; "" = applied
	}{
		{"a ward of its province", grant("g-ward", admin01+" as Lan", "viewer", []string{"00070"}), ""},
		{"its province, as admin", grant("g-prov", admin01, "admin", []string{"01"}), ""},
		{"within its ward", grant("g-in-ward", adminWard, "operator", []string{"00070"}), ""},
		{"its kind", grant("g-air", adminAir, "viewer", []string{"01"}, "air"), ""},
		{"another province", grant("g-79", admin01, "viewer", []string{"79"}), "grant scopes 79"},
		{"every province", grant("g-all", admin01, "viewer", []string{"*"}), "grant scopes *"},
		{"its ward's province", grant("g-up", adminWard, "viewer", []string{"01"}), "grant scopes 01"},
		{"a ward beside its ward", grant("g-beside", adminWard, "viewer", []string{"00004"}), "grant scopes 00004"},
		{"a kind it does not read", grant("g-water", adminAir, "viewer", []string{"01"}, "water"), "grant kinds water"},
		{"every kind, reading one", grant("g-kinds", adminAir, "viewer", []string{"01"}), "grant every kind"},
		{"not an admin", grant("g-op", operator01, "viewer", []string{"01"}), "admin role needed"},
		{"narrowed since it was queued", grant("g-narrowed", narrowed+" as Lan", "viewer", []string{"00004"}), "grant scopes 00004"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, applied, err := acts.Apply(ctx, tc.a)
			if err != nil || applied != (tc.want == "") {
				t.Fatalf("applied %v, %v; want applied %v", applied, err, tc.want == "")
			}
			result, reason := actionOutcome(t, pool, tc.a.GetId())
			var n int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM identity WHERE id = $1`, tc.a.GetTarget()).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if result != "applied" || n != 1 {
					t.Errorf("recorded %s %q, %d identities stored; want applied, 1", result, reason, n)
				}
				return
			}
			if result != "refused" || !strings.Contains(reason, tc.want) || !strings.Contains(reason, "may not") || n != 0 {
				t.Errorf("recorded %s %q, %d identities stored; want refused naming %q, none stored", result, reason, n, tc.want)
			}
		})
	}
}

// TestIdentityRevokeWithinActorScope: an identity.revoke is applied only
// when its actor, as it is when the action is applied, manages the identity
// it revokes (the gateway's rule at queue time: an admin covering every
// scope and kind of it). An admin whose scope narrowed since, or an action
// queued by something other than the gateway, revokes nothing beyond it:
// the refusal is recorded with its reason and the identity stays live.
func TestIdentityRevokeWithinActorScope(t *testing.T) {
	ctx := context.Background()
	pool := testenv.PostGISWithUnits(t).Pool
	acts, err := NewActions(ActionsConfig{}, testNATS(t).JS, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, revoke := IdentityActions()
	acts.RegisterAction(ActionIdentityRevoke, revoke)
	admin01 := storeIdentity(t, pool, auth.RoleAdmin, []string{"01"})
	adminWard := storeIdentity(t, pool, auth.RoleAdmin, []string{"00070"}) // a ward of Hà Nội (01)
	adminAir := storeIdentity(t, pool, auth.RoleAdmin, []string{"01"}, "air")
	operator01 := storeIdentity(t, pool, auth.RoleOperator, []string{"01"})
	narrowed := storeIdentity(t, pool, auth.RoleAdmin, []string{"01"})
	narrowIdentity(t, pool, narrowed, "00070")
	viewer := func(scopes []string, kinds ...string) string {
		return storeIdentity(t, pool, auth.RoleViewer, scopes, kinds...)
	}
	ward, ward2, beside, prov, prov79 := viewer([]string{"00070"}), viewer([]string{"00070"}), viewer([]string{"00004"}), viewer([]string{"01"}), viewer([]string{"79"})
	air := viewer([]string{"01"}, "air")

	revokeOf := func(actionID, actor, target string) *iocv1.Action {
		return &iocv1.Action{Id: actionID, Type: ActionIdentityRevoke, Actor: actor, Province: "01", TargetKind: "identity", Target: target}
	}
	for _, tc := range []struct {
		name string
		a    *iocv1.Action
		want string // in the refusal's reason; "" = applied
	}{
		{"another province", revokeOf("r-79", admin01, prov79), "revoke identity " + prov79 + " of scopes 79"},
		{"its ward's province", revokeOf("r-up", adminWard, prov), "revoke identity " + prov + " of scopes 01"},
		{"a ward beside its ward", revokeOf("r-beside", adminWard, beside), "of scopes 00004"},
		{"every kind, reading one", revokeOf("r-kinds", adminAir, prov), "of scopes 01 and every kind"},
		{"not an admin", revokeOf("r-op", operator01, ward), "revoke identity " + ward},
		{"narrowed since it was queued", revokeOf("r-narrowed", narrowed+" as Lan", beside), "of scopes 00004"},
		{"a ward of its province", revokeOf("r-ward", admin01+" as Lan", ward), ""},
		{"its kind", revokeOf("r-air", adminAir, air), ""},
		{"within its narrowed scope", revokeOf("r-narrowed-in", narrowed, ward2), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, applied, err := acts.Apply(ctx, tc.a)
			if err != nil || applied != (tc.want == "") {
				t.Fatalf("applied %v, %v; want applied %v", applied, err, tc.want == "")
			}
			result, reason := actionOutcome(t, pool, tc.a.GetId())
			var revoked bool
			if err := pool.QueryRow(ctx, `SELECT revoked_at IS NOT NULL FROM identity WHERE id = $1`, tc.a.GetTarget()).Scan(&revoked); err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if result != "applied" || !revoked {
					t.Errorf("recorded %s %q, revoked %v; want applied, revoked", result, reason, revoked)
				}
				return
			}
			if result != "refused" || !strings.Contains(reason, tc.want) || !strings.Contains(reason, "may not") || revoked {
				t.Errorf("recorded %s %q, revoked %v; want refused naming %q, still live", result, reason, revoked, tc.want)
			}
		})
	}
}
