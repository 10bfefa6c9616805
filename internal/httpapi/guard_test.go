package httpapi

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/auth"
)

// untilApprovalOrEnd stops a watch at the next approval or at the end of the run.
func untilApprovalOrEnd(e agent.Event) bool {
	return e.Type == agent.EventApprovalRequired || e.Type == agent.EventCompleted || e.Type == agent.EventError
}

func lastEvent(t *testing.T, evs []agent.Event, typ agent.EventType) agent.Event {
	t.Helper()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Type == typ {
			return evs[i]
		}
	}
	t.Fatalf("no %s event in %s", typ, types(evs))
	return agent.Event{}
}

// TestSecretReadsRedacted ensures a read of credential material is at least L1 (read_file judges the
// cleaned path, so /x/../x/.pgpass is no way around it), that its output reaches neither the model nor the
// session's events when an operator confirmed it, that it does when an admin approved it, and that
// command records never keep it.
func TestSecretReadsRedacted(t *testing.T) {
	t.Parallel()
	// In /tmp, readable by the sshd test account.
	dir, err := os.MkdirTemp("", "it0-guard-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	const marker = "db.internal:5432:*:app:s3cr3t-marker"
	secret := filepath.Join(dir, ".pgpass")
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secret, []byte(marker+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dotted := dir + "/../" + filepath.Base(dir) + "/.pgpass"
	f := newAgentFixture(t, []scriptStep{
		{agent.ToolReadFile, fmt.Sprintf(`{"server":"web-1","path":%q}`, dotted)},
		{agent.ToolRunCommand, fmt.Sprintf(`{"server":"web-1","command":%q}`, "cat "+secret)},
	})
	_, opTok := f.newUser(f.tok, "op@agent.example", auth.RoleOperator)
	sid := f.do("POST", "/api/v1/agent/tasks", f.tok, map[string]string{"prompt": "read the db password"}).body["session_id"].(string)

	evs := f.watch(t, sid, 0, untilApprovalOrEnd)
	ap := lastEvent(t, evs, agent.EventApprovalRequired)
	if ap.RiskLevel == nil || *ap.RiskLevel != 1 || !strings.Contains(ap.Command, secret) || strings.Contains(ap.Command, "..") {
		t.Fatalf("read_file of a secret: %s, approval %+v", types(evs), ap)
	}
	// An operator's confirmation runs the read; the output stays redacted.
	if r := f.do("POST", "/api/v1/agent/approvals/"+ap.ApprovalID+"/approve", opTok, nil); r.status != 200 {
		t.Fatalf("operator confirm: %d %s", r.status, r.raw)
	}
	evs = f.watch(t, sid, ap.Seq, untilApprovalOrEnd)
	res := evs[0]
	if res.Type != agent.EventToolResult || strings.Contains(res.Output, "s3cr3t") || !strings.Contains(res.Output, "[redacted:") {
		t.Fatalf("operator-confirmed read result: %+v", res)
	}
	ap = lastEvent(t, evs, agent.EventApprovalRequired)
	if ap.RiskLevel == nil || *ap.RiskLevel != 1 {
		t.Fatalf("cat of a secret: %+v", ap)
	}
	// An admin's approval shows it.
	if r := f.do("POST", "/api/v1/agent/approvals/"+ap.ApprovalID+"/approve", f.tok, nil); r.status != 200 {
		t.Fatalf("admin approve: %d %s", r.status, r.raw)
	}
	evs = f.watch(t, sid, ap.Seq, untilApprovalOrEnd)
	if res := evs[0]; res.Type != agent.EventToolResult || !strings.Contains(res.Output, marker) {
		t.Fatalf("admin-approved read result: %+v", res)
	}
	all := f.do("GET", "/api/v1/agent/sessions/"+sid+"/events?after=0", f.tok, nil)
	if n := strings.Count(all.raw, "s3cr3t"); n != 1 {
		t.Errorf("the secret is in the stored events %d times, want once (the admin-approved read)", n)
	}
	recs := f.do("GET", "/api/v1/inventory/command-records?limit=100", f.tok, nil)
	if strings.Contains(recs.raw, "s3cr3t") || !strings.Contains(recs.raw, "redacted") {
		t.Errorf("command records keep the secret: %s", recs.raw)
	}
	if a := f.do("GET", "/api/v1/audit/logs?limit=500", f.tok, nil); strings.Contains(a.raw, "s3cr3t") {
		t.Errorf("the audit log keeps the secret")
	}
}

// TestBlastRadiusApproval ensures the target set raises the level of a fanned-out command, that the
// approval says why, that the tenant's threshold (set through the risk-rules API) applies, and that the
// raised approval lets the command run on every server.
func TestBlastRadiusApproval(t *testing.T) {
	t.Parallel()
	webs := `["web-1","web-2","web-3","web-4"]`
	f := newAgentFixture(t, []scriptStep{
		{agent.ToolRunCommand, `{"server":"db-1","command":"systemctl restart postgresql"}`},
		{agent.ToolRunCommand, `{"servers":` + webs + `,"command":"systemctl restart nginx"}`},
		{agent.ToolRunCommand, `{"servers":` + webs + `,"command":"systemctl restart nginx"}`},
	})
	for _, n := range []string{"web-2", "web-3", "web-4"} {
		f.server(n, f.target, map[string]any{"ssh_user": f.target.PasswordUser})
	}
	f.server("db-1", f.target, map[string]any{"ssh_user": f.target.PasswordUser, "role": "db"})
	_, opTok := f.newUser(f.tok, "op@agent.example", auth.RoleOperator)
	sid := f.do("POST", "/api/v1/agent/tasks", f.tok, map[string]string{"prompt": "restart things"}).body["session_id"].(string)

	// A production database counts more: the L1 restart needs an admin.
	evs := f.watch(t, sid, 0, untilApprovalOrEnd)
	ap := lastEvent(t, evs, agent.EventApprovalRequired)
	if ap.RiskLevel == nil || *ap.RiskLevel != 2 {
		t.Fatalf("restart on a prod db: %+v", ap)
	}
	got := f.do("GET", "/api/v1/agent/approvals/"+ap.ApprovalID, f.tok, nil)
	if reason, _ := got.body["reason"].(string); !strings.Contains(reason, "blast radius") || !strings.Contains(reason, "critical-role") {
		t.Errorf("approval does not say why it was raised: %s", got.raw)
	}
	if r := f.do("POST", "/api/v1/agent/approvals/"+ap.ApprovalID+"/approve", opTok, nil); r.status != 403 {
		t.Errorf("operator approving a raised L2: %d", r.status)
	}
	f.do("POST", "/api/v1/agent/approvals/"+ap.ApprovalID+"/reject", f.tok, nil)

	// Four production web servers are within the shipped threshold: L1.
	evs = f.watch(t, sid, ap.Seq, untilApprovalOrEnd)
	ap = lastEvent(t, evs, agent.EventApprovalRequired)
	if ap.RiskLevel == nil || *ap.RiskLevel != 1 {
		t.Fatalf("restart on 4 prod webs: %+v", ap)
	}
	// The tenant tightens it to "more than 3".
	rules := "blast_radius:\n  - {id: prod-3, level: L1, environments: [prod], more_than: 3, raise_to: L2, reason: \"our prod is small\"}\n"
	if r := f.do("PUT", "/api/v1/agent/risk-rules", f.tok, map[string]string{"rules": rules}); r.status != 200 {
		t.Fatalf("put rules: %d %s", r.status, r.raw)
	}
	f.do("POST", "/api/v1/agent/approvals/"+ap.ApprovalID+"/reject", f.tok, nil)
	evs = f.watch(t, sid, ap.Seq, untilApprovalOrEnd)
	ap = lastEvent(t, evs, agent.EventApprovalRequired)
	got = f.do("GET", "/api/v1/agent/approvals/"+ap.ApprovalID, f.tok, nil)
	if reason, _ := got.body["reason"].(string); ap.RiskLevel == nil || *ap.RiskLevel != 2 || !strings.Contains(reason, "tenant:prod-3") {
		t.Fatalf("restart on 4 prod webs after the tenant rule: %+v %s", ap, got.raw)
	}
	// Approved at the raised level, it runs on all four (the inventory judges the same targets).
	if r := f.do("POST", "/api/v1/agent/approvals/"+ap.ApprovalID+"/approve", f.tok, nil); r.status != 200 {
		t.Fatalf("approve: %d %s", r.status, r.raw)
	}
	evs = f.watch(t, sid, ap.Seq, untilApprovalOrEnd)
	res := evs[0]
	if res.Type != agent.EventToolResult || strings.Count(res.Output, "== web-") != 4 || strings.Contains(res.Output, "approval_required") {
		t.Errorf("approved fan-out: %+v", res)
	}
}
