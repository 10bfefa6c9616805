-- +goose Up
-- Replicas sharing this database announce themselves here every few seconds, so that one started without
-- the shared bus (IT0_REDIS_URL) while others run can say so (/readyz) instead of silently splitting
-- live events and cancels.
CREATE TABLE replicas (
    id         TEXT PRIMARY KEY,
    has_bus    BOOLEAN NOT NULL,
    seen_at    {{.TS}} NOT NULL
);
