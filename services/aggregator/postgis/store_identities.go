package postgis

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/iochub/iochub/internal/auth"
)

// ErrIdentityExists is returned when an identity id or token hash is taken.
var ErrIdentityExists = errors.New("identity already exists")

// ErrIdentityNotFound is returned when no identity has the given id.
var ErrIdentityNotFound = errors.New("identity not found")

const (
	// sqlIdentityInsert stores nothing when the id or the token hash is taken,
	// so a duplicate is refused without aborting the transaction (which still
	// records the refusal).
	sqlIdentityInsert = `INSERT INTO identity (id, name, role, scopes, kinds, token_sha256, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`
	// sqlIdentityRevoke revokes a live identity and returns it; no row when it is revoked already or absent.
	sqlIdentityRevoke = `UPDATE identity SET revoked_at = now(), revoked_by = $2
WHERE id = $1 AND revoked_at IS NULL RETURNING name, role, scopes`
	sqlIdentityByID = `SELECT name, role, scopes, kinds, revoked_at IS NOT NULL FROM identity WHERE id = $1`
)

// InsertIdentity stores id in tx, created by actor. The caller checks id
// (auth.Identity.Check) and writes the audit row.
func InsertIdentity(ctx context.Context, tx pgx.Tx, id auth.Identity, actor string) error {
	tag, err := tx.Exec(ctx, sqlIdentityInsert, id.ID, id.Name, string(id.Role), id.Scopes, nonNil(id.Kinds), id.TokenSHA256, actor)
	if err != nil {
		return fmt.Errorf("inserting identity %s: %w", id.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("inserting identity %s: its id or token hash is taken: %w", id.ID, ErrIdentityExists)
	}
	return nil
}

// IdentityByID returns identity id as it is now in tx (its role, scopes and
// kinds, and whether it is revoked; not its token hash): what an actor may
// do when its action is applied. ErrIdentityNotFound when there is none.
func IdentityByID(ctx context.Context, tx pgx.Tx, id string) (auth.Identity, error) {
	out := auth.Identity{ID: id}
	var role string
	err := tx.QueryRow(ctx, sqlIdentityByID, id).Scan(&out.Name, &role, &out.Scopes, &out.Kinds, &out.Revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.Identity{}, fmt.Errorf("identity %s: %w", id, ErrIdentityNotFound)
	}
	if err != nil {
		return auth.Identity{}, fmt.Errorf("looking up identity %s: %w", id, err)
	}
	out.Role = auth.Role(role)
	if len(out.Kinds) == 0 {
		out.Kinds = nil // every kind
	}
	return out, nil
}

// RevokeIdentity revokes identity id in tx; revoked reports whether it was
// live (false: revoked already). ErrIdentityNotFound when there is none.
func RevokeIdentity(ctx context.Context, tx pgx.Tx, id, actor string) (revoked bool, err error) {
	var (
		name, role string
		scopes     []string
	)
	err = tx.QueryRow(ctx, sqlIdentityRevoke, id, actor).Scan(&name, &role, &scopes)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := IdentityByID(ctx, tx, id); err != nil {
			return false, err
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("revoking identity %s: %w", id, err)
	}
	return true, nil
}

// CreateIdentityCLI stores a new identity made by the iochub command and
// returns its token, shown once. The change is recorded in audit_log (actor
// "cli", action "identity.create").
func CreateIdentityCLI(ctx context.Context, pool *pgxpool.Pool, name string, role auth.Role, scopes, kinds []string) (auth.Identity, string, error) {
	token, sum := auth.NewToken()
	id := auth.Identity{ID: auth.NewID(), Name: name, Role: role, Scopes: scopes, Kinds: kinds, TokenSHA256: sum}
	if err := id.Check(); err != nil {
		return id, "", fmt.Errorf("creating identity: %w", err)
	}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := InsertIdentity(ctx, tx, id, auditActorCLI); err != nil {
			return err
		}
		return Audit(ctx, tx, auditActorCLI, "identity.create", "identity:"+id.ID,
			map[string]any{"name": id.Name, "role": id.Role, "scopes": id.Scopes, "kinds": nonNil(id.Kinds)})
	})
	if err != nil {
		return id, "", fmt.Errorf("creating identity %s: %w", name, err)
	}
	return id, token, nil
}

// RevokeIdentityCLI revokes identity id from the iochub command, recording it
// in audit_log (actor "cli", action "identity.revoke"). Revoking a revoked
// identity does nothing.
func RevokeIdentityCLI(ctx context.Context, pool *pgxpool.Pool, id string) error {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		revoked, err := RevokeIdentity(ctx, tx, id, auditActorCLI)
		if err != nil || !revoked {
			return err
		}
		return Audit(ctx, tx, auditActorCLI, "identity.revoke", "identity:"+id, map[string]any{})
	})
	if err != nil {
		return fmt.Errorf("revoking identity %s: %w", id, err)
	}
	return nil
}

// nonNil is s, or an empty slice for nil: the column kinds is NOT NULL ('{}' is every kind).
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
