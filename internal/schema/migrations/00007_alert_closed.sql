-- A CAP Cancel, Ack or Error message is never itself in force: Cancel rows take
-- state 'cancelled' and Ack/Error rows the new state 'closed', so they are not
-- listed or shown as active alerts.

-- +goose Up
ALTER TABLE alert DROP CONSTRAINT alert_state_check;
ALTER TABLE alert ADD CONSTRAINT alert_state_check
    CHECK (state IN ('active', 'cancelled', 'expired', 'superseded', 'closed'));
UPDATE alert SET state = 'cancelled' WHERE msg_type = 'Cancel' AND state = 'active';
UPDATE alert SET state = 'closed' WHERE msg_type IN ('Ack', 'Error') AND state = 'active';

-- +goose Down
UPDATE alert SET state = 'expired' WHERE state = 'closed';
ALTER TABLE alert DROP CONSTRAINT alert_state_check;
ALTER TABLE alert ADD CONSTRAINT alert_state_check
    CHECK (state IN ('active', 'cancelled', 'expired', 'superseded'));
