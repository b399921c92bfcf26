package postgis

import (
	"context"
	"fmt"
	"slices"
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

// sqlRecordActivity adds the activity of one batch to each of its source
// and unit pairs ($1…$6: source, unit, province, newest event time, events,
// duplicates; each pair once), seen at $7 (the hub's clock): the counts, the
// last times, the gap since the pair's last arrival (the last $9 gaps learn
// its interval, their median, when the source has none configured), the
// deadline after which it is stale (3 × the interval), and the events of the
// current window of schema.SourceRateWindow ($8 seconds) and of the one
// before (rate_start, rate_cur, rate_prev; 00038). A stale pair that sends
// again is marked to have its alert cancelled. Its existing rows are locked
// first, in byte order of source and unit (as sqlFreshSources locks them),
// so that the gaps are computed from the row the statement updates.
const sqlRecordActivity = `WITH a AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::bigint[], $6::bigint[])
        AS a (source_id, unit_code, province, last_event, events, dups)
), old AS MATERIALIZED (
    SELECT s.source_id, s.unit_code, s.last_seen_at, s.gaps FROM source_stats s
    WHERE (s.source_id, s.unit_code) IN (SELECT source_id, unit_code FROM a)
    ORDER BY s.source_id COLLATE "C", s.unit_code COLLATE "C"
    FOR UPDATE
), g AS (
    SELECT a.*, (SELECT interval_s FROM source WHERE id = a.source_id) AS cfg,
        CASE WHEN o.last_seen_at IS NOT NULL AND $7::timestamptz > o.last_seen_at
            THEN o.gaps || extract(epoch FROM $7::timestamptz - o.last_seen_at)::double precision
            ELSE coalesce(o.gaps, '{}') END AS gaps
    FROM a LEFT JOIN old o ON o.source_id = a.source_id AND o.unit_code = a.unit_code
), k AS (
    SELECT g.*, coalesce(g.gaps[greatest(array_lower(g.gaps, 1), array_upper(g.gaps, 1) - $9::integer + 1):], '{}') AS kept FROM g
), v AS (
    SELECT k.*, coalesce(k.cfg::double precision,
        (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(k.kept) AS x WHERE x > 0)) AS iv
    FROM k
)
INSERT INTO source_stats AS s (source_id, unit_code, province, last_event_at, last_seen_at, first_seen_at, events, duplicates, gaps, interval_s, stale_at,
    rate_start, rate_cur)
SELECT v.source_id, v.unit_code, v.province, v.last_event, $7::timestamptz, $7::timestamptz, v.events, v.dups, v.kept,
    CASE WHEN v.iv > 0 THEN v.iv END,
    CASE WHEN v.iv > 0 THEN $7::timestamptz + make_interval(secs => 3 * v.iv) END,
    date_bin(make_interval(secs => $8), $7::timestamptz, timestamptz 'epoch'), v.events
FROM v
ORDER BY v.source_id COLLATE "C", v.unit_code COLLATE "C"
ON CONFLICT (source_id, unit_code) DO UPDATE SET
    rate_prev = CASE
        WHEN EXCLUDED.rate_start <= s.rate_start THEN s.rate_prev -- this window (or, a clock behind, an earlier one)
        WHEN EXCLUDED.rate_start - make_interval(secs => $8) = s.rate_start THEN s.rate_cur
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

// queueActivity queues on pb the recording of acts (sqlRecordActivity) seen
// at now, a pair given more than once summed; nothing when acts is empty.
func queueActivity(pb *pgx.Batch, acts []SourceActivity, now time.Time) {
	if len(acts) == 0 {
		return
	}
	n := len(acts)
	srcs, units, provs := make([]string, n), make([]string, n), make([]string, n)
	last, events, dups := make([]time.Time, n), make([]int64, n), make([]int64, n)
	for i, a := range acts {
		srcs[i], units[i], provs[i] = a.SourceID, a.UnitCode, a.Province
		last[i], events[i], dups[i] = a.LastEvent.UTC(), int64(a.Events), int64(a.Duplicates)
	}
	pb.Queue(sqlRecordActivity, srcs, units, provs, last, events, dups, now.UTC(), schema.SourceRateWindow.Seconds(), MaxGaps)
}

// mergeActivity returns acts with each source and unit pair once: the
// events and duplicates of a pair given more than once summed, its newest
// event time and its last province kept (an upsert cannot change a row
// twice).
func mergeActivity(acts []SourceActivity) []SourceActivity {
	type pair struct{ source, unit string }
	at := make(map[pair]int, len(acts))
	out := make([]SourceActivity, 0, len(acts))
	for _, a := range acts {
		k := pair{a.SourceID, a.UnitCode}
		i, ok := at[k]
		if !ok {
			at[k] = len(out)
			out = append(out, a)
			continue
		}
		m := &out[i]
		m.Events += a.Events
		m.Duplicates += a.Duplicates
		m.Province = a.Province
		if a.LastEvent.After(m.LastEvent) {
			m.LastEvent = a.LastEvent
		}
	}
	return out
}

// queueBatchActivity queues the activity of b (Batch.Activity, given res:
// what b's statements stored) in b's transaction.
func queueBatchActivity(pb *pgx.Batch, b Batch, res Result) {
	if b.Activity != nil {
		queueActivity(pb, b.Activity(res), b.ActivityAt)
	}
}

// sqlFreshSources makes the stale source and unit pairs of a batch ($1, $2)
// fresh at the start of the batch's transaction, before its roll-ups read
// the stale figure (the batch's activity, sqlRecordActivity, comes last in
// the transaction and would be too late for them): their alerts are to be
// cancelled, and their deadline moves past now (when the interval is known)
// so that the stale sweep does not find them due again before that. Every
// existing row of the batch's pairs, stale or not, is locked here, in the
// order of sqlRecordActivity (byte order of source and unit), so that the
// transaction takes them all at once in one order, not the stale ones now
// and the others at its end. A batch of sources none stale changes nothing
// and bumps no roll-up context version.
const sqlFreshSources = `UPDATE source_stats s SET stale_since = NULL, clear_pending = true,
    stale_at = CASE WHEN s.interval_s > 0 THEN greatest(s.stale_at, now() + make_interval(secs => 3 * s.interval_s)) ELSE s.stale_at END
FROM (SELECT source_id, unit_code, stale_since FROM source_stats
      WHERE (source_id, unit_code) IN (SELECT * FROM unnest($1::text[], $2::text[]))
      ORDER BY source_id COLLATE "C", unit_code COLLATE "C" FOR UPDATE) k
WHERE s.source_id = k.source_id AND s.unit_code = k.unit_code AND k.stale_since IS NOT NULL`

// RecordSourceActivity adds the activity of one batch, seen at now (the
// hub's clock), in a transaction of its own (sqlRecordActivity); a pair
// given more than once is summed (mergeActivity). The
// aggregator records a batch's activity in the batch's own transaction
// instead (Batch.Activity). Its statement is bounded by the store's
// StatementTimeout, as WriteBatch's.
func (s *Store) RecordSourceActivity(ctx context.Context, acts []SourceActivity, now time.Time) error {
	if len(acts) == 0 {
		return nil
	}
	err := s.BeginFunc(ctx, func(tx pgx.Tx) error {
		var pb pgx.Batch
		queueActivity(&pb, mergeActivity(acts), now)
		return tx.SendBatch(ctx, &pb).Close()
	})
	if err != nil {
		return fmt.Errorf("recording source activity: %w", err)
	}
	return nil
}

// DueStaleSources are the fresh pairs of province ("" for all) whose stale
// deadline is at or before now, oldest first, at most limit (a range scan of
// the partial index source_stats_due). A disabled source's pairs are never
// due (items it sent before it was disabled may still be stored after).
func (s *Store) DueStaleSources(ctx context.Context, province string, now time.Time, limit int) ([]SourceStale, error) {
	rows, err := s.pool.Query(ctx, `
SELECT source_id, unit_code, province, last_seen_at, interval_s FROM source_stats
WHERE stale_since IS NULL AND stale_at IS NOT NULL AND stale_at <= $1 AND NOT clear_pending AND ($2 = '' OR province = $2)
    AND NOT EXISTS (SELECT FROM source d WHERE d.id = source_stats.source_id AND d.disabled_at IS NOT NULL)
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
		defer rows.Close()
		if err := collectRollups(&rs)(rows); err != nil {
			return err
		}
		return rollupContext(ctx, tx, rs)
	})
	if err != nil {
		return nil, fmt.Errorf("reading the latest roll-ups of %d units: %w", len(units), err)
	}
	return rs, nil
}
