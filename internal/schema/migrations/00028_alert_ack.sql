-- An operator's acknowledgement of an alert (POST /v1/alerts/{id}/ack): who
-- and when, set once by the alert.ack action; the audit_log row of the action
-- is written in the same transaction.

-- +goose Up
ALTER TABLE alert ADD COLUMN acked_by text,
                  ADD COLUMN acked_at timestamptz,
                  ADD CONSTRAINT alert_ack_both CHECK ((acked_by IS NULL) = (acked_at IS NULL));

-- +goose Down
ALTER TABLE alert DROP CONSTRAINT alert_ack_both,
                  DROP COLUMN acked_at,
                  DROP COLUMN acked_by;
