-- Units as a versioned tree: every version of a unit names its parent by
-- code, and the parent is the version of that code valid at the same time.
-- unit_ancestors walks that tree as of a time, from the unit itself up to the
-- national unit (VN), so that a roll-up or a query "as of" a time uses the
-- units valid then.

-- +goose Up
CREATE INDEX admin_unit_code_validity ON admin_unit (code, valid_from, valid_to);

-- +goose StatementBegin
CREATE FUNCTION unit_ancestors(p_code text, p_at timestamptz)
RETURNS TABLE (code text, level text, depth int)
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE up (code, level, parent_code, depth) AS (
        SELECT a.code, a.level, a.parent_code, 0
        FROM admin_unit a
        WHERE a.code = p_code AND a.valid_from <= p_at AND (a.valid_to IS NULL OR p_at < a.valid_to)
        UNION ALL
        SELECT a.code, a.level, a.parent_code, up.depth + 1
        FROM up
        JOIN admin_unit a ON a.code = up.parent_code
            AND a.valid_from <= p_at AND (a.valid_to IS NULL OR p_at < a.valid_to)
        WHERE up.depth < 16
    )
    SELECT code, level, depth FROM up ORDER BY depth
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION unit_ancestors(text, timestamptz);
DROP INDEX admin_unit_code_validity;
