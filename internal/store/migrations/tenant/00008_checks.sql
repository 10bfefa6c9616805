-- +goose Up
-- A check's definition is a JSON document (doc); its state is in columns, written by every run.
CREATE TABLE checks (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    name             TEXT NOT NULL,
    type             TEXT NOT NULL,
    server_id        TEXT NOT NULL DEFAULT '',
    enabled          BOOLEAN NOT NULL DEFAULT TRUE,
    doc              TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'unknown',
    streak           INTEGER NOT NULL DEFAULT 0,
    state_changed_at {{.TS}},
    last_checked_at  {{.TS}},
    last_status      TEXT NOT NULL DEFAULT '',
    last_message     TEXT NOT NULL DEFAULT '',
    -- The latest slot a replica claimed: each slot of a check runs on one replica.
    claimed_slot     {{.TS}},
    created_at       {{.TS}} NOT NULL,
    updated_at       {{.TS}} NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE INDEX checks_server ON checks (server_id);

-- Results are many (one per check per interval) and pruned by age: no foreign key, so inserts stay cheap
-- and a check's deletion removes its rows explicitly.
CREATE TABLE check_results (
    id          {{.Serial}},
    tenant_id   TEXT NOT NULL,
    check_id    TEXT NOT NULL,
    status      TEXT NOT NULL,
    checked_at  {{.TS}} NOT NULL,
    duration_ms BIGINT NOT NULL,
    lateness_ms BIGINT NOT NULL,
    message     TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX check_results_check ON check_results (check_id, checked_at);
CREATE INDEX check_results_checked_at ON check_results (checked_at);

CREATE TABLE check_transitions (
    id         {{.Serial}},
    tenant_id  TEXT NOT NULL,
    check_id   TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    at         {{.TS}} NOT NULL,
    results    INTEGER NOT NULL,
    message    TEXT NOT NULL
);
CREATE INDEX check_transitions_check ON check_transitions (check_id, at);
