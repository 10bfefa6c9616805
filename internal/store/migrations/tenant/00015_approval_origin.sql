-- +goose Up
-- Approvals carry what they need of their session (internal/ops/approval): its origin (a standing order's
-- run is unattended: its approvals are escalations, rejected at their timeout whatever their level) and its
-- user (who an interactive approval is pushed to), so the sweeper and comm never read the agent's tables.
-- decided_via is the channel of a person's decision (api, telegram, sms…).
ALTER TABLE approval_requests ADD COLUMN origin TEXT NOT NULL DEFAULT '';
ALTER TABLE approval_requests ADD COLUMN origin_id TEXT NOT NULL DEFAULT '';
ALTER TABLE approval_requests ADD COLUMN user_id TEXT NOT NULL DEFAULT '';
ALTER TABLE approval_requests ADD COLUMN decided_via TEXT NOT NULL DEFAULT '';
UPDATE approval_requests SET
    origin = COALESCE((SELECT s.origin FROM agent_sessions s WHERE s.id = approval_requests.session_id), ''),
    origin_id = COALESCE((SELECT s.origin_id FROM agent_sessions s WHERE s.id = approval_requests.session_id), ''),
    user_id = COALESCE((SELECT s.user_id FROM agent_sessions s WHERE s.id = approval_requests.session_id), '');
