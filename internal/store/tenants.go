package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"

	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/tenant"
)

var _ auth.Store = (*DB)(nil)

const tenantCols = `id, name, slug, plan, status, max_servers, max_skills, max_users, max_sessions_per_day,
	allowed_engines, locale, created_at, updated_at`

func scanTenant(row interface{ Scan(...any) error }) (*auth.Tenant, error) {
	var t auth.Tenant
	var engines string
	err := row.Scan(&t.ID, &t.Name, &t.Slug, &t.Plan, &t.Status, &t.MaxServers, &t.MaxSkills, &t.MaxUsers,
		&t.MaxSessionsPerDay, &engines, &t.Locale, &t.CreatedAt, &t.UpdatedAt)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(engines), &t.AllowedEngines); err != nil {
		return nil, fmt.Errorf("tenant %s allowed_engines: %w", t.ID, err)
	}
	return &t, nil
}

// TenantCreate inserts t and provisions its schema or file.
func (db *DB) TenantCreate(ctx context.Context, t *auth.Tenant) error {
	engines, _ := json.Marshal(t.AllowedEngines)
	s := db.sharedScope()
	_, err := s.exec(ctx, `INSERT INTO ~tenants (`+tenantCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		t.ID, t.Name, t.Slug, t.Plan, t.Status, t.MaxServers, t.MaxSkills, t.MaxUsers, t.MaxSessionsPerDay,
		string(engines), t.Locale, t.CreatedAt, t.UpdatedAt)
	if isUniqueViolation(err) {
		return errs.Invalidf("slug", "a tenant with slug %q already exists", t.Slug).WithHint("choose another slug")
	}
	if err != nil {
		return fmt.Errorf("insert tenant: %w", err)
	}
	if err := db.MigrateTenant(ctx, t.ID); err != nil {
		return fmt.Errorf("provision tenant: %w", err)
	}
	return nil
}

// TenantGet returns tenant id, including deleted ones.
func (db *DB) TenantGet(ctx context.Context, id string) (*auth.Tenant, error) {
	t, err := scanTenant(db.sharedScope().queryRow(ctx, `SELECT `+tenantCols+` FROM ~tenants WHERE id = ?`, id))
	return t, notFound(err, "tenant")
}

// TenantList returns every tenant that is not deleted, oldest first.
func (db *DB) TenantList(ctx context.Context) ([]auth.Tenant, error) {
	rows, err := db.sharedScope().query(ctx, `SELECT `+tenantCols+` FROM ~tenants WHERE status <> 'deleted' ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	defer rows.Close()
	var out []auth.Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *t)
	}
	return out, rows.Err()
}

func (db *DB) tenantIDs(ctx context.Context) ([]string, error) {
	list, err := db.TenantList(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(list))
	for i, t := range list {
		ids[i] = t.ID
	}
	return ids, nil
}

// TenantUpdate saves t's mutable fields (name, plan, status, quotas, engines, locale).
func (db *DB) TenantUpdate(ctx context.Context, t *auth.Tenant) error {
	engines, _ := json.Marshal(t.AllowedEngines)
	res, err := db.sharedScope().exec(ctx, `UPDATE ~tenants SET name=?, plan=?, status=?, max_servers=?, max_skills=?,
		max_users=?, max_sessions_per_day=?, allowed_engines=?, locale=?, updated_at=? WHERE id=?`,
		t.Name, t.Plan, t.Status, t.MaxServers, t.MaxSkills, t.MaxUsers, t.MaxSessionsPerDay, string(engines),
		t.Locale, t.UpdatedAt, t.ID)
	if err != nil {
		return fmt.Errorf("update tenant: %w", err)
	}
	return mustAffect(res, "tenant")
}

// TenantDrop removes tenant id's data for good: its schema or file, its users and API keys. The tenants row
// stays, marked deleted, with its slug released, so the platform audit chain still names it.
func (db *DB) TenantDrop(ctx context.Context, id string) error {
	if !tenant.ValidID(id) {
		return errs.New(errs.NotFound, "tenant not found")
	}
	s := db.sharedScope()
	err := s.inTx(ctx, func(tx scopeTx) error {
		if _, err := tx.exec(ctx, `DELETE FROM ~api_keys WHERE tenant_id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM ~users WHERE tenant_id = ?`, id); err != nil {
			return err
		}
		res, err := tx.exec(ctx, `UPDATE ~tenants SET status = 'deleted', slug = slug || '~deleted~' || id, updated_at = ? WHERE id = ?`, db.Now(), id)
		if err != nil {
			return err
		}
		return mustAffect(res, "tenant")
	})
	if err != nil {
		return fmt.Errorf("drop tenant: %w", err)
	}
	if db.dialect == Postgres {
		if _, err := db.shared.ExecContext(ctx, `DROP SCHEMA IF EXISTS "`+db.tenantSchema(id)+`" CASCADE`); err != nil {
			return fmt.Errorf("drop tenant schema: %w", err)
		}
		return nil
	}
	db.mu.Lock()
	db.auditHeads.Delete(id)
	if t, ok := db.tenants[id]; ok {
		db.stmts.Forget(t)
		t.Close()
		delete(db.tenants, id)
	}
	db.mu.Unlock()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(db.tenantPath(id) + suffix); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("drop tenant file: %w", err)
		}
	}
	return nil
}

func mustAffect(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return errs.New(errs.NotFound, "%s not found", what)
	}
	return nil
}
