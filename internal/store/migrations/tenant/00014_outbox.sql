-- +goose Up
-- Domain events waiting to be published on the bus. Each is written in the same transaction as the change
-- it reports, and deleted once the relay has published it (internal/outbox).
CREATE TABLE outbox (
    id         {{.Serial}},
    tenant_id  TEXT NOT NULL,
    stream     TEXT NOT NULL,
    payload    {{.Blob}} NOT NULL,
    created_at {{.TS}} NOT NULL
);
