package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// The embedded data holds password and API key hashes (shared.db) and every tenant's records: only the
// owner may read it. Directories are 0700 and SQLite files 0600, also when an older version or a lax umask
// created them wider. SQLite gives the -wal and -shm files the mode of their database file, so creating the
// database file 0600 first covers them; they are tightened too in case they exist from before.
const (
	privateDirMode  fs.FileMode = 0o700
	privateFileMode fs.FileMode = 0o600
)

// privateDir creates dir (and its parents) owner-only, and tightens it if it exists.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, privateDirMode); err != nil {
		return err
	}
	return os.Chmod(dir, privateDirMode)
}

// privateDBFile creates the SQLite database at path owner-only before SQLite opens it, and tightens it and
// its -wal and -shm files if they exist.
func privateDBFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, privateFileMode)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, privateFileMode); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
