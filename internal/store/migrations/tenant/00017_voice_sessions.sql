-- +goose Up
-- voice: the gateway's sessions (console streams and escalation calls), so that a session's record, and a
-- call prepared for an escalation but not yet answered, outlive a restart. Turns are a JSON array: a
-- session has a handful, always read and written whole.
CREATE TABLE voice_sessions (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    agent_session_id TEXT NOT NULL DEFAULT '',
    approval_id      TEXT NOT NULL DEFAULT '',
    user_id          TEXT NOT NULL DEFAULT '',
    transport        TEXT NOT NULL,
    language         TEXT NOT NULL,
    state            TEXT NOT NULL,
    outcome          TEXT NOT NULL DEFAULT '',
    end_reason       TEXT NOT NULL DEFAULT '',
    turns            TEXT NOT NULL DEFAULT '[]',
    created_at       {{.TS}} NOT NULL,
    started_at       {{.TS}},
    ended_at         {{.TS}},
    updated_at       {{.TS}} NOT NULL
);
CREATE INDEX voice_sessions_agent_session ON voice_sessions (agent_session_id);
