package postgis

// SQL of the observations of registered kinds (GenericRow).

const sqlCreateGenericStaging = `CREATE TEMP TABLE generic_staging (
    seq         integer     NOT NULL,
    kind        text        NOT NULL,
    source_id   text        NOT NULL,
    event_id    text        NOT NULL,
    observed_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    entity_id   text        NOT NULL,
    name        text        NOT NULL,
    province    text        NOT NULL,
    unit_code   text        NOT NULL,
    location    geometry,
    properties  jsonb       NOT NULL
) ON COMMIT DROP`

var genericStagingColumns = []string{
	"seq", "kind", "source_id", "event_id", "observed_at", "received_at", "entity_id", "name", "province",
	"unit_code", "location", "properties",
}

const sqlInsertGeneric = `INSERT INTO observation_generic (kind, source_id, event_id, observed_at, received_at,
    entity_id, province, unit_code, location, properties)
SELECT kind, source_id, event_id, observed_at, received_at, entity_id, province, unit_code, location, properties
FROM generic_staging
ON CONFLICT DO NOTHING
RETURNING kind, source_id, event_id, observed_at`

// sqlUpsertSensorGeneric keeps the latest observation of each entity of a
// registered kind in sensor, with the conflict clause of the built-in
// stations (sqlSensorOnConflict), keyed by kind too.
const sqlUpsertSensorGeneric = `WITH latest AS (
    SELECT DISTINCT ON (st.kind, st.entity_id) st.*
    FROM generic_staging st ` + sqlOwnerOf + `sensor x WHERE x.kind = st.kind AND x.id = st.entity_id` + sqlOwnerEnd + `
    ORDER BY st.kind, st.entity_id, st.observed_at DESC, st.seq DESC
), up AS (
    INSERT INTO sensor AS s (kind, id, name, province, unit_code, source_id, location,
        last_event_id, last_observed_at, last_values, updated_at)
    SELECT kind, entity_id, name, province, unit_code, source_id, location, event_id, observed_at, properties, now()
    FROM latest` + sqlSensorOnConflict + `
    RETURNING s.kind, s.id, s.updated_at
)
SELECT latest.seq, up.updated_at FROM up JOIN latest ON latest.kind = up.kind AND latest.entity_id = up.id`
