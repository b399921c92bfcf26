-- The days of rollup_member_day that are closed (docs/rollups.md, "Distinct
-- counts"): the member rows of a day before day are deleted, and an
-- observation of such a day counts as late in its windows (their figures and
-- their distinct members alike stay as they were), as one received after
-- the lateness does. NULL: no day is closed, every row is kept.
--
-- The aggregator closes the days older than its member retention
-- (aggregator-member-retention) in two steps: under an exclusive advisory
-- lock that every batch writing roll-ups holds shared until its commit, it
-- moves day forward (so no batch that read the old day is still running, and
-- every later one reads the new one); then it deletes the rows before day,
-- which no batch writes any more. Without it the table grows by a row per
-- entity and day for ever.

-- +goose Up
CREATE TABLE rollup_member_horizon (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    day timestamptz
);
INSERT INTO rollup_member_horizon DEFAULT VALUES;

-- +goose Down
DROP TABLE rollup_member_horizon;
