-- Alert rules: one row per rule, changed only by operator actions (rule.put,
-- rule.delete) that the aggregator applies and records in audit_log with the
-- rule's JSON before and after: the audit log is the rules' version history.
-- The rules engine raises its alerts as the source 'rules'.

-- +goose Up
CREATE TABLE alert_rule (
    id           text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
    province     text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('aqi_band', 'congestion', 'water_level')),
    params       jsonb       NOT NULL DEFAULT '{}',
    for_duration interval    NOT NULL DEFAULT '0' CHECK (for_duration >= interval '0'),
    severity     text        NOT NULL CHECK (severity IN ('Extreme', 'Severe', 'Moderate', 'Minor', 'Unknown')),
    enabled      boolean     NOT NULL DEFAULT true,
    version      integer     NOT NULL DEFAULT 1 CHECK (version > 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    updated_by   text        NOT NULL DEFAULT ''
);
CREATE INDEX alert_rule_province ON alert_rule (province);

-- The engine's restart reads the alerts it raised and has not cancelled.
CREATE INDEX alert_rules_active ON alert (province) WHERE source_id = 'rules' AND state = 'active';

-- +goose Down
DROP INDEX alert_rules_active;
DROP TABLE alert_rule;
