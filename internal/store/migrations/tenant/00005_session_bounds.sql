-- +goose Up
ALTER TABLE agent_sessions ADD COLUMN max_risk_level INTEGER NOT NULL DEFAULT 2;
ALTER TABLE agent_sessions ADD COLUMN allowed_tools TEXT NOT NULL DEFAULT '[]';
ALTER TABLE agent_sessions ADD COLUMN auto_approve BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE agent_sessions ADD COLUMN origin TEXT NOT NULL DEFAULT 'manual';
ALTER TABLE agent_sessions ADD COLUMN origin_id TEXT NOT NULL DEFAULT '';
