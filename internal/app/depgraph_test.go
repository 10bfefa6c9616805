package app

import (
	"go/build"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const modulePath = "github.com/it0/it0"

// moduleDeps returns the packages of this module that the package in dir imports, directly or not
// (test files excluded: a test may import what the package must not).
func moduleDeps(t *testing.T, root, dir string) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	var walk func(dir string)
	walk = func(dir string) {
		pkg, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatalf("read package %s: %v", dir, err)
		}
		for _, imp := range pkg.Imports {
			rel, ok := strings.CutPrefix(imp, modulePath+"/")
			if !ok || seen[imp] {
				continue
			}
			seen[imp] = true
			walk(filepath.Join(root, rel))
		}
	}
	walk(dir)
	return seen
}

// packagesUnder lists the directories of Go packages (non-test files) at or below dir.
func packagesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if _, err := build.ImportDir(path, 0); err == nil {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestModuleBoundaries: the modules that follow the agent (ops and its approvals, comm, voice, monitor)
// reach it through interfaces they declare and the leaf contract package agentapi, never by importing
// internal/agent (DESIGN §1: in a split deployment they run without it); and agentapi stays a leaf.
func TestModuleBoundaries(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	agentPkg := modulePath + "/internal/agent"
	for _, module := range []string{"ops", "comm", "voice", "monitor"} {
		for _, dir := range packagesUnder(t, filepath.Join(root, "internal", module)) {
			rel, _ := filepath.Rel(root, dir)
			if deps := moduleDeps(t, root, dir); deps[agentPkg] {
				t.Errorf("%s imports %s (directly or through another package): declare what it needs of the agent as an "+
					"interface in %s and use the types of internal/agent/agentapi", rel, agentPkg, rel)
			}
		}
	}

	// The contract package imports nothing of IT0 but these leaves.
	leaves := []string{"internal/bus", "internal/errs", "internal/outbox", "internal/tenant"}
	for dep := range moduleDeps(t, root, filepath.Join(root, "internal", "agent", "agentapi")) {
		if !slices.Contains(leaves, strings.TrimPrefix(dep, modulePath+"/")) {
			t.Errorf("internal/agent/agentapi imports %s: the contract package may import only %v", dep, leaves)
		}
	}
}
