-- One sender per alert id (docs/feeds.md, "Alerts"). An alert's id is its
-- source and its CAP identifier, while CAP makes an identifier unique per
-- sender only: a source relaying two senders could send one identifier from
-- both. The second was then stored over the first (a later sent) or dropped
-- as a duplicate (an earlier one): an accepted alert lost either way. The
-- upsert (sqlUpsertAlert) now calls this check for every alert it writes, and
-- an alert of another sender than the one stored under its id, or than
-- another of its batch, fails the batch: the aggregator writes its messages
-- one by one and dead-letters this one with the reason, visible and
-- re-drivable.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION iochub_alert_one_sender(id text, stored text, sent_by text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF stored IS DISTINCT FROM sent_by THEN
        RAISE EXCEPTION 'alert % is from sender %, and this one under the same source and identifier is from sender %: a source must not send one CAP identifier from two senders', id, stored, sent_by
            USING ERRCODE = 'integrity_constraint_violation', HINT = 'give the alert an identifier of its own';
    END IF;
    RETURN true;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION iochub_alert_one_sender(text, text, text);
