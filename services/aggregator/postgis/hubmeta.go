package postgis

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

const (
	sqlHubID    = `SELECT value FROM hub_meta WHERE key = 'hub_id'`
	sqlSetHubID = `INSERT INTO hub_meta (key, value) VALUES ('hub_id', $1)
		ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`
)

// HubID returns the hub id recorded in the database, or "" when none is.
func HubID(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	var id string
	err := pool.QueryRow(ctx, sqlHubID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the hub id: %w", err)
	}
	return id, nil
}

// SetHubID records the hub id in the database.
func SetHubID(ctx context.Context, pool *pgxpool.Pool, id string) error {
	if _, err := pool.Exec(ctx, sqlSetHubID, id); err != nil {
		return fmt.Errorf("recording the hub id: %w", err)
	}
	return nil
}
