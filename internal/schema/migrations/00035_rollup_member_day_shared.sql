-- One member row for all the units of an entity's path (docs/rollups.md,
-- "Distinct counts"): an entity (station, segment) counts in every unit of
-- the walk up from its unit (ward, province, VN, the custom groups), and as
-- long as every observation of its day walked the same path, the grades of
-- all those units are the same bytes. A row whose unit_code is '' holds them
-- once, for the units listed in units: a batch writes one row per entity
-- and day instead of one per unit (three to four).
--
-- When a batch meets an entity day whose shared row does not fit (the
-- entity walked another path that day: it changed unit, or the tree changed
-- in the day), the shared row is retired (units = '{}') and copied into one
-- row per unit (units NULL, as every row before this migration); from then
-- on that entity day is counted unit by unit. A shared row and a unit's own
-- row never hold the same unit of an entity day. Existing rows are unit
-- rows: nothing to convert.

-- +goose Up
ALTER TABLE rollup_member_day ADD COLUMN units text[];
-- NOT VALID: checked on every row written from now on, without a scan of
-- the existing rows (the table is never purged) under this migration's
-- exclusive lock; they hold it already (units NULL, and no unit's code is
-- empty).
ALTER TABLE rollup_member_day ADD CONSTRAINT rollup_member_day_units_check
    CHECK ((unit_code = '') = (units IS NOT NULL)) NOT VALID;

-- +goose Down
-- Back to one row per unit: every shared row's grades copied to each of its
-- units, then the shared rows dropped.
INSERT INTO rollup_member_day (layer, entity, day, unit_code, grades, upgrades, version)
SELECT m.layer, m.entity, m.day, u.code, m.grades, m.upgrades, 0
FROM rollup_member_day m CROSS JOIN LATERAL unnest(m.units) AS u (code)
WHERE m.unit_code = ''
ON CONFLICT DO NOTHING;
DELETE FROM rollup_member_day WHERE unit_code = '';
ALTER TABLE rollup_member_day DROP CONSTRAINT rollup_member_day_units_check;
ALTER TABLE rollup_member_day DROP COLUMN units;
