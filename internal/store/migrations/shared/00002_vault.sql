-- +goose Up
-- Data keys of the credential vault, each sealed by a master key (IT0_VAULT_MASTER_KEY). Platform-wide:
-- every sealed value also binds its tenant and row through AES-GCM additional data.
CREATE TABLE vault_data_keys (
    id            TEXT PRIMARY KEY,
    master_key_id TEXT NOT NULL,
    nonce         {{.Blob}} NOT NULL,
    ciphertext    {{.Blob}} NOT NULL,
    created_at    {{.TS}} NOT NULL
);
