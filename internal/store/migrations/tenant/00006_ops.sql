-- +goose Up
CREATE TABLE ops_tasks (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL,
    type              TEXT NOT NULL,
    title             TEXT NOT NULL,
    description       TEXT NOT NULL,
    status            TEXT NOT NULL,
    priority          TEXT NOT NULL,
    target_server_ids TEXT NOT NULL,
    session_id        TEXT NOT NULL DEFAULT '',
    runbook_id        TEXT NOT NULL DEFAULT '',
    result_summary    TEXT NOT NULL DEFAULT '',
    created_by        TEXT NOT NULL,
    created_at        {{.TS}} NOT NULL,
    updated_at        {{.TS}} NOT NULL,
    finished_at       {{.TS}}
);
CREATE INDEX ops_tasks_created ON ops_tasks (created_at);

CREATE TABLE runbooks (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL,
    prompt_template TEXT NOT NULL,
    allowed_tools   TEXT NOT NULL,
    max_risk_level  INTEGER NOT NULL,
    auto_approve    BOOLEAN NOT NULL,
    trigger_type    TEXT NOT NULL,
    enabled         BOOLEAN NOT NULL,
    source          TEXT NOT NULL,
    created_at      {{.TS}} NOT NULL,
    updated_at      {{.TS}} NOT NULL,
    UNIQUE (tenant_id, name)
);
