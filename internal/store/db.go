// Package store is IT0's persistence: one implementation of every context's Store interface over
// database/sql, running on embedded SQLite (a file per tenant) or PostgreSQL (a schema per tenant).
//
// Queries are written once, with `?` placeholders and `~` in front of table names. A scope rewrites them for
// its backend and tenant: `~servers` becomes `servers` in the tenant's own SQLite file, or
// `"it0_t_<id>".servers` on PostgreSQL, and `?` becomes `$1…` there. Every tenant table also has tenant_id,
// and every query filters on it, so a bug in scope resolution still cannot leak rows across tenants.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/privfile"
	"github.com/it0/it0/internal/sqlstmt"
	"github.com/it0/it0/internal/tenant"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver (pure Go, no cgo)
)

// Dialect names a backend.
type Dialect string

// Backends.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// ErrTenantNotProvisioned is returned when the context names a tenant whose schema or file does not exist.
var ErrTenantNotProvisioned = errs.New(errs.NotFound, "tenant not found")

// Config says where data lives.
type Config struct {
	// DataDir holds shared.db and tenants/<id>.db when DatabaseURL is empty.
	DataDir string
	// DatabaseURL, when set, is a postgres:// URL; storage then uses PostgreSQL.
	DatabaseURL string
	// SchemaPrefix names PostgreSQL schemas: <prefix>_shared and <prefix>_t_<tenant>. Default "it0".
	// Tests set their own to isolate from each other.
	SchemaPrefix string
	// MaxOpenConns bounds the PostgreSQL pool (default 20).
	MaxOpenConns int
	Logger       *slog.Logger
}

// DB is the store. Its methods are safe for concurrent use.
type DB struct {
	cfg     Config
	dialect Dialect
	shared  *sql.DB // sqlite: shared.db; postgres: the one pool
	log     *slog.Logger

	mu      sync.Mutex
	tenants map[string]*sql.DB // sqlite only: open tenant files
	stmts   *sqlstmt.Cache     // sqlite only: prepared statements of every open file
	// auditHeads holds each SQLite audit chain's last entry (chain id → *auditHead).
	auditHeads sync.Map

	stop chan struct{} // closes the checkpointer
	done chan struct{}

	// Now returns the current time; tests replace it.
	Now func() time.Time
}

// Open connects to the configured backend and migrates the shared schema.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.SchemaPrefix == "" {
		cfg.SchemaPrefix = "it0"
	}
	if cfg.MaxOpenConns == 0 {
		cfg.MaxOpenConns = 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	db := &DB{cfg: cfg, log: cfg.Logger, tenants: map[string]*sql.DB{}, stmts: sqlstmt.New(), Now: func() time.Time { return time.Now().UTC() }}
	var err error
	if cfg.DatabaseURL != "" {
		db.dialect = Postgres
		db.shared, err = sql.Open("pgx", cfg.DatabaseURL)
		if err == nil {
			db.shared.SetMaxOpenConns(cfg.MaxOpenConns)
			db.shared.SetMaxIdleConns(cfg.MaxOpenConns)
		}
	} else {
		db.dialect = SQLite
		if cfg.DataDir == "" {
			return nil, errors.New("open store: data dir is empty")
		}
		for _, dir := range []string{cfg.DataDir, filepath.Join(cfg.DataDir, "tenants")} {
			if err := privfile.Dir(dir); err != nil {
				return nil, fmt.Errorf("open store: %w", err)
			}
		}
		db.shared, err = openSQLite(filepath.Join(cfg.DataDir, "shared.db"))
	}
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := db.shared.PingContext(ctx); err != nil {
		db.shared.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := db.migrateShared(ctx); err != nil {
		db.shared.Close()
		return nil, err
	}
	db.stop, db.done = make(chan struct{}), make(chan struct{})
	if db.dialect == SQLite {
		go db.checkpointer()
	} else {
		close(db.done)
	}
	return db, nil
}

// checkpointInterval is how often the WAL is folded back into the database files.
const checkpointInterval = 2 * time.Second

// checkpointer moves SQLite's WAL checkpoints off the write path. With the default auto-checkpoint, the
// commit that crosses 1,000 WAL pages does the checkpoint (and its fsync) itself, which stalls that
// request for tens of milliseconds; here a background loop does it instead, and writers never wait.
func (db *DB) checkpointer() {
	defer close(db.done)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
		}
		db.mu.Lock()
		dbs := []*sql.DB{db.shared}
		for _, d := range db.tenants {
			dbs = append(dbs, d)
		}
		db.mu.Unlock()
		for _, d := range dbs {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			// PASSIVE never blocks readers or writers; it does what it can now and the rest next time.
			if _, err := d.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil && !errors.Is(err, sql.ErrConnDone) {
				db.log.Warn("wal checkpoint", slog.String("error", err.Error()))
			}
			cancel()
		}
	}
}

// sqliteDSN turns on what IT0 relies on: foreign keys (off by default in SQLite), WAL so readers never block
// the writer, a busy timeout instead of instant SQLITE_BUSY, and BEGIN IMMEDIATE so a transaction that will
// write takes the write lock up front rather than failing when it upgrades from a read. Automatic
// checkpoints are off: the checkpointer does them in the background (see checkpointer).
func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
		"&_pragma=synchronous(NORMAL)&_pragma=wal_autocheckpoint(0)&_txlock=immediate&_time_format=sqlite"
}

func openSQLite(path string) (*sql.DB, error) {
	if err := privfile.SQLite(path); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", sqliteDSN(path))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

// Dialect reports the backend in use.
func (db *DB) Dialect() Dialect { return db.dialect }

// Close stops the checkpointer and closes every connection.
func (db *DB) Close() error {
	select {
	case <-db.stop:
	default:
		close(db.stop)
	}
	<-db.done
	db.mu.Lock()
	defer db.mu.Unlock()
	var list []error
	for id, t := range db.tenants {
		db.stmts.Forget(t)
		list = append(list, t.Close())
		delete(db.tenants, id)
	}
	db.stmts.Forget(db.shared)
	list = append(list, db.shared.Close())
	return errors.Join(list...)
}

// Ping checks the shared database answers.
func (db *DB) Ping(ctx context.Context) error { return db.shared.PingContext(ctx) }

func (db *DB) sharedSchema() string { return db.cfg.SchemaPrefix + "_shared" }

func (db *DB) tenantSchema(id string) string {
	return db.cfg.SchemaPrefix + "_t_" + strings.ReplaceAll(id, "-", "_")
}

// scope is where one tenant's (or the shared) tables live, plus the query rewriting for it.
type scope struct {
	db       *sql.DB
	stmts    *sqlstmt.Cache // nil on postgres
	prefix   string         // `"schema".` on postgres, "" on sqlite
	pg       bool
	tenantID string
}

// q rewrites a query written with `?` and `~table` for this scope (see sqlstmt.Rewriter).
func (s scope) q(query string) string {
	return sqlstmt.Rewriter{Prefix: s.prefix, Dollar: s.pg}.Rewrite(query)
}

func (s scope) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.stmts.Exec(ctx, s.db, s.q(query), args...)
}

func (s scope) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.stmts.Query(ctx, s.db, s.q(query), args...)
}

func (s scope) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return s.stmts.QueryRow(ctx, s.db, s.q(query), args...)
}

// sharedScope is the shared schema (tenants, users, API keys, the platform audit chain).
func (db *DB) sharedScope() scope {
	if db.dialect == Postgres {
		return scope{db: db.shared, prefix: `"` + db.sharedSchema() + `".`, pg: true}
	}
	return scope{db: db.shared, stmts: db.stmts}
}

// scope resolves the tenant in ctx. A context without a tenant is an error; tenant.Platform selects the
// shared schema (only the platform audit chain lives there under that name).
func (db *DB) scope(ctx context.Context) (scope, error) {
	id, err := tenant.ID(ctx)
	if err != nil {
		return scope{}, err
	}
	if id == tenant.Platform {
		s := db.sharedScope()
		s.tenantID = tenant.Platform
		return s, nil
	}
	if !tenant.ValidID(id) {
		return scope{}, ErrTenantNotProvisioned
	}
	if db.dialect == Postgres {
		return scope{db: db.shared, prefix: `"` + db.tenantSchema(id) + `".`, pg: true, tenantID: id}, nil
	}
	t, err := db.tenantDB(id, false)
	if err != nil {
		return scope{}, err
	}
	return scope{db: t, stmts: db.stmts, tenantID: id}, nil
}

func (db *DB) tenantPath(id string) string {
	return filepath.Join(db.cfg.DataDir, "tenants", id+".db")
}

// tenantDB returns the open SQLite database of tenant id, opening it on first use. Unless create is set, a
// tenant whose file does not exist is ErrTenantNotProvisioned (opening would silently create an empty file).
func (db *DB) tenantDB(id string, create bool) (*sql.DB, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if t, ok := db.tenants[id]; ok {
		return t, nil
	}
	path := db.tenantPath(id)
	if !create {
		if _, err := os.Stat(path); err != nil {
			return nil, ErrTenantNotProvisioned
		}
	}
	t, err := openSQLite(path)
	if err != nil {
		return nil, fmt.Errorf("open tenant db: %w", err)
	}
	db.tenants[id] = t
	return t, nil
}

// inTx runs fn in a transaction on s, committing when it returns nil. A transaction SQLite refuses as busy
// is run again (fn must not have effects outside the transaction).
func (s scope) inTx(ctx context.Context, fn func(tx scopeTx) error) error {
	var err error
	for attempt := range 4 {
		if err = s.tryTx(ctx, fn); !isBusy(err) || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
	return err
}

func (s scope) tryTx(ctx context.Context, fn func(tx scopeTx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(scopeTx{tx: tx, s: s}); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// scopeTx is a transaction with the scope's query rewriting. Its statements are not taken from the
// statement cache: with cached statements in transactions, SQLite now and then refused one as busy under load.
type scopeTx struct {
	tx *sql.Tx
	s  scope
}

func (t scopeTx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.s.q(query), args...)
}

func (t scopeTx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.s.q(query), args...)
}

func (t scopeTx) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.s.q(query), args...)
}

// notFound maps sql.ErrNoRows to an application not-found error naming what was looked up.
func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return errs.New(errs.NotFound, "%s not found", what)
	}
	return err
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
