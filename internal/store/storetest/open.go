// Package storetest is the store contract suite, run against every backend, plus helpers that open a
// throw-away store for tests in other packages.
package storetest

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/it0/it0/internal/store"
)

// PostgresURL is the test database: IT0_TEST_DATABASE_URL, or the local trust-auth server.
func PostgresURL() string {
	return cmp.Or(os.Getenv("IT0_TEST_DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
}

// OpenSQLite returns a store on SQLite files under t.TempDir(), closed when the test ends.
func OpenSQLite(tb testing.TB) *store.DB {
	tb.Helper()
	db, err := store.Open(context.Background(), store.Config{DataDir: tb.TempDir()})
	if err != nil {
		tb.Fatalf("open sqlite store: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// RequirePostgres skips the test when PostgreSQL is unreachable, except under CI=true, where a missing
// database is a failure: CI must never pass by skipping the backend it is meant to check.
func RequirePostgres(tb testing.TB) {
	tb.Helper()
	conn, err := sql.Open("pgx", PostgresURL())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = conn.PingContext(ctx)
		cancel()
		conn.Close()
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL is required under CI=true: %v", err)
		}
		tb.Skipf("PostgreSQL unreachable at %s: %v", PostgresURL(), err)
	}
}

// OpenPostgres returns a store on the test PostgreSQL in schemas of its own (a random prefix), dropped
// when the test ends.
func OpenPostgres(tb testing.TB) *store.DB {
	tb.Helper()
	return OpenPostgresPool(tb, 8)
}

// OpenPostgresPool is OpenPostgres with a pool of maxConns connections (0: the production default), for
// benchmarks that measure what a deployment would see.
func OpenPostgresPool(tb testing.TB, maxConns int) *store.DB {
	tb.Helper()
	RequirePostgres(tb)
	b := make([]byte, 6)
	rand.Read(b)
	prefix := "it0test_" + hex.EncodeToString(b)
	db, err := store.Open(context.Background(), store.Config{DatabaseURL: PostgresURL(), SchemaPrefix: prefix, MaxOpenConns: maxConns})
	if err != nil {
		tb.Fatalf("open postgres store: %v", err)
	}
	tb.Cleanup(func() {
		db.Close()
		dropSchemas(tb, prefix)
	})
	return db
}

func dropSchemas(tb testing.TB, prefix string) {
	conn, err := sql.Open("pgx", PostgresURL())
	if err != nil {
		tb.Errorf("drop test schemas: %v", err)
		return
	}
	defer conn.Close()
	rows, err := conn.Query(`SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`, prefix+"%")
	if err != nil {
		tb.Errorf("drop test schemas: %v", err)
		return
	}
	var names []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	rows.Close()
	for _, n := range names {
		if _, err := conn.Exec(`DROP SCHEMA "` + n + `" CASCADE`); err != nil {
			tb.Errorf("drop schema %s: %v", n, err)
		}
	}
}

// Backend names a backend and how to open a fresh store on it.
type Backend struct {
	Name string
	Open func(testing.TB) *store.DB
}

// Backends lists every backend, for tests that must hold on each.
func Backends() []Backend {
	return []Backend{{"sqlite", OpenSQLite}, {"postgres", OpenPostgres}}
}
