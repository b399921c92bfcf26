-- Roll-ups of citizen reports (docs/rollups.md): the reports resolved in the
-- window (by the time of their resolution), those of them resolved by their
-- SLA deadline, and the reports that went overdue (by their deadline). The
-- reports opened are the layer's n. Share resolved within the SLA =
-- resolved_in_sla_n / resolved_n.

-- +goose Up
ALTER TABLE rollup
    ADD COLUMN resolved_n        bigint NOT NULL DEFAULT 0,
    ADD COLUMN resolved_in_sla_n bigint NOT NULL DEFAULT 0,
    ADD COLUMN overdue_n         bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE rollup
    DROP COLUMN overdue_n,
    DROP COLUMN resolved_in_sla_n,
    DROP COLUMN resolved_n;
