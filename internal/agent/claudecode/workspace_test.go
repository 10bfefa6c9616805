package claudecode_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/it0/it0/internal/agent/claudecode"
)

func TestPrepareWorkspace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		w         claudecode.Workspace
		wantURL   string
		wantToken string
	}{
		{"Resolved", claudecode.Workspace{HookCommand: "/usr/bin/it0 hook pre-tool-use", MCPCommand: "/usr/bin/it0", URL: "http://127.0.0.1:8080", Token: "sess-tok"}, "http://127.0.0.1:8080", "sess-tok"},
		{"Placeholders", claudecode.Workspace{HookCommand: "/usr/bin/it0 hook pre-tool-use", MCPCommand: "/usr/bin/it0"}, "${IT0_URL}", "${IT0_TOKEN}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			// Skills already in the workspace survive.
			skill := filepath.Join(dir, ".claude", "skills", "inspect", "SKILL.md")
			if err := os.MkdirAll(filepath.Dir(skill), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(skill, []byte("---\nname: inspect\n---\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			for range 2 { // idempotent
				if err := claudecode.PrepareWorkspace(dir, tc.w); err != nil {
					t.Fatal(err)
				}
			}
			var settings struct {
				Hooks struct {
					PreToolUse []struct {
						Matcher string `json:"matcher"`
						Hooks   []struct {
							Type    string `json:"type"`
							Command string `json:"command"`
							Timeout int    `json:"timeout"`
						} `json:"hooks"`
					} `json:"PreToolUse"`
				} `json:"hooks"`
				Permissions struct {
					Allow []string `json:"allow"`
				} `json:"permissions"`
			}
			readJSON(t, filepath.Join(dir, ".claude", "settings.json"), &settings)
			pre := settings.Hooks.PreToolUse
			if len(pre) != 1 || pre[0].Matcher != "Bash|Write|Edit|MultiEdit" || len(pre[0].Hooks) != 1 ||
				pre[0].Hooks[0].Type != "command" || pre[0].Hooks[0].Command != tc.w.HookCommand || pre[0].Hooks[0].Timeout != 30 {
				t.Errorf("hooks = %+v", pre)
			}
			// Claude Code 2.1 ignores allow rules here (untrusted folder) and warns on every run; Run passes
			// them on the command line.
			if len(settings.Permissions.Allow) != 0 {
				t.Errorf("allow = %v, want none in the settings file", settings.Permissions.Allow)
			}
			var mcp struct {
				MCPServers map[string]struct {
					Command string            `json:"command"`
					Args    []string          `json:"args"`
					Env     map[string]string `json:"env"`
				} `json:"mcpServers"`
			}
			readJSON(t, filepath.Join(dir, claudecode.MCPConfigFile), &mcp)
			srv, ok := mcp.MCPServers["it0"]
			if !ok || srv.Command != "/usr/bin/it0" || strings.Join(srv.Args, " ") != "mcp" ||
				srv.Env["IT0_URL"] != tc.wantURL || srv.Env["IT0_TOKEN"] != tc.wantToken {
				t.Errorf("mcp = %+v", mcp)
			}
			for _, f := range []string{filepath.Join(dir, claudecode.MCPConfigFile), filepath.Join(dir, ".claude", "settings.json")} {
				if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: mode %v, %v", f, fi.Mode(), err)
				}
			}
			if _, err := os.Stat(skill); err != nil {
				t.Errorf("skill lost: %v", err)
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".tmp-") {
					t.Errorf("temporary file left: %s", e.Name())
				}
			}
		})
	}
}

func TestPrepareWorkspaceErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		w    claudecode.Workspace
	}{
		{"ErrNoHook", claudecode.Workspace{MCPCommand: "/bin/it0"}},
		{"ErrNoMCP", claudecode.Workspace{HookCommand: "/bin/it0 hook pre-tool-use"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := claudecode.PrepareWorkspace(t.TempDir(), tc.w); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}
