package postgis

// SQL of feed sources (sources.go) and the audit log.

// sqlUnitCurrentExists tells whether a unit code has a current version.
const sqlUnitCurrentExists = `SELECT EXISTS (SELECT FROM admin_unit WHERE code = $1 AND valid_to IS NULL)`

// sqlSourceInsert registers a feed source.
const sqlSourceInsert = `
INSERT INTO source (id, name, unit_code, token_sha256, interval_s) VALUES ($1, $2, $3, $4, $5)`

// sqlSourceDisable disables a source unless it is disabled already; it
// returns a row only when it changed something.
const sqlSourceDisable = `
UPDATE source SET disabled_at = now() WHERE id = $1 AND disabled_at IS NULL RETURNING id`

// sqlSourceStatsDisabled is run with sqlSourceDisable: a disabled source
// sends nothing more, so its pairs are never stale from now on (stale_at
// NULL), and those stale already have their alert cancelled at the next
// stale sweep (clear_pending) rather than left active for ever.
const sqlSourceStatsDisabled = `
UPDATE source_stats SET stale_at = NULL, clear_pending = clear_pending OR stale_since IS NOT NULL, stale_since = NULL
WHERE source_id = $1`

// sqlSourceExists tells whether a source id is registered.
const sqlSourceExists = `SELECT EXISTS (SELECT FROM source WHERE id = $1)`

// sqlAuditInsert records a change of configuration.
const sqlAuditInsert = `
INSERT INTO audit_log (actor, action, target, detail) VALUES ($1, $2, $3, $4)`
