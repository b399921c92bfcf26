-- Identities: people and programs allowed to use the gateway, each with a
-- role (viewer < operator < admin) and the provinces it may see and act in
-- ('*' is all). Only the SHA-256 of an identity's bearer token is kept.
-- Rows are written by the aggregator (actions identity.create and
-- identity.revoke, or the iochub identities command), each change with its
-- audit_log row; the gateway only reads them into its cache.

-- +goose Up
CREATE TABLE identity (
    id           text PRIMARY KEY CHECK (id ~ '^id_[0-9a-f]{16}$'),
    name         text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role         text        NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    scopes       text[]      NOT NULL CHECK (cardinality(scopes) BETWEEN 1 AND 100),
    token_sha256 bytea       NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text        NOT NULL,
    revoked_at   timestamptz,
    revoked_by   text
);

-- +goose Down
DROP TABLE identity;
