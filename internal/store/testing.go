package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/it0/it0/internal/audit"
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

// AuditBulkLoadForBench writes a valid chain of n synthetic entries in large transactions. Benchmarks use
// it to build a big chain quickly; the entries are exactly what AuditAppend would have written.
func (db *DB) AuditBulkLoadForBench(ctx context.Context, key []byte, n int) error {
	s, err := db.scope(ctx)
	if err != nil {
		return err
	}
	var prev []byte = []byte{}
	base := db.Now().Truncate(time.Microsecond)
	const batch = 10000
	for start := 0; start < n; start += batch {
		err := s.inTx(ctx, func(tx scopeTx) error {
			stmt, err := tx.tx.PrepareContext(ctx, s.q(`INSERT INTO ~audit_logs (seq, tenant_id, action_type, actor_type, actor_id,
				resource_type, resource_id, description, detail, ip_address, request_id, created_at, prev_hash, hash)
				VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`))
			if err != nil {
				return err
			}
			defer stmt.Close()
			for i := start; i < min(start+batch, n); i++ {
				e := &audit.Entry{Seq: int64(i + 1), TenantID: s.tenantID, ActionType: "command.executed", ActorType: "agent",
					ActorID: "session-1", ResourceType: "server", ResourceID: "web-1", Description: "df -h",
					Detail: []byte(`{"exit_code":0}`), IPAddress: "127.0.0.1", RequestID: "req", CreatedAt: base.Add(time.Duration(i) * time.Millisecond),
					PrevHash: prev}
				e.Hash = audit.Sum(key, prev, e)
				if _, err := stmt.ExecContext(ctx, e.Seq, e.TenantID, e.ActionType, e.ActorType, e.ActorID, e.ResourceType,
					e.ResourceID, e.Description, string(e.Detail), e.IPAddress, e.RequestID, e.CreatedAt, e.PrevHash, e.Hash); err != nil {
					return err
				}
				prev = e.Hash
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// OutboxFillForBench writes n outbox rows of stream with payload in the tenant in ctx, in large
// transactions. Benchmarks of the relay use it to build a backlog quickly.
func (db *DB) OutboxFillForBench(ctx context.Context, stream string, payload []byte, n int) error {
	s, err := db.scope(ctx)
	if err != nil {
		return err
	}
	at := db.Now()
	for start := 0; start < n; start += 5000 {
		err := s.inTx(ctx, func(tx scopeTx) error {
			for i := start; i < min(n, start+5000); i++ {
				if err := tx.outboxAdd(ctx, stream, payload, at); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// PoolStats is the PostgreSQL connection pool's statistics (zero on SQLite): benchmarks report how long
// requests waited for a connection.
func (db *DB) PoolStats() sql.DBStats {
	if db.dialect != Postgres {
		return sql.DBStats{}
	}
	return db.shared.Stats()
}
