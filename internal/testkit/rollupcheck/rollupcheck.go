// Package rollupcheck is the invariant of the roll-ups, for the tests of the
// store and of the aggregator service (docs/rollups.md, "Invariant"): every
// stored roll-up of the observation layers and the reports equals what plain
// SQL over the raw rows gives, ancestors and groups, windows and lateness
// computed apart from the aggregator's code.
package rollupcheck

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// UnitsOf joins each row r (unit_code, province, observed_at) to the units
// it rolls up to at observed_at, as x (code, prov): its own, its ancestors by
// parent_code (each version valid then; an ancestor with none counts and ends
// the walk; 16 units at most), and its custom groups by unit_groups. A unit
// with no version valid at observed_at is taken, with its ancestors and
// groups, at the start of its first version after, else at the last
// microsecond of its last version before (rr.at). The province token is the
// row's, the national unit's and a group's own code.
const UnitsOf = `CROSS JOIN LATERAL (
        SELECT coalesce(
            (SELECT r.observed_at FROM admin_unit u WHERE u.code = r.unit_code
                AND u.valid_from <= r.observed_at AND (u.valid_to IS NULL OR u.valid_to > r.observed_at) LIMIT 1),
            (SELECT min(u.valid_from) FROM admin_unit u WHERE u.code = r.unit_code AND u.valid_from > r.observed_at),
            (SELECT max(u.valid_to) - interval '1 microsecond' FROM admin_unit u WHERE u.code = r.unit_code AND u.valid_to <= r.observed_at),
            r.observed_at) AS at
    ) rr
    CROSS JOIN LATERAL (
        WITH RECURSIVE anc (code, depth) AS (
            SELECT r.unit_code, 0
            UNION ALL
            SELECT u.parent_code, anc.depth + 1
            FROM anc JOIN admin_unit u ON u.code = anc.code
                AND u.valid_from <= rr.at AND (u.valid_to IS NULL OR u.valid_to > rr.at)
            WHERE u.parent_code IS NOT NULL AND anc.depth < 15
        )
        SELECT anc.code, CASE WHEN EXISTS (SELECT FROM admin_unit n WHERE n.code = anc.code AND n.level = 'national'
                AND n.valid_from <= rr.at AND (n.valid_to IS NULL OR n.valid_to > rr.at)) THEN anc.code ELSE r.province END AS prov
        FROM anc
        UNION
        SELECT g.group_code, g.group_code FROM unit_groups(r.unit_code, rr.at) g
    ) x`

// WindowsOf joins each row (observed_at) to the windows it falls in,
// as v (win, start, len).
const WindowsOf = `CROSS JOIN LATERAL (VALUES
        ('1m', date_trunc('minute', observed_at), interval '1 minute'),
        ('15m', date_trunc('hour', observed_at) + floor(extract(minute FROM observed_at) / 15) * interval '15 minutes', interval '15 minutes'),
        ('1h', date_trunc('hour', observed_at), interval '1 hour'),
        ('1d', (date_trunc('day', observed_at AT TIME ZONE 'Asia/Ho_Chi_Minh')) AT TIME ZONE 'Asia/Ho_Chi_Minh', interval '1 day')
    ) v (win, start, len)`

// Diff is the invariant (all but the dominant pollutant, which Dominant checks): the roll-ups stored against what plain SQL
// over the raw rows gives (ancestors by a recursive walk, custom groups
// by the schema's unit_groups, windows by
// date_trunc, late by received_at after the window's end plus 2 hours). It
// returns the rows of either side missing from the other.
const Diff = `WITH valid AS (
    SELECT * FROM admin_unit
), raw AS (
    SELECT 'air' AS layer, unit_code, province, observed_at, received_at, aqi, aqi_band,
        NULL::double precision AS intensity, NULL::double precision AS speed, NULL::boolean AS congested,
        NULL::double precision AS level, NULL::smallint AS alarm,
        NULL::double precision AS temp, NULL::double precision AS precip, NULL::double precision AS wind,
        station_id AS entity, coalesce(aqi_band, 0)::smallint AS grade
    FROM air_observation
    UNION ALL
    SELECT 'traffic', unit_code, province, observed_at, received_at, NULL, NULL, intensity, average_vehicle_speed, congested,
        NULL, NULL, NULL, NULL, NULL, segment_id, CASE WHEN congested THEN 1 ELSE 0 END
    FROM traffic_observation
    UNION ALL
    SELECT 'water', unit_code, province, observed_at, received_at, NULL, NULL, NULL, NULL, NULL,
        water_level, water_alarm, NULL, NULL, NULL, station_id, water_alarm
    FROM water_observation
    UNION ALL
    SELECT 'weather', unit_code, province, observed_at, received_at, NULL, NULL, NULL, NULL, NULL,
        NULL, NULL, temperature, precipitation, wind_speed, NULL, NULL
    FROM weather_observation
    UNION ALL
    SELECT 'report', unit_code, province, reported_at, received_at, NULL, NULL, NULL, NULL, NULL,
        NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM report
), up AS (
    SELECT r.*, x.code, x.prov FROM raw r
` + UnitsOf + `
), w AS (
    SELECT up.*, v.win, v.start, up.received_at > v.start + v.len + interval '2 hours' AS late
    FROM up ` + WindowsOf + `
), expected0 AS (
    SELECT code AS unit_code, layer, win, start AS window_start, max(prov) AS province,
        count(*) FILTER (WHERE NOT late) AS n, count(*) FILTER (WHERE late) AS late,
        count(aqi) FILTER (WHERE NOT late) AS aqi_n, round(coalesce(sum(aqi) FILTER (WHERE NOT late), 0)::numeric, 6) AS aqi_sum,
        max(aqi) FILTER (WHERE NOT late) AS aqi_max, max(aqi_band) FILTER (WHERE NOT late) AS band_max,
        round(coalesce(sum(intensity) FILTER (WHERE NOT late AND speed IS NOT NULL), 0)::numeric, 6) AS speed_w,
        round(coalesce(sum(intensity * speed) FILTER (WHERE NOT late), 0)::numeric, 6) AS speed_wsum,
        count(*) FILTER (WHERE NOT late AND congested) AS congested_n,
        count(congested) FILTER (WHERE NOT late) AS congested_known,
        round(coalesce(sum(intensity) FILTER (WHERE NOT late), 0)::numeric, 6) AS vehicles,
        max(level) FILTER (WHERE NOT late) AS level_max, max(alarm) FILTER (WHERE NOT late) AS alarm_max,
        count(*) FILTER (WHERE NOT late AND alarm = 1) AS alarm1_n, count(*) FILTER (WHERE NOT late AND alarm = 2) AS alarm2_n,
        count(*) FILTER (WHERE NOT late AND alarm = 3) AS alarm3_n,
        count(temp) FILTER (WHERE NOT late) AS temp_n, round(coalesce(sum(temp) FILTER (WHERE NOT late), 0)::numeric, 6) AS temp_sum,
        round(coalesce(sum(precip) FILTER (WHERE NOT late), 0)::numeric, 6) AS precip_sum, max(wind) FILTER (WHERE NOT late) AS wind_max
    FROM w
    GROUP BY code, layer, win, start
), worst AS (
    -- each station or segment once per window, with the worst grade it reached
    SELECT code, layer, win, start, entity, max(grade) AS grade
    FROM w WHERE NOT late AND entity IS NOT NULL
    GROUP BY code, layer, win, start, entity
), members AS (
    SELECT code, layer, win, start, count(*) AS members,
        ARRAY[count(*) FILTER (WHERE grade = 0), count(*) FILTER (WHERE grade = 1), count(*) FILTER (WHERE grade = 2),
            count(*) FILTER (WHERE grade = 3), count(*) FILTER (WHERE grade = 4), count(*) FILTER (WHERE grade = 5),
            count(*) FILTER (WHERE grade = 6)] AS grade_n
    FROM worst GROUP BY code, layer, win, start
), expected AS (
    SELECT e.*, coalesce(m.members, 0) AS members, coalesce(m.grade_n, '{0,0,0,0,0,0,0}') AS grade_n
    FROM expected0 e LEFT JOIN members m
        ON m.code = e.unit_code AND m.layer = e.layer AND m.win = e.win AND m.start = e.window_start
), stored AS (
    SELECT unit_code, layer, win, window_start, province, n, late, aqi_n, round(aqi_sum::numeric, 6), aqi_max, band_max,
        round(speed_w::numeric, 6), round(speed_wsum::numeric, 6), congested_n, congested_known, round(vehicles::numeric, 6),
        level_max, alarm_max, alarm1_n, alarm2_n, alarm3_n, temp_n, round(temp_sum::numeric, 6), round(precip_sum::numeric, 6), wind_max,
        members, grade_n
    FROM rollup
    -- The layers expected computes: the alerts' are checked apart (postgis's
    -- sqlAlertRollupDiff), so a stale sweep's alert is no difference here.
    WHERE layer IN ('air', 'traffic', 'water', 'weather', 'report')
)
(SELECT 'stored' AS side, * FROM (SELECT * FROM stored EXCEPT SELECT * FROM expected) s)
UNION ALL
(SELECT 'expected', * FROM (SELECT * FROM expected EXCEPT SELECT * FROM stored) e)
ORDER BY 2, 3, 4, 5, 1`

// Dominant checks what Diff cannot compare with EXCEPT: the dominant
// pollutant of every stored air roll-up is the dominant of one of the
// observations (counted, not late) of the window's maximum AQI, or NULL when
// none has an AQI. Observations tied at the maximum may name different
// pollutants; which of them the roll-up keeps depends on their order. It
// returns the roll-ups that break it, with the pollutants allowed.
const Dominant = `WITH raw AS (
    SELECT unit_code, province, observed_at, received_at, aqi, aqi_dominant FROM air_observation
), up AS (
    SELECT r.*, x.code FROM raw r
` + UnitsOf + `
), w AS (
    SELECT up.*, v.win, v.start FROM up ` + WindowsOf + `
    WHERE NOT up.received_at > v.start + v.len + interval '2 hours'
), top AS (
    SELECT code, win, start, max(aqi) AS m FROM w GROUP BY code, win, start
), allowed AS (
    SELECT w.code, w.win, w.start, array_agg(DISTINCT coalesce(w.aqi_dominant, '')) AS doms
    FROM w JOIN top ON top.code = w.code AND top.win = w.win AND top.start = w.start AND w.aqi = top.m
    GROUP BY w.code, w.win, w.start
)
SELECT r.unit_code, r.win, r.window_start, r.aqi_max, r.dominant, a.doms
FROM rollup r LEFT JOIN allowed a ON a.code = r.unit_code AND a.win = r.win AND a.start = r.window_start
WHERE r.layer = 'air' AND CASE WHEN a.doms IS NULL THEN r.dominant IS NOT NULL
    ELSE NOT coalesce(r.dominant, '') = ANY (a.doms) END
ORDER BY 1, 2, 3`

// Differences runs Diff and Dominant and returns a line per roll-up that
// breaks the invariant; none when it holds.
func Differences(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	var out []string
	for _, q := range []string{Diff, Dominant} {
		rows, err := pool.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("comparing roll-ups: %w", err)
		}
		for rows.Next() {
			v, err := rows.Values()
			if err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, fmt.Sprint(v))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("comparing roll-ups: %w", err)
		}
	}
	return out, nil
}

// Check fails t when a stored roll-up differs from plain SQL (Differences).
func Check(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	diff, err := Differences(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range diff {
		if i == 20 {
			break
		}
		t.Errorf("roll-up differs from plain SQL: %s", d)
	}
	if len(diff) > 0 {
		t.Fatalf("%d roll-up rows differ from plain SQL", len(diff))
	}
}
