package aggregator

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/iochub/iochub/internal/auth"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// Types of the actions on identities (target kind "identity", target the identity id).
const (
	// ActionIdentityCreate stores a new identity; the payload is IdentityPayload.
	ActionIdentityCreate = "identity.create"
	// ActionIdentityRevoke revokes an identity; the payload is empty.
	ActionIdentityRevoke = "identity.revoke"
)

const targetKindIdentity = "identity"

// IdentityPayload is the payload of identity.create. The gateway made the
// token and sends only its SHA-256: the token itself never leaves the gateway's answer.
type IdentityPayload struct {
	Name   string   `json:"name"`
	Role   string   `json:"role"`
	Scopes []string `json:"scopes"`
	// Kinds narrows what the identity reads; empty is every kind.
	Kinds []string `json:"kinds,omitempty"`
	// TokenSHA256 is the hex SHA-256 of the identity's bearer token.
	TokenSHA256 string `json:"tokenSha256"`
}

// IdentityActions returns the handlers of identity.create and identity.revoke.
// The gateway has checked that the actor may grant the scopes, or manages
// the identity it revokes; the aggregator checks it again, of the actor as
// it is now, checks the identity itself and records the change (the Apply
// audit row names the actor).
func IdentityActions() (create, revoke ActionHandler) {
	create = func(ctx context.Context, tx pgx.Tx, a *iocv1.Action) ([]*iocv1.EntityState, error) {
		if a.GetTargetKind() != targetKindIdentity {
			return nil, Refuse(fmt.Sprintf("target kind is %q; want identity", a.GetTargetKind()))
		}
		var p IdentityPayload
		if err := json.Unmarshal(a.GetPayload(), &p); err != nil {
			return nil, Refuse("payload: " + err.Error())
		}
		sum, err := hex.DecodeString(p.TokenSHA256)
		if err != nil {
			return nil, Refuse("payload tokenSha256: not hex")
		}
		scopes, err := auth.NormalizeScopes(p.Scopes)
		if err != nil {
			return nil, Refuse(err.Error())
		}
		kinds, err := auth.NormalizeKinds(p.Kinds)
		if err != nil {
			return nil, Refuse(err.Error())
		}
		id := auth.Identity{ID: a.GetTarget(), Name: p.Name, Role: auth.Role(p.Role), Scopes: scopes, Kinds: kinds, TokenSHA256: sum}
		if err := id.Check(); err != nil {
			return nil, Refuse(err.Error())
		}
		if err := grantable(ctx, tx, scopes, kinds); err != nil {
			return nil, err
		}
		if err := postgis.InsertIdentity(ctx, tx, id, a.GetActor()); err != nil {
			if errors.Is(err, postgis.ErrIdentityExists) {
				return nil, Refuse(err.Error())
			}
			return nil, err
		}
		return nil, nil
	}
	revoke = func(ctx context.Context, tx pgx.Tx, a *iocv1.Action) ([]*iocv1.EntityState, error) {
		if a.GetTargetKind() != targetKindIdentity {
			return nil, Refuse(fmt.Sprintf("target kind is %q; want identity", a.GetTargetKind()))
		}
		if err := revocable(ctx, tx, a.GetTarget()); err != nil {
			return nil, err
		}
		if _, err := postgis.RevokeIdentity(ctx, tx, a.GetTarget(), a.GetActor()); err != nil {
			if errors.Is(err, postgis.ErrIdentityNotFound) {
				return nil, Refuse(err.Error())
			}
			return nil, err
		}
		return nil, nil
	}
	return create, revoke
}

// grantable refuses an identity of scopes and kinds that the acting stored
// identity may not grant as it is now (auth.Principal.GrantRefusal, the
// gateway's rule at queue time), the scopes placed in the current units.
func grantable(ctx context.Context, tx pgx.Tx, scopes, kinds []string) error {
	who, ok := actingAs(ctx)
	if !ok {
		return nil
	}
	tree, err := postgis.UnitTreeOf(ctx, tx, scopes)
	if err != nil {
		return err
	}
	if why := who.GrantRefusal(tree, scopes, kinds); why != "" {
		return actorMayNot(who, why)
	}
	return nil
}

// revocable refuses the revocation of identity id by an acting stored
// identity that does not manage it as it is now
// (auth.Principal.ManagesIdentity, the gateway's rule at queue time: an
// admin covering every scope and kind of the identity), its scopes placed
// in the current units.
func revocable(ctx context.Context, tx pgx.Tx, id string) error {
	who, ok := actingAs(ctx)
	if !ok {
		return nil
	}
	target, err := postgis.IdentityByID(ctx, tx, id)
	if errors.Is(err, postgis.ErrIdentityNotFound) {
		return Refuse(err.Error())
	}
	if err != nil {
		return err
	}
	tree, err := postgis.UnitTreeOf(ctx, tx, target.Scopes)
	if err != nil {
		return err
	}
	if !who.ManagesIdentity(tree, target.Scopes, target.Kinds) {
		kinds := "every kind"
		if len(target.Kinds) > 0 {
			kinds = "kinds " + strings.Join(target.Kinds, ",")
		}
		return actorMayNot(who, fmt.Sprintf("revoke identity %s of scopes %s and %s (an admin revokes only identities within its own provinces or units and kinds)",
			id, strings.Join(target.Scopes, ","), kinds))
	}
	return nil
}
