-- +goose Up
-- Tokens issued before this instant are refused: a role change, a password change or disabling the user
-- sets it, so a stolen or stale JWT stops working at once instead of at its expiry.
ALTER TABLE users ADD COLUMN tokens_valid_after {{.TS}};

-- The platform audit chain's anchor (tenant chains have theirs in their own schema or file).
{{template "audit_heads" .}}
