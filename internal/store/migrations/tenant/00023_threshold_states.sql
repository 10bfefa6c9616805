-- +goose Up
-- What a threshold-triggered standing order remembers of each server's samples (ops.ThresholdState). It
-- lives in the database, not in a process, so any replica judges the next sample, a restart forgets
-- nothing, and two replicas judging samples of one server take turns on its row.
CREATE TABLE threshold_states (
    tenant_id   TEXT NOT NULL,
    order_id    TEXT NOT NULL,
    server_id   TEXT NOT NULL,
    since       {{.TS}},
    fired_since {{.TS}},
    last_at     {{.TS}},
    PRIMARY KEY (order_id, server_id)
);
