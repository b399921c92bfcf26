-- A version per row of rollup_member_day (docs/rollups.md, "Distinct
-- counts"): every write of a row adds 1. The aggregator keeps the rows of
-- the days it writes in memory and writes a row back only where its version
-- is still the one it read (an optimistic check instead of reading and
-- locking the row in every batch); a row changed since, by another writer or
-- a batch that did not commit, fails the check, and the batch is written
-- again the exact way, reading and locking its rows.

-- +goose Up
ALTER TABLE rollup_member_day ADD COLUMN version bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE rollup_member_day DROP COLUMN version;
