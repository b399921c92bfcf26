-- A disabled source sends nothing more, so its pairs are never stale from
-- now on. Since this release, disabling a source takes the deadline off its
-- pairs (stale_at NULL) and marks those stale already for the Cancel of
-- their alert at the next stale sweep (clear_pending). Sources disabled
-- before were left to go stale, their alert active for ever: this applies
-- the same to them once.

-- +goose Up
UPDATE source_stats SET stale_at = NULL, clear_pending = clear_pending OR stale_since IS NOT NULL, stale_since = NULL
WHERE source_id IN (SELECT id FROM source WHERE disabled_at IS NOT NULL);

-- +goose Down
-- Nothing to undo: the release before watches these pairs again and finds them silent.
SELECT 1;
