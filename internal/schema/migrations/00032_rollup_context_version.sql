-- A version of "the roll-up context" (docs/rollups.md, "Known and stale"):
-- what the aggregator's read of the known sensors and stale sources of a
-- unit (sqlRollupContext) depends on, besides the time. The aggregator keeps
-- the counts it read in memory, tagged with the version and the times
-- between which the current tree is the same (the valid_from and valid_to
-- around the read), and reads them again only when the version differs.
--
-- Every change of what the read counts adds 1 to the version, once per
-- transaction, when the transaction commits (deferred constraint triggers):
-- a sensor or road segment inserted, deleted, or moved to another unit (or
-- kind); a source and unit pair inserted or deleted stale, turned stale or
-- fresh, or moved; any version of a unit or group membership inserted,
-- deleted, or changed in its code, parent or times. An update of a state
-- only (every batch upserts its stations' states) changes nothing. A version
-- is seen with the changes it counts (they commit together); versions grow
-- in commit order, as the bump waits for the previous bumper to commit.
--
-- A transaction that changed something of it (not yet counted: the bump
-- waits for the commit) sets iochub.rollup_context_changed to 'on' for
-- itself, so that its own reads bypass the copies.
--
-- Bumping one row serializes the commits of the transactions that bump it:
-- fine while they are rare (a new sensor, a source turned stale or fresh, a
-- map import), not in every batch.

-- +goose Up
CREATE TABLE rollup_context (
    one       boolean PRIMARY KEY DEFAULT true CHECK (one),
    version   bigint  NOT NULL DEFAULT 0,
    -- bumped_by is the transaction that last added 1 (once per transaction).
    bumped_by xid8
);
INSERT INTO rollup_context DEFAULT VALUES;

-- +goose StatementBegin
CREATE FUNCTION iochub_rollup_context_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('iochub.rollup_context_changed', 'on', true);
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION iochub_rollup_context_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE rollup_context SET version = version + 1, bumped_by = pg_current_xact_id()
    WHERE bumped_by IS DISTINCT FROM pg_current_xact_id();
    IF TG_LEVEL = 'STATEMENT' THEN
        PERFORM set_config('iochub.rollup_context_changed', 'on', true);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- The triggers of each table: the flag (immediate) and the bump (at the
-- commit) on the same conditions; a TRUNCATE bumps at once.
-- +goose StatementBegin
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('sensor', 'true', 'true',
            '(OLD.kind, OLD.unit_code) IS DISTINCT FROM (NEW.kind, NEW.unit_code)'),
        ('road_segment', 'true', 'true',
            'OLD.unit_code IS DISTINCT FROM NEW.unit_code'),
        ('source_stats', 'NEW.stale_since IS NOT NULL', 'OLD.stale_since IS NOT NULL',
            '(OLD.stale_since IS NULL, OLD.unit_code) IS DISTINCT FROM (NEW.stale_since IS NULL, NEW.unit_code)'),
        ('admin_unit', 'true', 'true',
            '(OLD.code, OLD.parent_code, OLD.valid_from, OLD.valid_to) IS DISTINCT FROM (NEW.code, NEW.parent_code, NEW.valid_from, NEW.valid_to)'),
        ('unit_group_member', 'true', 'true',
            '(OLD.group_code, OLD.member_code, OLD.valid_from, OLD.valid_to) IS DISTINCT FROM (NEW.group_code, NEW.member_code, NEW.valid_from, NEW.valid_to)')
    ) AS v (tab, ins, del, upd)
    LOOP
        EXECUTE format('CREATE TRIGGER rollup_context_ins AFTER INSERT ON %I FOR EACH ROW WHEN (%s) EXECUTE FUNCTION iochub_rollup_context_changed()', t.tab, t.ins);
        EXECUTE format('CREATE TRIGGER rollup_context_del AFTER DELETE ON %I FOR EACH ROW WHEN (%s) EXECUTE FUNCTION iochub_rollup_context_changed()', t.tab, t.del);
        EXECUTE format('CREATE TRIGGER rollup_context_upd AFTER UPDATE ON %I FOR EACH ROW WHEN (%s) EXECUTE FUNCTION iochub_rollup_context_changed()', t.tab, t.upd);
        EXECUTE format('CREATE CONSTRAINT TRIGGER rollup_context_bump_ins AFTER INSERT ON %I DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (%s) EXECUTE FUNCTION iochub_rollup_context_bump()', t.tab, t.ins);
        EXECUTE format('CREATE CONSTRAINT TRIGGER rollup_context_bump_del AFTER DELETE ON %I DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (%s) EXECUTE FUNCTION iochub_rollup_context_bump()', t.tab, t.del);
        EXECUTE format('CREATE CONSTRAINT TRIGGER rollup_context_bump_upd AFTER UPDATE ON %I DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (%s) EXECUTE FUNCTION iochub_rollup_context_bump()', t.tab, t.upd);
        EXECUTE format('CREATE TRIGGER rollup_context_truncate AFTER TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION iochub_rollup_context_bump()', t.tab);
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
DECLARE
    tab text;
BEGIN
    FOREACH tab IN ARRAY ARRAY['sensor', 'road_segment', 'source_stats', 'admin_unit', 'unit_group_member'] LOOP
        EXECUTE format('DROP TRIGGER rollup_context_ins ON %I', tab);
        EXECUTE format('DROP TRIGGER rollup_context_del ON %I', tab);
        EXECUTE format('DROP TRIGGER rollup_context_upd ON %I', tab);
        EXECUTE format('DROP TRIGGER rollup_context_bump_ins ON %I', tab);
        EXECUTE format('DROP TRIGGER rollup_context_bump_del ON %I', tab);
        EXECUTE format('DROP TRIGGER rollup_context_bump_upd ON %I', tab);
        EXECUTE format('DROP TRIGGER rollup_context_truncate ON %I', tab);
    END LOOP;
END
$$;
-- +goose StatementEnd
DROP FUNCTION iochub_rollup_context_bump();
DROP FUNCTION iochub_rollup_context_changed();
DROP TABLE rollup_context;
