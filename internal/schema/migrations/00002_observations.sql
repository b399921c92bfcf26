-- Observations, the current state of sensors and road segments, and alerts.
-- Raw observations go into tables partitioned by month of observed_at; the
-- store creates each month's partition before a batch first touches it (there
-- is no default partition, so a row can never land in an unplanned place).
-- (source_id, event_id, observed_at) is the idempotency key: a redelivered or
-- duplicate event is dropped by ON CONFLICT DO NOTHING.

-- +goose Up

-- Current state of point sensors (air-quality stations; later water, weather).
CREATE TABLE sensor (
    kind             text        NOT NULL,
    id               text        NOT NULL,
    name             text        NOT NULL DEFAULT '',
    province         text        NOT NULL,
    unit_code        text        NOT NULL,
    source_id        text        NOT NULL,
    location         geometry(Point, 4326),
    last_event_id    text        NOT NULL,
    last_observed_at timestamptz NOT NULL,
    last_values      jsonb       NOT NULL DEFAULT '{}',
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, id)
);
CREATE INDEX sensor_location ON sensor USING gist (location);
CREATE INDEX sensor_province ON sensor (province, kind);

-- Current state of road segments.
CREATE TABLE road_segment (
    id               text PRIMARY KEY,
    name             text        NOT NULL DEFAULT '',
    province         text        NOT NULL,
    unit_code        text        NOT NULL,
    source_id        text        NOT NULL,
    geom             geometry(LineString, 4326),
    last_event_id    text        NOT NULL,
    last_observed_at timestamptz NOT NULL,
    last_values      jsonb       NOT NULL DEFAULT '{}',
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX road_segment_geom ON road_segment USING gist (geom);
CREATE INDEX road_segment_province ON road_segment (province);

-- Raw air-quality observations. Pollutants in µg/m³; every other value by its
-- FIWARE name in extra.
CREATE TABLE air_observation (
    source_id   text        NOT NULL,
    event_id    text        NOT NULL,
    observed_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    station_id  text        NOT NULL,
    province    text        NOT NULL,
    unit_code   text        NOT NULL,
    location    geometry(Point, 4326),
    pm25        double precision,
    pm10        double precision,
    no2         double precision,
    o3          double precision,
    co          double precision,
    so2         double precision,
    extra       jsonb,
    PRIMARY KEY (source_id, event_id, observed_at)
) PARTITION BY RANGE (observed_at);
CREATE INDEX air_observation_station ON air_observation (station_id, observed_at);
CREATE INDEX air_observation_unit ON air_observation (unit_code, observed_at);

-- Raw traffic observations, named as FIWARE TrafficFlowObserved.
CREATE TABLE traffic_observation (
    source_id             text        NOT NULL,
    event_id              text        NOT NULL,
    observed_at           timestamptz NOT NULL,
    received_at           timestamptz NOT NULL,
    segment_id            text        NOT NULL,
    province              text        NOT NULL,
    unit_code             text        NOT NULL,
    geom                  geometry(LineString, 4326),
    intensity             double precision,
    occupancy             double precision,
    average_vehicle_speed double precision,
    congested             boolean,
    lane_id               integer,
    extra                 jsonb,
    PRIMARY KEY (source_id, event_id, observed_at)
) PARTITION BY RANGE (observed_at);
CREATE INDEX traffic_observation_segment ON traffic_observation (segment_id, observed_at);
CREATE INDEX traffic_observation_unit ON traffic_observation (unit_code, observed_at);

-- Alerts as CAP 1.2, one row per (source, identifier). area is every area
-- geometry of every info block collected into one geometry; NULL when the
-- alert names its areas by geocode only. state: an Update or Cancel of the
-- same source referring to the alert makes it superseded or cancelled (final);
-- else it is expired once expires has passed, else active.
CREATE TABLE alert (
    id          text PRIMARY KEY, -- <source_id>/<identifier>
    source_id   text        NOT NULL,
    event_id    text        NOT NULL,
    identifier  text        NOT NULL,
    sender      text        NOT NULL,
    sent        timestamptz NOT NULL,
    status      text        NOT NULL,
    msg_type    text        NOT NULL,
    scope       text        NOT NULL DEFAULT '',
    refs        text[]      NOT NULL DEFAULT '{}',
    info        jsonb       NOT NULL DEFAULT '[]',
    area        geometry(Geometry, 4326),
    expires     timestamptz,
    state       text        NOT NULL CHECK (state IN ('active', 'cancelled', 'expired', 'superseded')),
    province    text        NOT NULL,
    unit_code   text        NOT NULL,
    received_at timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    body        bytea       NOT NULL DEFAULT '', -- the ioc.v1.Alert as received, to republish its state
    UNIQUE (source_id, event_id)
);
CREATE INDEX alert_area ON alert USING gist (area);
CREATE INDEX alert_province_state ON alert (province, state);
CREATE INDEX alert_expires ON alert (expires) WHERE state = 'active';

-- The current administrative units an alert's area touches.
CREATE TABLE alert_unit (
    alert_id  text NOT NULL REFERENCES alert (id) ON DELETE CASCADE,
    unit_code text NOT NULL,
    PRIMARY KEY (alert_id, unit_code)
);
CREATE INDEX alert_unit_unit ON alert_unit (unit_code);

-- +goose Down
DROP TABLE alert_unit;
DROP TABLE alert;
DROP TABLE traffic_observation;
DROP TABLE air_observation;
DROP TABLE road_segment;
DROP TABLE sensor;
