-- Observations of the kinds registered with internal/kind (not built in):
-- one table for all, partitioned by month of observed_at like the others,
-- with the same idempotency key within a kind. Each entity's current state is
-- its row of sensor (kind = the registered kind's name), its values in
-- last_values by their names.

-- +goose Up
CREATE TABLE observation_generic (
    kind        text        NOT NULL,
    source_id   text        NOT NULL,
    event_id    text        NOT NULL,
    observed_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    entity_id   text        NOT NULL,
    province    text        NOT NULL,
    unit_code   text        NOT NULL,
    location    geometry(Point, 4326),
    properties  jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (kind, source_id, event_id, observed_at)
) PARTITION BY RANGE (observed_at);
CREATE INDEX observation_generic_entity ON observation_generic (kind, entity_id, observed_at);
CREATE INDEX observation_generic_unit ON observation_generic (unit_code, observed_at);

-- +goose Down
DROP TABLE observation_generic;
