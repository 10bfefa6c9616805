package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent/agenttest"
	"github.com/it0/it0/internal/inventory/sshtest"
)

// TestKillDuringApprovedCommand kills IT0 with SIGKILL while a command a human approved runs on the
// server, then restarts it: the command is recorded as started with an unknown outcome, the session asks
// a human again (a new approval for the same call) instead of ending, and approving that runs it to the
// end and completes the session.
func TestKillDuringApprovedCommand(t *testing.T) {
	t.Parallel()
	target := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.53"})
	dir := t.TempDir()
	started, fast, done := filepath.Join(dir, "started"), filepath.Join(dir, "fast"), filepath.Join(dir, "done")
	command := "touch " + started + "; test -e " + fast + " || sleep 60; touch " + done
	model := agenttest.AnthropicServer(t, "resume-key", []agenttest.Step{
		{Text: "Cleaning up.", Server: "web-1", Command: command},
		{Text: "Done: cleaned up.", Server: "", Command: ""}})
	data := t.TempDir()
	env := []string{"IT0_BOOTSTRAP_ADMIN_PASSWORD=first-password", "IT0_LOG_LEVEL=info",
		"IT0_ANTHROPIC_API_KEY=resume-key", "IT0_ANTHROPIC_BASE_URL=" + model.URL}
	c := startServe(t, env, "--data-dir", data)
	must := func(want int, method, path, token string, body any) map[string]any {
		t.Helper()
		st, m := c.call(t, method, path, token, body)
		if st != want {
			t.Fatalf("%s %s: %d %v", method, path, st, m)
		}
		return m
	}
	tok := must(200, "POST", "/api/v1/auth/login", "", map[string]string{"email": "admin@it0.local", "password": "first-password"})["access_token"].(string)
	cred := must(201, "POST", "/api/v1/inventory/credentials", tok, map[string]string{"name": "key", "type": "ssh_key", "secret": target.UserKey.Reveal()})
	must(201, "POST", "/api/v1/inventory/servers", tok, map[string]any{"name": "web-1", "host": target.Addr, "port": target.Port,
		"ssh_user": target.User, "credential_id": cred["id"], "host_key": target.HostKey})

	sid := must(201, "POST", "/api/v1/agent/tasks", tok, map[string]string{"prompt": "clean up web-1"})["session_id"].(string)
	pending := func() []any {
		return must(200, "GET", "/api/v1/agent/approvals?status=pending&session_id="+sid, tok, nil)["items"].([]any)
	}
	waitFor(t, 30*time.Second, "the approval", func() bool { return len(pending()) == 1 })
	first := pending()[0].(map[string]any)
	must(200, "POST", "/api/v1/agent/approvals/"+first["id"].(string)+"/approve", tok, nil)
	waitFor(t, 30*time.Second, "the command to start", func() bool { _, err := os.Stat(started); return err == nil })

	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()
	c = startServe(t, env, "--data-dir", data)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("events: %v\nlog: %s", must(200, "GET", "/api/v1/agent/sessions/"+sid+"/events", tok, nil), c.out.String())
		}
	})

	// The session asks again; the cut-off command is on record.
	if s := must(200, "GET", "/api/v1/agent/sessions/"+sid, tok, nil); s["status"] != "awaiting_approval" {
		t.Fatalf("session after the restart: %v", s)
	}
	again := pending()
	if len(again) != 1 || again[0].(map[string]any)["command"] != command || again[0].(map[string]any)["id"] == first["id"] ||
		!strings.Contains(again[0].(map[string]any)["reason"].(string), "outcome unknown") {
		t.Fatalf("approval asked again: %v", again)
	}
	logs := must(200, "GET", "/api/v1/audit/logs?action_type=agent.command_outcome_unknown", tok, nil)["items"].([]any)
	if len(logs) != 1 || !strings.Contains(string(mustJSON(logs[0])), first["id"].(string)) {
		t.Fatalf("outcome-unknown record: %v", logs)
	}

	// Approved again, it runs to the end (quickly this time) and the session completes.
	if err := os.WriteFile(fast, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	must(200, "POST", "/api/v1/agent/approvals/"+again[0].(map[string]any)["id"].(string)+"/approve", tok, nil)
	waitFor(t, 30*time.Second, "the session to complete", func() bool {
		s := must(200, "GET", "/api/v1/agent/sessions/"+sid, tok, nil)
		if s["status"] == "failed" {
			t.Fatalf("session failed: %v", s)
		}
		return s["status"] == "completed"
	})
	if _, err := os.Stat(done); err != nil {
		t.Errorf("the command did not run to the end: %v", err)
	}
	if v := must(200, "GET", "/api/v1/audit/verify", tok, nil); v["ok"] != true {
		t.Fatalf("audit chain after the kill: %v", v)
	}
}
