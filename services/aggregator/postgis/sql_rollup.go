package postgis

// Roll-up SQL (store_rollup.go).

import "github.com/jackc/pgx/v5"

// sqlGenericPlans and sqlAutoPlans surround, in a batch's pipeline, the
// statements of every batch whose plan does not depend on their arrays of
// units (sqlUnitVersions, sqlRollupContext): with PostgreSQL's default
// (auto) each is planned again per call, about 0.4 ms of the server's time
// each (pg_stat_statements, docs/benchmarks.md); the generic plan is made
// once per connection. They surround the reads and writes of member rows
// by key too, which a plan for the arrays given made hash the whole table
// (memberWrites.queue).
const (
	sqlGenericPlans = `SET LOCAL plan_cache_mode = force_generic_plan`
	sqlAutoPlans    = `SET LOCAL plan_cache_mode = auto`
)

// queueGeneric queues on pb what queue queues between sqlGenericPlans and
// sqlAutoPlans: planned generic, whatever their arrays hold.
func queueGeneric(pb *pgx.Batch, queue func()) {
	pb.Queue(sqlGenericPlans)
	queue()
	pb.Queue(sqlAutoPlans)
}

// sqlUnitVersions returns every version of the units $1 and of all their
// ancestors (admin_unit.parent_code, in any version), kind 'u', and every
// membership of those units in custom groups (unit_group_member), kind 'g'
// with the group as parent, for placing a batch's rows in the tree valid at
// their observation times. Its plan is generic (sqlGenericPlans), made for
// arrays of any size: each look-up is a subquery the planner keeps (OFFSET
// 0), so that it is an index scan per unit; joined, the planner hashed the
// whole admin_unit four times (3,336 rows, 2.1 ms a batch with a national
// tree, against 0.16 ms; docs/benchmarks.md).
const sqlUnitVersions = `WITH RECURSIVE anc (code) AS (
    SELECT unnest($1::text[])
    UNION
    SELECT p.parent_code FROM anc CROSS JOIN LATERAL (
        SELECT u.parent_code FROM admin_unit u WHERE u.code = anc.code AND u.parent_code IS NOT NULL OFFSET 0) p
)
SELECT 'u', u.code, coalesce(u.parent_code, ''), u.level, u.valid_from, u.valid_to
FROM anc CROSS JOIN LATERAL (SELECT * FROM admin_unit u WHERE u.code = anc.code OFFSET 0) u
UNION ALL
SELECT 'g', m.member_code, m.group_code, 'custom', m.valid_from, m.valid_to
FROM anc CROSS JOIN LATERAL (SELECT * FROM unit_group_member m WHERE m.member_code = anc.code OFFSET 0) m`

// sqlInsertMemberDays creates, empty, the rows of rollup_member_day
// ($1…$4: layer, entity, day, unit; in key order) that do not exist yet, $5
// being the empty grades; a shared row (unit_code empty) gets the units $6 whose row
// number (1-based) in $7 is its own (none: retired, '{}'). A row another
// transaction is inserting is waited for and left to it.
const sqlInsertMemberDays = `INSERT INTO rollup_member_day (layer, entity, day, unit_code, grades, units)
SELECT k.l, k.e, k.d, k.u, $5, CASE WHEN k.u = '' THEN coalesce(s.units, '{}') END
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[]) WITH ORDINALITY AS k (l, e, d, u, i)
LEFT JOIN (` + sqlRowUnits + `) s ON s.i = k.i
ORDER BY k.l, k.e, k.d, k.u
ON CONFLICT DO NOTHING`

// sqlRowUnits groups the units $6 of the shared rows of a statement by their
// row number $7 (1-based), in order: unnest cannot take an array of arrays
// of different lengths.
const sqlRowUnits = `SELECT f.i, array_agg(f.u ORDER BY f.o) AS units
    FROM unnest($6::text[], $7::bigint[]) WITH ORDINALITY AS f (u, i, o) GROUP BY f.i`

// sqlSelectMemberDays is what the reads of rollup_member_day return: a row's
// key, its units (a shared row's; NULL for a unit's own row), its version,
// its first 121 slots and its minutes k.lo…k.hi.
const sqlSelectMemberDays = `SELECT m.layer, m.entity, m.day, m.unit_code, m.units, m.version,
    substring(m.grades FROM 1 FOR 121), substring(m.grades FROM 122 + k.lo FOR k.hi - k.lo + 1)
`

// sqlLockEntityDays reads and locks the rows of rollup_member_day of the
// entities $2 of layers $1 in the days $3 (given in key order, which the
// nested loop over the primary key keeps, so writers lock in one order),
// every unit's and the shared one: their version, their first 121 slots
// (day, hours, quarters) and their minutes $4…$5 (0…1439). A batch counts
// its members from them and writes them back (sqlUpdateMemberDays) before
// its commit.
const sqlLockEntityDays = sqlSelectMemberDays + `FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::integer[], $5::integer[]) AS k (l, e, d, lo, hi)
JOIN LATERAL (SELECT * FROM rollup_member_day m
    WHERE m.layer = k.l AND m.entity = k.e AND m.day = k.d
    ORDER BY m.unit_code
    FOR UPDATE) m ON true
WHERE k.d >= ` + sqlHorizonDay

// sqlReadEntityDays is sqlLockEntityDays without the lock: a batch that
// writes the rows only at the version it read (sqlUpdateMemberDays) and
// creates the rows it did not find (sqlCreateMemberDays) needs none.
const sqlReadEntityDays = sqlSelectMemberDays + `FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::integer[], $5::integer[]) AS k (l, e, d, lo, hi)
JOIN rollup_member_day m ON m.layer = k.l AND m.entity = k.e AND m.day = k.d
WHERE k.d >= ` + sqlHorizonDay

// sqlHorizonDay is the member horizon (rollup_member_horizon), -infinity
// when no day is closed: the rows of closed days are neither read nor
// locked (a batch counts their observations as late, and a close may be
// deleting them).
const sqlHorizonDay = `(SELECT coalesce(day, '-infinity') FROM rollup_member_horizon)`

// sqlCreateMemberDays creates the rows of rollup_member_day $1…$4 (layer,
// entity, day, unit; in key order) with their grades $5, at version 0, a
// shared row (unit_code empty) with its units from $6 and $7 (sqlRowUnits), and
// returns a row per row created: none for a row that exists (another writer
// created it since the batch found none).
const sqlCreateMemberDays = `INSERT INTO rollup_member_day (layer, entity, day, unit_code, grades, version, units)
SELECT k.l, k.e, k.d, k.u, k.g, 0, CASE WHEN k.u = '' THEN coalesce(s.units, '{}') END
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::bytea[]) WITH ORDINALITY AS k (l, e, d, u, g, i)
LEFT JOIN (` + sqlRowUnits + `) s ON s.i = k.i
ORDER BY k.l, k.e, k.d, k.u
ON CONFLICT DO NOTHING
RETURNING 1`

// sqlSplitMemberDays retires the shared rows of rollup_member_day of the
// entity days $1…$3 where their version is still $4 (units '{}', version
// + 1) and copies their grades into a row of each unit $8 of entity day
// $5…$7 (its units when read), at version 0; it returns a row per row
// created. A shared row changed since it was read creates none; nor does a
// unit that has a row already (which only a writer that does not know
// shared rows makes): the batch then finds fewer rows than it wrote and is
// retried.
const sqlSplitMemberDays = `WITH r AS (
    UPDATE rollup_member_day m SET units = '{}', version = m.version + 1
    FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[]) AS k (l, e, d, v)
    WHERE m.layer = k.l AND m.entity = k.e AND m.day = k.d AND m.unit_code = '' AND m.version = k.v
    RETURNING m.layer, m.entity, m.day, m.grades
)
INSERT INTO rollup_member_day (layer, entity, day, unit_code, grades, version)
SELECT r.layer, r.entity, r.day, u.u, r.grades, 0
FROM unnest($5::text[], $6::text[], $7::timestamptz[], $8::text[]) AS u (l, e, d, u)
JOIN r ON r.layer = u.l AND r.entity = u.e AND r.day = u.d
ORDER BY u.l, u.e, u.d, u.u
ON CONFLICT DO NOTHING
RETURNING 1`

// sqlUpdateMemberDays writes back the rows of rollup_member_day a batch
// changed ($1…$4 their keys) where their version is still $9, the one the
// batch read (00029): the first 121 slots $5, the minutes $7 from minute $6;
// it adds the members upgraded $8 and 1 to the version, and returns a row
// per row written.
const sqlUpdateMemberDays = `UPDATE rollup_member_day m
SET grades = overlay(overlay(m.grades PLACING k.head FROM 1) PLACING k.mins FROM 122 + k.lo), upgrades = m.upgrades + k.up,
    version = m.version + 1
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::bytea[], $6::integer[], $7::bytea[], $8::integer[], $9::bigint[])
    AS k (l, e, d, u, head, lo, mins, up, v)
WHERE m.layer = k.l AND m.entity = k.e AND m.day = k.d AND m.unit_code = k.u AND m.version = k.v
RETURNING 1`

// sqlUpsertRollups adds a batch's contributions, one row per unit, layer,
// window and start (unnest of the arrays $1…$29; an array of figures may be
// NULL, for all zero or all NULL: unnest pads it with NULLs), to rollup and returns every
// roll-up it wrote as it now is. $30 are the members the batch added to each
// and $31…$37 the change of the members at grade 0…6 (countMembers); $38…$50
// the changes of the gauges: activated and ended per grade, open, closed,
// rejected (store_rollup_alert.go).
const sqlUpsertRollups = `INSERT INTO rollup AS r (unit_code, layer, win, window_start, province, n, late,
    aqi_n, aqi_sum, aqi_max, band_max, dominant,
    speed_w, speed_wsum, congested_n, congested_known, vehicles,
    level_max, alarm_max, alarm1_n, alarm2_n, alarm3_n, temp_n, temp_sum, precip_sum, wind_max,
    resolved_n, resolved_in_sla_n, overdue_n, members, grade_n,
    activated0_n, activated1_n, activated2_n, activated3_n, activated4_n,
    ended0_n, ended1_n, ended2_n, ended3_n, ended4_n, open_n, closed_n, rejected_n, updated_at)
SELECT u.unit_code, u.layer, u.win, u.window_start, u.province, coalesce(u.n, 0), coalesce(u.late, 0),
    coalesce(u.aqi_n, 0), coalesce(u.aqi_sum, 0), u.aqi_max, u.band_max, u.dominant,
    coalesce(u.speed_w, 0), coalesce(u.speed_wsum, 0), coalesce(u.congested_n, 0), coalesce(u.congested_known, 0), coalesce(u.vehicles, 0),
    u.level_max, u.alarm_max, coalesce(u.alarm1_n, 0), coalesce(u.alarm2_n, 0), coalesce(u.alarm3_n, 0),
    coalesce(u.temp_n, 0), coalesce(u.temp_sum, 0), coalesce(u.precip_sum, 0), u.wind_max,
    coalesce(u.resolved_n, 0), coalesce(u.resolved_in_sla_n, 0), coalesce(u.overdue_n, 0), coalesce(u.members, 0),
    ARRAY[coalesce(u.g0, 0), coalesce(u.g1, 0), coalesce(u.g2, 0), coalesce(u.g3, 0), coalesce(u.g4, 0), coalesce(u.g5, 0), coalesce(u.g6, 0)],
    coalesce(u.activated0_n, 0), coalesce(u.activated1_n, 0), coalesce(u.activated2_n, 0), coalesce(u.activated3_n, 0), coalesce(u.activated4_n, 0),
    coalesce(u.ended0_n, 0), coalesce(u.ended1_n, 0), coalesce(u.ended2_n, 0), coalesce(u.ended3_n, 0), coalesce(u.ended4_n, 0),
    coalesce(u.open_n, 0), coalesce(u.closed_n, 0), coalesce(u.rejected_n, 0), now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::bigint[], $7::bigint[],
    $8::bigint[], $9::float8[], $10::integer[], $11::smallint[], $12::text[],
    $13::float8[], $14::float8[], $15::bigint[], $16::bigint[], $17::float8[],
    $18::float8[], $19::smallint[], $20::bigint[], $21::bigint[], $22::bigint[], $23::bigint[], $24::float8[], $25::float8[], $26::float8[],
    $27::bigint[], $28::bigint[], $29::bigint[], $30::bigint[],
    $31::bigint[], $32::bigint[], $33::bigint[], $34::bigint[], $35::bigint[], $36::bigint[], $37::bigint[],
    $38::bigint[], $39::bigint[], $40::bigint[], $41::bigint[], $42::bigint[],
    $43::bigint[], $44::bigint[], $45::bigint[], $46::bigint[], $47::bigint[], $48::bigint[], $49::bigint[], $50::bigint[])
    AS u (unit_code, layer, win, window_start, province, n, late, aqi_n, aqi_sum, aqi_max, band_max, dominant,
        speed_w, speed_wsum, congested_n, congested_known, vehicles,
        level_max, alarm_max, alarm1_n, alarm2_n, alarm3_n, temp_n, temp_sum, precip_sum, wind_max,
        resolved_n, resolved_in_sla_n, overdue_n, members, g0, g1, g2, g3, g4, g5, g6,
        activated0_n, activated1_n, activated2_n, activated3_n, activated4_n,
        ended0_n, ended1_n, ended2_n, ended3_n, ended4_n, open_n, closed_n, rejected_n)
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
    activated0_n = r.activated0_n + excluded.activated0_n,
    activated1_n = r.activated1_n + excluded.activated1_n,
    activated2_n = r.activated2_n + excluded.activated2_n,
    activated3_n = r.activated3_n + excluded.activated3_n,
    activated4_n = r.activated4_n + excluded.activated4_n,
    ended0_n = r.ended0_n + excluded.ended0_n,
    ended1_n = r.ended1_n + excluded.ended1_n,
    ended2_n = r.ended2_n + excluded.ended2_n,
    ended3_n = r.ended3_n + excluded.ended3_n,
    ended4_n = r.ended4_n + excluded.ended4_n,
    open_n = r.open_n + excluded.open_n,
    closed_n = r.closed_n + excluded.closed_n,
    rejected_n = r.rejected_n + excluded.rejected_n,
    members = r.members + excluded.members,
    grade_n = ARRAY(SELECT a + b FROM unnest(r.grade_n, excluded.grade_n) WITH ORDINALITY AS t (a, b, i) ORDER BY i),
    updated_at = greatest(r.updated_at, excluded.updated_at) -- never back: readers order copies of a window by it
RETURNING ` + rollupColumns

// rollupColumns are the columns of a rollup row as scanRollup reads them.
const rollupColumns = `unit_code, layer, win, window_start, province, n, late, aqi_n, aqi_sum, aqi_max, band_max, dominant,
    speed_w, speed_wsum, congested_n, congested_known, vehicles,
    level_max, alarm_max, alarm1_n, alarm2_n, alarm3_n, temp_n, temp_sum, precip_sum, wind_max,
    resolved_n, resolved_in_sla_n, overdue_n, members, grade_n, updated_at,
    activated0_n, activated1_n, activated2_n, activated3_n, activated4_n,
    ended0_n, ended1_n, ended2_n, ended3_n, ended4_n, open_n, closed_n, rejected_n`

// sqlReadRollups returns the stored roll-ups of the units, layers, window
// lengths and starts $1…$4, in their order.
const sqlReadRollups = `SELECT r.* FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) WITH ORDINALITY AS i (unit_code, layer, win, start, ord)
CROSS JOIN LATERAL (
    SELECT ` + rollupColumns + ` FROM rollup
    WHERE unit_code = i.unit_code AND layer = i.layer AND win = i.win AND window_start = i.start
) r
ORDER BY i.ord`

// sqlLatestRollups returns, for each unit, layer, window length and start
// of $1…$4 (a batch's latest window of each unit, layer and length), the
// stored roll-up of the latest later window of the same unit, layer and
// length, if any, with its unit and layer's gauge totals
// (rollup_gauge_total; zero when none): the latest window has no change
// after it, so its gauges are the totals (docs/rollups.md, "Gauges"). Each
// is one backward range read of the primary key.
const sqlLatestRollups = `SELECT l.*,
    coalesce(t.active0_n, 0), coalesce(t.active1_n, 0), coalesce(t.active2_n, 0), coalesce(t.active3_n, 0),
    coalesce(t.active4_n, 0), coalesce(t.open_n, 0)
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS i (unit_code, layer, win, start)
CROSS JOIN LATERAL (
    SELECT ` + rollupColumns + ` FROM rollup r
    WHERE r.unit_code = i.unit_code AND r.layer = i.layer AND r.win = i.win AND r.window_start > i.start
    ORDER BY r.window_start DESC LIMIT 1
) l
LEFT JOIN rollup_gauge_total t ON t.unit_code = l.unit_code AND t.layer = l.layer`

// sqlCurrentEdges is the CTE edge (parent, child) of the current tree: the
// units' parents and the custom groups' members valid now.
const sqlCurrentEdges = `edge (parent, child) AS (
    SELECT parent_code, code FROM admin_unit
    WHERE parent_code IS NOT NULL AND valid_from <= now() AND (valid_to IS NULL OR valid_to > now())
    UNION ALL
    SELECT group_code, member_code FROM unit_group_member
    WHERE valid_from <= now() AND (valid_to IS NULL OR valid_to > now())
)`

// sqlRollupContext returns, for each unit of $1 (units and custom groups),
// the sensors known in the unit and its descendants in the current tree
// (admin_unit and unit_group_member valid now): stations of each kind in
// sensor, road segments as kind 'traffic'; and the stale source and unit
// pairs there (source_stats.stale_since set), with an empty kind.
const sqlRollupContext = `WITH RECURSIVE ` + sqlCurrentEdges + `, sub (root, code) AS (
    SELECT u, u FROM unnest($1::text[]) u
    UNION
    SELECT sub.root, edge.child FROM sub JOIN edge ON edge.parent = sub.code
)
SELECT sub.root, s.kind, count(*) FROM sub JOIN sensor s ON s.unit_code = sub.code GROUP BY sub.root, s.kind
UNION ALL
SELECT sub.root, 'traffic', count(*) FROM sub JOIN road_segment g ON g.unit_code = sub.code GROUP BY sub.root
UNION ALL
SELECT sub.root, '', count(*) FROM sub JOIN source_stats st ON st.unit_code = sub.code
WHERE st.stale_since IS NOT NULL GROUP BY sub.root`

// sqlRollupContextCached is sqlRollupContext for a store that keeps the
// counts it read (contextCache): when the version of the roll-up context
// (rollup_context, migration 00032) is still $3, the transaction changed
// nothing of it (iochub.rollup_context_changed) and now() is within
// [$4, $5) (NULL: open), the copies of the counts of units $1 hold, and it
// reads those of $2 only (the units of $1 the store holds none of); else
// those of $1. Its first row says which: root NULL, kind 'hit', 'read' or
// 'changed' (read, the transaction having changed the context), n the
// version; when not a hit, from and until are the boundaries (valid_from
// and valid_to of any unit or membership) around now(), between which the
// current tree is the same (NULL: none). Its other rows are those of
// sqlRollupContext, from and until NULL. On a hit for every unit (a
// batch's usual case) sub is empty, and EXISTS (SELECT FROM sub), a
// one-time filter, keeps each count from scanning and sorting the whole of
// sensor, road_segment or source_stats to join nothing: 0.65 of the 0.8 ms
// the statement took with 2,000 stations, and it grew with them
// (docs/benchmarks.md).
const sqlRollupContextCached = `WITH RECURSIVE ver AS (
    SELECT c.version, coalesce(current_setting('iochub.rollup_context_changed', true) = 'on', false) AS changed
    FROM rollup_context c
    LIMIT 1 -- its one row: else estimated at ~1,800, and the plan's cost at JIT's threshold
), hit AS (
    SELECT v.version = $3 AND NOT v.changed
        AND ($4::timestamptz IS NULL OR $4::timestamptz <= now()) AND ($5::timestamptz IS NULL OR now() < $5::timestamptz) AS hit
    FROM ver v
), ` + sqlCurrentEdges + `, sub (root, code) AS (
    SELECT u, u FROM unnest(CASE WHEN (SELECT hit FROM hit) THEN $2::text[] ELSE $1::text[] END) u
    UNION
    SELECT sub.root, edge.child FROM sub JOIN edge ON edge.parent = sub.code
)
SELECT NULL::text, CASE WHEN h.hit THEN 'hit' WHEN v.changed THEN 'changed' ELSE 'read' END, v.version, b.lo, b.hi
FROM ver v CROSS JOIN hit h
LEFT JOIN LATERAL (
    SELECT max(t) FILTER (WHERE t <= now()) AS lo, min(t) FILTER (WHERE t > now()) AS hi FROM (
        SELECT valid_from FROM admin_unit UNION ALL SELECT valid_to FROM admin_unit
        UNION ALL SELECT valid_from FROM unit_group_member UNION ALL SELECT valid_to FROM unit_group_member
    ) AS b (t)
    WHERE NOT h.hit
) b ON true
UNION ALL
SELECT sub.root, s.kind, count(*), NULL, NULL FROM sub JOIN sensor s ON s.unit_code = sub.code WHERE EXISTS (SELECT FROM sub)
GROUP BY sub.root, s.kind
UNION ALL
SELECT sub.root, 'traffic', count(*), NULL, NULL FROM sub JOIN road_segment g ON g.unit_code = sub.code WHERE EXISTS (SELECT FROM sub)
GROUP BY sub.root
UNION ALL
SELECT sub.root, '', count(*), NULL, NULL FROM sub JOIN source_stats st ON st.unit_code = sub.code
WHERE st.stale_since IS NOT NULL AND EXISTS (SELECT FROM sub) GROUP BY sub.root`

// sqlShareMemberDays is taken by every batch that writes roll-ups, before
// it reads the member rows and the horizon (sqlMemberHorizon), until it
// ends; CloseMemberDays takes it exclusive to move the horizon, so that no
// batch that read the old horizon is still running when the rows before the
// new one are deleted. A statement of its own: the reads after it take their
// snapshots once it is granted.
const sqlShareMemberDays = `SELECT pg_advisory_xact_lock_shared(hashtext('iochub.rollup_member_day'))`

// sqlLockMemberDays is CloseMemberDays' exclusive side of sqlShareMemberDays.
const sqlLockMemberDays = `SELECT pg_advisory_xact_lock(hashtext('iochub.rollup_member_day'))`

// sqlCloseLockTimeout bounds CloseMemberDays' wait for sqlLockMemberDays.
const sqlCloseLockTimeout = `SELECT set_config('lock_timeout', '5s', true)`

// sqlMemberHorizon is the first day whose member rows are kept (NULL: all).
const sqlMemberHorizon = `SELECT day FROM rollup_member_horizon`

// sqlCloseMemberDays moves the horizon forward to $1; it updates no row when
// the horizon was there or later.
const sqlCloseMemberDays = `UPDATE rollup_member_horizon SET day = $1 WHERE day IS NULL OR day < $1`

// sqlDeleteMemberDays deletes the member rows of the days before $1.
const sqlDeleteMemberDays = `DELETE FROM rollup_member_day WHERE day < $1`
