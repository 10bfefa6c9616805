-- +goose Up
-- Each replica also announces the deploy targets it runs (comma-separated: "api", "agent,ops", or every
-- target for -target=all), so that a process whose work depends on another target can say, on /readyz and
-- in it0_targets_live, when no live replica runs it.
ALTER TABLE replicas ADD COLUMN targets TEXT NOT NULL DEFAULT '';
