package main

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"sync"

	_ "modernc.org/sqlite"
)

// syncWriter guards a buffer written by a server goroutine and read by the test.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tamperPlatform edits the first platform audit row the way someone with file access would.
func tamperPlatform(dir string) error {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "shared.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	for _, q := range []string{"DROP TRIGGER audit_logs_no_update", "UPDATE audit_logs SET description = 'nothing to see' WHERE id = 1"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}
