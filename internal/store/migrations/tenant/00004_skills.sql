-- +goose Up
CREATE TABLE skills (
    name        TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    description TEXT NOT NULL,
    content     TEXT NOT NULL,
    source      TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  {{.TS}} NOT NULL,
    updated_at  {{.TS}} NOT NULL
);

CREATE TABLE skill_executions (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    skill_name TEXT NOT NULL,
    session_id TEXT NOT NULL,
    arguments  TEXT NOT NULL,
    engine     TEXT NOT NULL,
    created_at {{.TS}} NOT NULL
);
CREATE INDEX skill_executions_skill ON skill_executions (skill_name, created_at);
