-- +goose Up
-- comm: contacts and their channel addresses, every message in and out, escalation policies and the
-- escalation chains started for approvals of unattended runs.
CREATE TABLE contacts (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL,
    user_id           TEXT NOT NULL DEFAULT '',
    name              TEXT NOT NULL,
    audience          TEXT NOT NULL,
    phone             TEXT NOT NULL DEFAULT '',
    email             TEXT NOT NULL DEFAULT '',
    telegram_chat_id  TEXT NOT NULL DEFAULT '',
    wecom_user_id     TEXT NOT NULL DEFAULT '',
    fcm_token         TEXT NOT NULL DEFAULT '',
    preferred_channel TEXT NOT NULL DEFAULT '',
    locale            TEXT NOT NULL DEFAULT '',
    enabled           BOOLEAN NOT NULL,
    created_at        {{.TS}} NOT NULL,
    updated_at        {{.TS}} NOT NULL
);
CREATE INDEX contacts_phone ON contacts (phone);
CREATE INDEX contacts_telegram ON contacts (telegram_chat_id);

-- The idempotency key is unique: a send retried under the same key never reaches the provider twice, and
-- an inbound answer (a link's nonce, a provider's message id) cannot be replayed.
CREATE TABLE messages (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    direction       TEXT NOT NULL,
    channel         TEXT NOT NULL,
    contact_id      TEXT NOT NULL DEFAULT '',
    address         TEXT NOT NULL DEFAULT '',
    escalation_id   TEXT NOT NULL DEFAULT '',
    step            INTEGER NOT NULL DEFAULT 0,
    subject         TEXT NOT NULL DEFAULT '',
    body            TEXT NOT NULL,
    status          TEXT NOT NULL,
    provider_id     TEXT NOT NULL DEFAULT '',
    error           TEXT NOT NULL DEFAULT '',
    attempts        INTEGER NOT NULL DEFAULT 0,
    idempotency_key TEXT NOT NULL,
    created_at      {{.TS}} NOT NULL,
    updated_at      {{.TS}} NOT NULL,
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX messages_escalation ON messages (escalation_id);
CREATE INDEX messages_contact ON messages (contact_id, created_at);
CREATE INDEX messages_created ON messages (created_at);

CREATE TABLE escalation_policies (
    tenant_id  TEXT NOT NULL,
    severity   TEXT NOT NULL,
    steps      TEXT NOT NULL,
    updated_at {{.TS}} NOT NULL,
    PRIMARY KEY (tenant_id, severity)
);

-- One escalation per approval (its id is the approval's).
CREATE TABLE escalations (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    session_id       TEXT NOT NULL,
    severity         TEXT NOT NULL,
    status           TEXT NOT NULL,
    ref              TEXT NOT NULL,
    summary          TEXT NOT NULL,
    report           TEXT NOT NULL,
    steps            TEXT NOT NULL,
    voice_session    TEXT NOT NULL DEFAULT '',
    started_at       {{.TS}} NOT NULL,
    expires_at       {{.TS}} NOT NULL,
    answered_at      {{.TS}},
    answered_by      TEXT NOT NULL DEFAULT '',
    answered_channel TEXT NOT NULL DEFAULT '',
    decision         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX escalations_status ON escalations (status, started_at);
CREATE INDEX escalations_ref ON escalations (ref, status);
