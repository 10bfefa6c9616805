// Package sqlstmt keeps SQL statements prepared per database handle.
package sqlstmt

import (
	"context"
	"database/sql"
	"sync"
)

// MaxStmts bounds the statement cache; queries past it run unprepared.
const MaxStmts = 4096

// Cache keeps statements prepared per database handle. With modernc's SQLite, parsing the SQL of every
// call was a quarter of the CPU of a write-heavy load (10,000 approvals expiring at once); PostgreSQL's
// driver caches statements itself, so callers use a Cache on SQLite only. A nil *Cache caches nothing.
type Cache struct {
	mu sync.Mutex
	m  map[stmtKey]*sql.Stmt
}

type stmtKey struct {
	db *sql.DB
	q  string
}

// New returns an empty cache.
func New() *Cache {
	return &Cache{m: map[stmtKey]*sql.Stmt{}}
}

// Get returns q prepared on db, or nil (no cache, a full cache, or a prepare error, which the caller's
// plain call then reports).
func (c *Cache) Get(ctx context.Context, db *sql.DB, q string) *sql.Stmt {
	if c == nil {
		return nil
	}
	k := stmtKey{db, q}
	c.mu.Lock()
	st, full := c.m[k], len(c.m) >= MaxStmts
	c.mu.Unlock()
	if st != nil || full {
		return st
	}
	st, err := db.PrepareContext(ctx, q)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[k]; old != nil {
		st.Close()
		return old
	}
	c.m[k] = st
	return st
}

// Forget closes and drops db's statements (before db is closed).
func (c *Cache) Forget(db *sql.DB) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, st := range c.m {
		if k.db == db {
			st.Close()
			delete(c.m, k)
		}
	}
}

// Exec runs q on db, prepared from the cache when it can be.
func (c *Cache) Exec(ctx context.Context, db *sql.DB, q string, args ...any) (sql.Result, error) {
	if st := c.Get(ctx, db, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return db.ExecContext(ctx, q, args...)
}

// Query runs q on db, prepared from the cache when it can be.
func (c *Cache) Query(ctx context.Context, db *sql.DB, q string, args ...any) (*sql.Rows, error) {
	if st := c.Get(ctx, db, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return db.QueryContext(ctx, q, args...)
}

// QueryRow runs q on db, prepared from the cache when it can be.
func (c *Cache) QueryRow(ctx context.Context, db *sql.DB, q string, args ...any) *sql.Row {
	if st := c.Get(ctx, db, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return db.QueryRowContext(ctx, q, args...)
}
