-- +goose Up
CREATE TABLE tenants (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    slug                 TEXT NOT NULL UNIQUE,
    plan                 TEXT NOT NULL,
    status               TEXT NOT NULL,
    max_servers          INTEGER NOT NULL,
    max_skills           INTEGER NOT NULL,
    max_users            INTEGER NOT NULL,
    max_sessions_per_day INTEGER NOT NULL,
    allowed_engines      TEXT NOT NULL,
    locale               TEXT NOT NULL,
    created_at           {{.TS}} NOT NULL,
    updated_at           {{.TS}} NOT NULL
);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    email          TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL,
    platform_admin BOOLEAN NOT NULL DEFAULT FALSE,
    status         TEXT NOT NULL,
    locale         TEXT NOT NULL DEFAULT '',
    created_at     {{.TS}} NOT NULL,
    updated_at     {{.TS}} NOT NULL,
    last_login_at  {{.TS}}
);
CREATE INDEX users_tenant ON users (tenant_id);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    hash         {{.Blob}} NOT NULL UNIQUE,
    role         TEXT NOT NULL,
    created_at   {{.TS}} NOT NULL,
    last_used_at {{.TS}},
    expires_at   {{.TS}},
    revoked_at   {{.TS}}
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

{{template "audit" .}}
