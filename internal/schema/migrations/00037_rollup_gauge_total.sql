-- The gauges' totals (docs/rollups.md, "Gauges"): per unit and layer (alert,
-- report), the sum of every change the roll-ups ever counted, alerts
-- activated less ended per severity grade and reports opened less closed.
--
-- A gauge at the end of a window is the sum of the changes up to it. It was
-- read as the 1d rows of every earlier day plus the window's own day: a read
-- that grew by a row a day, for every alert and report roll-up a batch
-- published (365 rows each after a year). It is now this total less the
-- changes after the window: the 1d rows of later days and the rows of its
-- length later in its day, which a batch of current events does not have.
-- Each batch that counts changes adds them here in the transaction that
-- upserts their roll-ups.

-- +goose Up
CREATE TABLE rollup_gauge_total (
    unit_code text   NOT NULL,
    layer     text   NOT NULL CHECK (layer IN ('alert', 'report')),
    active0_n bigint NOT NULL,
    active1_n bigint NOT NULL,
    active2_n bigint NOT NULL,
    active3_n bigint NOT NULL,
    active4_n bigint NOT NULL,
    open_n    bigint NOT NULL,
    PRIMARY KEY (unit_code, layer)
);
INSERT INTO rollup_gauge_total (unit_code, layer, active0_n, active1_n, active2_n, active3_n, active4_n, open_n)
SELECT unit_code, layer, sum(activated0_n - ended0_n), sum(activated1_n - ended1_n), sum(activated2_n - ended2_n),
    sum(activated3_n - ended3_n), sum(activated4_n - ended4_n), sum(open_n - closed_n)
FROM rollup
WHERE win = '1d' AND layer IN ('alert', 'report')
GROUP BY unit_code, layer;

-- +goose Down
DROP TABLE rollup_gauge_total;
