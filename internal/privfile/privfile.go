// Package privfile creates IT0's embedded data owner-only. The data holds password and API key hashes
// (shared.db), every tenant's records and the job queue: directories are 0700 and SQLite files 0600, also
// when an older version or a lax umask created them wider. SQLite gives the -wal and -shm files the mode of
// their database file, so creating the database file 0600 first covers them; they are tightened too in
// case they exist from before.
package privfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Modes of private directories and files.
const (
	DirMode  fs.FileMode = 0o700
	FileMode fs.FileMode = 0o600
)

// Dir creates dir (and its parents) owner-only, and tightens it if it exists.
func Dir(dir string) error {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return err
	}
	return os.Chmod(dir, DirMode)
}

// SQLite creates the SQLite database at path owner-only before SQLite opens it, and tightens it and
// its -wal and -shm files if they exist.
func SQLite(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, FileMode)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, FileMode); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
