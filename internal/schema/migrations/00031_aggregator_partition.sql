-- The fencing token of each province partition of the aggregator
-- (docs/operations.md, "Several aggregators"). An instance that takes a
-- partition's lease in NATS KV bumps its epoch here, waiting for the write
-- transactions of the previous holder to end; every write transaction of the
-- holder then checks, in its first statement, that the epoch is still the one
-- it got (iochub_partition_fence, which keeps a share lock on the row to the
-- end of the transaction). So a holder that was paused or cut off while its
-- lease expired cannot commit once the next holder has bumped the epoch.

-- +goose Up
CREATE TABLE aggregator_partition (
    partition   text        PRIMARY KEY,
    epoch       bigint      NOT NULL CHECK (epoch > 0),
    holder      text        NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now()
);

-- +goose StatementBegin
CREATE FUNCTION iochub_partition_fence(p text, e bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM aggregator_partition WHERE partition = p AND epoch = e FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'partition % is no longer held at epoch %: another aggregator took it', p, e
            USING ERRCODE = '55F01';
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION iochub_partition_fence(text, bigint);
DROP TABLE aggregator_partition;
