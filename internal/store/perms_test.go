package store_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/store/storetest"
)

// TestDataDirIsPrivate: the embedded data (password and key hashes, every tenant's records) is readable by
// its owner only, whatever the umask, and an existing install with wider modes is tightened on open.
func TestDataDirIsPrivate(t *testing.T) {
	old := syscall.Umask(0o022) // the usual umask, under which SQLite alone would create 0644 files
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(filepath.Join(dir, "tenants"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "shared.db-wal"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(context.Background(), store.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tn := storetest.NewTenant(t, db, "perms")
	storetest.NewUser(t, db, tn, "perm@example.com", "admin") // writes to shared.db: its WAL exists now
	var seen int
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", path, got, want)
		}
		seen++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"shared.db", "shared.db-wal", "shared.db-shm", filepath.Join("tenants", tn.ID+".db"),
		filepath.Join("tenants", tn.ID+".db-wal")} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("expected %s to exist (the test checks its mode): %v", f, err)
		}
	}
}
