-- +goose Up
-- The process carrying an active voice session's stream (voice.Session.Runner): when it stops, another
-- process ends the session as interrupted instead of leaving it active for ever.
ALTER TABLE voice_sessions ADD COLUMN runner TEXT NOT NULL DEFAULT '';
