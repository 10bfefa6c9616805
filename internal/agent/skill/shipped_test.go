package skill

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/it0/it0/skills"
)

// Ensure every shipped skill parses, validates against its directory name, and is usable by an ops agent.
func TestShippedSkills(t *testing.T) {
	t.Parallel()
	got, errs := ReadFS(skills.FS)
	for _, err := range errs {
		t.Error(err)
	}
	want := []string{"backup-check", "cleanup", "deploy", "diagnose", "inspect", "rollback", "scale", "security-audit"}
	var names []string
	for _, s := range got {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, want) {
		t.Fatalf("shipped skills = %v, want %v", names, want)
	}
	placeholder := regexp.MustCompile(`\$(\d|ARGUMENTS\[)`)
	for _, s := range got {
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel()
			if err := s.Validate(s.Name); err != nil {
				t.Error(err)
			}
			if s.ArgumentHint == "" {
				t.Error("no argument-hint")
			}
			if !slices.Contains(s.AllowedTools, "mcp__it0__run_command") {
				t.Errorf("allowed-tools %v lacks mcp__it0__run_command", s.AllowedTools)
			}
			for _, tool := range s.AllowedTools {
				if !strings.HasPrefix(tool, "mcp__it0__") {
					t.Errorf("allowed-tools grants %q; shipped skills act only through IT0's tools", tool)
				}
			}
			if !strings.Contains(s.Body, "$ARGUMENTS") {
				t.Error("body never uses $ARGUMENTS")
			}
			if strings.Contains(s.Body, "!`") {
				t.Error("body contains an exclamation mark before a back quote, which Claude Code runs as a shell command")
			}
			if !strings.Contains(s.Body, "IT0-APPROVAL-REQUIRED") && !strings.Contains(s.Body, "read-only") {
				t.Error("body says neither how approvals work nor that it is read-only")
			}
			if n := strings.Count(s.Body, "\n"); n > 500 {
				t.Errorf("body is %d lines; keep SKILL.md under 500", n)
			}
			// Ensure commands inside code are never mangled by argument substitution ($1 in awk…).
			inFence := false
			for i, line := range strings.Split(s.Body, "\n") {
				if strings.HasPrefix(strings.TrimSpace(line), "```") {
					inFence = !inFence
					continue
				}
				if inFence && placeholder.MatchString(line) {
					t.Errorf("body line %d inside a code block holds a substitution placeholder: %s", i+1, line)
				}
			}
			// Ensure rendering with arguments substitutes them and leaves no placeholder behind.
			out := s.Render("web-1 nginx", "sess", "/skills/"+s.Name)
			if !strings.Contains(out, "web-1 nginx") || strings.Contains(out, "$ARGUMENTS") {
				t.Errorf("Render did not substitute arguments:\n%s", out)
			}
		})
	}
}

// Ensure the embedded FS holds exactly the SKILL.md files, so a stray file cannot ship by accident.
func TestShippedFS(t *testing.T) {
	t.Parallel()
	err := fs.WalkDir(skills.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !strings.HasSuffix(p, "/"+FileName) {
			t.Errorf("unexpected embedded file %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
