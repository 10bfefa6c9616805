package sqlstmt_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/it0/it0/internal/sqlstmt"
	_ "modernc.org/sqlite"
)

// TestCache: a query is prepared once per database and reused; a nil cache runs queries unprepared; after
// Forget the database's statements are gone (closed) and a new one is prepared.
func TestCache(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+t.TempDir()+"/c.db?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range []*sqlstmt.Cache{sqlstmt.New(), nil} {
		if _, err := c.Exec(ctx, db, "CREATE TABLE IF NOT EXISTS t (x INTEGER)"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, db, "INSERT INTO t VALUES (?)", 7); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := c.QueryRow(ctx, db, "SELECT count(*) FROM t WHERE x = ?", 7).Scan(&n); err != nil || n < 1 {
			t.Fatalf("count: %d %v", n, err)
		}
		rows, err := c.Query(ctx, db, "SELECT x FROM t")
		if err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	c := sqlstmt.New()
	a, b := c.Get(ctx, db, "SELECT x FROM t"), c.Get(ctx, db, "SELECT x FROM t")
	if a == nil || a != b {
		t.Fatalf("the same query was prepared twice: %p %p", a, b)
	}
	if c.Get(ctx, db, "SELECT nonsense FROM") != nil {
		t.Error("a query that does not prepare must not be cached")
	}
	c.Forget(db)
	if _, err := a.QueryContext(ctx); err == nil {
		t.Error("a forgotten statement must be closed")
	}
	if c.Get(ctx, db, "SELECT x FROM t") == a {
		t.Error("after Forget the statement must be prepared anew")
	}
}
