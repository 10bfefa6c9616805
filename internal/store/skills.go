package store

import (
	"context"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/errs"
)

var _ agent.SkillStore = (*DB)(nil)

const skillCols = `name, description, content, source, enabled, created_at, updated_at`

func scanSkill(row interface{ Scan(...any) error }) (*agent.SkillRecord, error) {
	var s agent.SkillRecord
	if err := row.Scan(&s.Name, &s.Description, &s.Content, &s.Source, &s.Enabled, &s.CreatedAt, &s.UpdatedAt); err != nil {
		return nil, err
	}
	return &s, nil
}

// SkillList returns the tenant's skills by name.
func (db *DB) SkillList(ctx context.Context) ([]agent.SkillRecord, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := sc.query(ctx, `SELECT `+skillCols+` FROM ~skills WHERE tenant_id = ? ORDER BY name`, sc.tenantID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []agent.SkillRecord
	for rows.Next() {
		s, err := scanSkill(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *s)
	}
	return out, rows.Err()
}

// SkillGet returns skill name.
func (db *DB) SkillGet(ctx context.Context, name string) (*agent.SkillRecord, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	s, err := scanSkill(sc.queryRow(ctx, `SELECT `+skillCols+` FROM ~skills WHERE name = ? AND tenant_id = ?`, name, sc.tenantID))
	return s, notFound(err, "skill")
}

// SkillPut inserts or replaces skill s, refusing a new one beyond maxSkills.
func (db *DB) SkillPut(ctx context.Context, s *agent.SkillRecord, maxSkills int) (bool, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return false, err
	}
	created := false
	err = sc.inTx(ctx, func(tx scopeTx) error {
		var n int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM ~skills WHERE name = ? AND tenant_id = ?`, s.Name, sc.tenantID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			_, err := tx.exec(ctx, `UPDATE ~skills SET description = ?, content = ?, source = ?, enabled = ?, updated_at = ? WHERE name = ? AND tenant_id = ?`,
				s.Description, s.Content, s.Source, s.Enabled, s.UpdatedAt, s.Name, sc.tenantID)
			return err
		}
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM ~skills WHERE tenant_id = ?`, sc.tenantID).Scan(&n); err != nil {
			return err
		}
		if n >= maxSkills {
			return errs.New(errs.QuotaExceeded, "quota max_skills reached (%d of %d)", n, maxSkills).
				WithHint("delete a skill or move the tenant to a larger plan")
		}
		created = true
		_, err := tx.exec(ctx, `INSERT INTO ~skills (tenant_id, `+skillCols+`) VALUES (?,?,?,?,?,?,?,?)`, sc.tenantID,
			s.Name, s.Description, s.Content, s.Source, s.Enabled, s.CreatedAt, s.UpdatedAt)
		return err
	})
	return created, err
}

// SkillDelete removes skill name.
func (db *DB) SkillDelete(ctx context.Context, name string) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	res, err := sc.exec(ctx, `DELETE FROM ~skills WHERE name = ? AND tenant_id = ?`, name, sc.tenantID)
	if err != nil {
		return err
	}
	return mustAffect(res, "skill")
}

// SkillExecutionCreate records a skill run.
func (db *DB) SkillExecutionCreate(ctx context.Context, e *agent.SkillExecution) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	_, err = sc.exec(ctx, `INSERT INTO ~skill_executions (id, tenant_id, skill_name, session_id, arguments, engine, created_at)
		VALUES (?,?,?,?,?,?,?)`, e.ID, sc.tenantID, e.SkillName, e.SessionID, e.Arguments, e.Engine, e.CreatedAt)
	return err
}
