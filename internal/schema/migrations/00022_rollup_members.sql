-- Distinct counts in roll-ups (docs/rollups.md): the stations or segments
-- that reported in a window, each once, with the worst grade it reached
-- there (air: VN_AQI band 1–6, 0 without one; water: alarm level 0–3;
-- traffic: 1 congested, 0 not). A batch inserts its members with
-- ON CONFLICT and counts in rollup only what it inserted or upgraded.

-- +goose Up
CREATE TABLE rollup_member (
    unit_code    text        NOT NULL,
    layer        text        NOT NULL,
    win          text        NOT NULL,
    window_start timestamptz NOT NULL,
    entity       text        NOT NULL,
    grade        smallint    NOT NULL CHECK (grade BETWEEN 0 AND 6),
    -- prev is the grade before the last upgrade (NULL until one): the upsert
    -- sets it from the row it locked and returns it, so the counts move from
    -- the right grade even when two writers meet on a member.
    prev         smallint,
    PRIMARY KEY (unit_code, layer, win, window_start, entity)
);

ALTER TABLE rollup
    -- members: distinct entities counted; grade_n[g + 1]: those whose worst grade is g.
    ADD COLUMN members bigint   NOT NULL DEFAULT 0,
    ADD COLUMN grade_n bigint[] NOT NULL DEFAULT '{0,0,0,0,0,0,0}';

-- +goose Down
ALTER TABLE rollup DROP COLUMN grade_n, DROP COLUMN members;
DROP TABLE rollup_member;
