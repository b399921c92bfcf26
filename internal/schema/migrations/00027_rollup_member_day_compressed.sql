-- Smaller row versions of rollup_member_day (docs/rollups.md, "Distinct
-- counts"; docs/benchmarks.md, "roll-ups on vs off"): every batch of an
-- entity rewrites its day row, and a row of 1,561 bytes of grades, nearly all
-- zero, cost ~1.6 kB per version (heap and WAL), ~107 kB of WAL per batch of
-- 500 observations.
--
-- PostgreSQL compresses a value only in a row longer than its TOAST threshold
-- (about 2 kB for 8 kB pages; toast_tuple_target cannot lower it). grades is
-- padded to 2,048 bytes (slots 1561..2047 stay 0, unused), so every row
-- version is over the threshold and its grades stored compressed inline:
-- a few dozen bytes for a day's row, and a substring of the head or of
-- a few minutes decompresses only up to the bytes it needs.

-- +goose Up
ALTER TABLE rollup_member_day DROP CONSTRAINT rollup_member_day_grades_check;
-- lz4 where the server was built with it (PostgreSQL packages and the PostGIS
-- images are), else the default pglz: slower, as small.
-- +goose StatementBegin
DO $$
BEGIN
    ALTER TABLE rollup_member_day ALTER COLUMN grades SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    NULL;
END
$$;
-- +goose StatementEnd
UPDATE rollup_member_day SET grades = grades || decode(repeat('00', 2048 - 1561), 'hex');
ALTER TABLE rollup_member_day ADD CONSTRAINT rollup_member_day_grades_check CHECK (length(grades) = 2048);

-- +goose Down
ALTER TABLE rollup_member_day DROP CONSTRAINT rollup_member_day_grades_check;
UPDATE rollup_member_day SET grades = substring(grades FROM 1 FOR 1561);
ALTER TABLE rollup_member_day ALTER COLUMN grades SET COMPRESSION default;
ALTER TABLE rollup_member_day ADD CONSTRAINT rollup_member_day_grades_check CHECK (length(grades) = 1561);
