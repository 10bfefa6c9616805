package store

import (
	"context"
	"database/sql"
	"sync"
)

// maxStmts bounds the statement cache; queries past it run unprepared.
const maxStmts = 4096

// stmtCache keeps SQLite statements prepared per database handle: with modernc's SQLite, parsing the SQL
// of every call was a quarter of the CPU of a write-heavy load (10,000 approvals expiring at once).
// PostgreSQL's driver caches statements itself, so scopes there have no cache.
type stmtCache struct {
	mu      sync.Mutex
	m       map[stmtKey]*sql.Stmt
	warming map[stmtKey]bool
}

type stmtKey struct {
	db *sql.DB
	q  string
}

func newStmtCache() *stmtCache {
	return &stmtCache{m: map[stmtKey]*sql.Stmt{}, warming: map[stmtKey]bool{}}
}

// cached returns q's statement on db if it is prepared already. A transaction uses it: preparing a new one
// takes another connection from the pool, and transactions holding every connection while each waits for
// one more would deadlock. On a miss it prepares q in the background for the next caller.
func (c *stmtCache) cached(db *sql.DB, q string) *sql.Stmt {
	if c == nil {
		return nil
	}
	k := stmtKey{db, q}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.m[k]
	if st == nil && !c.warming[k] && len(c.m) < maxStmts {
		c.warming[k] = true
		go func() {
			c.get(context.Background(), db, q)
			c.mu.Lock()
			delete(c.warming, k)
			c.mu.Unlock()
		}()
	}
	return st
}

// get returns q prepared on db, or nil (no cache, a full cache, or a prepare error, which the caller's
// plain call then reports).
func (c *stmtCache) get(ctx context.Context, db *sql.DB, q string) *sql.Stmt {
	if c == nil {
		return nil
	}
	k := stmtKey{db, q}
	c.mu.Lock()
	st, full := c.m[k], len(c.m) >= maxStmts
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

// forget closes and drops db's statements (before db is closed).
func (c *stmtCache) forget(db *sql.DB) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, st := range c.m {
		if k.db == db {
			st.Close()
			delete(c.m, k)
		}
	}
}
