-- +goose Up
CREATE TABLE standing_orders (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    status     TEXT NOT NULL,
    doc        TEXT NOT NULL,
    created_at {{.TS}} NOT NULL,
    updated_at {{.TS}} NOT NULL
);
CREATE INDEX standing_orders_status ON standing_orders (status);

CREATE TABLE standing_order_executions (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    order_id        TEXT NOT NULL REFERENCES standing_orders (id),
    status          TEXT NOT NULL,
    trigger_type    TEXT NOT NULL,
    trigger_context TEXT NOT NULL,
    session_id      TEXT NOT NULL DEFAULT '',
    summary         TEXT NOT NULL DEFAULT '',
    actions_taken   TEXT NOT NULL DEFAULT '[]',
    error           TEXT NOT NULL DEFAULT '',
    escalation      TEXT NOT NULL DEFAULT '',
    human_response  TEXT NOT NULL DEFAULT '',
    started_at      {{.TS}} NOT NULL,
    finished_at     {{.TS}}
);
CREATE INDEX standing_order_executions_order ON standing_order_executions (order_id, started_at);
