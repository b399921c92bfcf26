package postgis

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrInvalidSource is returned when a source's id or fields are unusable.
var ErrInvalidSource = errors.New("invalid source")

// ErrSourceExists is returned when a source id is registered already.
var ErrSourceExists = errors.New("source already exists")

// ErrSourceNotFound is returned when no source has the given id.
var ErrSourceNotFound = errors.New("source not found")

// ErrUnitNotFound is returned when a unit code has no current version.
var ErrUnitNotFound = errors.New("unit not found")

// TokenPrefix starts every source bearer token, so a leaked one is recognisable.
const TokenPrefix = "ioc_"

// auditActorCLI is the actor of changes made with the iochub command.
const auditActorCLI = "cli"

// Source is a feed source: a lower-level IOC or sensor gateway bound to one unit.
type Source struct {
	// ID names the source in events (Nats-Msg-Id "<ID>/<event id>"): 1 to 64
	// ASCII letters, digits, '.', '_' or '-'.
	ID string
	// Name is for people; may be empty.
	Name string
	// UnitCode is the current unit the source publishes for.
	UnitCode string
	// Interval is how often the source is expected to send, in whole
	// seconds; 0 means learned from the gaps between its arrivals. A source
	// silent for 3× its interval is stale.
	Interval time.Duration
}

// AddSource registers s and returns its new bearer token, which is shown
// once: only its SHA-256 is stored. The unit must exist now. The change is
// recorded in audit_log (actor "cli", action "source.add").
func AddSource(ctx context.Context, pool *pgxpool.Pool, s Source) (string, error) {
	if err := validSourceID(s.ID); err != nil {
		return "", fmt.Errorf("adding source: %w", err)
	}
	if s.Interval < 0 || s.Interval > 0 && s.Interval < time.Second || s.Interval > 365*24*time.Hour {
		return "", fmt.Errorf("adding source %s: interval %s must be 0 (learned) or from 1s to 365 days: %w", s.ID, s.Interval, ErrInvalidSource)
	}
	var interval *int32
	if s.Interval > 0 {
		v := int32(s.Interval / time.Second)
		interval = &v
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("adding source %s: generating token: %w", s.ID, err)
	}
	token := TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])

	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, sqlUnitCurrentExists, s.UnitCode).Scan(&exists); err != nil {
			return fmt.Errorf("looking up unit %s: %w", s.UnitCode, err)
		}
		if !exists {
			return fmt.Errorf("unit %q has no current version; import it first (iochub units import): %w", s.UnitCode, ErrUnitNotFound)
		}
		if _, err := tx.Exec(ctx, sqlSourceInsert, s.ID, s.Name, s.UnitCode, HashToken(token), interval); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "source_pkey" {
				return fmt.Errorf("id %s is taken; disable or choose another: %w", s.ID, ErrSourceExists)
			}
			return fmt.Errorf("inserting: %w", err)
		}
		detail := map[string]string{"name": s.Name, "unit": s.UnitCode}
		if interval != nil {
			detail["interval"] = s.Interval.String()
		}
		if _, err := tx.Exec(ctx, sqlAuditInsert, auditActorCLI, "source.add", s.ID, detail); err != nil {
			return fmt.Errorf("writing the audit log: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("adding source %s: %w", s.ID, err)
	}
	return token, nil
}

// DisableSource stops source id from being accepted, recording it in
// audit_log (action "source.disable"). Its pairs are not watched for
// staleness any more, and the stale alerts raised on them are cancelled at
// the next stale sweep (sqlSourceStatsDisabled). Disabling a disabled source
// does nothing.
func DisableSource(ctx context.Context, pool *pgxpool.Pool, id string) error {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var got string
		switch err := tx.QueryRow(ctx, sqlSourceDisable, id).Scan(&got); {
		case errors.Is(err, pgx.ErrNoRows):
			var exists bool
			if err := tx.QueryRow(ctx, sqlSourceExists, id).Scan(&exists); err != nil {
				return fmt.Errorf("looking up: %w", err)
			}
			if !exists {
				return ErrSourceNotFound
			}
			return nil // disabled already
		case err != nil:
			return fmt.Errorf("updating: %w", err)
		}
		if _, err := tx.Exec(ctx, sqlSourceStatsDisabled, id); err != nil {
			return fmt.Errorf("ending its freshness: %w", err)
		}
		if _, err := tx.Exec(ctx, sqlAuditInsert, auditActorCLI, "source.disable", id, map[string]string{}); err != nil {
			return fmt.Errorf("writing the audit log: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("disabling source %s: %w", id, err)
	}
	return nil
}

// HashToken is the SHA-256 of a bearer token, as stored in source.token_sha256;
// the ingest looks sources up by it.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// ReservedSourceIDs are the sources the hub itself publishes as: the dev token,
// the alert-rules engine and the overdue-report sweep. No registered source may
// take them, or it could forge their alerts.
var ReservedSourceIDs = []string{"dev", "rules", "iochub"}

func validSourceID(id string) error {
	for _, r := range ReservedSourceIDs {
		if strings.EqualFold(id, r) {
			return fmt.Errorf("source id %q is reserved for the hub itself: %w", id, ErrInvalidSource)
		}
	}
	if id == "" || len(id) > 64 {
		return fmt.Errorf("source id %q must have 1 to 64 characters: %w", id, ErrInvalidSource)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("source id %q has %q at byte %d; use ASCII letters, digits, '.', '_' or '-': %w", id, c, i, ErrInvalidSource)
		}
	}
	return nil
}
