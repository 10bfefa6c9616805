-- +goose Up
-- An execution started by a domain event (check.transitioned, alert.fired, alert.resolved, delivered at
-- least once) records the event's key: one execution per (order, event), so a redelivered event starts
-- nothing more.
ALTER TABLE standing_order_executions ADD COLUMN trigger_key TEXT;
CREATE UNIQUE INDEX standing_order_executions_trigger_key ON standing_order_executions (order_id, trigger_key)
    WHERE trigger_key IS NOT NULL;
