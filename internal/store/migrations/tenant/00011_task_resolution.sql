-- +goose Up
-- What became of the problem a task was started for (an alert that resolved after its runbook ran).
ALTER TABLE ops_tasks ADD COLUMN resolution TEXT NOT NULL DEFAULT '';
