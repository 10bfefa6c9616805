package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/it0/it0/internal/voice"
)

var _ voice.Store = (*DB)(nil)

const voiceSessionCols = `id, tenant_id, agent_session_id, approval_id, user_id, transport, language, state, outcome, end_reason,
	turns, created_at, started_at, ended_at, updated_at, runner`

// VoiceSessionPut inserts or replaces voice session vs of the tenant in ctx.
func (db *DB) VoiceSessionPut(ctx context.Context, vs *voice.Session) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	turns := vs.Turns
	if turns == nil {
		turns = []voice.Turn{}
	}
	tj, err := json.Marshal(turns)
	if err != nil {
		return fmt.Errorf("voice session %s turns: %w", vs.ID, err)
	}
	// The tenant guard in the update keeps one tenant from overwriting another's id (ids are UUIDs; this
	// is defence, not a path anyone takes).
	_, err = sc.exec(ctx, `INSERT INTO ~voice_sessions (`+voiceSessionCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (id) DO UPDATE SET state = excluded.state, outcome = excluded.outcome, end_reason = excluded.end_reason,
		turns = excluded.turns, started_at = excluded.started_at, ended_at = excluded.ended_at, updated_at = excluded.updated_at,
		runner = excluded.runner
		WHERE ~voice_sessions.tenant_id = excluded.tenant_id`,
		vs.ID, sc.tenantID, vs.AgentSessionID, vs.ApprovalID, vs.UserID, vs.Transport, vs.Language, vs.State, vs.Outcome, vs.EndReason,
		string(tj), vs.CreatedAt, vs.StartedAt, vs.EndedAt, db.Now(), vs.Runner)
	return err
}

// VoiceSessionGet returns voice session id of the tenant in ctx; errs.NotFound when there is none.
func (db *DB) VoiceSessionGet(ctx context.Context, id string) (*voice.Session, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	var vs voice.Session
	var turns string
	var updated any
	err = sc.queryRow(ctx, `SELECT `+voiceSessionCols+` FROM ~voice_sessions WHERE id = ? AND tenant_id = ?`, id, sc.tenantID).Scan(
		&vs.ID, &vs.TenantID, &vs.AgentSessionID, &vs.ApprovalID, &vs.UserID, &vs.Transport, &vs.Language, &vs.State, &vs.Outcome,
		&vs.EndReason, &turns, &vs.CreatedAt, &vs.StartedAt, &vs.EndedAt, &updated, &vs.Runner)
	if err != nil {
		return nil, notFound(err, "voice session")
	}
	if err := json.Unmarshal([]byte(turns), &vs.Turns); err != nil {
		return nil, fmt.Errorf("voice session %s turns: %w", vs.ID, err)
	}
	return &vs, nil
}

// VoiceSessionsActive lists the active voice sessions of the tenant in ctx (without their turns).
func (db *DB) VoiceSessionsActive(ctx context.Context) ([]voice.Session, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := sc.query(ctx, `SELECT id, agent_session_id, approval_id, transport, started_at, runner FROM ~voice_sessions
		WHERE tenant_id = ? AND state = ?`, sc.tenantID, voice.SessionActive)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []voice.Session
	for rows.Next() {
		vs := voice.Session{TenantID: sc.tenantID, State: voice.SessionActive}
		if err := rows.Scan(&vs.ID, &vs.AgentSessionID, &vs.ApprovalID, &vs.Transport, &vs.StartedAt, &vs.Runner); err != nil {
			return nil, err
		}
		out = append(out, vs)
	}
	return out, rows.Err()
}

// VoiceSessionInterrupt ends voice session id of the tenant in ctx with reason, if it is still active on
// runner, and reports whether it did (of two processes ending it, one does).
func (db *DB) VoiceSessionInterrupt(ctx context.Context, id, runner, reason string, at time.Time) (bool, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return false, err
	}
	res, err := sc.exec(ctx, `UPDATE ~voice_sessions SET state = ?, end_reason = ?, ended_at = ?, updated_at = ?
		WHERE id = ? AND tenant_id = ? AND state = ? AND runner = ?`, voice.SessionEnded, reason, at, db.Now(), id, sc.tenantID,
		voice.SessionActive, runner)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
