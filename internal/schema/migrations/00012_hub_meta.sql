-- The hub's identity: `iochub dev` writes a random hub id here and in its
-- JetStream store at first start, and refuses to start when the two differ
-- (a database and a JetStream store of different hubs, or one of them new).

-- +goose Up
CREATE TABLE hub_meta (
    key        text PRIMARY KEY,
    value      text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE hub_meta;
