package postgis

// Roll-up SQL (store_rollup.go).

// sqlUnitVersions returns every version of the units $1 and of all their
// ancestors (admin_unit.parent_code, in any version), kind 'u', and every
// membership of those units in custom groups (unit_group_member), kind 'g'
// with the group as parent, for placing a batch's rows in the tree valid at
// their observation times.
const sqlUnitVersions = `WITH RECURSIVE anc (code) AS (
    SELECT unnest($1::text[])
    UNION
    SELECT u.parent_code FROM anc JOIN admin_unit u ON u.code = anc.code WHERE u.parent_code IS NOT NULL
)
SELECT 'u', u.code, coalesce(u.parent_code, ''), u.level, u.valid_from, u.valid_to
FROM admin_unit u
WHERE u.code IN (SELECT code FROM anc)
UNION ALL
SELECT 'g', m.member_code, m.group_code, 'custom', m.valid_from, m.valid_to
FROM unit_group_member m
WHERE m.member_code IN (SELECT code FROM anc)`

// sqlUpsertRollups adds a batch's contributions, one row per unit, layer,
// window and start (unnest of the arrays $1…$29), to rollup and returns every
// roll-up it wrote as it now is.
const sqlUpsertRollups = `INSERT INTO rollup AS r (unit_code, layer, win, window_start, province, n, late,
    aqi_n, aqi_sum, aqi_max, band_max, dominant,
    speed_w, speed_wsum, congested_n, congested_known, vehicles,
    level_max, alarm_max, alarm1_n, alarm2_n, alarm3_n, temp_n, temp_sum, precip_sum, wind_max,
    resolved_n, resolved_in_sla_n, overdue_n, updated_at)
SELECT *, now() FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::bigint[], $7::bigint[],
    $8::bigint[], $9::float8[], $10::integer[], $11::smallint[], $12::text[],
    $13::float8[], $14::float8[], $15::bigint[], $16::bigint[], $17::float8[],
    $18::float8[], $19::smallint[], $20::bigint[], $21::bigint[], $22::bigint[], $23::bigint[], $24::float8[], $25::float8[], $26::float8[],
    $27::bigint[], $28::bigint[], $29::bigint[])
ON CONFLICT (unit_code, layer, win, window_start) DO UPDATE SET
    n = r.n + excluded.n,
    late = r.late + excluded.late,
    aqi_n = r.aqi_n + excluded.aqi_n,
    aqi_sum = r.aqi_sum + excluded.aqi_sum,
    dominant = CASE WHEN excluded.aqi_max > coalesce(r.aqi_max, -1) THEN excluded.dominant ELSE r.dominant END,
    aqi_max = greatest(r.aqi_max, excluded.aqi_max),
    band_max = greatest(r.band_max, excluded.band_max),
    speed_w = r.speed_w + excluded.speed_w,
    speed_wsum = r.speed_wsum + excluded.speed_wsum,
    congested_n = r.congested_n + excluded.congested_n,
    congested_known = r.congested_known + excluded.congested_known,
    vehicles = r.vehicles + excluded.vehicles,
    level_max = greatest(r.level_max, excluded.level_max),
    alarm_max = greatest(r.alarm_max, excluded.alarm_max),
    alarm1_n = r.alarm1_n + excluded.alarm1_n,
    alarm2_n = r.alarm2_n + excluded.alarm2_n,
    alarm3_n = r.alarm3_n + excluded.alarm3_n,
    temp_n = r.temp_n + excluded.temp_n,
    temp_sum = r.temp_sum + excluded.temp_sum,
    precip_sum = r.precip_sum + excluded.precip_sum,
    wind_max = greatest(r.wind_max, excluded.wind_max),
    resolved_n = r.resolved_n + excluded.resolved_n,
    resolved_in_sla_n = r.resolved_in_sla_n + excluded.resolved_in_sla_n,
    overdue_n = r.overdue_n + excluded.overdue_n,
    updated_at = excluded.updated_at
RETURNING unit_code, layer, win, window_start, province, n, late, aqi_n, aqi_sum, aqi_max, band_max, dominant,
    speed_w, speed_wsum, congested_n, congested_known, vehicles,
    level_max, alarm_max, alarm1_n, alarm2_n, alarm3_n, temp_n, temp_sum, precip_sum, wind_max,
    resolved_n, resolved_in_sla_n, overdue_n, updated_at`
