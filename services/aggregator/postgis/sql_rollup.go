package postgis

import "strings"

// Roll-up SQL. A kind with roll-ups inserts its raw rows and adds their
// contributions to rollup in one statement: the INSERT … ON CONFLICT DO
// NOTHING RETURNING is a CTE (ins) whose rows, and only those, are added, so a
// duplicate or redelivered row never counts twice and a rolled-back batch
// counts nothing. Each inserted row counts toward its unit and every ancestor
// valid at its observation time (admin_unit.parent_code, walked up with a
// recursive CTE), in the windows 1m, 15m, 1h (UTC-aligned bins) and 1d
// (Asia/Ho_Chi_Minh). A row that arrived (received_at) after its window's end
// plus the lateness ($1, an interval) counts in late only. The statement
// returns the inserted keys (source_id, event_id, NULL) then every roll-up
// row it wrote (NULL, NULL, the row as JSON).

// sqlRollupInsert builds the statement. insert is the kind's INSERT … ON
// CONFLICT DO NOTHING without RETURNING; returning lists the columns of the
// inserted rows the contributions need besides source_id, event_id,
// observed_at, received_at, province and unit_code; layer is the roll-up's
// layer; aggs are the layer's aggregate columns over the contributions c
// (each "expr AS column", FILTER (WHERE NOT c.late) where it counts) and
// merge their ON CONFLICT assignments.
func sqlRollupInsert(insert, returning, layer, aggs, cols, merge string) string {
	r := strings.NewReplacer("{insert}", insert, "{returning}", returning, "{layer}", layer,
		"{aggs}", aggs, "{cols}", cols, "{merge}", merge)
	return r.Replace(`WITH RECURSIVE ins AS (
    {insert}
    RETURNING source_id, event_id, observed_at, received_at, province, unit_code, {returning}
), anc (leaf, t, code, level, depth) AS (
    SELECT DISTINCT unit_code, observed_at, unit_code, ''::text, 0 FROM ins
    UNION
    SELECT a.leaf, a.t, u.parent_code, coalesce(p.level, ''), a.depth + 1
    FROM anc a
    JOIN admin_unit u ON u.code = a.code AND u.valid_from <= a.t AND (u.valid_to IS NULL OR u.valid_to > a.t)
    LEFT JOIN admin_unit p ON p.code = u.parent_code AND p.valid_from <= a.t AND (p.valid_to IS NULL OR p.valid_to > a.t)
    WHERE u.parent_code IS NOT NULL AND a.depth < 16
), c AS (
    SELECT a.code, CASE WHEN a.level = 'national' THEN a.code ELSE i.province END AS rprovince,
        w.win, w.start, i.received_at > w.start + w.len + $1::interval AS late, i.*
    FROM ins i
    JOIN (SELECT DISTINCT leaf, t, code, level FROM anc) a ON a.leaf = i.unit_code AND a.t = i.observed_at
    CROSS JOIN LATERAL (VALUES
        ('1m',  date_bin('1 minute',   i.observed_at, TIMESTAMPTZ '2000-01-01 00:00Z'), interval '1 minute'),
        ('15m', date_bin('15 minutes', i.observed_at, TIMESTAMPTZ '2000-01-01 00:00Z'), interval '15 minutes'),
        ('1h',  date_bin('1 hour',     i.observed_at, TIMESTAMPTZ '2000-01-01 00:00Z'), interval '1 hour'),
        ('1d',  date_trunc('day', i.observed_at, 'Asia/Ho_Chi_Minh'), interval '1 day')
    ) AS w (win, start, len)
), agg AS (
    SELECT c.code, c.win, c.start, max(c.rprovince) AS province,
        count(*) FILTER (WHERE NOT c.late) AS n, count(*) FILTER (WHERE c.late) AS late, {aggs}
    FROM c
    GROUP BY c.code, c.win, c.start
), up AS (
    INSERT INTO rollup AS r (unit_code, layer, win, window_start, province, n, late, {cols}, updated_at)
    SELECT code, '{layer}', win, start, province, n, late, {cols}, now()
    FROM agg
    ON CONFLICT (unit_code, layer, win, window_start) DO UPDATE SET
        n = r.n + excluded.n,
        late = r.late + excluded.late,
        {merge},
        updated_at = excluded.updated_at
    RETURNING r.*
)
SELECT source_id, event_id, NULL::jsonb FROM ins
UNION ALL
SELECT NULL, NULL, to_jsonb(up) FROM up`)
}

var sqlInsertAirRollup = sqlRollupInsert(strings.TrimSuffix(sqlInsertAir, "\nRETURNING source_id, event_id"),
	"aqi, aqi_band, aqi_dominant", "air",
	`count(c.aqi) FILTER (WHERE NOT c.late) AS aqi_n,
        coalesce(sum(c.aqi) FILTER (WHERE NOT c.late), 0) AS aqi_sum,
        max(c.aqi) FILTER (WHERE NOT c.late) AS aqi_max,
        max(c.aqi_band) FILTER (WHERE NOT c.late) AS band_max,
        (array_agg(c.aqi_dominant ORDER BY c.aqi DESC) FILTER (WHERE NOT c.late AND c.aqi IS NOT NULL))[1] AS dominant`,
	"aqi_n, aqi_sum, aqi_max, band_max, dominant",
	`aqi_n = r.aqi_n + excluded.aqi_n,
        aqi_sum = r.aqi_sum + excluded.aqi_sum,
        dominant = CASE WHEN excluded.aqi_max > coalesce(r.aqi_max, -1) THEN excluded.dominant ELSE r.dominant END,
        aqi_max = greatest(r.aqi_max, excluded.aqi_max),
        band_max = greatest(r.band_max, excluded.band_max)`)

var sqlInsertTrafficRollup = sqlRollupInsert(strings.TrimSuffix(sqlInsertTraffic, "\nRETURNING source_id, event_id"),
	"intensity, average_vehicle_speed, congested", "traffic",
	`coalesce(sum(c.intensity) FILTER (WHERE NOT c.late AND c.average_vehicle_speed IS NOT NULL), 0) AS speed_w,
        coalesce(sum(c.intensity * c.average_vehicle_speed) FILTER (WHERE NOT c.late), 0) AS speed_wsum,
        count(*) FILTER (WHERE NOT c.late AND c.congested) AS congested_n,
        count(c.congested) FILTER (WHERE NOT c.late) AS congested_known,
        coalesce(sum(c.intensity) FILTER (WHERE NOT c.late), 0) AS vehicles`,
	"speed_w, speed_wsum, congested_n, congested_known, vehicles",
	`speed_w = r.speed_w + excluded.speed_w,
        speed_wsum = r.speed_wsum + excluded.speed_wsum,
        congested_n = r.congested_n + excluded.congested_n,
        congested_known = r.congested_known + excluded.congested_known,
        vehicles = r.vehicles + excluded.vehicles`)
