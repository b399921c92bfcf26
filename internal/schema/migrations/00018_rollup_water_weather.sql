-- Roll-ups of water and weather (docs/rollups.md): the mergeable parts of
-- their figures. Mean temperature = temp_sum / temp_n.

-- +goose Up
ALTER TABLE rollup
    -- water
    ADD COLUMN level_max   double precision,
    ADD COLUMN alarm_max   smallint,
    ADD COLUMN alarm1_n    bigint NOT NULL DEFAULT 0,
    ADD COLUMN alarm2_n    bigint NOT NULL DEFAULT 0,
    ADD COLUMN alarm3_n    bigint NOT NULL DEFAULT 0,
    -- weather
    ADD COLUMN temp_n      bigint NOT NULL DEFAULT 0,
    ADD COLUMN temp_sum    double precision NOT NULL DEFAULT 0,
    ADD COLUMN precip_sum  double precision NOT NULL DEFAULT 0,
    ADD COLUMN wind_max    double precision;

-- +goose Down
ALTER TABLE rollup
    DROP COLUMN wind_max,
    DROP COLUMN precip_sum,
    DROP COLUMN temp_sum,
    DROP COLUMN temp_n,
    DROP COLUMN alarm3_n,
    DROP COLUMN alarm2_n,
    DROP COLUMN alarm1_n,
    DROP COLUMN alarm_max,
    DROP COLUMN level_max;
