package skill

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// ReadDir reads every <root>/<name>/SKILL.md. A skill that fails to read or parse is reported in the
// error list (wrapped with its path) and does not stop the others; skills come back sorted by name. A
// root that does not exist holds no skills and is not an error.
//
// Reads go through os.Root, so a symbolic link cannot lead outside root.
func ReadDir(root string) ([]*Skill, []error) {
	r, err := os.OpenRoot(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []error{fmt.Errorf("open skills dir: %w", err)}
	}
	defer r.Close()
	return ReadFS(r.FS())
}

// ReadFS is ReadDir over any file system, such as the embedded shipped skills (skills.FS). Entries whose
// name starts with "." are skipped.
func ReadFS(fsys fs.FS) ([]*Skill, []error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, []error{fmt.Errorf("list skills: %w", err)}
	}
	var skills []*Skill
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !e.IsDir() {
			continue
		}
		p := path.Join(name, FileName)
		s, err := readOne(fsys, name, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			continue
		}
		skills = append(skills, s)
	}
	slices.SortFunc(skills, func(a, b *Skill) int { return strings.Compare(a.Name, b.Name) })
	return skills, errs
}

func readOne(fsys fs.FS, dir, p string) (*Skill, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, err
	}
	return Parse(dir, data)
}

// WriteDir validates s and writes it to <root>/<s.Name>/SKILL.md, creating root and the skill directory
// as needed. The file is replaced atomically (written aside, then renamed), so a concurrent ReadDir sees
// the old or the new skill, never half of one. Other files in the skill directory are left alone.
func WriteDir(root string, s *Skill) error {
	if err := ValidName(s.Name); err != nil {
		return fmt.Errorf("write skill: %w: name %v", ErrInvalidName, err)
	}
	if err := s.Validate(""); err != nil {
		return fmt.Errorf("write skill %s: %w", s.Name, err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("write skill %s: %w", s.Name, err)
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return fmt.Errorf("write skill %s: %w", s.Name, err)
	}
	defer r.Close()
	if err := r.Mkdir(s.Name, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("write skill %s: %w", s.Name, err)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join(s.Name, "."+FileName+"."+hex.EncodeToString(rnd[:])+".tmp")
	if err := r.WriteFile(tmp, s.Marshal(), 0o644); err != nil {
		return fmt.Errorf("write skill %s: %w", s.Name, err)
	}
	if err := r.Rename(tmp, path.Join(s.Name, FileName)); err != nil {
		_ = r.Remove(tmp)
		return fmt.Errorf("write skill %s: %w", s.Name, err)
	}
	return nil
}

// RemoveDir deletes <root>/<name> and everything in it. name must be a valid skill name, which also
// keeps it a single path element inside root. Removing a skill that is not there is not an error.
func RemoveDir(root, name string) error {
	if err := ValidName(name); err != nil {
		return fmt.Errorf("remove skill: %w: name %v", ErrInvalidName, err)
	}
	r, err := os.OpenRoot(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove skill %s: %w", name, err)
	}
	defer r.Close()
	if err := r.RemoveAll(name); err != nil {
		return fmt.Errorf("remove skill %s: %w", name, err)
	}
	return nil
}
