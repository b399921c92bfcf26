-- Citizen field reports (phản ánh hiện trường), their history, the SLA of each
-- category, and the operator actions the aggregator has applied.

-- +goose Up
-- The categories a report may have, with the time within which a report of
-- the category must be resolved. The ingest's list of categories must match.
CREATE TABLE report_category (
    code    text PRIMARY KEY,
    name_vi text     NOT NULL,
    name_en text     NOT NULL,
    sla     interval NOT NULL CHECK (sla > interval '0')
);
INSERT INTO report_category (code, name_vi, name_en, sla) VALUES
    ('traffic',        'Giao thông',      'Traffic',        interval '24 hours'),
    ('environment',    'Môi trường',      'Environment',    interval '72 hours'),
    ('urban-order',    'Trật tự đô thị',  'Urban order',    interval '48 hours'),
    ('infrastructure', 'Hạ tầng',         'Infrastructure', interval '72 hours'),
    ('flooding',       'Ngập úng',        'Flooding',       interval '4 hours'),
    ('other',          'Khác',            'Other',          interval '120 hours');

-- One citizen report per (source, id). contact_enc is PRIVATE: the reporter's
-- contact sealed (AES-256-GCM, package internal/seal) with the hub key and the
-- report id as additional data; it is never published. alert_state tracks the
-- overdue alert the hub raised for the report: '' none, raised, cancelled.
CREATE TABLE report (
    id           text PRIMARY KEY, -- <source_id>/<item id>
    source_id    text        NOT NULL,
    event_id     text        NOT NULL,
    province     text        NOT NULL,
    unit_code    text        NOT NULL,
    category     text        NOT NULL,
    point        geometry(Point, 4326) NOT NULL,
    text         text        NOT NULL DEFAULT '',
    media        text[]      NOT NULL DEFAULT '{}',
    contact_enc  bytea,
    status       text        NOT NULL DEFAULT 'received'
                 CHECK (status IN ('received', 'assigned', 'in_progress', 'resolved', 'rejected')),
    assignee     text        NOT NULL DEFAULT '',
    reported_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL,
    sla_deadline timestamptz NOT NULL,
    overdue      boolean     NOT NULL DEFAULT false,
    alert_state  text        NOT NULL DEFAULT '' CHECK (alert_state IN ('', 'raised', 'cancelled')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source_id, event_id)
);
CREATE INDEX report_point ON report USING gist (point);
CREATE INDEX report_province_status ON report (province, status);
CREATE INDEX report_due ON report (sla_deadline) WHERE NOT overdue AND status NOT IN ('resolved', 'rejected');
CREATE INDEX report_alert_open ON report (province) WHERE alert_state = 'raised';

-- Every change of a report, and every refused one: kind is received, status,
-- refused or overdue.
CREATE TABLE report_event (
    id          bigserial PRIMARY KEY,
    report_id   text        NOT NULL REFERENCES report (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT now(),
    kind        text        NOT NULL CHECK (kind IN ('received', 'status', 'refused', 'overdue')),
    from_status text        NOT NULL DEFAULT '',
    to_status   text        NOT NULL DEFAULT '',
    assignee    text        NOT NULL DEFAULT '',
    actor       text        NOT NULL DEFAULT '',
    action_id   text        NOT NULL DEFAULT '',
    note        text        NOT NULL DEFAULT '',
    reason      text        NOT NULL DEFAULT ''
);
CREATE INDEX report_event_report ON report_event (report_id, at);

-- The operator actions (stream ACTIONS) the aggregator has handled, by id, so
-- that a redelivered or retried action is handled once. result is applied or
-- refused (with reason).
CREATE TABLE action_done (
    id          text PRIMARY KEY,
    type        text        NOT NULL,
    actor       text        NOT NULL DEFAULT '',
    province    text        NOT NULL DEFAULT '',
    target_kind text        NOT NULL DEFAULT '',
    target      text        NOT NULL DEFAULT '',
    at          timestamptz,
    result      text        NOT NULL CHECK (result IN ('applied', 'refused')),
    reason      text        NOT NULL DEFAULT '',
    done_at     timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE action_done;
DROP TABLE report_event;
DROP TABLE report;
DROP TABLE report_category;
