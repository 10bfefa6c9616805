package jobs

import (
	"context"
	"fmt"
	"strings"

	"github.com/it0/it0/internal/sqlstmt"
)

// Times are stored as Unix microseconds in BIGINT columns on both backends: one representation, compared
// with plain integer operators, and never the database's clock (only Config.Now decides what is due).
const sqliteSchema = `
CREATE TABLE IF NOT EXISTS jobs (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	kind         TEXT    NOT NULL,
	args         TEXT    NOT NULL DEFAULT '',
	tenant_id    TEXT    NOT NULL DEFAULT '',
	unique_key   TEXT,
	state        TEXT    NOT NULL,
	run_at       INTEGER NOT NULL,
	attempt      INTEGER NOT NULL DEFAULT 0,
	max_attempts INTEGER NOT NULL,
	last_error   TEXT    NOT NULL DEFAULT '',
	locked_by    TEXT    NOT NULL DEFAULT '',
	locked_until INTEGER NOT NULL DEFAULT 0,
	created_at   INTEGER NOT NULL,
	finished_at  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (run_at, id) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (locked_until) WHERE state = 'running';
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (finished_at) WHERE state IN ('done', 'failed', 'cancelled');
CREATE UNIQUE INDEX IF NOT EXISTS jobs_unique ON jobs (tenant_id, unique_key)
	WHERE unique_key IS NOT NULL AND state IN ('pending', 'running');
`

const postgresSchema = `
CREATE SCHEMA IF NOT EXISTS "{schema}";
CREATE TABLE IF NOT EXISTS "{schema}".jobs (
	id           BIGSERIAL PRIMARY KEY,
	kind         TEXT    NOT NULL,
	args         TEXT    NOT NULL DEFAULT '',
	tenant_id    TEXT    NOT NULL DEFAULT '',
	unique_key   TEXT,
	state        TEXT    NOT NULL,
	run_at       BIGINT  NOT NULL,
	attempt      INTEGER NOT NULL DEFAULT 0,
	max_attempts INTEGER NOT NULL,
	last_error   TEXT    NOT NULL DEFAULT '',
	locked_by    TEXT    NOT NULL DEFAULT '',
	locked_until BIGINT  NOT NULL DEFAULT 0,
	created_at   BIGINT  NOT NULL,
	finished_at  BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_due ON "{schema}".jobs (run_at, id) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS jobs_lease ON "{schema}".jobs (locked_until) WHERE state = 'running';
CREATE INDEX IF NOT EXISTS jobs_finished ON "{schema}".jobs (finished_at) WHERE state IN ('done', 'failed', 'cancelled');
CREATE UNIQUE INDEX IF NOT EXISTS jobs_unique ON "{schema}".jobs (tenant_id, unique_key)
	WHERE unique_key IS NOT NULL AND state IN ('pending', 'running');
`

// migrate creates the table and indexes if they are missing. On PostgreSQL several replicas may start
// together, and concurrent CREATE … IF NOT EXISTS can still collide in the catalog, so the statements run
// in one transaction under an advisory lock.
// TODO(jobs owner): add a schema version row before the first incompatible change to the table.
func (r *Runner) migrate(ctx context.Context) error {
	if r.cfg.Dialect == SQLite {
		if _, err := r.db.ExecContext(ctx, sqliteSchema); err != nil {
			return fmt.Errorf("migrate jobs: %w", err)
		}
		return nil
	}
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate jobs: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('it0.jobs.migrate'))`); err != nil {
		return fmt.Errorf("migrate jobs: %w", err)
	}
	for stmt := range strings.SplitSeq(strings.ReplaceAll(postgresSchema, "{schema}", r.cfg.Schema), ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("migrate jobs: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate jobs: %w", err)
	}
	return nil
}

// rewrite turns a query written for SQLite (`?` placeholders, table `jobs`) into the runner's dialect:
// on PostgreSQL, `$1…` placeholders and the schema-qualified table (see sqlstmt.Rewriter).
func rewrite(d Dialect, schema, q string) string {
	if d != Postgres {
		return q
	}
	return sqlstmt.Rewriter{Prefix: `"` + schema + `".`, Tables: []string{"jobs"}, Dollar: true}.Rewrite(q)
}
