package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/it0/it0/internal/ops"
)

var _ ops.Store = (*DB)(nil)

const opsTaskCols = `id, tenant_id, type, title, description, status, priority, target_server_ids, session_id, runbook_id,
	result_summary, created_by, created_at, updated_at, finished_at, resolution`

func scanOpsTask(row interface{ Scan(...any) error }) (*ops.Task, error) {
	var t ops.Task
	var servers string
	if err := row.Scan(&t.ID, &t.TenantID, &t.Type, &t.Title, &t.Description, &t.Status, &t.Priority, &servers, &t.SessionID,
		&t.RunbookID, &t.ResultSummary, &t.CreatedBy, &t.CreatedAt, &t.UpdatedAt, &t.FinishedAt, &t.Resolution); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(servers), &t.TargetServers); err != nil {
		return nil, fmt.Errorf("ops task %s servers: %w", t.ID, err)
	}
	return &t, nil
}

// OpsTaskCreate inserts t.
func (db *DB) OpsTaskCreate(ctx context.Context, t *ops.Task) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	servers, _ := json.Marshal(t.TargetServers)
	_, err = sc.exec(ctx, `INSERT INTO ~ops_tasks (`+opsTaskCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`, t.ID, sc.tenantID, t.Type,
		t.Title, t.Description, t.Status, t.Priority, string(servers), t.SessionID, t.RunbookID, t.ResultSummary, t.CreatedBy,
		t.CreatedAt, t.UpdatedAt, t.FinishedAt, t.Resolution)
	return err
}

// OpsTaskGet returns ops task id.
func (db *DB) OpsTaskGet(ctx context.Context, id string) (*ops.Task, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	t, err := scanOpsTask(sc.queryRow(ctx, `SELECT `+opsTaskCols+` FROM ~ops_tasks WHERE id = ? AND tenant_id = ?`, id, sc.tenantID))
	return t, notFound(err, "ops task")
}

// OpsTaskList returns recent ops tasks, newest first.
func (db *DB) OpsTaskList(ctx context.Context, status, typ string, limit int) ([]ops.Task, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := sc.query(ctx, `SELECT `+opsTaskCols+` FROM ~ops_tasks WHERE tenant_id = ? AND (? = '' OR status = ?) AND (? = '' OR type = ?)
		ORDER BY created_at DESC, id LIMIT ?`, sc.tenantID, status, status, typ, typ, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ops.Task
	for rows.Next() {
		t, err := scanOpsTask(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *t)
	}
	return out, rows.Err()
}

// OpsTaskUpdate saves t's status and result.
func (db *DB) OpsTaskUpdate(ctx context.Context, t *ops.Task) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	res, err := sc.exec(ctx, `UPDATE ~ops_tasks SET status = ?, result_summary = ?, updated_at = ?, finished_at = ?, resolution = ?
		WHERE id = ? AND tenant_id = ?`, t.Status, t.ResultSummary, t.UpdatedAt, t.FinishedAt, t.Resolution, t.ID, sc.tenantID)
	if err != nil {
		return err
	}
	return mustAffect(res, "ops task")
}

const runbookCols = `id, tenant_id, name, description, prompt_template, allowed_tools, max_risk_level, auto_approve, trigger_type,
	enabled, source, created_at, updated_at`

func scanRunbook(row interface{ Scan(...any) error }) (*ops.Runbook, error) {
	var r ops.Runbook
	var tools string
	if err := row.Scan(&r.ID, &r.TenantID, &r.Name, &r.Description, &r.PromptTemplate, &tools, &r.MaxRiskLevel, &r.AutoApprove,
		&r.TriggerType, &r.Enabled, &r.Source, &r.CreatedAt, &r.UpdatedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(tools), &r.AllowedTools); err != nil {
		return nil, fmt.Errorf("runbook %s tools: %w", r.ID, err)
	}
	return &r, nil
}

// RunbookPut inserts or replaces runbook r.
func (db *DB) RunbookPut(ctx context.Context, r *ops.Runbook) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	tools, _ := json.Marshal(r.AllowedTools)
	_, err = sc.exec(ctx, `INSERT INTO ~runbooks (`+runbookCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description, prompt_template = excluded.prompt_template,
		allowed_tools = excluded.allowed_tools, max_risk_level = excluded.max_risk_level, auto_approve = excluded.auto_approve,
		trigger_type = excluded.trigger_type, enabled = excluded.enabled, updated_at = excluded.updated_at`,
		r.ID, sc.tenantID, r.Name, r.Description, r.PromptTemplate, string(tools), r.MaxRiskLevel, r.AutoApprove, r.TriggerType,
		r.Enabled, r.Source, r.CreatedAt, r.UpdatedAt)
	if isUniqueViolation(err) {
		return nameConflict("runbook", r.Name)
	}
	return err
}

// RunbookGet returns a runbook by id or name.
func (db *DB) RunbookGet(ctx context.Context, id string) (*ops.Runbook, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	r, err := scanRunbook(sc.queryRow(ctx, `SELECT `+runbookCols+` FROM ~runbooks WHERE (id = ? OR name = ?) AND tenant_id = ?`, id, id, sc.tenantID))
	return r, notFound(err, "runbook")
}

// RunbookList lists runbooks by name.
func (db *DB) RunbookList(ctx context.Context) ([]ops.Runbook, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := sc.query(ctx, `SELECT `+runbookCols+` FROM ~runbooks WHERE tenant_id = ? ORDER BY name`, sc.tenantID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ops.Runbook
	for rows.Next() {
		r, err := scanRunbook(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, rows.Err()
}

// RunbookDelete removes runbook id.
func (db *DB) RunbookDelete(ctx context.Context, id string) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	res, err := sc.exec(ctx, `DELETE FROM ~runbooks WHERE id = ? AND tenant_id = ?`, id, sc.tenantID)
	if err != nil {
		return err
	}
	return mustAffect(res, "runbook")
}
