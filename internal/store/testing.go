package store

import (
	"context"
	"fmt"
)

// ExecTenantForTest runs a raw statement in the tenant in ctx, with the database's own protections on.
// Tests use it to show the database refuses what the application never attempts.
func (db *DB) ExecTenantForTest(ctx context.Context, stmt string) error {
	s, err := db.scope(ctx)
	if err != nil {
		return err
	}
	if s.pg {
		return s.inTx(ctx, func(tx scopeTx) error {
			if _, err := tx.tx.ExecContext(ctx, `SET LOCAL search_path TO `+s.prefix[:len(s.prefix)-1]); err != nil {
				return err
			}
			_, err := tx.tx.ExecContext(ctx, stmt)
			return err
		})
	}
	_, err = s.db.ExecContext(ctx, stmt)
	return err
}

// TamperAuditForTest edits audit_logs the way an attacker with database access would: it lifts the
// append-only triggers, runs stmts, and puts them back.
func (db *DB) TamperAuditForTest(ctx context.Context, stmts ...string) error {
	s, err := db.scope(ctx)
	if err != nil {
		return err
	}
	if s.pg {
		return s.inTx(ctx, func(tx scopeTx) error {
			qs := append([]string{`SET LOCAL search_path TO ` + s.prefix[:len(s.prefix)-1], `ALTER TABLE audit_logs DISABLE TRIGGER USER`},
				stmts...)
			for _, q := range append(qs, `ALTER TABLE audit_logs ENABLE TRIGGER USER`) {
				if _, err := tx.tx.ExecContext(ctx, q); err != nil {
					return fmt.Errorf("%s: %w", q, err)
				}
			}
			return nil
		})
	}
	return s.inTx(ctx, func(tx scopeTx) error {
		qs := append([]string{`DROP TRIGGER audit_logs_no_update`, `DROP TRIGGER audit_logs_no_delete`}, stmts...)
		for _, q := range append(qs,
			`CREATE TRIGGER audit_logs_no_update BEFORE UPDATE ON audit_logs BEGIN SELECT RAISE(ABORT, 'audit_logs is append-only'); END`,
			`CREATE TRIGGER audit_logs_no_delete BEFORE DELETE ON audit_logs BEGIN SELECT RAISE(ABORT, 'audit_logs is append-only'); END`) {
			if _, err := tx.tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	})
}
