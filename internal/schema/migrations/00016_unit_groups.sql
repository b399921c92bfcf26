-- Custom groups: an operator-defined set of units ("inner city", a river
-- basin), itself a unit of level 'custom' in admin_unit (its boundary the
-- union of its members', its parent VN). Members are versioned with the
-- group: a change closes the group's version and its member rows and opens
-- new ones. unit_groups gives the groups a unit counts toward at a time:
-- those holding the unit or one of its ancestors then.

-- +goose Up
CREATE TABLE unit_group_member (
    group_code  text        NOT NULL,
    member_code text        NOT NULL,
    valid_from  timestamptz NOT NULL,
    valid_to    timestamptz,
    CHECK (valid_to IS NULL OR valid_to > valid_from),
    PRIMARY KEY (group_code, member_code, valid_from)
);
CREATE INDEX unit_group_member_member ON unit_group_member (member_code, valid_from);

-- +goose StatementBegin
CREATE FUNCTION unit_groups(p_code text, p_at timestamptz)
RETURNS TABLE (group_code text)
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT m.group_code
    FROM unit_ancestors(p_code, p_at) a
    JOIN unit_group_member m ON m.member_code = a.code
        AND m.valid_from <= p_at AND (m.valid_to IS NULL OR p_at < m.valid_to)
    ORDER BY m.group_code
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION unit_groups(text, timestamptz);
DROP TABLE unit_group_member;
