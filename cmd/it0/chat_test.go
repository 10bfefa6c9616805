package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/it0/it0/internal/agent/agenttest"
	"github.com/it0/it0/internal/inventory/sshtest"
)

// TestChat drives `it0 chat` against a running server whose Claude API engine talks to a local Messages
// API: the conversation runs df -h, asks to restart nginx (approved inline with "y"), is refused rm -rf /,
// and finishes.
func TestChat(t *testing.T) {
	t.Parallel()
	target := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.13", Password: true})
	model := agenttest.AnthropicServer(t, "chat-key", agenttest.OpsSteps)
	env := map[string]string{"IT0_BOOTSTRAP_ADMIN_PASSWORD": "first-password", "IT0_ANTHROPIC_API_KEY": "chat-key",
		"IT0_ANTHROPIC_BASE_URL": model.URL}
	p, err := serveInProcess(t, t.TempDir(), env)
	if err != nil {
		t.Fatal(err)
	}
	tok := p.api(t, "POST", "/api/v1/auth/login", "", map[string]string{"email": "admin@it0.local", "password": "first-password"})["access_token"].(string)
	cred := p.api(t, "POST", "/api/v1/inventory/credentials", tok, map[string]string{"name": "pw", "type": "ssh_password", "secret": target.Password.Reveal()})
	p.api(t, "POST", "/api/v1/inventory/servers", tok, map[string]any{"name": "web-1", "host": target.Addr, "port": target.Port,
		"ssh_user": target.PasswordUser, "credential_id": cred["id"], "host_key": target.HostKey})

	var out bytes.Buffer
	getenv := func(k string) string { return map[string]string{"IT0_URL": "http://" + p.addr, "IT0_TOKEN": tok}[k] }
	err = run(context.Background(), []string{"chat", "--lang", "en", "check the disk on web-1"}, getenv, strings.NewReader("y\n"), &out, &out)
	if err != nil {
		t.Fatalf("chat: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{"session ", "Let me check the disk first.", `→ run_command {"command":"df -h","server":"web-1"}`,
		"approval needed (L1): systemctl restart nginx", "approved", "BLOCKED", "✓ done: Done", "bye"} {
		if !strings.Contains(got, want) {
			t.Errorf("chat output lacks %q:\n%s", want, got)
		}
	}
	// The same in Chinese, rejecting with a reason this time.
	out.Reset()
	err = run(context.Background(), []string{"chat", "--lang", "zh", "检查磁盘"}, getenv, strings.NewReader("现在不行\n"), &out, &out)
	if err != nil || !strings.Contains(out.String(), "需要审批") || !strings.Contains(out.String(), "已拒绝") || !strings.Contains(out.String(), "再见") {
		t.Errorf("chat zh: %v\n%s", err, out.String())
	}
}
