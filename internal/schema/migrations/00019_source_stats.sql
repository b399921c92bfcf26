-- Source freshness: per source and unit, when data last came, how often it
-- is expected, how much came, and whether the source is stale (silent for
-- 3× its interval, measured on the hub's clock). Written by the aggregator.

-- +goose Up
-- The configured interval of a source, in seconds; NULL means learned from
-- the observed gaps (source_stats.gaps).
ALTER TABLE source ADD COLUMN interval_s integer CHECK (interval_s IS NULL OR interval_s > 0);

CREATE TABLE source_stats (
    source_id     text        NOT NULL,
    unit_code     text        NOT NULL,
    province      text        NOT NULL,
    -- last_event_at is the newest event time seen; last_seen_at when the hub
    -- last stored something of the pair (the hub's clock).
    last_event_at timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    first_seen_at timestamptz NOT NULL,
    events        bigint      NOT NULL DEFAULT 0,
    duplicates    bigint      NOT NULL DEFAULT 0,
    -- gaps are the last (at most 15) gaps between arrivals, in seconds; the
    -- learned interval is their median.
    gaps          double precision[] NOT NULL DEFAULT '{}',
    interval_s    double precision,
    -- stale_at is last_seen_at + 3 × the interval (NULL while none is known).
    stale_at      timestamptz,
    -- stale_since is set when the stale alert was raised; alert_sent is the
    -- CAP sent time of that alert, kept for its Cancel; clear_pending is set
    -- when data came back to a stale pair, until the Cancel is published.
    stale_since   timestamptz,
    alert_sent    timestamptz,
    clear_pending boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (source_id, unit_code)
);
-- The stale sweep reads only due rows of fresh pairs, and pairs to clear.
CREATE INDEX source_stats_due ON source_stats (stale_at) WHERE stale_since IS NULL AND stale_at IS NOT NULL;
CREATE INDEX source_stats_clear ON source_stats (source_id) WHERE clear_pending;
CREATE INDEX source_stats_province ON source_stats (province);

-- Rejections counted by the ingest per source and reason (bounded reasons),
-- summed by the aggregator from the ingest's periodic summaries.
CREATE TABLE source_rejection (
    source_id text   NOT NULL,
    reason    text   NOT NULL,
    count     bigint NOT NULL DEFAULT 0,
    last_at   timestamptz NOT NULL,
    PRIMARY KEY (source_id, reason)
);

-- +goose Down
DROP TABLE source_rejection;
DROP TABLE source_stats;
ALTER TABLE source DROP COLUMN interval_s;
