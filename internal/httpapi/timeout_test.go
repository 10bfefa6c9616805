package httpapi

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/store/storetest"
)

// TestApprovalTimeouts: with a controllable clock, an L1 confirmation nobody answers is auto-approved
// after 5 minutes (the command runs), an L2 approval is rejected after 30 (it does not), a tenant can
// change the timeouts, and a human decision before the timeout wins.
func TestApprovalTimeouts(t *testing.T) {
	t.Parallel()
	eng := &scriptEngine{name: agent.EngineClaudeAPI, byPrompt: map[string][]scriptStep{
		"L1": {{agent.ToolRunCommand, `{"server":"web-1","command":"systemctl restart nginx"}`}},
		"L2": {{agent.ToolRunCommand, `{"server":"web-1","command":"apt-get install -y nginx"}`}},
	}}
	f := newAgentFixtureWith(t, appKnobs{engines: []agent.Engine{eng}, manual: true}) // timeouts fire at RunDue
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

// TestReportAndUnattendedSettings: the tenant's digest settings and the timeout of unattended runs'
// approvals, through the API, with defaults and field-named errors.
func TestReportAndUnattendedSettings(t *testing.T) {
	t.Parallel()
	b := setupApp(t, storetest.OpenSQLite)
	if r := b.do("GET", "/api/v1/ops/report-settings", b.adminTok, nil); r.status != 200 || r.body["timezone"] != "Asia/Shanghai" ||
		r.body["digest_time"] != "20:00" || r.body["digest_enabled"] != true {
		t.Errorf("default report settings for a zh-CN tenant: %d %s", r.status, r.raw)
	}
	r := b.do("PUT", "/api/v1/ops/report-settings", b.adminTok, map[string]any{"timezone": "Europe/Berlin", "digest_time": "07:30", "digest_enabled": false})
	if r.status != 200 || r.body["timezone"] != "Europe/Berlin" || r.body["digest_time"] != "07:30" || r.body["digest_enabled"] != false {
		t.Errorf("set report settings: %d %s", r.status, r.raw)
	}
	for field, body := range map[string]map[string]any{
		"timezone":    {"timezone": "Mars/Olympus", "digest_time": "20:00"},
		"digest_time": {"timezone": "UTC", "digest_time": "8pm"},
	} {
		if r := b.do("PUT", "/api/v1/ops/report-settings", b.adminTok, body); r.status != 400 || !strings.Contains(r.raw, field) {
			t.Errorf("bad %s: %d %s", field, r.status, r.raw)
		}
	}
	if r := b.do("GET", "/api/v1/ops/approval-timeouts", b.adminTok, nil); r.body["unattended_seconds"] != float64(3600) {
		t.Errorf("default unattended timeout: %s", r.raw)
	}
	if r := b.do("PUT", "/api/v1/ops/approval-timeouts", b.adminTok, map[string]int{"unattended_seconds": 1200}); r.status != 200 ||
		r.body["unattended_seconds"] != float64(1200) || r.body["l1_seconds"] != float64(300) {
		t.Errorf("set the unattended timeout: %d %s", r.status, r.raw)
	}
	if r := b.do("PUT", "/api/v1/ops/approval-timeouts", b.adminTok, map[string]int{"unattended_seconds": 5}); r.status != 400 ||
		!strings.Contains(r.raw, "unattended") {
		t.Errorf("too short an unattended timeout: %d %s", r.status, r.raw)
	}
}
