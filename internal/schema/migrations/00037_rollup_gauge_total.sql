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
--
-- The aggregator adds a batch's changes to the totals itself, after its
-- roll-ups' upsert, in one lock order (gaugeTotals), and says so for
-- its transaction (iochub.gauge_totals = 'batch'). Any other writer of
-- rollup's 1d alert and report rows, such as an aggregator of the release
-- before this one still running while the roles roll (docs/operations.md,
-- "Upgrades"), or after a roll-back, has its changes added by the trigger,
-- row by row, so that the totals stay the sum of the 1d rows whoever writes
-- them.
--
-- Creating the trigger locks rollup against writes until the migration
-- commits: the sum below and the trigger together count every change once.

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

-- +goose StatementBegin
CREATE FUNCTION iochub_rollup_gauge_total() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d bigint[] := ARRAY[NEW.activated0_n - NEW.ended0_n, NEW.activated1_n - NEW.ended1_n,
        NEW.activated2_n - NEW.ended2_n, NEW.activated3_n - NEW.ended3_n, NEW.activated4_n - NEW.ended4_n,
        NEW.open_n - NEW.closed_n];
BEGIN
    IF current_setting('iochub.gauge_totals', true) = 'batch' THEN
        RETURN NULL; -- the writer adds its changes itself
    END IF;
    IF TG_OP = 'UPDATE' THEN
        d := ARRAY[d[1] - (OLD.activated0_n - OLD.ended0_n), d[2] - (OLD.activated1_n - OLD.ended1_n),
            d[3] - (OLD.activated2_n - OLD.ended2_n), d[4] - (OLD.activated3_n - OLD.ended3_n),
            d[5] - (OLD.activated4_n - OLD.ended4_n), d[6] - (OLD.open_n - OLD.closed_n)];
    END IF;
    IF d = ARRAY[0, 0, 0, 0, 0, 0]::bigint[] THEN
        RETURN NULL;
    END IF;
    INSERT INTO rollup_gauge_total AS t (unit_code, layer, active0_n, active1_n, active2_n, active3_n, active4_n, open_n)
    VALUES (NEW.unit_code, NEW.layer, d[1], d[2], d[3], d[4], d[5], d[6])
    ON CONFLICT (unit_code, layer) DO UPDATE SET
        active0_n = t.active0_n + excluded.active0_n, active1_n = t.active1_n + excluded.active1_n,
        active2_n = t.active2_n + excluded.active2_n, active3_n = t.active3_n + excluded.active3_n,
        active4_n = t.active4_n + excluded.active4_n, open_n = t.open_n + excluded.open_n;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER rollup_gauge_total AFTER INSERT OR UPDATE ON rollup
    FOR EACH ROW WHEN (NEW.win = '1d' AND NEW.layer IN ('alert', 'report'))
    EXECUTE FUNCTION iochub_rollup_gauge_total();

INSERT INTO rollup_gauge_total (unit_code, layer, active0_n, active1_n, active2_n, active3_n, active4_n, open_n)
SELECT unit_code, layer, sum(activated0_n - ended0_n), sum(activated1_n - ended1_n), sum(activated2_n - ended2_n),
    sum(activated3_n - ended3_n), sum(activated4_n - ended4_n), sum(open_n - closed_n)
FROM rollup
WHERE win = '1d' AND layer IN ('alert', 'report')
GROUP BY unit_code, layer;

-- +goose Down
DROP TRIGGER rollup_gauge_total ON rollup;
DROP FUNCTION iochub_rollup_gauge_total();
DROP TABLE rollup_gauge_total;
