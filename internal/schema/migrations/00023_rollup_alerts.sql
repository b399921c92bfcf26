-- Roll-ups of alerts and the gauges of alerts active and reports open
-- (docs/rollups.md, "Alerts and gauges").
--
-- iochub_alert_grade(info) is an alert's CAP severity as a grade: the highest
-- severity of its info blocks, Extreme 4, Severe 3, Moderate 2, Minor 1,
-- Unknown (or missing, or any other value) 0.
--
-- An alert's row records the period it counts as active in the roll-ups:
-- active_from (its sent when it became active; never before the end of an
-- earlier period), active_until (when it stopped: the sent of the Update or
-- Cancel, or its expires; NULL while active), active_grade (its grade when it
-- became active) and active_units (the units it touched then: its alert_unit
-- rows, else its unit_code). Both its activation and its end count toward
-- those units, their ancestors and groups as valid at active_from, so that
-- every end pairs an activation in the same roll-ups. Alerts stored before
-- this migration have no period and never count.
--
-- rollup gains, per severity grade g, activated<g>_n (alerts that became
-- active in the window, by active_from) and ended<g>_n (that stopped, by
-- active_until); for reports open_n (reports stored for the first time, by
-- reported_at, whatever their lateness), closed_n (resolved or rejected, at
-- the time of the change, toward the units of the report as at its
-- reported_at) and rejected_n (rejected, at the time of the change, toward the
-- units valid then, as resolved_n). The gauges are prefix sums of these.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION iochub_alert_grade(info jsonb) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(max(CASE i->>'severity' WHEN 'Extreme' THEN 4 WHEN 'Severe' THEN 3 WHEN 'Moderate' THEN 2
        WHEN 'Minor' THEN 1 ELSE 0 END), 0)::smallint
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(info) = 'array' THEN info ELSE '[]'::jsonb END) i
$$;
-- +goose StatementEnd

ALTER TABLE alert
    ADD COLUMN active_grade smallint CHECK (active_grade BETWEEN 0 AND 4),
    ADD COLUMN active_from  timestamptz,
    ADD COLUMN active_until timestamptz,
    ADD COLUMN active_units text[],
    ADD CONSTRAINT alert_active_period CHECK (active_until IS NULL OR active_until >= active_from);

ALTER TABLE rollup
    ADD COLUMN activated0_n bigint NOT NULL DEFAULT 0,
    ADD COLUMN activated1_n bigint NOT NULL DEFAULT 0,
    ADD COLUMN activated2_n bigint NOT NULL DEFAULT 0,
    ADD COLUMN activated3_n bigint NOT NULL DEFAULT 0,
    ADD COLUMN activated4_n bigint NOT NULL DEFAULT 0,
    ADD COLUMN ended0_n     bigint NOT NULL DEFAULT 0,
    ADD COLUMN ended1_n     bigint NOT NULL DEFAULT 0,
    ADD COLUMN ended2_n     bigint NOT NULL DEFAULT 0,
    ADD COLUMN ended3_n     bigint NOT NULL DEFAULT 0,
    ADD COLUMN ended4_n     bigint NOT NULL DEFAULT 0,
    ADD COLUMN open_n       bigint NOT NULL DEFAULT 0,
    ADD COLUMN closed_n     bigint NOT NULL DEFAULT 0,
    ADD COLUMN rejected_n   bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE rollup
    DROP COLUMN rejected_n, DROP COLUMN closed_n, DROP COLUMN open_n,
    DROP COLUMN ended4_n, DROP COLUMN ended3_n, DROP COLUMN ended2_n, DROP COLUMN ended1_n, DROP COLUMN ended0_n,
    DROP COLUMN activated4_n, DROP COLUMN activated3_n, DROP COLUMN activated2_n, DROP COLUMN activated1_n,
    DROP COLUMN activated0_n;
ALTER TABLE alert
    DROP CONSTRAINT alert_active_period,
    DROP COLUMN active_units, DROP COLUMN active_until, DROP COLUMN active_from, DROP COLUMN active_grade;
DROP FUNCTION iochub_alert_grade(jsonb);
