package postgis

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iochub/iochub/internal/schema"
)

// SourceActivity is what one stored batch brought of one source and unit.
type SourceActivity struct {
	SourceID, UnitCode, Province string
	// LastEvent is the newest event time of the pair in the batch.
	LastEvent time.Time
	// Events and Duplicates are the pair's rows stored for the first time
	// and those already stored.
	Events, Duplicates int
}

// SourceStale is a source and unit due for, or cleared of, its stale alert.
type SourceStale struct {
	SourceID, UnitCode, Province string
	LastSeen                     time.Time
	Interval                     time.Duration
	// AlertSent is the sent time of the raised alert (for its Cancel).
	AlertSent time.Time
}

// MaxGaps is how many recent gaps between arrivals learn a pair's interval.
const MaxGaps = 15

// LearnInterval is the median of the positive gaps (seconds), or 0 when none.
func LearnInterval(gaps []float64) float64 {
	var g []float64
	for _, x := range gaps {
		if x > 0 {
			g = append(g, x)
		}
	}
	if len(g) == 0 {
		return 0
	}
	sort.Float64s(g)
	n := len(g)
	if n%2 == 1 {
		return g[n/2]
	}
	return (g[n/2-1] + g[n/2]) / 2
}

const sqlSourceStatsLock = `
SELECT (SELECT interval_s FROM source WHERE id = $1),
       (SELECT last_seen_at FROM source_stats WHERE source_id = $1 AND unit_code = $2 FOR UPDATE),
       (SELECT gaps FROM source_stats WHERE source_id = $1 AND unit_code = $2)`

// sqlSourceStatsUpsert adds a batch's activity ($6 events, $7 duplicates at
// $5, the hub's clock) to a pair; rate_start, rate_cur and rate_prev are the
// current window of schema.SourceRateWindow ($10 seconds) and the events of it and of the
// one before (00038).
const sqlSourceStatsUpsert = `
INSERT INTO source_stats AS s (source_id, unit_code, province, last_event_at, last_seen_at, first_seen_at, events, duplicates, gaps, interval_s, stale_at,
    rate_start, rate_cur)
VALUES ($1, $2, $3, $4, $5::timestamptz, $5::timestamptz, $6, $7, $8, $9::double precision,
        CASE WHEN $9::double precision > 0 THEN $5::timestamptz + make_interval(secs => 3 * $9::double precision) END,
        date_bin(make_interval(secs => $10), $5::timestamptz, timestamptz 'epoch'), $6)
ON CONFLICT (source_id, unit_code) DO UPDATE SET
    rate_prev = CASE
        WHEN EXCLUDED.rate_start <= s.rate_start THEN s.rate_prev -- this window (or, a clock behind, an earlier one)
        WHEN EXCLUDED.rate_start - make_interval(secs => $10) = s.rate_start THEN s.rate_cur
        ELSE 0 END,
    rate_cur = CASE WHEN EXCLUDED.rate_start <= s.rate_start THEN s.rate_cur + EXCLUDED.rate_cur ELSE EXCLUDED.rate_cur END,
    rate_start = greatest(s.rate_start, EXCLUDED.rate_start),
    province = EXCLUDED.province,
    last_event_at = greatest(s.last_event_at, EXCLUDED.last_event_at),
    last_seen_at = greatest(s.last_seen_at, EXCLUDED.last_seen_at),
    events = s.events + EXCLUDED.events,
    duplicates = s.duplicates + EXCLUDED.duplicates,
    gaps = EXCLUDED.gaps,
    interval_s = EXCLUDED.interval_s,
    stale_at = EXCLUDED.stale_at,
    clear_pending = s.clear_pending OR s.stale_since IS NOT NULL,
    stale_since = NULL`

// sqlFreshSources makes the stale source and unit pairs of a batch ($1, $2)
// fresh in the batch's transaction, as RecordSourceActivity will after the
// commit: their alerts are to be cancelled, and their deadline moves past now
// (when the interval is known) so that the stale sweep does not find them
// due again before that. The rows are locked in the order of
// RecordSourceActivity (byte order of source and unit). A batch of sources
// none stale changes nothing and bumps no roll-up context version.
const sqlFreshSources = `UPDATE source_stats s SET stale_since = NULL, clear_pending = true,
    stale_at = CASE WHEN s.interval_s > 0 THEN greatest(s.stale_at, now() + make_interval(secs => 3 * s.interval_s)) ELSE s.stale_at END
FROM (SELECT source_id, unit_code FROM source_stats
      WHERE (source_id, unit_code) IN (SELECT * FROM unnest($1::text[], $2::text[])) AND stale_since IS NOT NULL
      ORDER BY source_id COLLATE "C", unit_code COLLATE "C" FOR UPDATE) k
WHERE s.source_id = k.source_id AND s.unit_code = k.unit_code`

// RecordSourceActivity adds the activity of one batch, seen at now (the
// hub's clock): counts, last times, the gap since the last arrival (the last
// MaxGaps learn the interval when the source has none configured) and the
// deadline after which the pair is stale (3 × the interval). A stale pair
// that sends again is marked to have its alert cancelled. Its statements
// are bounded by the store's StatementTimeout, as WriteBatch's.
func (s *Store) RecordSourceActivity(ctx context.Context, acts []SourceActivity, now time.Time) error {
	if len(acts) == 0 {
		return nil
	}
	acts = slices.Clone(acts)
	slices.SortFunc(acts, func(a, b SourceActivity) int { // one lock order
		if a.SourceID != b.SourceID {
			return strings.Compare(a.SourceID, b.SourceID)
		}
		return strings.Compare(a.UnitCode, b.UnitCode)
	})
	err := s.BeginFunc(ctx, func(tx pgx.Tx) error {
		for _, a := range acts {
			var last *time.Time
			var gaps []float64
			var cfg *int32
			if err := tx.QueryRow(ctx, sqlSourceStatsLock, a.SourceID, a.UnitCode).Scan(&cfg, &last, &gaps); err != nil {
				return fmt.Errorf("reading stats of %s/%s: %w", a.SourceID, a.UnitCode, err)
			}
			if last != nil && now.After(*last) {
				gaps = append(gaps, now.Sub(*last).Seconds())
			}
			if len(gaps) > MaxGaps {
				gaps = gaps[len(gaps)-MaxGaps:]
			}
			if gaps == nil {
				gaps = []float64{}
			}
			iv := LearnInterval(gaps)
			if cfg != nil {
				iv = float64(*cfg)
			}
			var ivArg *float64
			if iv > 0 {
				ivArg = &iv
			}
			if _, err := tx.Exec(ctx, sqlSourceStatsUpsert, a.SourceID, a.UnitCode, a.Province, a.LastEvent.UTC(), now.UTC(),
				a.Events, a.Duplicates, gaps, ivArg, schema.SourceRateWindow.Seconds()); err != nil {
				return fmt.Errorf("writing stats of %s/%s: %w", a.SourceID, a.UnitCode, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording source activity: %w", err)
	}
	return nil
}

// DueStaleSources are the fresh pairs of province ("" for all) whose stale
// deadline is at or before now, oldest first, at most limit (a range scan of
// the partial index source_stats_due).
func (s *Store) DueStaleSources(ctx context.Context, province string, now time.Time, limit int) ([]SourceStale, error) {
	rows, err := s.pool.Query(ctx, `
SELECT source_id, unit_code, province, last_seen_at, interval_s FROM source_stats
WHERE stale_since IS NULL AND stale_at IS NOT NULL AND stale_at <= $1 AND NOT clear_pending AND ($2 = '' OR province = $2)
ORDER BY stale_at LIMIT $3`, now.UTC(), province, limit)
	if err != nil {
		return nil, fmt.Errorf("reading stale sources: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SourceStale, error) {
		var x SourceStale
		var iv float64
		err := r.Scan(&x.SourceID, &x.UnitCode, &x.Province, &x.LastSeen, &iv)
		x.Interval = time.Duration(iv * float64(time.Second))
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading stale sources: %w", err)
	}
	return out, nil
}

// MarkSourcesStale records that the stale alerts of pairs were raised, sent
// at sent. A pair that sent data since it was read as due (stale_at moved
// past now) stays fresh and is marked to have the alert cancelled.
func (s *Store) MarkSourcesStale(ctx context.Context, pairs []SourceStale, now, sent time.Time) error {
	for _, p := range pairs {
		if _, err := s.pool.Exec(ctx, `
UPDATE source_stats SET stale_since = CASE WHEN stale_at <= $3 THEN $3 END, alert_sent = $4,
    clear_pending = clear_pending OR stale_at > $3
WHERE source_id = $1 AND unit_code = $2 AND stale_since IS NULL`,
			p.SourceID, p.UnitCode, now.UTC(), sent.UTC()); err != nil {
			return fmt.Errorf("marking %s/%s stale: %w", p.SourceID, p.UnitCode, err)
		}
	}
	return nil
}

// ReturnedSources are the pairs of province ("" for all) that sent data
// after their stale alert was raised, whose alert is still to cancel.
func (s *Store) ReturnedSources(ctx context.Context, province string, limit int) ([]SourceStale, error) {
	rows, err := s.pool.Query(ctx, `
SELECT source_id, unit_code, province, last_seen_at, coalesce(interval_s, 0), coalesce(alert_sent, last_seen_at) FROM source_stats
WHERE clear_pending AND ($1 = '' OR province = $1) LIMIT $2`, province, limit)
	if err != nil {
		return nil, fmt.Errorf("reading returned sources: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SourceStale, error) {
		var x SourceStale
		var iv float64
		err := r.Scan(&x.SourceID, &x.UnitCode, &x.Province, &x.LastSeen, &iv, &x.AlertSent)
		x.Interval = time.Duration(iv * float64(time.Second))
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading returned sources: %w", err)
	}
	return out, nil
}

// MarkSourcesCleared records that the stale alerts of pairs were cancelled.
func (s *Store) MarkSourcesCleared(ctx context.Context, pairs []SourceStale) error {
	for _, p := range pairs {
		if _, err := s.pool.Exec(ctx, `UPDATE source_stats SET clear_pending = false, alert_sent = NULL
WHERE source_id = $1 AND unit_code = $2`, p.SourceID, p.UnitCode); err != nil {
			return fmt.Errorf("marking %s/%s cleared: %w", p.SourceID, p.UnitCode, err)
		}
	}
	return nil
}

// SourceRejection is a count of items the ingest rejected of a source for a reason.
type SourceRejection struct {
	SourceID, Reason string
	Count            int64
}

// AddSourceRejections adds counts to source_rejection in tx, at at.
func AddSourceRejections(ctx context.Context, tx pgx.Tx, rows []SourceRejection, at time.Time) error {
	slices.SortFunc(rows, func(a, b SourceRejection) int { // one lock order
		if c := strings.Compare(a.SourceID, b.SourceID); c != 0 {
			return c
		}
		return strings.Compare(a.Reason, b.Reason)
	})
	for _, r := range rows {
		if _, err := tx.Exec(ctx, `
INSERT INTO source_rejection AS r (source_id, reason, count, last_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (source_id, reason) DO UPDATE SET count = r.count + EXCLUDED.count, last_at = greatest(r.last_at, EXCLUDED.last_at)`,
			r.SourceID, r.Reason, r.Count, at.UTC()); err != nil {
			return fmt.Errorf("adding rejections of %s (%s): %w", r.SourceID, r.Reason, err)
		}
	}
	return nil
}

// sqlLatestRollupsOf returns the latest stored roll-up of each layer and
// window length of the units $1 and of their ancestors and custom groups in
// the current tree (sqlCurrentEdges): the roll-ups whose stale figure counts
// the pairs of those units. The layers of a unit are found by a skip scan
// of rollup's primary key, the latest window by a backward read of it.
const sqlLatestRollupsOf = `WITH RECURSIVE ` + sqlCurrentEdges + `, up (code) AS (
    SELECT unnest($1::text[])
    UNION
    SELECT e.parent FROM up JOIN edge e ON e.child = up.code
), lay (code, layer) AS (
    SELECT up.code, (SELECT min(r.layer) FROM rollup r WHERE r.unit_code = up.code) FROM up
    UNION ALL
    SELECT lay.code, (SELECT min(r.layer) FROM rollup r WHERE r.unit_code = lay.code AND r.layer > lay.layer)
    FROM lay WHERE lay.layer IS NOT NULL
)
SELECT l.* FROM lay CROSS JOIN (VALUES ('1m'), ('15m'), ('1h'), ('1d')) AS w (win)
CROSS JOIN LATERAL (
    SELECT ` + rollupColumns + ` FROM rollup r
    WHERE r.unit_code = lay.code AND r.layer = lay.layer AND r.win = w.win
    ORDER BY r.window_start DESC LIMIT 1
) l
WHERE lay.layer IS NOT NULL
ORDER BY l.unit_code, l.layer, l.win`

// LatestRollupsOf returns, with their figures as a batch writing them would
// publish them (RollupContext), the latest roll-up of each layer and window
// length of units and of their ancestors and groups in the current tree: what
// to publish again when the stale figure of those units changed without a
// batch (a source turned stale, or its alert cancelled). None with roll-ups
// off.
func (s *Store) LatestRollupsOf(ctx context.Context, units []string) ([]Rollup, error) {
	if !s.rollups.on || len(units) == 0 {
		return nil, nil
	}
	var rs []Rollup
	err := s.BeginFunc(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sqlLatestRollupsOf, units)
		if err != nil {
			return err
		}
		for rows.Next() {
			var r Rollup
			if err := scanRollup(rows, &r); err != nil {
				rows.Close()
				return err
			}
			rs = append(rs, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return rollupContext(ctx, tx, rs)
	})
	if err != nil {
		return nil, fmt.Errorf("reading the latest roll-ups of %d units: %w", len(units), err)
	}
	return rs, nil
}
