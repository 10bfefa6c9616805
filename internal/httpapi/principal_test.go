package httpapi

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/ops"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
)

// TestSystemSessionRunsAsServicePrincipal: a session the system starts with nobody signed in (an alert's
// runbook) runs as the tenant's service principal, on the Claude Code engine too (its workspace issues a
// token for the session's user), and the start is audited as the service principal's.
func TestSystemSessionRunsAsServicePrincipal(t *testing.T) {
	t.Parallel()
	b := setupApp(t, storetest.OpenSQLite)
	tid, tok := b.newTenant("principal")
	svcID, _ := b.newUser(tok, "it0-service@principal.invalid", auth.RoleOperator)
	workspaceUser := make(chan string, 1)
	eng := &scriptEngine{name: agent.EngineClaudeCode}
	ag, err := agent.New(agent.Config{Logger: b.logger, Now: b.now.Now, PromptHint: ops.PromptHint, Approvals: b.approvals,
		SkillsRoot:       func(tid string) string { return filepath.Join(t.TempDir(), tid) },
		ServicePrincipal: func(context.Context) (string, error) { return svcID, nil },
		Workspace: func(ctx context.Context, sess *agent.Session) (string, []string, error) {
			// As internal/app does: the session's user gets a token for it0 mcp and the hook.
			if _, err := b.auth.IssueToken(ctx, sess.UserID, time.Hour); err != nil {
				return "", nil, err
			}
			workspaceUser <- sess.UserID
			return t.TempDir(), nil, nil
		}}, b.db, []agent.Engine{eng}, b.inv, b.auth, b.audit, b.guard, agent.NewHub(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ag.Close)
	ctx := tenant.WithID(context.Background(), tid) // no principal: started by the system
	sess, _, err := ag.StartTask(ctx, agent.StartParams{Prompt: "look at web-1", Engine: agent.EngineClaudeCode, Origin: "runbook", OriginID: "rb"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case u := <-workspaceUser:
		if u != svcID {
			t.Errorf("workspace user %q, want the service principal %q", u, svcID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the Claude Code workspace was never prepared")
	}
	if sess.UserID != svcID {
		t.Errorf("session user %q", sess.UserID)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, _ := ag.Session(ctx, sess.ID)
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
