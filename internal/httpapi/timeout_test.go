package httpapi

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
)

// TestApprovalTimeouts: with a controllable clock, an L1 confirmation nobody answers is auto-approved
// after 5 minutes (the command runs), an L2 approval is rejected after 30 (it does not), a tenant can
// change the timeouts, and a human decision before the timeout wins.
func TestApprovalTimeouts(t *testing.T) {
	t.Parallel()
	f := newAgentFixture(t, nil)
	eng := &scriptEngine{name: agent.EngineClaudeAPI, byPrompt: map[string][]scriptStep{
		"L1": {{agent.ToolRunCommand, `{"server":"web-1","command":"systemctl restart nginx"}`}},
		"L2": {{agent.ToolRunCommand, `{"server":"web-1","command":"apt-get install -y nginx"}`}},
	}}
	f.serve(newAgentService(t, f.testBundle, eng))
	ctx := context.Background()
	due := func() {
		t.Helper()
		if _, err := f.jobs.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	start := func(prompt string) (string, agent.Event) {
		sid := f.do("POST", "/api/v1/agent/tasks", f.tok, map[string]string{"prompt": prompt}).body["session_id"].(string)
		evs := f.watch(t, sid, 0, func(e agent.Event) bool { return e.Type == agent.EventApprovalRequired })
		return sid, evs[len(evs)-1]
	}
	if r := f.do("GET", "/api/v1/ops/approval-timeouts", f.tok, nil); r.body["l1_seconds"] != float64(300) || r.body["l2_seconds"] != float64(1800) {
		t.Errorf("default timeouts: %s", r.raw)
	}

	sid, ap := start("L1 restart")
	f.now.Advance(4*time.Minute + 59*time.Second)
	due()
	if a := f.do("GET", "/api/v1/agent/approvals/"+ap.ApprovalID, f.tok, nil); a.body["status"] != "pending" {
		t.Fatalf("decided early: %s", a.raw)
	}
	f.now.Advance(time.Second)
	due()
	a := f.do("GET", "/api/v1/agent/approvals/"+ap.ApprovalID, f.tok, nil)
	if a.body["status"] != "approved" || a.body["decided_by"] != "system:timeout" {
		t.Fatalf("L1 after 5 min: %s", a.raw)
	}
	evs := f.watch(t, sid, ap.Seq, func(e agent.Event) bool { return e.Type == agent.EventCompleted })
	if evs[0].Type != agent.EventToolResult || strings.Contains(evs[0].Output, "not approved") {
		t.Errorf("the auto-approved command did not run: %+v", evs[0])
	}

	sid, ap = start("L2 install")
	f.now.Advance(30 * time.Minute)
	due()
	a = f.do("GET", "/api/v1/agent/approvals/"+ap.ApprovalID, f.tok, nil)
	if a.body["status"] != "expired" {
		t.Fatalf("L2 after 30 min: %s", a.raw)
	}
	evs = f.watch(t, sid, ap.Seq, func(e agent.Event) bool { return e.Type == agent.EventCompleted })
	if !evs[0].IsError || !strings.Contains(evs[0].Output, "system:timeout") {
		t.Errorf("the expired command's result: %+v", evs[0])
	}
	if r := f.do("POST", "/api/v1/agent/approvals/"+ap.ApprovalID+"/approve", f.tok, nil); r.status != 409 {
		t.Errorf("approving an expired approval: %d", r.status)
	}

	// A tenant's own timeouts; a decision before them wins and the timeout job then does nothing.
	if r := f.do("PUT", "/api/v1/ops/approval-timeouts", f.tok, map[string]int{"l1_seconds": 60}); r.status != 200 || r.body["l1_seconds"] != float64(60) {
		t.Fatalf("set timeouts: %d %s", r.status, r.raw)
	}
	if r := f.do("PUT", "/api/v1/ops/approval-timeouts", f.tok, map[string]int{"l2_seconds": 3}); r.status != 400 {
		t.Errorf("too short a timeout: %d", r.status)
	}
	_, ap = start("L1 again")
	a = f.do("GET", "/api/v1/agent/approvals/"+ap.ApprovalID, f.tok, nil)
	if exp, _ := time.Parse(time.RFC3339Nano, a.body["expires_at"].(string)); !exp.Equal(f.now.Now().Add(time.Minute).Truncate(time.Microsecond)) {
		t.Errorf("tenant timeout not applied: expires %v, now %v", exp, f.now.Now())
	}
	f.do("POST", "/api/v1/agent/approvals/"+ap.ApprovalID+"/reject", f.tok, map[string]string{"reason": "no"})
	f.now.Advance(time.Minute)
	due()
	if a := f.do("GET", "/api/v1/agent/approvals/"+ap.ApprovalID, f.tok, nil); a.body["status"] != "rejected" || a.body["decided_by"] == "system:timeout" {
		t.Errorf("the human decision must win: %s", a.raw)
	}
}
