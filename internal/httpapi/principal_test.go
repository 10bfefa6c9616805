package httpapi

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
)

// TestSystemSessionRunsAsServicePrincipal: a session the system starts with nobody signed in (an alert's
// runbook) runs as the tenant's service principal, on the Claude Code engine too (its workspace issues a
// token for the session's user), and the start is audited as the service principal's.
func TestSystemSessionRunsAsServicePrincipal(t *testing.T) {
	t.Parallel()
	tasks := make(chan agent.Task, 1)
	b := setupApp(t, storetest.OpenSQLite, &scriptEngine{name: agent.EngineClaudeCode, seen: func(t agent.Task) { tasks <- t }})
	tid, tok := b.newTenant("principal")
	ctx := tenant.WithID(context.Background(), tid) // no principal: started by the system
	sess, _, err := b.agentSvc.Load().StartTask(ctx, agent.StartParams{Prompt: "look at web-1", Engine: agent.EngineClaudeCode, Origin: "runbook", OriginID: "rb"})
	if err != nil {
		t.Fatal(err)
	}
	// The session's user is the tenant's service principal, created on first use.
	var svcID string
	for _, u := range b.do("GET", "/api/v1/auth/users", tok, nil).body["items"].([]any) {
		if u := u.(map[string]any); strings.HasPrefix(u["email"].(string), "it0-service@") {
			svcID = u["id"].(string)
		}
	}
	if svcID == "" || sess.UserID != svcID {
		t.Fatalf("session user %q, service principal %q", sess.UserID, svcID)
	}
	// The Claude Code workspace carries a token for it (it0 mcp and the hook call back with it).
	select {
	case task := <-tasks:
		var token string
		for _, kv := range task.Env {
			if v, ok := strings.CutPrefix(kv, "IT0_TOKEN="); ok {
				token = v
			}
		}
		p, err := b.auth.Authenticate(ctx, token)
		if err != nil || p.UserID != svcID || p.TenantID != tid {
			t.Errorf("workspace token: %+v, %v; want the service principal %q", p, err, svcID)
		}
		if task.WorkDir != filepath.Dir(filepath.Dir(b.skillsDir(tid))) {
			t.Errorf("workspace %q, skills in %q", task.WorkDir, b.skillsDir(tid))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the Claude Code engine never ran")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, _ := b.agentSvc.Load().Session(ctx, sess.ID)
		if s.Status == agent.StatusCompleted {
			break
		}
		if s.Status == agent.StatusFailed || time.Now().After(deadline) {
			t.Fatalf("session: %s %s", s.Status, s.Error)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if au := b.do("GET", "/api/v1/audit/logs?action_type=agent.task_started", tok, nil); !strings.Contains(au.raw, `"started_by":"service_principal"`) ||
		!strings.Contains(au.raw, svcID) {
		t.Errorf("the start is not audited as the service principal's: %s", au.raw)
	}
}
