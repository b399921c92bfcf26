-- Roll-ups: per unit, layer and window, the mergeable parts of each layer's
-- figures (counts, sums, maxima), added to in the aggregator's write
-- transaction from the rows that transaction inserted (docs/rollups.md).
-- A roll-up is read as figures by dividing: mean VN_AQI = aqi_sum / aqi_n,
-- intensity-weighted mean speed = speed_wsum / speed_w, share congested =
-- congested_n / congested_known.

-- +goose Up
CREATE TABLE rollup (
    unit_code       text        NOT NULL,
    layer           text        NOT NULL,
    win             text        NOT NULL CHECK (win IN ('1m', '15m', '1h', '1d')),
    window_start    timestamptz NOT NULL,
    -- province is the subject token of the unit's province (the unit's own
    -- code for the national unit).
    province        text        NOT NULL,
    -- n counts the observations that contributed; late those that arrived
    -- (received_at) after the window's end plus the lateness: stored, and
    -- counted here only.
    n               bigint      NOT NULL DEFAULT 0,
    late            bigint      NOT NULL DEFAULT 0,
    -- air
    aqi_n           bigint      NOT NULL DEFAULT 0,
    aqi_sum         double precision NOT NULL DEFAULT 0,
    aqi_max         integer,
    band_max        smallint,
    dominant        text,
    -- traffic
    speed_w         double precision NOT NULL DEFAULT 0,
    speed_wsum      double precision NOT NULL DEFAULT 0,
    congested_n     bigint      NOT NULL DEFAULT 0,
    congested_known bigint      NOT NULL DEFAULT 0,
    vehicles        double precision NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (unit_code, layer, win, window_start)
) WITH (fillfactor = 70);
-- The current windows' rows are updated by every batch: room left in each page
-- (fillfactor) keeps those updates HOT, and no other index is kept up to date.

-- +goose Down
DROP TABLE rollup;
