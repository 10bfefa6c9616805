package skill

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadDir(t *testing.T) {
	t.Parallel()

	// Ensure good skills are read, sorted, and each bad one is reported without stopping the rest.
	t.Run("GoodAndBad", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		mustWrite(t, filepath.Join(root, "zeta", FileName), "---\nname: zeta\ndescription: z\n---\nZ\n")
		mustWrite(t, filepath.Join(root, "alpha", FileName), "---\nname: alpha\ndescription: a\n---\nA\n")
		mustWrite(t, filepath.Join(root, "wrong-name", FileName), "---\nname: other\ndescription: w\n---\n")
		mustWrite(t, filepath.Join(root, "broken", FileName), "no frontmatter\n")
		if err := os.Mkdir(filepath.Join(root, "empty"), 0o755); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, filepath.Join(root, ".hidden", FileName), "junk")
		mustWrite(t, filepath.Join(root, "README.md"), "not a skill")

		skills, errs := ReadDir(root)
		var names []string
		for _, s := range skills {
			names = append(names, s.Name)
		}
		if want := []string{"alpha", "zeta"}; !reflect.DeepEqual(names, want) {
			t.Errorf("names = %v, want %v", names, want)
		}
		if len(errs) != 3 {
			t.Fatalf("errs = %v, want 3 (wrong-name, broken, empty)", errs)
		}
		joined := errors.Join(errs...).Error()
		for _, want := range []string{"wrong-name/SKILL.md", "broken/SKILL.md", "empty/SKILL.md"} {
			if !strings.Contains(joined, want) {
				t.Errorf("errors lack %q:\n%s", want, joined)
			}
		}
		if !errors.Is(errors.Join(errs...), ErrInvalidName) || !errors.Is(errors.Join(errs...), ErrNoFrontmatter) {
			t.Errorf("errors lose their sentinels: %v", joined)
		}
	})

	// Ensure a missing root means no skills and no error.
	t.Run("MissingRoot", func(t *testing.T) {
		t.Parallel()
		skills, errs := ReadDir(filepath.Join(t.TempDir(), "nope"))
		if len(skills) != 0 || len(errs) != 0 {
			t.Fatalf("got %v, %v", skills, errs)
		}
	})

	// Ensure a symlinked SKILL.md pointing outside root is not read.
	t.Run("SymlinkEscape", func(t *testing.T) {
		t.Parallel()
		base := t.TempDir()
		root := filepath.Join(base, "skills")
		mustWrite(t, filepath.Join(base, "secret", FileName), "---\nname: evil\ndescription: leaked\n---\n")
		if err := os.MkdirAll(filepath.Join(root, "evil"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(base, "secret", FileName), filepath.Join(root, "evil", FileName)); err != nil {
			t.Skip("symlinks unsupported:", err)
		}
		if err := os.Symlink(filepath.Join(base, "secret"), filepath.Join(root, "linked")); err != nil {
			t.Fatal(err)
		}
		skills, errs := ReadDir(root)
		if len(skills) != 0 {
			t.Fatalf("read %d skills through a symlink out of root", len(skills))
		}
		if len(errs) == 0 {
			t.Fatal("no error for the escaping symlink")
		}
	})
}

func TestWriteDir(t *testing.T) {
	t.Parallel()

	// Ensure WriteDir creates root and the skill directory, and ReadDir gives the same skill back.
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		root := filepath.Join(t.TempDir(), "tenant", "skills")
		s := &Skill{Name: "disk-report", Description: "Report disk use.", UserInvocable: true, AllowedTools: []string{"mcp__it0__run_command"}, Body: "Run df -h on $0.\n"}
		if err := WriteDir(root, s); err != nil {
			t.Fatal(err)
		}
		// Ensure a second write replaces the file and keeps other files in the directory.
		mustWrite(t, filepath.Join(root, "disk-report", "scripts", "x.sh"), "echo")
		s.Description = "Report disk use, updated."
		if err := WriteDir(root, s); err != nil {
			t.Fatal(err)
		}
		got, errs := ReadDir(root)
		if len(errs) != 0 || len(got) != 1 {
			t.Fatalf("ReadDir = %v, %v", got, errs)
		}
		if !reflect.DeepEqual(got[0], s) {
			t.Errorf("got %+v, want %+v", got[0], s)
		}
		if _, err := os.Stat(filepath.Join(root, "disk-report", "scripts", "x.sh")); err != nil {
			t.Errorf("WriteDir removed a helper file: %v", err)
		}
		entries, _ := os.ReadDir(filepath.Join(root, "disk-report"))
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".tmp") {
				t.Errorf("temporary file left behind: %s", e.Name())
			}
		}
	})

	// Ensure names that would leave root are rejected before any file is touched.
	t.Run("ErrInvalidName", func(t *testing.T) {
		t.Parallel()
		base := t.TempDir()
		root := filepath.Join(base, "skills")
		for _, name := range []string{"../escape", "..", "a/b", "/abs", "", ".hidden", "UP"} {
			err := WriteDir(root, &Skill{Name: name, Description: "d"})
			if !errors.Is(err, ErrInvalidName) {
				t.Errorf("WriteDir(%q) = %v, want ErrInvalidName", name, err)
			}
		}
		if _, err := os.Stat(filepath.Join(base, "escape")); !os.IsNotExist(err) {
			t.Errorf("escape directory exists: %v", err)
		}
	})

	// Ensure an invalid skill is not written.
	t.Run("ErrInvalid", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		if err := WriteDir(root, &Skill{Name: "ok"}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("WriteDir = %v, want ErrInvalid", err)
		}
		if _, err := os.Stat(filepath.Join(root, "ok")); !os.IsNotExist(err) {
			t.Errorf("directory created for an invalid skill: %v", err)
		}
	})

	// Ensure a symlinked skill directory cannot redirect the write outside root.
	t.Run("SymlinkEscape", func(t *testing.T) {
		t.Parallel()
		base := t.TempDir()
		root := filepath.Join(base, "skills")
		outside := filepath.Join(base, "outside")
		if err := os.MkdirAll(outside, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, filepath.Join(root, "evil")); err != nil {
			t.Skip("symlinks unsupported:", err)
		}
		if err := WriteDir(root, &Skill{Name: "evil", Description: "d", UserInvocable: true}); err == nil {
			t.Error("WriteDir followed a symlink out of root")
		}
		if _, err := os.Stat(filepath.Join(outside, FileName)); !os.IsNotExist(err) {
			t.Errorf("file written outside root: %v", err)
		}
	})
}

func TestRemoveDir(t *testing.T) {
	t.Parallel()

	// Ensure RemoveDir deletes the whole skill directory and is idempotent.
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		mustWrite(t, filepath.Join(root, "gone", FileName), "---\nname: gone\ndescription: d\n---\n")
		mustWrite(t, filepath.Join(root, "gone", "scripts", "a.sh"), "x")
		mustWrite(t, filepath.Join(root, "kept", FileName), "---\nname: kept\ndescription: d\n---\n")
		for range 2 {
			if err := RemoveDir(root, "gone"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := os.Stat(filepath.Join(root, "gone")); !os.IsNotExist(err) {
			t.Errorf("still there: %v", err)
		}
		if _, err := os.Stat(filepath.Join(root, "kept", FileName)); err != nil {
			t.Errorf("removed a neighbour: %v", err)
		}
		if err := RemoveDir(filepath.Join(root, "no-root"), "gone"); err != nil {
			t.Errorf("missing root: %v", err)
		}
	})

	// Ensure names that would leave root are rejected.
	t.Run("ErrInvalidName", func(t *testing.T) {
		t.Parallel()
		base := t.TempDir()
		root := filepath.Join(base, "skills")
		mustWrite(t, filepath.Join(base, "precious", "f"), "x")
		for _, name := range []string{"../precious", "..", ".", "", "a/../../precious", "/"} {
			if err := RemoveDir(root, name); !errors.Is(err, ErrInvalidName) {
				t.Errorf("RemoveDir(%q) = %v, want ErrInvalidName", name, err)
			}
		}
		if _, err := os.Stat(filepath.Join(base, "precious", "f")); err != nil {
			t.Fatalf("file outside root removed: %v", err)
		}
	})
}
