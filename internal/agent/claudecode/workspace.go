package claudecode

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Workspace files and names PrepareWorkspace writes and Run relies on.
const (
	// MCPConfigFile is the MCP config in the workspace, passed to the CLI as --mcp-config.
	MCPConfigFile = ".it0-mcp.json"
	// MCPServerName is the name IT0's MCP server has in that config; its tools appear to the model as
	// mcp__it0__<tool>.
	MCPServerName = "it0"
	// HookMatcher selects the tool calls IT0's PreToolUse hook guards: shell commands and file writes.
	HookMatcher = "Bash|Write|Edit|MultiEdit"
	// hookTimeoutSeconds is the hook's time limit in the CLI's settings (seconds).
	hookTimeoutSeconds = 30
)

// Workspace is what PrepareWorkspace writes into a tenant's workspace.
type Workspace struct {
	// HookCommand is the PreToolUse hook, run through a shell, e.g. "/usr/local/bin/it0 hook pre-tool-use".
	HookCommand string
	// MCPCommand is the it0 binary the CLI starts as its MCP server (with the argument "mcp").
	MCPCommand string
	// URL is IT0's base URL for the MCP server (IT0_URL). Empty writes "${IT0_URL}", which the CLI
	// expands from its environment (Task.Env).
	URL string
	// Token is the session-scoped token for the MCP server (IT0_TOKEN). Empty writes "${IT0_TOKEN}", so
	// the token stays out of the file and comes from Task.Env.
	Token string
}

// settingsFile is the workspace's .claude/settings.json. It carries no permission rules: Claude Code 2.1
// ignores them in a folder nobody trusted interactively (and says so on stderr), so Run passes them on
// the command line instead.
type settingsFile struct {
	Hooks map[string][]hookGroup `json:"hooks"`
}

type hookGroup struct {
	Matcher string    `json:"matcher"`
	Hooks   []handler `json:"hooks"`
}

type handler struct {
	Type    string `json:"type"`
	Command string `json:"command"`
	Timeout int    `json:"timeout"`
}

type mcpFile struct {
	MCPServers map[string]mcpServer `json:"mcpServers"`
}

type mcpServer struct {
	Type    string            `json:"type"`
	Command string            `json:"command"`
	Args    []string          `json:"args"`
	Env     map[string]string `json:"env"`
}

// PrepareWorkspace writes dir/.claude/settings.json (IT0's PreToolUse hook on HookMatcher) and
// dir/.it0-mcp.json (the MCP server "it0"), both readable by the owner only. Existing files are replaced
// atomically; the rest of .claude/ (skills) is left alone. Only w.Token is a secret, and it is written
// only when set.
func PrepareWorkspace(dir string, w Workspace) error {
	if w.HookCommand == "" || w.MCPCommand == "" {
		return errors.New("claudecode: workspace needs HookCommand and MCPCommand")
	}
	settings := settingsFile{
		Hooks: map[string][]hookGroup{"PreToolUse": {{
			Matcher: HookMatcher,
			Hooks:   []handler{{Type: "command", Command: w.HookCommand, Timeout: hookTimeoutSeconds}},
		}}},
	}
	url, token := w.URL, w.Token
	if url == "" {
		url = "${IT0_URL}"
	}
	if token == "" {
		token = "${IT0_TOKEN}"
	}
	mcp := mcpFile{MCPServers: map[string]mcpServer{MCPServerName: {
		Type:    "stdio",
		Command: w.MCPCommand,
		Args:    []string{"mcp"},
		Env:     map[string]string{"IT0_URL": url, "IT0_TOKEN": token},
	}}}
	if err := os.MkdirAll(filepath.Join(dir, ".claude"), 0o700); err != nil {
		return fmt.Errorf("claudecode: prepare workspace: %w", err)
	}
	if err := writeJSON(filepath.Join(dir, ".claude", "settings.json"), settings); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, MCPConfigFile), mcp)
}

// writeJSON replaces path with v as indented JSON, through a temporary file and a rename so the CLI
// never reads half a file.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("claudecode: encode %s: %w", filepath.Base(path), err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("claudecode: write %s: %w", filepath.Base(path), err)
	}
	defer os.Remove(f.Name()) // after the rename there is nothing left to remove
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("claudecode: write %s: %w", filepath.Base(path), err)
	}
	return nil
}
