-- Distinct counts in roll-ups, one row per entity and day (docs/rollups.md,
-- "Distinct counts"): replaces rollup_member (00022), which held one row per
-- unit, layer, window, start and entity and so cost a batch about 3.5 index
-- inserts per observation (docs/benchmarks.md, "roll-ups on vs off").
--
-- A row holds an entity's (station, segment) worst grade in every window of
-- one day (the 1d window, Asia/Ho_Chi_Minh) of one unit and layer: byte s of
-- grades is the worst grade + 1 in window slot s, 0 when the entity is not a
-- member of that window. Slots: 0 the day, 1..24 its hours, 25..120 its
-- quarters, 121..1560 its minutes (every shorter window lies in one day, as
-- Vietnam's day starts on a UTC hour). A batch locks the rows of its members
-- (FOR UPDATE), compares in Go and writes the rows back.

-- +goose Up
CREATE TABLE rollup_member_day (
    layer     text        NOT NULL,
    entity    text        NOT NULL,
    day       timestamptz NOT NULL,
    unit_code text        NOT NULL,
    grades    bytea       NOT NULL CHECK (length(grades) = 1561),
    -- upgrades counts the members of the row moved to a worse grade (for
    -- diagnosis and the tests).
    upgrades  integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (layer, entity, day, unit_code)
) WITH (fillfactor = 50); -- room on the page for HOT updates: a row is rewritten by every batch of its entity

INSERT INTO rollup_member_day (layer, entity, day, unit_code, grades, upgrades)
SELECT layer, entity, day, unit_code,
    decode(string_agg(lpad(to_hex(coalesce(g, 0)), 2, '0'), '' ORDER BY slot), 'hex'),
    count(*) FILTER (WHERE upgraded)
FROM (
    SELECT k.layer, k.entity, k.day, k.unit_code, s.slot, m.g, m.upgraded
    FROM (SELECT DISTINCT layer, entity, unit_code,
              date_bin('1 day', window_start, timestamptz '2000-01-01 17:00:00+00') AS day
          FROM rollup_member) k
    CROSS JOIN generate_series(0, 1560) AS s (slot)
    LEFT JOIN (
        SELECT layer, entity, unit_code, date_bin('1 day', window_start, timestamptz '2000-01-01 17:00:00+00') AS day,
            CASE win
                WHEN '1d' THEN 0
                WHEN '1h' THEN 1 + extract(epoch FROM window_start - date_bin('1 day', window_start, timestamptz '2000-01-01 17:00:00+00'))::int / 3600
                WHEN '15m' THEN 25 + extract(epoch FROM window_start - date_bin('1 day', window_start, timestamptz '2000-01-01 17:00:00+00'))::int / 900
                ELSE 121 + extract(epoch FROM window_start - date_bin('1 day', window_start, timestamptz '2000-01-01 17:00:00+00'))::int / 60
            END AS slot,
            grade + 1 AS g, prev IS NOT NULL AS upgraded
        FROM rollup_member
    ) m ON m.layer = k.layer AND m.entity = k.entity AND m.unit_code = k.unit_code AND m.day = k.day AND m.slot = s.slot
) x
GROUP BY layer, entity, day, unit_code;

DROP TABLE rollup_member;

-- +goose Down
CREATE TABLE rollup_member (
    unit_code    text        NOT NULL,
    layer        text        NOT NULL,
    win          text        NOT NULL,
    window_start timestamptz NOT NULL,
    entity       text        NOT NULL,
    grade        smallint    NOT NULL CHECK (grade BETWEEN 0 AND 6),
    prev         smallint,
    PRIMARY KEY (unit_code, layer, win, window_start, entity)
);

INSERT INTO rollup_member (unit_code, layer, win, window_start, entity, grade)
SELECT d.unit_code, d.layer,
    CASE WHEN s.slot = 0 THEN '1d' WHEN s.slot <= 24 THEN '1h' WHEN s.slot <= 120 THEN '15m' ELSE '1m' END,
    d.day + CASE WHEN s.slot = 0 THEN interval '0'
        WHEN s.slot <= 24 THEN (s.slot - 1) * interval '1 hour'
        WHEN s.slot <= 120 THEN (s.slot - 25) * interval '15 minutes'
        ELSE (s.slot - 121) * interval '1 minute' END,
    d.entity, get_byte(d.grades, s.slot) - 1
FROM rollup_member_day d CROSS JOIN generate_series(0, 1560) AS s (slot)
WHERE get_byte(d.grades, s.slot) > 0;

DROP TABLE rollup_member_day;
