-- The hub's default lifetime of an alert that names no expiry (the
-- aggregator's --alert-default-ttl, docs/alerts.md "Lifecycle"). CAP 1.2
-- leaves it to each recipient when a message without <expires> is no longer
-- in effect; the hub had no policy, so such an alert stayed active (drawn on
-- the wall, counted in the roll-ups) until a Cancel or Update referred to it.
-- The aggregator now stores expires = sent + the default lifetime for such an
-- alert, and expires_default true: the expiry is the hub's, not the
-- message's (the stored body and info are the message as received, without
-- an invented expires). The expiry sweep, the active queries and the
-- roll-ups read expires alone.
--
-- The alerts stored before this release are not given an expiry here: a
-- migration cannot know the lifetime the deployment configures (0 keeps
-- them active), nor follow it when it changes. The aggregator applies its
-- configured lifetime to the active alerts of its province when it starts
-- (postgis.Store.ApplyAlertDefaultTTL), these included.

--
-- No CHECK ties expires_default to expires: the release before, which does
-- not know the column, may still write an alert's expires (a roll, a
-- rollback) and must not be refused.

-- +goose Up
ALTER TABLE alert ADD COLUMN expires_default boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE alert DROP COLUMN expires_default;
