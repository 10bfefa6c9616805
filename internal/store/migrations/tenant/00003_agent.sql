-- +goose Up
CREATE TABLE agent_sessions (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    engine         TEXT NOT NULL,
    status         TEXT NOT NULL,
    title          TEXT NOT NULL,
    skill          TEXT NOT NULL DEFAULT '',
    server_ids     TEXT NOT NULL DEFAULT '[]',
    max_turns      INTEGER NOT NULL,
    max_budget_usd DOUBLE PRECISION NOT NULL,
    tokens_used    INTEGER NOT NULL DEFAULT 0,
    cost_usd       DOUBLE PRECISION NOT NULL DEFAULT 0,
    summary        TEXT NOT NULL DEFAULT '',
    error          TEXT NOT NULL DEFAULT '',
    state          TEXT NOT NULL DEFAULT '',
    last_seq       BIGINT NOT NULL DEFAULT 0,
    created_at     {{.TS}} NOT NULL,
    updated_at     {{.TS}} NOT NULL
);
CREATE INDEX agent_sessions_status ON agent_sessions (status, created_at);

CREATE TABLE agent_tasks (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    session_id  TEXT NOT NULL REFERENCES agent_sessions (id),
    prompt      TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  {{.TS}} NOT NULL,
    finished_at {{.TS}}
);
CREATE INDEX agent_tasks_session ON agent_tasks (session_id, created_at);

CREATE TABLE agent_events (
    session_id TEXT NOT NULL REFERENCES agent_sessions (id),
    seq        BIGINT NOT NULL,
    tenant_id  TEXT NOT NULL,
    type       TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at {{.TS}} NOT NULL,
    PRIMARY KEY (session_id, seq)
);

CREATE TABLE approval_requests (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    session_id      TEXT NOT NULL,
    command         TEXT NOT NULL,
    risk_level      INTEGER NOT NULL,
    reason          TEXT NOT NULL,
    tool            TEXT NOT NULL,
    tool_use_id     TEXT NOT NULL DEFAULT '',
    tool_input      TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL,
    requested_by    TEXT NOT NULL,
    decided_by      TEXT NOT NULL DEFAULT '',
    decision_reason TEXT NOT NULL DEFAULT '',
    decided_at      {{.TS}},
    used_at         {{.TS}},
    expires_at      {{.TS}} NOT NULL,
    created_at      {{.TS}} NOT NULL
);
CREATE INDEX approval_requests_session ON approval_requests (session_id, status);
CREATE INDEX approval_requests_status ON approval_requests (status, expires_at);

CREATE TABLE agent_settings (
    key        TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at {{.TS}} NOT NULL
);
