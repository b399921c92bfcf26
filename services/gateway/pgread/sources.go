package pgread

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// MaxSources bounds the rows of one GET /v1/sources answer.
const MaxSources = 5000

// TopReasons is how many rejection reasons a source row lists.
const TopReasons = 5

// SourceRow is the freshness of one source in one unit (source_stats, with
// the source's configured interval and its rejections).
type SourceRow struct {
	SourceID, Unit, Province string
	FirstSeen, LastSeen      time.Time
	LastEvent                time.Time
	Events, Duplicates       int64
	// Interval is the expected interval in seconds (0 when none is known
	// yet); Configured says it was set on the source, not learned.
	Interval   float64
	Configured bool
	StaleAt    *time.Time
	StaleSince *time.Time
	// Rejected counts the source's rejected items (every unit); Reasons are
	// the TopReasons most frequent; SourceEvents are the source's events in
	// every unit (the share rejected is of all its items).
	Rejected     int64
	SourceEvents int64
	// RateStart, RateCur and RatePrev are the pair's recent counts
	// (schema.SourceRate).
	RateStart         *time.Time
	RateCur, RatePrev int64
	Reasons           []ReasonCount
}

// ReasonCount is a rejection reason and how many items it refused.
type ReasonCount struct {
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}

// sqlSources reads a page of province $1's pairs ($2 rows; of the units $4
// only, when not NULL: the caller's, before the page is cut), then each of
// their sources once: its rejections, its events in every unit and its $3
// most frequent reasons (per source, not per row: a source with a pair in
// every unit of the page would otherwise be summed once for each of them:
// 1.1 s against 12 ms for one source in 3,300 units, docs/benchmarks.md).
// MATERIALIZED: inlined, the planner evaluates the per-source subqueries
// once per row again.
const sqlSources = `
WITH page AS (
    SELECT * FROM source_stats WHERE province = $1 AND ($4::text[] IS NULL OR unit_code = ANY($4::text[]))
    ORDER BY source_id, unit_code LIMIT $2
), per_source AS MATERIALIZED (
    SELECT s.source_id,
        coalesce((SELECT sum(count) FROM source_rejection r WHERE r.source_id = s.source_id), 0)::bigint AS rejected,
        (SELECT sum(s2.events) FROM source_stats s2 WHERE s2.source_id = s.source_id)::bigint AS events,
        coalesce((SELECT json_agg(json_build_object('reason', reason, 'count', count))
                  FROM (SELECT reason, count FROM source_rejection r WHERE r.source_id = s.source_id
                        ORDER BY count DESC, reason LIMIT $3) top), '[]'::json) AS reasons
    FROM (SELECT DISTINCT source_id FROM page) s
)
SELECT st.source_id, st.unit_code, st.province, st.first_seen_at, st.last_seen_at, st.last_event_at,
       st.events, st.duplicates, st.rate_start, st.rate_cur, st.rate_prev, coalesce(st.interval_s, 0), src.interval_s IS NOT NULL, st.stale_at, st.stale_since,
       ps.rejected, ps.events, ps.reasons
FROM page st
JOIN per_source ps ON ps.source_id = st.source_id
LEFT JOIN source src ON src.id = st.source_id
ORDER BY st.source_id, st.unit_code`

// Sources lists the freshness of every source seen in province, by source
// and unit, at most MaxSources rows; of units only, when not nil.
func (s *Store) Sources(ctx context.Context, province string, units []string) ([]SourceRow, error) {
	rows, err := s.pool.Query(ctx, sqlSources, province, MaxSources, TopReasons, units)
	if err != nil {
		return nil, fmt.Errorf("querying sources of %s: %w", province, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SourceRow, error) {
		var x SourceRow
		err := r.Scan(&x.SourceID, &x.Unit, &x.Province, &x.FirstSeen, &x.LastSeen, &x.LastEvent, &x.Events, &x.Duplicates,
			&x.RateStart, &x.RateCur, &x.RatePrev, &x.Interval, &x.Configured, &x.StaleAt, &x.StaleSince, &x.Rejected, &x.SourceEvents, &x.Reasons)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading sources of %s: %w", province, err)
	}
	return out, nil
}
