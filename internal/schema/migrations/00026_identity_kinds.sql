-- The kinds of data an identity may read (air, water, alert…), for keys of
-- programs that follow some kinds only; empty is every kind. Reads of feeds,
-- state, roll-ups and streams are narrowed to them (auth.Principal.MayReadKind).

-- +goose Up
ALTER TABLE identity ADD COLUMN kinds text[] NOT NULL DEFAULT '{}'
    CHECK (cardinality(kinds) <= 32);

-- +goose Down
ALTER TABLE identity DROP COLUMN kinds;
