-- The recent rate of a source in a unit (GET /v1/sources, eventsPerMinute):
-- the events of the current and the previous window of rate_window (15
-- minutes, on the hub's clock), from which a reader interpolates the events
-- of the last 15 minutes (a sliding window of two fixed ones). events counts
-- them over the pair's whole life.

-- +goose Up
ALTER TABLE source_stats
    ADD COLUMN rate_start timestamptz,
    ADD COLUMN rate_cur   bigint NOT NULL DEFAULT 0,
    ADD COLUMN rate_prev  bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE source_stats DROP COLUMN rate_start, DROP COLUMN rate_cur, DROP COLUMN rate_prev;
