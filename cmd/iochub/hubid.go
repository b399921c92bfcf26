package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// errHubMismatch is returned when the JetStream store and the database of dev
// belong to different hubs, or one of them is new while the other has data.
var errHubMismatch = errors.New("the JetStream store and the database do not belong together")

// hubBucket is the JetStream key-value bucket that keeps the hub id.
const hubBucket = "IOCHUB_HUB"

// hubCheck says where the two halves of a hub are, for the messages.
type hubCheck struct {
	// natsDir is the JetStream store; db names the database (redacted URL)
	// and pgDir is the private cluster's directory (empty with --database-url).
	natsDir, db, pgDir string
	// legacyPG is where dev kept the database before it stayed in the data
	// dir; named in the message when it exists.
	legacyPG string
	// reset gives both halves a new hub id whatever they held (--reset-hub-id).
	reset bool
}

// checkHubID makes sure the JetStream store and the database belong to the
// same hub: at first start it writes one random hub id in both, and at every
// later start it refuses (errHubMismatch) when they differ or one half lost
// it, since the aggregator's position in FEEDS would then not match the rows
// of the database.
func checkHubID(ctx context.Context, js jetstream.JetStream, pool *pgxpool.Pool, hc hubCheck, log *slog.Logger) (string, error) {
	dbID, err := postgis.HubID(ctx, pool)
	if err != nil {
		return "", err
	}
	natsID, err := natsHubID(ctx, js)
	if err != nil {
		return "", err
	}
	const fix = "; start with --reset-hub-id to go on anyway (nothing is deleted), or remove the data dir to start from scratch"
	switch {
	case hc.reset:
		id := newHubID()
		log.Warn("giving the JetStream store and the database a new hub id (--reset-hub-id)", "old_db", dbID, "old_nats", natsID, "hub", id)
		return id, writeHubID(ctx, js, pool, id)
	case dbID != "" && dbID == natsID:
		return dbID, nil
	case dbID != "" && natsID != "":
		return "", fmt.Errorf("the database %s belongs to hub %s but the JetStream store in %s to hub %s: %w%s",
			hc.db, dbID, hc.natsDir, natsID, errHubMismatch, fix)
	case dbID != "":
		return "", fmt.Errorf("the database %s belongs to hub %s but the JetStream store in %s has no hub id: it is new or was wiped, "+
			"so the live state and the events not yet stored are gone: %w%s", hc.db, dbID, hc.natsDir, errHubMismatch, fix)
	case natsID != "":
		return "", fmt.Errorf("the JetStream store in %s belongs to hub %s but the database %s has no hub id: it is new or another hub's, "+
			"so it lacks the rows of the events already in the streams: %w%s%s", hc.natsDir, natsID, hc.db, errHubMismatch, hc.legacyHint(), fix)
	}
	// Neither half has an id: a first start, or data from before hub ids.
	events, err := streamsHaveEvents(ctx, js)
	if err != nil {
		return "", err
	}
	units, err := schema.HasUnits(ctx, pool)
	if err != nil {
		return "", err
	}
	if events && !units {
		return "", fmt.Errorf("the JetStream store in %s holds events but the database %s is new: %w%s%s",
			hc.natsDir, hc.db, errHubMismatch, hc.legacyHint(), fix)
	}
	id := newHubID()
	log.Info("recorded the hub id", "hub", id)
	return id, writeHubID(ctx, js, pool, id)
}

func (hc hubCheck) legacyHint() string {
	if hc.legacyPG == "" || hc.pgDir == "" {
		return ""
	}
	if _, err := os.Stat(hc.legacyPG); err != nil {
		return ""
	}
	return fmt.Sprintf("; an earlier iochub dev kept this data dir's database in %s: to use it, stop iochub and run `rm -rf %s && mv %s %s`",
		hc.legacyPG, hc.pgDir, hc.legacyPG, hc.pgDir)
}

func newHubID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func natsHubID(ctx context.Context, js jetstream.JetStream) (string, error) {
	kv, err := js.KeyValue(ctx, hubBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("opening bucket %s: %w", hubBucket, err)
	}
	e, err := kv.Get(ctx, "hub_id")
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the hub id from bucket %s: %w", hubBucket, err)
	}
	return string(e.Value()), nil
}

// writeHubID records id in the database first: a crash between the two
// writes then leaves a database with an id and a store without one, which
// the next start reports rather than guesses about.
func writeHubID(ctx context.Context, js jetstream.JetStream, pool *pgxpool.Pool, id string) error {
	if err := postgis.SetHubID(ctx, pool, id); err != nil {
		return err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: hubBucket,
		Description: "iochub: the hub id, the same as in the database's hub_meta table"})
	if err != nil {
		return fmt.Errorf("creating bucket %s: %w", hubBucket, err)
	}
	if _, err := kv.PutString(ctx, "hub_id", id); err != nil {
		return fmt.Errorf("recording the hub id in bucket %s: %w", hubBucket, err)
	}
	return nil
}

// streamsHaveEvents reports whether FEEDS, STATE or ACTIONS ever held a message.
func streamsHaveEvents(ctx context.Context, js jetstream.JetStream) (bool, error) {
	for _, name := range []string{subjects.StreamFeeds, subjects.StreamState, subjects.StreamActions} {
		s, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("looking up stream %s: %w", name, err)
		}
		if s.CachedInfo().State.LastSeq > 0 {
			return true, nil
		}
	}
	return false, nil
}
