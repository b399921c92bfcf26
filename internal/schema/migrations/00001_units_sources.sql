-- Administrative units, feed sources and the audit log.
-- Units are versioned: a change of boundary or name closes the current row
-- (valid_to) and opens a new one, so queries by time use the units valid then.

-- +goose Up
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE admin_unit (
    id           bigserial PRIMARY KEY,
    code         text        NOT NULL,
    level        text        NOT NULL CHECK (level IN ('national', 'province', 'district', 'commune', 'custom')),
    parent_code  text,
    name_vi      text        NOT NULL,
    name_en      text        NOT NULL DEFAULT '',
    full_name_vi text        NOT NULL DEFAULT '',
    full_name_en text        NOT NULL DEFAULT '',
    boundary     geometry(MultiPolygon, 4326) NOT NULL,
    valid_from   timestamptz NOT NULL,
    valid_to     timestamptz,
    imported_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_to IS NULL OR valid_to > valid_from),
    UNIQUE (code, valid_from)
);
CREATE UNIQUE INDEX admin_unit_current_code ON admin_unit (code) WHERE valid_to IS NULL;
CREATE INDEX admin_unit_boundary ON admin_unit USING gist (boundary);
CREATE INDEX admin_unit_current_parent ON admin_unit (parent_code) WHERE valid_to IS NULL;

-- A feed source: a lower-level IOC or sensor gateway, bound to one unit.
-- Only the SHA-256 of its bearer token is kept.
CREATE TABLE source (
    id           text PRIMARY KEY,
    name         text        NOT NULL DEFAULT '',
    unit_code    text        NOT NULL,
    token_sha256 bytea       NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    disabled_at  timestamptz
);

-- Every operator action and every change of configuration.
CREATE TABLE audit_log (
    id     bigserial PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now(),
    actor  text        NOT NULL,
    action text        NOT NULL,
    target text        NOT NULL DEFAULT '',
    detail jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at);

-- +goose Down
DROP TABLE audit_log;
DROP TABLE source;
DROP TABLE admin_unit;
