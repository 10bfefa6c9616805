package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/agent/agentapi"
	"github.com/it0/it0/internal/errs"
)

var _ agent.Store = (*DB)(nil)

const sessionCols = `id, tenant_id, user_id, engine, status, title, skill, server_ids, max_turns, max_budget_usd, tokens_used,
	cost_usd, summary, error, state, last_seq, created_at, updated_at, max_risk_level, allowed_tools, auto_approve, origin, origin_id, run_ends`

func scanSession(row interface{ Scan(...any) error }) (*agent.Session, error) {
	var s agent.Session
	var ids, state, tools string
	if err := row.Scan(&s.ID, &s.TenantID, &s.UserID, &s.Engine, &s.Status, &s.Title, &s.Skill, &ids, &s.MaxTurns, &s.MaxBudgetUSD,
		&s.TokensUsed, &s.CostUSD, &s.Summary, &s.Error, &state, &s.LastSeq, &s.CreatedAt, &s.UpdatedAt, &s.MaxRiskLevel, &tools,
		&s.AutoApprove, &s.Origin, &s.OriginID, &s.RunEnds); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(tools), &s.AllowedTools); err != nil {
		return nil, fmt.Errorf("session %s allowed_tools: %w", s.ID, err)
	}
	if err := json.Unmarshal([]byte(ids), &s.ServerIDs); err != nil {
		return nil, fmt.Errorf("session %s server_ids: %w", s.ID, err)
	}
	if state != "" {
		s.State = json.RawMessage(state)
	}
	return &s, nil
}

// SessionCreate inserts s.
func (db *DB) SessionCreate(ctx context.Context, s *agent.Session) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	s.TenantID = sc.tenantID
	ids, _ := json.Marshal(s.ServerIDs)
	if s.AllowedTools == nil {
		s.AllowedTools = []string{}
	}
	tools, _ := json.Marshal(s.AllowedTools)
	if s.Origin == "" {
		s.Origin = "manual"
	}
	_, err = sc.exec(ctx, `INSERT INTO ~agent_sessions (`+sessionCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		s.ID, s.TenantID, s.UserID, s.Engine, s.Status, s.Title, s.Skill, string(ids), s.MaxTurns, s.MaxBudgetUSD, s.TokensUsed,
		s.CostUSD, s.Summary, s.Error, string(s.State), s.LastSeq, s.CreatedAt, s.UpdatedAt, s.MaxRiskLevel, string(tools),
		s.AutoApprove, s.Origin, s.OriginID, s.RunEnds)
	return err
}

// SessionGet returns session id.
func (db *DB) SessionGet(ctx context.Context, id string) (*agent.Session, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	s, err := scanSession(sc.queryRow(ctx, `SELECT `+sessionCols+` FROM ~agent_sessions WHERE id = ? AND tenant_id = ?`, id, sc.tenantID))
	return s, notFound(err, "session")
}

// SessionList returns recent sessions, optionally with one status.
func (db *DB) SessionList(ctx context.Context, status string, limit int) ([]agent.Session, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := sc.query(ctx, `SELECT `+sessionCols+` FROM ~agent_sessions WHERE tenant_id = ? AND (? = '' OR status = ?)
		ORDER BY created_at DESC, id LIMIT ?`, sc.tenantID, status, status, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []agent.Session
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *s)
	}
	return out, rows.Err()
}

// SessionUpdate saves s's mutable fields. A change of status to one that ends a run (agentapi.RunEnds)
// is counted in s.RunEnds and writes the agent.run_ended event in the same transaction: the first
// UPDATE matches only when the status changes, so of two writers of the same end one counts it.
func (db *DB) SessionUpdate(ctx context.Context, s *agent.Session) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	ids, _ := json.Marshal(s.ServerIDs)
	set := `UPDATE ~agent_sessions SET engine=?, status=?, title=?, skill=?, server_ids=?, tokens_used=?, cost_usd=?,
		summary=?, error=?, state=?, updated_at=?`
	args := []any{s.Engine, s.Status, s.Title, s.Skill, string(ids), s.TokensUsed, s.CostUSD, s.Summary, s.Error, string(s.State), s.UpdatedAt}
	if !agentapi.RunEnds(s.Status) {
		res, err := sc.exec(ctx, set+` WHERE id=? AND tenant_id=?`, append(args, s.ID, sc.tenantID)...)
		if err != nil {
			return err
		}
		return mustAffect(res, "session")
	}
	return sc.inTx(ctx, func(tx scopeTx) error {
		var run int
		err := tx.queryRow(ctx, set+`, run_ends = run_ends + 1 WHERE id=? AND tenant_id=? AND status <> ? RETURNING run_ends`,
			append(args, s.ID, sc.tenantID, s.Status)...).Scan(&run)
		if isNoRows(err) { // the status stays: no run ends here
			res, err := tx.exec(ctx, set+` WHERE id=? AND tenant_id=?`, append(args, s.ID, sc.tenantID)...)
			if err != nil {
				return err
			}
			return mustAffect(res, "session")
		}
		if err != nil {
			return err
		}
		s.RunEnds = run
		return tx.runEnded(ctx, s)
	})
}

// runEnded writes the agent.run_ended event of s's last run end in tx.
func (t scopeTx) runEnded(ctx context.Context, s *agent.Session) error {
	return t.outboxFact(ctx, agentapi.StreamRuns, agentapi.EventRunEnded, s.ID, s.UpdatedAt, s.RunEnded())
}

// SessionCountSince counts sessions created at or after since (the daily quota).
func (db *DB) SessionCountSince(ctx context.Context, since time.Time) (int, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return 0, err
	}
	var n int
	err = sc.queryRow(ctx, `SELECT COUNT(*) FROM ~agent_sessions WHERE tenant_id = ? AND created_at >= ?`, sc.tenantID, since).Scan(&n)
	return n, err
}

// SessionCountActive counts sessions running now (the concurrency limit).
func (db *DB) SessionCountActive(ctx context.Context) (int, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return 0, err
	}
	var n int
	err = sc.queryRow(ctx, `SELECT COUNT(*) FROM ~agent_sessions WHERE tenant_id = ? AND status = 'running'`, sc.tenantID).Scan(&n)
	return n, err
}

// TaskCreate inserts t.
func (db *DB) TaskCreate(ctx context.Context, t *agent.TaskRecord) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	t.TenantID = sc.tenantID
	_, err = sc.exec(ctx, `INSERT INTO ~agent_tasks (id, tenant_id, session_id, prompt, status, created_at) VALUES (?,?,?,?,?,?)`,
		t.ID, t.TenantID, t.SessionID, t.Prompt, t.Status, t.CreatedAt)
	return err
}

// TaskFinish records how task id ended.
func (db *DB) TaskFinish(ctx context.Context, id, status string, at time.Time) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	_, err = sc.exec(ctx, `UPDATE ~agent_tasks SET status = ?, finished_at = ? WHERE id = ? AND tenant_id = ?`, status, at, id, sc.tenantID)
	return err
}

// EventAppend stores e as the next event of its session, assigning e.Seq in the same transaction that
// advances the session's last_seq, so sequence numbers are gap-free and never reused.
func (db *DB) EventAppend(ctx context.Context, e *agent.Event) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	return sc.inTx(ctx, func(tx scopeTx) error {
		if e.Seq > 0 { // numbered by the caller: keep last_seq at the highest number stored
			if _, err := tx.exec(ctx, `UPDATE ~agent_sessions SET last_seq = ? WHERE id = ? AND tenant_id = ? AND last_seq < ?`,
				e.Seq, e.SessionID, sc.tenantID, e.Seq); err != nil {
				return err
			}
		} else if err := tx.queryRow(ctx, `UPDATE ~agent_sessions SET last_seq = last_seq + 1 WHERE id = ? AND tenant_id = ? RETURNING last_seq`,
			e.SessionID, sc.tenantID).Scan(&e.Seq); err != nil {
			return notFound(err, "session")
		}
		payload, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = tx.exec(ctx, `INSERT INTO ~agent_events (session_id, seq, tenant_id, type, payload, created_at) VALUES (?,?,?,?,?,?)`,
			e.SessionID, e.Seq, sc.tenantID, string(e.Type), string(payload), e.Time)
		if isUniqueViolation(err) {
			return errs.New(errs.Conflict, "event %d of session %s is already stored", e.Seq, e.SessionID)
		}
		return err
	})
}

// EventList returns events of a session after afterSeq, in order.
func (db *DB) EventList(ctx context.Context, sessionID string, afterSeq int64, limit int) ([]agent.Event, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := sc.query(ctx, `SELECT payload FROM ~agent_events WHERE session_id = ? AND tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
		sessionID, sc.tenantID, afterSeq, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []agent.Event
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		var e agent.Event
		if err := json.Unmarshal([]byte(p), &e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// SettingGet returns a tenant setting, or "".
func (db *DB) SettingGet(ctx context.Context, key string) (string, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return "", err
	}
	var v string
	err = sc.queryRow(ctx, `SELECT value FROM ~agent_settings WHERE key = ? AND tenant_id = ?`, key, sc.tenantID).Scan(&v)
	if isNoRows(err) {
		return "", nil
	}
	return v, err
}

// SettingSet stores a tenant setting.
func (db *DB) SettingSet(ctx context.Context, key, value string) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	_, err = sc.exec(ctx, `INSERT INTO ~agent_settings (key, tenant_id, value, updated_at) VALUES (?,?,?,?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, key, sc.tenantID, value, db.Now())
	return err
}
