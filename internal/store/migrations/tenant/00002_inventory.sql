-- +goose Up
CREATE TABLE credentials (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    type        TEXT NOT NULL,
    username    TEXT NOT NULL DEFAULT '',
    key_type    TEXT NOT NULL DEFAULT '',
    bits        INTEGER NOT NULL DEFAULT 0,
    fingerprint TEXT NOT NULL DEFAULT '',
    public_key  TEXT NOT NULL DEFAULT '',
    encrypted   BOOLEAN NOT NULL DEFAULT FALSE,
    sealed      {{.Blob}} NOT NULL,
    created_at  {{.TS}} NOT NULL,
    updated_at  {{.TS}} NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE clusters (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    type        TEXT NOT NULL,
    environment TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    kubeconfig  {{.Blob}},
    created_at  {{.TS}} NOT NULL,
    updated_at  {{.TS}} NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE servers (
    id                   TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL,
    name                 TEXT NOT NULL,
    host                 TEXT NOT NULL,
    port                 INTEGER NOT NULL,
    environment          TEXT NOT NULL,
    role                 TEXT NOT NULL,
    cluster_id           TEXT REFERENCES clusters (id),
    ssh_user             TEXT NOT NULL,
    credential_id        TEXT REFERENCES credentials (id),
    network_type         TEXT NOT NULL,
    jump_server_id       TEXT REFERENCES servers (id),
    ssh_options          TEXT NOT NULL DEFAULT '{}',
    tags                 TEXT NOT NULL DEFAULT '[]',
    status               TEXT NOT NULL,
    description          TEXT NOT NULL DEFAULT '',
    host_key_policy      TEXT NOT NULL,
    host_key             TEXT NOT NULL DEFAULT '',
    host_key_fingerprint TEXT NOT NULL DEFAULT '',
    created_at           {{.TS}} NOT NULL,
    updated_at           {{.TS}} NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE INDEX servers_env ON servers (tenant_id, environment, role);

CREATE TABLE command_records (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    session_id  TEXT NOT NULL DEFAULT '',
    server_id   TEXT NOT NULL,
    server_name TEXT NOT NULL,
    command     TEXT NOT NULL,
    risk_level  INTEGER NOT NULL,
    status      TEXT NOT NULL,
    exit_code   INTEGER,
    stdout      TEXT NOT NULL,
    stderr      TEXT NOT NULL,
    truncated   BOOLEAN NOT NULL DEFAULT FALSE,
    duration_ms BIGINT NOT NULL,
    actor_type  TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    created_at  {{.TS}} NOT NULL
);
CREATE INDEX command_records_server ON command_records (server_id, created_at);
CREATE INDEX command_records_session ON command_records (session_id, created_at);
