package httpapi

import (
	"strings"
	"testing"

	"github.com/it0/it0/internal/agent"
)

func TestRunbooksAndOpsTasks(t *testing.T) {
	t.Parallel()
	// The script asks for an L1 restart; the runbook's bounds decide what happens to it.
	f := newAgentFixture(t, opsScript[1:2])
	r := f.do("GET", "/api/v1/ops/runbooks", f.tok, nil)
	for _, name := range []string{"disk-cleanup", "service-restart", "high-load-diagnosis"} {
		if !strings.Contains(r.raw, `"name":"`+name+`"`) {
			t.Errorf("shipped runbook %s missing: %s", name, r.raw)
		}
	}
	// Bad runbooks name every bad field.
	r = f.do("POST", "/api/v1/ops/runbooks", f.tok, map[string]any{"name": "Bad Name", "prompt_template": "{{.x", "max_risk_level": 3,
		"trigger_type": "sometimes", "allowed_tools": []string{"format_disk"}})
	for _, field := range []string{"name", "prompt_template", "max_risk_level", "trigger_type", "allowed_tools"} {
		if r.status != 400 || !strings.Contains(r.raw, field) {
			t.Errorf("bad runbook: %d %s lacks %s", r.status, r.raw, field)
		}
	}
	// A read-only runbook (max L0) refuses the L1 restart outright: no approval is opened.
	ro := f.do("POST", "/api/v1/ops/runbooks", f.tok, map[string]any{"name": "look-only", "prompt_template": "look at {{.server}}",
		"max_risk_level": 0, "allowed_tools": []string{"run_command"}})
	if ro.status != 201 {
		t.Fatalf("create: %d %s", ro.status, ro.raw)
	}
	task := f.do("POST", "/api/v1/ops/runbooks/look-only/run", f.tok, map[string]any{"variables": map[string]string{"server": "web-1"}})
	if task.status != 201 || task.body["session_id"] == nil || task.body["status"] != "running" {
		t.Fatalf("run: %d %s", task.status, task.raw)
	}
	sid := task.body["session_id"].(string)
	evs := f.watch(t, sid, 0, func(e agent.Event) bool { return e.Type == agent.EventCompleted })
	res := evs[indexOf(evs, agent.EventToolResult)]
	if !res.IsError || !strings.Contains(res.Output, "REFUSED") || !strings.Contains(res.Output, "at most L0") {
		t.Errorf("bounded runbook: %+v", res)
	}
	if a := f.do("GET", "/api/v1/ops/approvals?status=all", f.tok, nil); strings.Contains(a.raw, sid) {
		t.Errorf("a refused command opened an approval: %s", a.raw)
	}
	got := f.do("GET", "/api/v1/ops/tasks/"+task.body["id"].(string), f.tok, nil)
	if got.body["status"] != "completed" || got.body["runbook_id"] != ro.body["id"] || got.body["finished_at"] == nil {
		t.Errorf("task mirrors its session: %s", got.raw)
	}
	// Emergency mode: an auto-approve runbook up to L1 runs the restart at once, audited as auto-approved.
	em := f.do("POST", "/api/v1/ops/runbooks", f.tok, map[string]any{"name": "emergency-restart", "prompt_template": "restart",
		"max_risk_level": 1, "auto_approve": true})
	task = f.do("POST", "/api/v1/ops/runbooks/"+em.body["id"].(string)+"/run", f.tok, nil)
	evs = f.watch(t, task.body["session_id"].(string), 0, func(e agent.Event) bool { return e.Type == agent.EventCompleted })
	if got := toolTypes(evs); got != "tool_use,tool_result,completed" {
		t.Errorf("emergency run: %s", got)
	}
	if a := f.do("GET", "/api/v1/audit/logs?action_type=approval.auto_approved", f.tok, nil); !strings.Contains(a.raw, "auto:runbook:"+em.body["id"].(string)) {
		t.Errorf("auto approval not audited: %s", a.raw)
	}
	// A plain ops task waits on the approval queue, where it can be rejected.
	ot := f.do("POST", "/api/v1/ops/tasks", f.tok, map[string]any{"type": "recovery", "title": "restart nginx", "description": "restart nginx on web-1",
		"priority": "high"})
	if ot.status != 201 {
		t.Fatalf("ops task: %d %s", ot.status, ot.raw)
	}
	evs = f.watch(t, ot.body["session_id"].(string), 0, func(e agent.Event) bool { return e.Type == agent.EventApprovalRequired })
	q := f.do("GET", "/api/v1/ops/approvals", f.tok, nil)
	if !strings.Contains(q.raw, evs[len(evs)-1].ApprovalID) {
		t.Errorf("approval queue: %s", q.raw)
	}
	if r := f.do("GET", "/api/v1/ops/tasks/"+ot.body["id"].(string), f.tok, nil); r.body["status"] != "awaiting_approval" {
		t.Errorf("task while waiting: %s", r.raw)
	}
	if r := f.do("POST", "/api/v1/ops/approvals/"+evs[len(evs)-1].ApprovalID+"/reject", f.tok, map[string]string{"reason": "not during business hours"}); r.status != 200 {
		t.Errorf("reject: %d %s", r.status, r.raw)
	}
	if r := f.do("POST", "/api/v1/ops/tasks/"+ot.body["id"].(string)+"/cancel", f.tok, nil); r.status != 200 && r.status != 409 {
		t.Errorf("cancel: %d %s", r.status, r.raw)
	}
	for _, body := range []map[string]any{{"type": "party", "title": "x", "description": "y"}, {"type": "inspection", "title": ""},
		{"type": "inspection", "title": "t", "priority": "urgent", "description": "d"}} {
		if r := f.do("POST", "/api/v1/ops/tasks", f.tok, body); r.status != 400 {
			t.Errorf("%v: %d %s", body, r.status, r.raw)
		}
	}
}
