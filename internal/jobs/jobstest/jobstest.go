// Package jobstest opens throwaway job databases and provides a fake clock, for tests of package jobs and
// of the modules that schedule jobs.
package jobstest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/it0/it0/internal/jobs"
	"github.com/it0/it0/internal/store/storetest"
)

// PostgresURL is the test database (storetest.PostgresURL).
func PostgresURL() string { return storetest.PostgresURL() }

// RequirePostgres skips the test when PostgreSQL is unreachable, except under CI=true, where a missing
// database is a failure (storetest.RequirePostgres).
func RequirePostgres(tb testing.TB) { tb.Helper(); storetest.RequirePostgres(tb) }

// Backends lists every backend a jobs test should run on.
func Backends() []jobs.Dialect { return []jobs.Dialect{jobs.SQLite, jobs.Postgres} }

// DB is a database for one test: a SQLite file under tb.TempDir(), or a schema of its own on the test
// PostgreSQL (PostgresURL), dropped when the test ends.
type DB struct {
	Dialect jobs.Dialect
	Schema  string // PostgreSQL only
	path    string // SQLite only
}

// Open returns a fresh database on backend. A PostgreSQL test is skipped when the server is unreachable,
// except under CI=true (RequirePostgres).
func Open(tb testing.TB, backend jobs.Dialect) *DB {
	tb.Helper()
	switch backend {
	case jobs.SQLite:
		return &DB{Dialect: jobs.SQLite, path: filepath.Join(tb.TempDir(), "jobs.db")}
	case jobs.Postgres:
		RequirePostgres(tb)
		b := make([]byte, 6)
		rand.Read(b)
		d := &DB{Dialect: jobs.Postgres, Schema: "it0test_jobs_" + hex.EncodeToString(b)}
		tb.Cleanup(func() {
			conn, err := sql.Open("pgx", PostgresURL())
			if err != nil {
				tb.Errorf("drop schema %s: %v", d.Schema, err)
				return
			}
			defer conn.Close()
			if _, err := conn.Exec(`DROP SCHEMA IF EXISTS "` + d.Schema + `" CASCADE`); err != nil {
				tb.Errorf("drop schema %s: %v", d.Schema, err)
			}
		})
		return d
	}
	tb.Fatalf("jobstest: unknown backend %q", backend)
	return nil
}

// Config returns a runner config on a new connection pool to the database, closed when the test ends.
// Calling it again after closing the previous pool simulates a process restart.
func (d *DB) Config(tb testing.TB) jobs.Config {
	tb.Helper()
	var (
		db  *sql.DB
		err error
	)
	if d.Dialect == jobs.SQLite {
		db, err = jobs.OpenSQLite(d.path)
	} else {
		db, err = sql.Open("pgx", PostgresURL())
		if err == nil {
			db.SetMaxOpenConns(8)
		}
	}
	if err != nil {
		tb.Fatalf("open jobs db: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return jobs.Config{DB: db, Dialect: d.Dialect, Schema: d.Schema}
}

// New returns a runner on cfg, stopped when the test ends.
func New(tb testing.TB, cfg jobs.Config) *jobs.Runner {
	tb.Helper()
	r, err := jobs.New(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("new jobs runner: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			tb.Errorf("stop jobs runner: %v", err)
		}
	})
	return r
}

// Clock is a fake clock for Config.Now, safe for concurrent use. It stands still unless Run makes it
// follow the wall clock.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	running bool
	offset  time.Duration // while running: Now is the wall clock plus offset
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return time.Now().Add(c.offset).UTC()
	}
	return c.now
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		c.offset = time.Until(t)
		return
	}
	c.now = t
}

// Advance moves the clock forward by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		c.offset += d
		return time.Now().Add(c.offset).UTC()
	}
	c.now = c.now.Add(d)
	return c.now
}

// Run makes the clock follow the wall clock from its current time on: benchmarks that measure against
// the wall clock (a delay from a write's time stamp to its delivery) run the app on it.
func (c *Clock) Run() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset, c.running = time.Until(c.now), true
}
