package main

import (
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/seal"
	"github.com/iochub/iochub/services/gateway/pgread"
)

// Principals of the tokens given on the command line.
const (
	devPrincipalID      = "dev"
	operatorPrincipalID = "operator-token"
)

// newAuthenticator builds the access control of the gateway (and of
// /metrics): stored identities read through pool (nil: none), the dev token
// and the legacy operator token as admins of every province.
func newAuthenticator(cfg config, pool *pgxpool.Pool, log *slog.Logger) (*auth.Authenticator, error) {
	all := []string{auth.AllScopes}
	ac := auth.Config{
		Static: []auth.StaticToken{
			{Token: cfg.DevToken, Principal: auth.Principal{ID: devPrincipalID, Name: "dev token", Role: auth.RoleAdmin, Scopes: all}},
			// Deprecated: create identities instead (iochub identities create).
			{Token: cfg.OperatorToken, Principal: auth.Principal{ID: operatorPrincipalID, Name: "--operator-token", Role: auth.RoleAdmin, Scopes: all}},
		},
		SecureCookie: cfg.Auth.SecureCookies,
		Refresh:      cfg.Auth.IdentityRefresh,
		OIDC:         cfg.Auth.OIDC,
	}
	switch {
	case cfg.Auth.SessionKey != "":
		k, err := seal.ParseKey(cfg.Auth.SessionKey)
		if err != nil {
			return nil, fmt.Errorf("--session-key: %w", err)
		}
		ac.SessionKey = k
	case cfg.SealKey != "":
		k, err := cfg.sealKey()
		if err != nil {
			return nil, err
		}
		ac.SessionKey = auth.DeriveSessionKey(k)
	default:
		log.Warn("no --session-key or --seal-key: sessions are signed with a random key and end when this process does")
	}
	var loader auth.Loader
	if pool != nil {
		loader = pgread.New(pool)
	}
	a, err := auth.New(ac, loader, log.With("role", "auth"))
	if err != nil {
		return nil, err
	}
	return a, nil
}
