-- VN_AQI on air observations; water and weather observations.
-- The aggregator computes the hourly VN_AQI (Decision 1459/QĐ-TCMT) of each
-- air observation as it writes it, from the station's hours kept in memory;
-- NULL where it could not be computed. Water and weather stations are rows of
-- sensor (kind 'water', 'weather') like air stations; their raw observations
-- are partitioned by month of observed_at like the others, with the same
-- idempotency key.

-- +goose Up
ALTER TABLE air_observation
    ADD COLUMN aqi          integer,
    ADD COLUMN aqi_band     smallint CHECK (aqi_band BETWEEN 1 AND 6),
    ADD COLUMN aqi_dominant text;

-- Raw observations at hydrological and water-quality stations, named as FIWARE
-- WaterQualityObserved, with iochub's flood watch: water_level and the
-- station's alarm levels (báo động I, II, III) in metres; water_alarm is the
-- highest level reached (0 none). Every other value by its FIWARE name in extra.
CREATE TABLE water_observation (
    source_id        text        NOT NULL,
    event_id         text        NOT NULL,
    observed_at      timestamptz NOT NULL,
    received_at      timestamptz NOT NULL,
    station_id       text        NOT NULL,
    province         text        NOT NULL,
    unit_code        text        NOT NULL,
    location         geometry(Point, 4326),
    water_level      double precision,
    alarm_level_1    double precision,
    alarm_level_2    double precision,
    alarm_level_3    double precision,
    water_alarm      smallint    NOT NULL DEFAULT 0 CHECK (water_alarm BETWEEN 0 AND 3),
    flow             double precision,
    temperature      double precision,
    ph               double precision,
    conductivity     double precision,
    turbidity        double precision,
    dissolved_oxygen double precision,
    extra            jsonb,
    PRIMARY KEY (source_id, event_id, observed_at)
) PARTITION BY RANGE (observed_at);
CREATE INDEX water_observation_station ON water_observation (station_id, observed_at);
CREATE INDEX water_observation_unit ON water_observation (unit_code, observed_at);

-- Raw observations at weather stations, named as FIWARE WeatherObserved.
CREATE TABLE weather_observation (
    source_id            text        NOT NULL,
    event_id             text        NOT NULL,
    observed_at          timestamptz NOT NULL,
    received_at          timestamptz NOT NULL,
    station_id           text        NOT NULL,
    province             text        NOT NULL,
    unit_code            text        NOT NULL,
    location             geometry(Point, 4326),
    temperature          double precision,
    relative_humidity    double precision,
    precipitation        double precision,
    wind_speed           double precision,
    wind_direction       double precision,
    atmospheric_pressure double precision,
    extra                jsonb,
    PRIMARY KEY (source_id, event_id, observed_at)
) PARTITION BY RANGE (observed_at);
CREATE INDEX weather_observation_station ON weather_observation (station_id, observed_at);
CREATE INDEX weather_observation_unit ON weather_observation (unit_code, observed_at);

-- +goose Down
DROP TABLE weather_observation;
DROP TABLE water_observation;
ALTER TABLE air_observation
    DROP COLUMN aqi_dominant,
    DROP COLUMN aqi_band,
    DROP COLUMN aqi;
