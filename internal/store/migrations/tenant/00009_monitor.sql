-- +goose Up
-- Raw metric samples. On PostgreSQL the table is partitioned by month: the metric maintenance job creates
-- partitions ahead of time and drops months that retention has emptied; the default partition catches
-- anything outside them so an insert never fails. SQLite keeps one plain table.
CREATE TABLE metric_snapshots (
    tenant_id    TEXT NOT NULL,
    server_id    TEXT NOT NULL,
    metric_type  TEXT NOT NULL,
    label        TEXT NOT NULL DEFAULT '',
    value        {{if .PG}}DOUBLE PRECISION{{else}}REAL{{end}} NOT NULL,
    collected_at {{.TS}} NOT NULL
){{if .PG}} PARTITION BY RANGE (collected_at){{end}};
CREATE INDEX metric_snapshots_series ON metric_snapshots (server_id, metric_type, collected_at);
CREATE INDEX metric_snapshots_time ON metric_snapshots (collected_at);
{{if .PG}}
CREATE TABLE metric_snapshots_default PARTITION OF metric_snapshots DEFAULT;
-- +goose StatementBegin
DO $$
DECLARE
    m DATE := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
BEGIN
    FOR i IN 0..2 LOOP
        EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF metric_snapshots FOR VALUES FROM (%L) TO (%L)',
            'metric_snapshots_y' || to_char(m + (i || ' month')::interval, 'YYYY') || 'm' || to_char(m + (i || ' month')::interval, 'MM'),
            (m + (i || ' month')::interval)::date::text || ' 00:00:00+00',
            (m + ((i + 1) || ' month')::interval)::date::text || ' 00:00:00+00');
    END LOOP;
END $$;
-- +goose StatementEnd
{{end}}

-- Five-minute rollups of raw samples older than the raw retention, kept for the rollup retention.
CREATE TABLE metric_rollups (
    tenant_id   TEXT NOT NULL,
    server_id   TEXT NOT NULL,
    metric_type TEXT NOT NULL,
    label       TEXT NOT NULL DEFAULT '',
    bucket_at   {{.TS}} NOT NULL,
    avg_value   {{if .PG}}DOUBLE PRECISION{{else}}REAL{{end}} NOT NULL,
    min_value   {{if .PG}}DOUBLE PRECISION{{else}}REAL{{end}} NOT NULL,
    max_value   {{if .PG}}DOUBLE PRECISION{{else}}REAL{{end}} NOT NULL,
    samples     INTEGER NOT NULL,
    PRIMARY KEY (server_id, metric_type, label, bucket_at)
);
CREATE INDEX metric_rollups_time ON metric_rollups (bucket_at);

-- next_due_at is the collection lease: the replica whose UPDATE moves it forward collects the source.
CREATE TABLE metric_sources (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    type        TEXT NOT NULL,
    doc         TEXT NOT NULL,
    next_due_at {{.TS}},
    created_at  {{.TS}} NOT NULL,
    updated_at  {{.TS}} NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE alert_rules (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    active     BOOLEAN NOT NULL,
    doc        TEXT NOT NULL,
    created_at {{.TS}} NOT NULL,
    updated_at {{.TS}} NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE alert_events (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    rule_id     TEXT NOT NULL,
    server_id   TEXT NOT NULL,
    status      TEXT NOT NULL,
    severity    TEXT NOT NULL,
    doc         TEXT NOT NULL,
    fired_at    {{.TS}} NOT NULL,
    resolved_at {{.TS}}
);
-- At most one open event per rule and server: the de-duplication holds even across replicas.
CREATE UNIQUE INDEX alert_events_open ON alert_events (rule_id, server_id) WHERE resolved_at IS NULL;
CREATE INDEX alert_events_fired ON alert_events (fired_at);
CREATE INDEX alert_events_status ON alert_events (status, severity);

-- Evaluation state per rule and server: pending since, or firing with its event.
CREATE TABLE alert_states (
    tenant_id TEXT NOT NULL,
    rule_id   TEXT NOT NULL,
    server_id TEXT NOT NULL,
    since     {{.TS}} NOT NULL,
    value     {{if .PG}}DOUBLE PRECISION{{else}}REAL{{end}} NOT NULL,
    event_id  TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (rule_id, server_id)
);
