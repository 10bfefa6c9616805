package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/inventory/sshtest"
)

// TestClaudeCodeEndToEnd runs a session on the Claude Code engine with a stand-in `claude` that behaves
// like the CLI: its Bash calls go through the PreToolUse hook this very binary installs in the
// workspace (`it0 hook pre-tool-use`), which asks the server, and its IT0 tool calls make the requests
// `it0 mcp` makes. df -h runs on a real sshd, systemctl restart nginx
// opens an approval and pauses the session, the approval resumes it (--resume) and the grant lets the
// command through, and rm -rf / is denied. (That a grant works once is tested on the hook endpoint.)
func TestClaudeCodeEndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fake := filepath.Join(dir, "fakeclaude")
	build := exec.Command("go", "build", "-o", fake, "./internal/agent/claudecode/testdata/fakeclaude")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build fake claude: %v\n%s", err, out)
	}
	initLine := `{"type":"system","subtype":"init","session_id":"cc-1","tools":["Bash"],"model":"claude-test","permissionMode":"default"}`
	result := func(text string) string {
		return fmt.Sprintf(`{"type":"result","subtype":"success","is_error":false,"result":%q,"session_id":"cc-1","num_turns":2,"total_cost_usd":0.01,"usage":{"input_tokens":10,"output_tokens":5}}`, text)
	}
	first := strings.Join([]string{initLine, `#tool run_command {"server":"web-1","command":"df -h"}`, "#bash systemctl restart nginx",
		result("waiting for approval")}, "\n")
	resume := strings.Join([]string{initLine, "#bash systemctl restart nginx", `#tool run_command {"server":"web-1","command":"rm -rf /"}`,
		result("Done: nginx restarted once; rm -rf / was refused.")}, "\n")
	os.WriteFile(filepath.Join(dir, "first.jsonl"), []byte(first+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "resume.jsonl"), []byte(resume+"\n"), 0o600)
	wrapper := filepath.Join(dir, "claude")
	// IT0_TEST_EXEC lets the hook, which runs this test binary, act as `it0`.
	os.WriteFile(wrapper, []byte(fmt.Sprintf("#!/bin/sh\nexport IT0_TEST_EXEC=1 FAKECLAUDE_FIXTURE=%s FAKECLAUDE_FIXTURE_RESUME=%s\nexec %s \"$@\"\n",
		filepath.Join(dir, "first.jsonl"), filepath.Join(dir, "resume.jsonl"), fake)), 0o755)

	env := map[string]string{"IT0_BOOTSTRAP_ADMIN_PASSWORD": "first-password", "IT0_CLAUDE_PATH": wrapper, "IT0_DEFAULT_ENGINE": "claude_code_cli"}
	p, err := serveInProcess(t, filepath.Join(dir, "data"), env)
	if err != nil {
		t.Fatal(err)
	}
	tok := p.api(t, "POST", "/api/v1/auth/login", "", map[string]string{"email": "admin@it0.local", "password": "first-password"})["access_token"].(string)
	target := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.14", Password: true})
	p.addPasswordServer(t, tok, target)
	sid := p.api(t, "POST", "/api/v1/agent/tasks", tok, map[string]string{"prompt": "restart nginx if needed"})["session_id"].(string)

	events := func(after int64, until agent.EventType) []agent.Event {
		t.Helper()
		return p.events(t, tok, sid, after, until, 60*time.Second, func() string { return "" })
	}
	evs := events(0, agent.EventApprovalRequired)
	ap := evs[len(evs)-1]
	if ap.Type != agent.EventApprovalRequired || ap.Command != "systemctl restart nginx" || ap.ApprovalID == "" {
		t.Fatalf("first run: %+v", evs)
	}
	if !strings.Contains(evs[1].Output, "Filesystem") || evs[1].IsError {
		t.Errorf("df -h on web-1 through the MCP tool: %+v", evs[1])
	}
	if s := p.api(t, "GET", "/api/v1/agent/sessions/"+sid, tok, nil); s["status"] != "awaiting_approval" {
		t.Fatalf("status: %v", s["status"])
	}
	p.api(t, "POST", "/api/v1/agent/approvals/"+ap.ApprovalID+"/approve", tok, map[string]string{"reason": "go"})
	evs = events(ap.Seq, agent.EventCompleted)
	var results []string
	for _, e := range evs {
		if e.Type == agent.EventToolResult {
			results = append(results, e.Output)
		}
	}
	if len(results) != 2 || results[0] != "ran: systemctl restart nginx" || !strings.Contains(results[1], "BLOCKED") {
		t.Errorf("after approval the grant must let the command through and rm -rf / must be denied: %q", results)
	}
	last := evs[len(evs)-1]
	if last.Type != agent.EventCompleted || !strings.Contains(last.Summary, "Done") {
		t.Errorf("final event: %+v", last)
	}
	if a := p.api(t, "GET", "/api/v1/agent/approvals/"+ap.ApprovalID, tok, nil); a["used_at"] == nil {
		t.Errorf("grant not marked used: %v", a)
	}
}
