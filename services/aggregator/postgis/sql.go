package postgis

// SQL of the aggregator's store. Every statement of a batch runs in one
// transaction: the staging tables are temporary and dropped at commit.
//
// Rows that became an entity's state are chosen with DISTINCT ON ordered by
// observation time, then by seq (the row's index in the batch) so that of two
// observations at the same instant the later delivered one wins, in the batch
// as against the table (ties update again, which republishes the state after a
// redelivery).

const sqlCreateAirStaging = `CREATE TEMP TABLE air_staging (
    seq         integer     NOT NULL,
    source_id   text        NOT NULL,
    event_id    text        NOT NULL,
    observed_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    station_id  text        NOT NULL,
    name        text        NOT NULL,
    province    text        NOT NULL,
    unit_code   text        NOT NULL,
    location    geometry,
    pm25        double precision,
    pm10        double precision,
    no2         double precision,
    o3          double precision,
    co          double precision,
    so2         double precision,
    extra       jsonb,
    aqi         integer,
    aqi_band    smallint,
    aqi_dominant text,
    aqi_json    jsonb
) ON COMMIT DROP`

var airStagingColumns = []string{
	"seq", "source_id", "event_id", "observed_at", "received_at", "station_id", "name", "province", "unit_code",
	"location", "pm25", "pm10", "no2", "o3", "co", "so2", "extra", "aqi", "aqi_band", "aqi_dominant", "aqi_json",
}

const sqlInsertAir = `INSERT INTO air_observation (source_id, event_id, observed_at, received_at, station_id,
    province, unit_code, location, pm25, pm10, no2, o3, co, so2, extra, aqi, aqi_band, aqi_dominant)
SELECT source_id, event_id, observed_at, received_at, station_id,
    province, unit_code, location, pm25, pm10, no2, o3, co, so2, extra, aqi, aqi_band, aqi_dominant
FROM air_staging
ON CONFLICT DO NOTHING
RETURNING source_id, event_id, observed_at`

const sqlUpsertSensorAir = `WITH latest AS (
    SELECT DISTINCT ON (st.station_id) st.*
    FROM air_staging st ` + sqlOwnerOf + `sensor x WHERE x.kind = 'air' AND x.id = st.station_id` + sqlOwnerEnd + `
    ORDER BY st.station_id, st.observed_at DESC, st.seq DESC
), up AS (
    INSERT INTO sensor AS s (kind, id, name, province, unit_code, source_id, location,
        last_event_id, last_observed_at, last_values, updated_at)
    SELECT 'air', station_id, name, province, unit_code, source_id, location, event_id, observed_at,
        jsonb_strip_nulls(jsonb_build_object('pm25', pm25, 'pm10', pm10, 'no2', no2, 'o3', o3, 'co', co, 'so2', so2))
            || coalesce(extra, '{}'::jsonb)
            || CASE WHEN aqi_json IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('aqi', aqi_json) END,
        now()
    FROM latest
` + sqlSensorUpsertTail

// sensorRowsUpsert returns the upsert of the states of kind's sensors (air,
// water, weather) for a batch written straight into its observation table
// (writeDirect), as sqlUpsertSensorAir and its kin upsert them from a
// staging table: the newest row of each station, province and source
// (latestRows; the newest that may move the state is chosen here) comes as
// arrays (stateRows: $1 its index in the batch, $7 its location as EWKB,
// $10 its state's values as JSON text, built as the staged statement builds
// them: appendAirValues and its kin). With ownerLookUp the statement looks up each station's
// state first, for a station with rows of two provinces or sources in the
// batch; without, it is the statement for one row each station (the common
// batch): the conflict clause alone keeps a row that may not move a state
// from moving it, and there is no other row it could hide, so the rows need
// no look-up of their state first (which cost the drain ~7 µs of
// PostgreSQL's CPU an event). kind is the code's own constant, never input.
func sensorRowsUpsert(kind string, ownerLookUp bool) string {
	latest := `SELECT * FROM ` + sqlSensorRowsArrays
	if ownerLookUp {
		latest = `SELECT DISTINCT ON (st.station_id) st.*
    FROM ` + sqlSensorRowsArrays + `
    ` + sqlOwnerOf + `sensor x WHERE x.kind = '` + kind + `' AND x.id = st.station_id` + sqlOwnerEnd + `
    ORDER BY st.station_id, st.observed_at DESC, st.seq DESC`
	}
	return `WITH latest AS (
    ` + latest + `
), up AS (
    INSERT INTO sensor AS s (kind, id, name, province, unit_code, source_id, location,
        last_event_id, last_observed_at, last_values, updated_at)
    SELECT '` + kind + `', station_id, name, province, unit_code, source_id, ST_GeomFromEWKB(location), event_id, observed_at,
        last_values::jsonb, now()
    FROM latest
    ORDER BY station_id
` + sqlSensorUpsertTail
}

// The sensors' upserts from arrays, by kind: with the owner's look-up, and
// for one row each station (sensorRowsUpsert).
var (
	sqlUpsertSensorAirRows, sqlUpsertSensorAirRowsOne         = sensorRowsUpsert("air", true), sensorRowsUpsert("air", false)
	sqlUpsertSensorWaterRows, sqlUpsertSensorWaterRowsOne     = sensorRowsUpsert("water", true), sensorRowsUpsert("water", false)
	sqlUpsertSensorWeatherRows, sqlUpsertSensorWeatherRowsOne = sensorRowsUpsert("weather", true), sensorRowsUpsert("weather", false)
)

// stateRowsArrays is the rows stateRows queues as arrays, with the names
// of the entity's id and geometry columns.
func stateRowsArrays(id, geometry string) string {
	return `unnest($1::integer[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bytea[],
        $8::text[], $9::timestamptz[], $10::text[])
        AS st (seq, ` + id + `, name, province, unit_code, source_id, ` + geometry + `, event_id, observed_at, last_values)`
}

// sqlSensorRowsArrays are a sensor's rows as arrays.
var sqlSensorRowsArrays = stateRowsArrays("station_id", "location")

const sqlCreateTrafficStaging = `CREATE TEMP TABLE traffic_staging (
    seq                   integer     NOT NULL,
    source_id             text        NOT NULL,
    event_id              text        NOT NULL,
    observed_at           timestamptz NOT NULL,
    received_at           timestamptz NOT NULL,
    segment_id            text        NOT NULL,
    name                  text        NOT NULL,
    province              text        NOT NULL,
    unit_code             text        NOT NULL,
    geom                  geometry,
    intensity             double precision,
    occupancy             double precision,
    average_vehicle_speed double precision,
    congested             boolean,
    lane_id               integer,
    extra                 jsonb
) ON COMMIT DROP`

var trafficStagingColumns = []string{
	"seq", "source_id", "event_id", "observed_at", "received_at", "segment_id", "name", "province", "unit_code",
	"geom", "intensity", "occupancy", "average_vehicle_speed", "congested", "lane_id", "extra",
}

const sqlInsertTraffic = `INSERT INTO traffic_observation (source_id, event_id, observed_at, received_at, segment_id,
    province, unit_code, geom, intensity, occupancy, average_vehicle_speed, congested, lane_id, extra)
SELECT source_id, event_id, observed_at, received_at, segment_id,
    province, unit_code, geom, intensity, occupancy, average_vehicle_speed, congested, lane_id, extra
FROM traffic_staging
ON CONFLICT DO NOTHING
RETURNING source_id, event_id, observed_at`

const sqlUpsertRoadSegment = `WITH latest AS (
    SELECT DISTINCT ON (st.segment_id) st.*
    FROM traffic_staging st ` + sqlOwnerOf + `road_segment x WHERE x.id = st.segment_id` + sqlOwnerEnd + `
    ORDER BY st.segment_id, st.observed_at DESC, st.seq DESC
), up AS (
    INSERT INTO road_segment AS r (id, name, province, unit_code, source_id, geom,
        last_event_id, last_observed_at, last_values, updated_at)
    SELECT segment_id, name, province, unit_code, source_id, geom, event_id, observed_at,
        jsonb_strip_nulls(jsonb_build_object('intensity', intensity, 'occupancy', occupancy,
            'averageVehicleSpeed', average_vehicle_speed, 'congested', congested, 'laneId', lane_id))
            || coalesce(extra, '{}'::jsonb),
        now()
    FROM latest
` + sqlRoadSegmentUpsertTail

// sqlRoadSegmentUpsertTail is the conflict clause of every upsert of a
// segment's current state, as sqlSensorOnConflict is a sensor's, and what
// the upsert returns.
const sqlRoadSegmentUpsertTail = `
    ON CONFLICT (id) DO UPDATE SET
        name             = CASE WHEN excluded.name <> '' THEN excluded.name ELSE r.name END,
        province         = excluded.province,
        unit_code        = excluded.unit_code,
        source_id        = excluded.source_id,
        geom             = excluded.geom,
        last_event_id    = excluded.last_event_id,
        last_observed_at = excluded.last_observed_at,
        last_values      = excluded.last_values,
        updated_at       = excluded.updated_at
    WHERE excluded.last_observed_at >= r.last_observed_at
      AND (excluded.source_id = r.source_id OR excluded.province = r.province)
    RETURNING r.id, r.updated_at
)
SELECT latest.seq, up.updated_at FROM up JOIN latest ON latest.segment_id = up.id`

// sqlUpsertRoadSegmentRows is sqlUpsertRoadSegment for a batch written
// straight into traffic_observation, as sensorRowsUpsert is the sensors'
// (values: appendTrafficValues).
var sqlUpsertRoadSegmentRows = `WITH latest AS (
    SELECT DISTINCT ON (st.segment_id) st.*
    FROM ` + sqlTrafficRowsArrays + `
    ` + sqlOwnerOf + `road_segment x WHERE x.id = st.segment_id` + sqlOwnerEnd + `
    ORDER BY st.segment_id, st.observed_at DESC, st.seq DESC
), up AS (` + sqlTrafficRowsInsert

// sqlUpsertRoadSegmentRowsOne is sqlUpsertRoadSegmentRows for one row each
// segment, as sensorRowsUpsert without the owner's look-up is for stations.
var sqlUpsertRoadSegmentRowsOne = `WITH latest AS (
    SELECT * FROM ` + sqlTrafficRowsArrays + `
), up AS (` + sqlTrafficRowsInsert

// sqlTrafficRowsArrays and sqlTrafficRowsInsert are the parts the two
// statements share: the rows as arrays (stateRows), and their insert.
var (
	sqlTrafficRowsArrays = stateRowsArrays("segment_id", "geom")
	sqlTrafficRowsInsert = `
    INSERT INTO road_segment AS r (id, name, province, unit_code, source_id, geom,
        last_event_id, last_observed_at, last_values, updated_at)
    SELECT segment_id, name, province, unit_code, source_id, ST_GeomFromEWKB(geom), event_id, observed_at,
        last_values::jsonb, now()
    FROM latest
    ORDER BY segment_id
` + sqlRoadSegmentUpsertTail
)

const sqlCreateAlertStaging = `CREATE TEMP TABLE alert_staging (
    seq         integer     NOT NULL,
    id          text        NOT NULL,
    source_id   text        NOT NULL,
    event_id    text        NOT NULL,
    identifier  text        NOT NULL,
    sender      text        NOT NULL,
    sent        timestamptz NOT NULL,
    status      text        NOT NULL,
    msg_type    text        NOT NULL,
    scope       text        NOT NULL,
    refs        text[]      NOT NULL,
    info        jsonb       NOT NULL,
    area        geometry,
    expires     timestamptz,
    expires_default boolean NOT NULL,
    province    text        NOT NULL,
    unit_code   text        NOT NULL,
    received_at timestamptz NOT NULL,
    body        bytea       NOT NULL
) ON COMMIT DROP`

var alertStagingColumns = []string{
	"seq", "id", "source_id", "event_id", "identifier", "sender", "sent", "status", "msg_type", "scope", "refs",
	"info", "area", "expires", "expires_default", "province", "unit_code", "received_at", "body",
}

// sqlUpsertAlert returns every alert whose row was written, whether it was new
// (xmax = 0 on a freshly inserted row), its lifecycle state and its
// acknowledgement (migration 00028), which a rewrite keeps. An alert that
// an Update or Cancel already stored refers to keeps that state, whatever the
// order they arrived in. A Cancel is itself never in force ('cancelled'), nor
// an Ack or Error ('closed').
//
// It also keeps the alert's active period for the roll-ups (migration
// 00023): an alert becoming active (new, or from another state) starts one at
// its sent (not before the end of its last one) with its grade, and its
// active_units cleared for sqlActivateAlerts to set; an active one rewritten
// active keeps its period; an active one rewritten into another state ends
// it at its expires (expired) or its sent. The state before the statement
// (old, read and locked in the same statement: PostgreSQL 15 has no RETURNING
// old) comes back with each row, so that only a change counts. It is read
// through cand, the rows the insert consumes, so each row's old state is read
// before the row is written (a scan of old after the insert would not see it:
// FOR UPDATE skips a row the same statement changed). An alert of another
// sender than the one stored under its id, or than another of the batch
// under it, fails the statement (iochub_alert_one_sender, 00039): the
// aggregator dead-letters it alone.
const sqlUpsertAlert = `WITH latest AS (
    SELECT DISTINCT ON (id) *
    FROM alert_staging
    ORDER BY id, sent DESC, seq DESC
), senders AS MATERIALIZED (
    SELECT id, min(sender) AS s1, max(sender) AS s2 FROM alert_staging GROUP BY id HAVING min(sender) <> max(sender)
), old AS MATERIALIZED (
    SELECT a.id, a.state, a.sender FROM alert a WHERE a.id IN (SELECT id FROM latest) FOR UPDATE
), cand AS MATERIALIZED (
    SELECT l.*, coalesce(o.state, '') AS prev,
        CASE WHEN l.msg_type = 'Cancel' THEN 'cancelled' WHEN l.msg_type IN ('Ack', 'Error') THEN 'closed' ELSE
        coalesce((
            SELECT CASE WHEN bool_or(c.msg_type = 'Cancel') THEN 'cancelled' ELSE 'superseded' END
            FROM alert c CROSS JOIN LATERAL unnest(c.refs) r
            WHERE c.source_id = l.source_id AND c.msg_type IN ('Update', 'Cancel')
              AND split_part(r, ',', 1) = l.sender AND split_part(r, ',', 2) = l.identifier
            HAVING count(*) > 0
        ), CASE WHEN l.expires IS NOT NULL AND l.expires <= now() THEN 'expired' ELSE 'active' END) END AS state
    FROM latest l LEFT JOIN old o ON o.id = l.id LEFT JOIN senders m ON m.id = l.id
    WHERE iochub_alert_one_sender(l.id, coalesce(o.sender, l.sender), l.sender)
      AND iochub_alert_one_sender(l.id, coalesce(m.s1, l.sender), coalesce(m.s2, l.sender))
), up AS (
    INSERT INTO alert AS a (id, source_id, event_id, identifier, sender, sent, status, msg_type, scope, refs,
        info, area, expires, expires_default, state, province, unit_code, received_at, updated_at, body, active_grade,
        active_from)
    SELECT l.id, l.source_id, l.event_id, l.identifier, l.sender, l.sent, l.status, l.msg_type, l.scope, l.refs,
        l.info, ST_SetSRID(iochub_alert_area(l.area), 4326),
        l.expires, l.expires_default, l.state, l.province, l.unit_code, l.received_at, now(), l.body,
        CASE WHEN l.state = 'active' THEN iochub_alert_grade(l.info) END,
        CASE WHEN l.state = 'active' THEN l.sent END
    FROM cand l
    ON CONFLICT (id) DO UPDATE SET
        event_id     = excluded.event_id,
        sender       = excluded.sender,
        sent         = excluded.sent,
        status       = excluded.status,
        msg_type     = excluded.msg_type,
        scope        = excluded.scope,
        refs         = excluded.refs,
        info         = excluded.info,
        area         = excluded.area,
        expires      = excluded.expires,
        expires_default = excluded.expires_default,
        state        = excluded.state,
        province     = excluded.province,
        unit_code    = excluded.unit_code,
        received_at  = excluded.received_at,
        updated_at   = excluded.updated_at,
        body         = excluded.body,
        active_grade = CASE WHEN excluded.state = 'active' AND a.state <> 'active' THEN excluded.active_grade ELSE a.active_grade END,
        active_from  = CASE WHEN excluded.state = 'active' AND a.state <> 'active' THEN greatest(excluded.sent, a.active_until)
            ELSE a.active_from END,
        active_until = CASE WHEN excluded.state = 'active' AND a.state <> 'active' THEN NULL
            WHEN excluded.state <> 'active' AND a.state = 'active' AND a.active_from IS NOT NULL
                THEN greatest(a.active_from, CASE WHEN excluded.state = 'expired' THEN excluded.expires ELSE excluded.sent END)
            ELSE a.active_until END,
        active_units = CASE WHEN excluded.state = 'active' AND a.state <> 'active' THEN NULL ELSE a.active_units END
    WHERE excluded.sent >= a.sent
    RETURNING a.id, a.state, a.updated_at, (a.xmax = 0) AS inserted, a.province, a.active_grade, a.active_from,
        a.active_until, coalesce(a.active_units, ARRAY[a.unit_code]) AS units, a.acked_by, a.acked_at
)
SELECT cand.seq, up.state, up.updated_at, up.inserted, cand.prev, up.province, up.active_grade,
    up.active_from, up.active_until, up.units, coalesce(up.acked_by, ''), up.acked_at
FROM up JOIN cand ON cand.id = up.id`

// sqlActivateAlerts records, after sqlInsertAlertUnits, the units of the
// alerts of the batch that became active in this transaction (those whose
// active_units sqlUpsertAlert cleared): their alert_unit rows, else their
// unit_code. It returns them: the alerts activated, each once.
const sqlActivateAlerts = `UPDATE alert a SET active_units = coalesce(
        (SELECT array_agg(u.unit_code ORDER BY u.unit_code) FROM alert_unit u WHERE u.alert_id = a.id), ARRAY[a.unit_code])
WHERE a.id IN (SELECT id FROM alert_staging) AND a.state = 'active' AND a.active_from IS NOT NULL AND a.active_units IS NULL
RETURNING a.province, a.active_grade, a.active_from, a.active_units`

// sqlResolveReferences marks the alerts that the Updates and Cancels written
// by this batch refer to (CAP references "sender,identifier,sent", within
// the same source) as superseded or cancelled; cancelled is final. Every
// referred alert is returned, even when its state was already that, so that
// a redelivery republishes it, with whether this statement ended its active
// period (the state before, read and locked in the statement, was active):
// then at the earliest sent of the messages referring to it.
const sqlResolveReferences = `WITH refs AS (
    SELECT a.source_id, split_part(r, ',', 1) AS sender, split_part(r, ',', 2) AS identifier,
        CASE WHEN bool_or(a.msg_type = 'Cancel') THEN 'cancelled' ELSE 'superseded' END AS new_state,
        min(a.sent) AS at
    FROM alert a CROSS JOIN LATERAL unnest(a.refs) r
    WHERE a.updated_at = now() AND a.id IN (SELECT id FROM alert_staging) AND a.msg_type IN ('Update', 'Cancel')
    GROUP BY 1, 2, 3
), old AS (
    SELECT t.id, t.state
    FROM alert t JOIN refs ON t.source_id = refs.source_id AND t.sender = refs.sender AND t.identifier = refs.identifier
    FOR UPDATE OF t
)
UPDATE alert t SET
    state = CASE WHEN t.state = 'cancelled' THEN 'cancelled' ELSE refs.new_state END,
    active_until = CASE WHEN t.state = 'active' AND t.active_from IS NOT NULL THEN greatest(t.active_from, refs.at)
        ELSE t.active_until END,
    updated_at = now()
FROM refs, old
WHERE t.source_id = refs.source_id AND t.sender = refs.sender AND t.identifier = refs.identifier AND old.id = t.id
RETURNING t.id, t.state, t.updated_at, t.province, t.unit_code, t.body,
    ARRAY(SELECT u.unit_code FROM alert_unit u WHERE u.alert_id = t.id ORDER BY 1),
    old.state = 'active' AND t.active_from IS NOT NULL, t.active_grade, t.active_from, t.active_until,
    coalesce(t.active_units, ARRAY[t.unit_code])`

// sqlAlertPeriods returns the active periods of the alerts $1 and of those
// their Updates and Cancels refer to, as stored (a period whose alert is
// still active has no end): the changes a redelivered batch of them counted
// when first stored, for its roll-ups to be published again.
const sqlAlertPeriods = `WITH ids AS (
    SELECT unnest($1::text[]) AS id
    UNION
    SELECT t.id FROM alert a CROSS JOIN LATERAL unnest(a.refs) r
    JOIN alert t ON t.source_id = a.source_id AND t.sender = split_part(r, ',', 1) AND t.identifier = split_part(r, ',', 2)
    WHERE a.id = ANY($1)
)
SELECT province, active_grade, active_from, active_until, coalesce(active_units, ARRAY[unit_code])
FROM alert WHERE id IN (SELECT id FROM ids) AND active_from IS NOT NULL AND active_grade IS NOT NULL`

// sqlDueAlerts lists the active alerts whose expiry has passed, in a province
// ($1; empty means all), at most $2 of them.
const sqlDueAlerts = `SELECT t.id, t.province, t.unit_code, t.body,
    ARRAY(SELECT u.unit_code FROM alert_unit u WHERE u.alert_id = t.id ORDER BY 1), t.acked_by, t.acked_at
FROM alert t
WHERE t.state = 'active' AND t.expires <= now() AND ($1 = '' OR t.province = $1)
ORDER BY t.expires
LIMIT $2`

// sqlMarkExpired records that the expiry of alerts $1 was published: the
// active ones (only those: a second call changes nothing) end their active
// period at their expires. It returns what it changed, for the roll-ups.
const sqlMarkExpired = `UPDATE alert SET state = 'expired', updated_at = $2,
    active_until = CASE WHEN active_from IS NOT NULL THEN greatest(active_from, expires) END
WHERE id = ANY($1) AND state = 'active'
RETURNING province, active_grade, active_from, active_until, coalesce(active_units, ARRAY[unit_code])`

// sqlApplyAlertDefaultTTL gives the active alerts of province $1 (empty
// means all) that name no expiry the hub's default one, sent + $2 seconds
// (none when $2 <= 0), except those of the sources $3 (the hub's own, which
// it cancels itself): what the aggregator stores for such an alert now
// (migration 00041), applied to those stored before or under another
// lifetime. Only a row whose expiry changes is written; the expiry sweep
// then ends those past it, as any other.
const sqlApplyAlertDefaultTTL = `WITH want AS (
    SELECT t.id, CASE WHEN $2::float8 > 0 THEN t.sent + $2::float8 * interval '1 second' END AS expires
    FROM alert t
    WHERE t.state = 'active' AND t.msg_type IN ('Alert', 'Update') AND (t.expires IS NULL OR t.expires_default)
      AND t.source_id <> ALL($3::text[]) AND ($1 = '' OR t.province = $1)
)
UPDATE alert a SET expires = w.expires, expires_default = w.expires IS NOT NULL, updated_at = now()
FROM want w
WHERE a.id = w.id AND a.expires IS DISTINCT FROM w.expires`

// sqlDeleteAlertUnits clears the units of the alerts written by this batch:
// those staged whose updated_at is this transaction's now().
const sqlDeleteAlertUnits = `DELETE FROM alert_unit
WHERE alert_id IN (SELECT a.id FROM alert a JOIN alert_staging s ON s.id = a.id WHERE a.updated_at = now())`

// sqlInsertAlertUnits recomputes them against the current unit boundaries.
// The stored area is valid (iochub_alert_area, migration 00008); its
// polygons are cut into pieces of at most 256 vertices so that each test
// against a unit is small and found through admin_unit's GiST index, and a
// unit touched by several pieces counts once.
const sqlInsertAlertUnits = `WITH written AS (
    SELECT a.id, a.area
    FROM alert a
    WHERE a.area IS NOT NULL
      AND a.updated_at = now()
      AND a.id IN (SELECT id FROM alert_staging)
), pieces AS (
    SELECT w.id, ST_Subdivide(ST_CollectionExtract(w.area, 3), 256) AS piece
    FROM written w
    UNION ALL
    SELECT w.id, d.geom
    FROM written w CROSS JOIN LATERAL ST_Dump(ST_CollectionExtract(w.area, 1)) d
)
INSERT INTO alert_unit (alert_id, unit_code)
SELECT DISTINCT p.id, u.code
FROM pieces p
JOIN admin_unit u ON u.valid_to IS NULL AND ST_Intersects(u.boundary, p.piece)
ON CONFLICT DO NOTHING
RETURNING alert_id, unit_code`

// sqlSetStatementTimeout bounds the statements of a write transaction by $1
// (a PostgreSQL duration such as '30000ms'), until the transaction ends.
const sqlSetStatementTimeout = `SELECT set_config('statement_timeout', $1, true)`

// sqlLockPartitions serialises the creation of partitions between aggregators.
const sqlLockPartitions = `SELECT pg_advisory_xact_lock(hashtext('iochub.observation_partitions'))`

// sqlCreatePartition is completed with the partition's name, its parent and
// its bounds (UTC timestamps); DDL takes no parameters.
const sqlCreatePartition = `CREATE TABLE IF NOT EXISTS %s PARTITION OF %s FOR VALUES FROM ('%s') TO ('%s')`

// sqlOwnsState chooses, of a batch's rows st of an entity, those that may
// move its state s (a LEFT JOIN: none yet): of the state's source or of its
// province, as sqlSensorOnConflict says, before the newest is chosen, so
// that a newer row of another province does not hide the owner's. s is read
// by a LATERAL subquery with LIMIT 1, which the planner keeps as one index
// look-up per row: as a plain join it read the whole state table (a hash
// join), and the drain's PostgreSQL CPU per event went from ~32 to ~86 µs.
const sqlOwnsState = `(s.id IS NULL OR st.source_id = s.source_id OR st.province = s.province)`

// sqlOwnerOf and sqlOwnerEnd read the state s of each staged row st (the
// state table and the match go between them) and keep the rows that may
// move it (sqlOwnsState): the one place of the LATERAL … LIMIT 1 the plan
// needs.
const (
	sqlOwnerOf  = `LEFT JOIN LATERAL (SELECT x.id, x.source_id, x.province FROM `
	sqlOwnerEnd = ` LIMIT 1) s ON true
    WHERE ` + sqlOwnsState
)

// sqlSensorOnConflict is the conflict clause of every upsert of a sensor's
// current state, whatever its kind: only a newer (or equally new: a
// redelivery) observation replaces it, and only one of the source that sent
// the state or of the state's province. An entity id is the sources' own
// (refDevice, refRoadSegment…): the same id from a source of another province
// is another station, or a source taking over one it does not own; its
// observation is stored (with its own province and unit), the state is not
// moved (sqlUpsertRoadSegment does the same for segments).
const sqlSensorOnConflict = `
    ON CONFLICT (kind, id) DO UPDATE SET
        name             = CASE WHEN excluded.name <> '' THEN excluded.name ELSE s.name END,
        province         = excluded.province,
        unit_code        = excluded.unit_code,
        source_id        = excluded.source_id,
        location         = excluded.location,
        last_event_id    = excluded.last_event_id,
        last_observed_at = excluded.last_observed_at,
        last_values      = excluded.last_values,
        updated_at       = excluded.updated_at
    WHERE excluded.last_observed_at >= s.last_observed_at
      AND (excluded.source_id = s.source_id OR excluded.province = s.province)`

// sqlSensorUpsertTail ends the upsert of a built-in station's current state:
// the stations whose state changed come back with their staging row.
const sqlSensorUpsertTail = sqlSensorOnConflict + `
    RETURNING s.id, s.updated_at
)
SELECT latest.seq, up.updated_at FROM up JOIN latest ON latest.station_id = up.id`
