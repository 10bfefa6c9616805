-- +goose Up
-- A session's run ends are numbered (internal/agent agentapi.RunEnded): each change of its status to a
-- run-end status (awaiting_approval, completed, failed, cancelled) counts one and writes an
-- agent.run_ended event in the same transaction. A standing-order execution remembers the last run end
-- it mirrored, so a redelivered event (relay replay, reclaimed message, two replicas) is applied once.
ALTER TABLE agent_sessions ADD COLUMN run_ends INTEGER NOT NULL DEFAULT 0;
ALTER TABLE standing_order_executions ADD COLUMN session_run INTEGER NOT NULL DEFAULT 0;
