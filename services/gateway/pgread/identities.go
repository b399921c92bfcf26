package pgread

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iochub/iochub/internal/auth"
)

// SQLIdentities selects every identity for the gateway's cache, revoked ones included.
const SQLIdentities = `SELECT id, name, role, scopes, kinds, token_sha256, revoked_at IS NOT NULL FROM identity`

// SQLIdentityList selects every identity as the admin API lists it, without token hashes.
const SQLIdentityList = `SELECT id, name, role, scopes, kinds, created_at, created_by, revoked_at, coalesce(revoked_by, '')
FROM identity ORDER BY created_at, id`

// SQLIdentity selects one identity as the admin API shows it.
const SQLIdentity = `SELECT id, name, role, scopes, kinds, created_at, created_by, revoked_at, coalesce(revoked_by, '')
FROM identity WHERE id = $1`

// Identities implements auth.Loader.
func (s *Store) Identities(ctx context.Context) ([]auth.Identity, error) {
	rows, err := s.pool.Query(ctx, SQLIdentities)
	if err != nil {
		return nil, fmt.Errorf("querying identities: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (auth.Identity, error) {
		var (
			id   auth.Identity
			role string
		)
		err := row.Scan(&id.ID, &id.Name, &role, &id.Scopes, &id.Kinds, &id.TokenSHA256, &id.Revoked)
		id.Role = auth.Role(role)
		return id, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading identities: %w", err)
	}
	return out, nil
}

var _ auth.Loader = (*Store)(nil)

// IdentityView is an identity as the admin API shows it: never its token or hash.
type IdentityView struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Role   string   `json:"role"`
	Scopes []string `json:"scopes"`
	// Kinds are the kinds the identity reads; empty is every kind.
	Kinds     []string   `json:"kinds"`
	CreatedAt time.Time  `json:"createdAt"`
	CreatedBy string     `json:"createdBy"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
	RevokedBy string     `json:"revokedBy,omitempty"`
}

func scanIdentityView(row pgx.Row) (IdentityView, error) {
	var v IdentityView
	err := row.Scan(&v.ID, &v.Name, &v.Role, &v.Scopes, &v.Kinds, &v.CreatedAt, &v.CreatedBy, &v.RevokedAt, &v.RevokedBy)
	return v, err
}

// IdentityList lists every identity, oldest first.
func (s *Store) IdentityList(ctx context.Context) ([]IdentityView, error) {
	rows, err := s.pool.Query(ctx, SQLIdentityList)
	if err != nil {
		return nil, fmt.Errorf("listing identities: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (IdentityView, error) { return scanIdentityView(row) })
	if err != nil {
		return nil, fmt.Errorf("listing identities: %w", err)
	}
	return out, nil
}

// Identity returns identity id; found is false when there is none.
func (s *Store) Identity(ctx context.Context, id string) (v IdentityView, found bool, err error) {
	v, err = scanIdentityView(s.pool.QueryRow(ctx, SQLIdentity, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return IdentityView{}, false, nil
	}
	if err != nil {
		return IdentityView{}, false, fmt.Errorf("reading identity %s: %w", id, err)
	}
	return v, true, nil
}
