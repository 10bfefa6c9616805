-- +goose Up
-- Tokens issued before this instant are refused: a role change, a password change or disabling the user
-- sets it, so a stolen or stale JWT stops working at once instead of at its expiry.
ALTER TABLE users ADD COLUMN tokens_valid_after {{.TS}};

-- The newest audit entry of each chain (a tenant id, or _platform), with a MAC by the audit key over
-- (chain, seq, hash). It lives outside the chain's own table (and, on SQLite, outside its file), so
-- deleting the newest rows of a chain no longer leaves a chain that verifies: `it0 audit verify` finds
-- the anchored row missing. seq only moves forward.
CREATE TABLE audit_heads (
    chain      TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    hash       {{.Blob}} NOT NULL,
    mac        {{.Blob}} NOT NULL,
    updated_at {{.TS}} NOT NULL
);
