package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/it0/it0/internal/voice"
)

var _ voice.Store = (*DB)(nil)

const voiceSessionCols = `id, tenant_id, agent_session_id, approval_id, user_id, transport, language, state, outcome, end_reason,
	turns, created_at, started_at, ended_at, updated_at`

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
	_, err = sc.exec(ctx, `INSERT INTO ~voice_sessions (`+voiceSessionCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (id) DO UPDATE SET state = excluded.state, outcome = excluded.outcome, end_reason = excluded.end_reason,
		turns = excluded.turns, started_at = excluded.started_at, ended_at = excluded.ended_at, updated_at = excluded.updated_at
		WHERE ~voice_sessions.tenant_id = excluded.tenant_id`,
		vs.ID, sc.tenantID, vs.AgentSessionID, vs.ApprovalID, vs.UserID, vs.Transport, vs.Language, vs.State, vs.Outcome, vs.EndReason,
		string(tj), vs.CreatedAt, vs.StartedAt, vs.EndedAt, db.Now())
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
		&vs.EndReason, &turns, &vs.CreatedAt, &vs.StartedAt, &vs.EndedAt, &updated)
	if err != nil {
		return nil, notFound(err, "voice session")
	}
	if err := json.Unmarshal([]byte(turns), &vs.Turns); err != nil {
		return nil, fmt.Errorf("voice session %s turns: %w", vs.ID, err)
	}
	return &vs, nil
}
