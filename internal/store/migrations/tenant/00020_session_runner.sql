-- +goose Up
-- The replica running a session's current run (internal/agent claim.go): a run whose replica stopped is
-- marked interrupted by another, and a resume is a compare-and-set on status, so two replicas never run
-- the same session at once.
ALTER TABLE agent_sessions ADD COLUMN runner TEXT NOT NULL DEFAULT '';
