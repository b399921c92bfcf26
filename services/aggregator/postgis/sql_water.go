package postgis

// SQL of water and weather observations and of the air history that warms
// the aggregator's AQI calculators.

const sqlCreateWaterStaging = `CREATE TEMP TABLE water_staging (
    seq              integer     NOT NULL,
    source_id        text        NOT NULL,
    event_id         text        NOT NULL,
    observed_at      timestamptz NOT NULL,
    received_at      timestamptz NOT NULL,
    station_id       text        NOT NULL,
    name             text        NOT NULL,
    province         text        NOT NULL,
    unit_code        text        NOT NULL,
    location         geometry,
    water_level      double precision,
    alarm_level_1    double precision,
    alarm_level_2    double precision,
    alarm_level_3    double precision,
    water_alarm      smallint    NOT NULL,
    flow             double precision,
    temperature      double precision,
    ph               double precision,
    conductivity     double precision,
    turbidity        double precision,
    dissolved_oxygen double precision,
    extra            jsonb
) ON COMMIT DROP`

var waterStagingColumns = []string{
	"seq", "source_id", "event_id", "observed_at", "received_at", "station_id", "name", "province", "unit_code",
	"location", "water_level", "alarm_level_1", "alarm_level_2", "alarm_level_3", "water_alarm", "flow",
	"temperature", "ph", "conductivity", "turbidity", "dissolved_oxygen", "extra",
}

const sqlInsertWater = `INSERT INTO water_observation (source_id, event_id, observed_at, received_at, station_id,
    province, unit_code, location, water_level, alarm_level_1, alarm_level_2, alarm_level_3, water_alarm, flow,
    temperature, ph, conductivity, turbidity, dissolved_oxygen, extra)
SELECT source_id, event_id, observed_at, received_at, station_id,
    province, unit_code, location, water_level, alarm_level_1, alarm_level_2, alarm_level_3, water_alarm, flow,
    temperature, ph, conductivity, turbidity, dissolved_oxygen, extra
FROM water_staging
ON CONFLICT DO NOTHING
RETURNING source_id, event_id, observed_at`

// sqlUpsertSensorWater keeps the latest observation of each water station,
// its values by FIWARE name (and iochub's flood-watch names) in last_values.
const sqlUpsertSensorWater = `WITH latest AS (
    SELECT DISTINCT ON (st.station_id) st.*
    FROM water_staging st ` + sqlOwnerOf + `sensor x WHERE x.kind = 'water' AND x.id = st.station_id` + sqlOwnerEnd + `
    ORDER BY st.station_id, st.observed_at DESC, st.seq DESC
), up AS (
    INSERT INTO sensor AS s (kind, id, name, province, unit_code, source_id, location,
        last_event_id, last_observed_at, last_values, updated_at)
    SELECT 'water', station_id, name, province, unit_code, source_id, location, event_id, observed_at,
        jsonb_strip_nulls(jsonb_build_object('waterLevel', water_level, 'alarmLevel1', alarm_level_1,
            'alarmLevel2', alarm_level_2, 'alarmLevel3', alarm_level_3, 'waterAlarm', water_alarm, 'flow', flow,
            'temperature', temperature, 'pH', ph, 'conductivity', conductivity, 'turbidity', turbidity,
            'O2', dissolved_oxygen))
            || coalesce(extra, '{}'::jsonb),
        now()
    FROM latest
` + sqlSensorUpsertTail

const sqlCreateWeatherStaging = `CREATE TEMP TABLE weather_staging (
    seq                  integer     NOT NULL,
    source_id            text        NOT NULL,
    event_id             text        NOT NULL,
    observed_at          timestamptz NOT NULL,
    received_at          timestamptz NOT NULL,
    station_id           text        NOT NULL,
    name                 text        NOT NULL,
    province             text        NOT NULL,
    unit_code            text        NOT NULL,
    location             geometry,
    temperature          double precision,
    relative_humidity    double precision,
    precipitation        double precision,
    wind_speed           double precision,
    wind_direction       double precision,
    atmospheric_pressure double precision,
    extra                jsonb
) ON COMMIT DROP`

var weatherStagingColumns = []string{
	"seq", "source_id", "event_id", "observed_at", "received_at", "station_id", "name", "province", "unit_code",
	"location", "temperature", "relative_humidity", "precipitation", "wind_speed", "wind_direction",
	"atmospheric_pressure", "extra",
}

const sqlInsertWeather = `INSERT INTO weather_observation (source_id, event_id, observed_at, received_at, station_id,
    province, unit_code, location, temperature, relative_humidity, precipitation, wind_speed, wind_direction,
    atmospheric_pressure, extra)
SELECT source_id, event_id, observed_at, received_at, station_id,
    province, unit_code, location, temperature, relative_humidity, precipitation, wind_speed, wind_direction,
    atmospheric_pressure, extra
FROM weather_staging
ON CONFLICT DO NOTHING
RETURNING source_id, event_id, observed_at`

const sqlUpsertSensorWeather = `WITH latest AS (
    SELECT DISTINCT ON (st.station_id) st.*
    FROM weather_staging st ` + sqlOwnerOf + `sensor x WHERE x.kind = 'weather' AND x.id = st.station_id` + sqlOwnerEnd + `
    ORDER BY st.station_id, st.observed_at DESC, st.seq DESC
), up AS (
    INSERT INTO sensor AS s (kind, id, name, province, unit_code, source_id, location,
        last_event_id, last_observed_at, last_values, updated_at)
    SELECT 'weather', station_id, name, province, unit_code, source_id, location, event_id, observed_at,
        jsonb_strip_nulls(jsonb_build_object('temperature', temperature, 'relativeHumidity', relative_humidity,
            'precipitation', precipitation, 'windSpeed', wind_speed, 'windDirection', wind_direction,
            'atmosphericPressure', atmospheric_pressure))
            || coalesce(extra, '{}'::jsonb),
        now()
    FROM latest
` + sqlSensorUpsertTail

// sqlAirHistory reads the pollutants VN_AQI rates of the air observations
// since $1, of the stations $2 (NULL means every station), oldest first: one
// query warms every station's calculator.
const sqlAirHistory = `SELECT station_id, province, observed_at, pm25, pm10, o3, co, so2, no2
FROM air_observation
WHERE observed_at >= $1 AND ($2::text[] IS NULL OR station_id = ANY($2))
  AND (pm25 IS NOT NULL OR pm10 IS NOT NULL OR o3 IS NOT NULL OR co IS NOT NULL OR so2 IS NOT NULL OR no2 IS NOT NULL)
ORDER BY observed_at`

// sqlWaterAlarmLevels reads the alarm levels kept in each water station's last values.
const sqlWaterAlarmLevels = `SELECT id, province, (last_values->>'alarmLevel1')::double precision,
    (last_values->>'alarmLevel2')::double precision, (last_values->>'alarmLevel3')::double precision
FROM sensor
WHERE kind = 'water' AND last_values ?| array['alarmLevel1', 'alarmLevel2', 'alarmLevel3']`
