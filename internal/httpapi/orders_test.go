package httpapi

import (
	"strings"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/inventory/sshtest"
	"github.com/it0/it0/internal/store/storetest"
)

const orderDraft = `{"name":"disk guard","trigger":{"type":"cron","cron_expression":"0 8 * * *","timezone":"Asia/Shanghai"},` +
	`"targets":{"server_ids":["web-1"]},"agent_instructions":{"prompt":"check disk; clean rotated logs above 85%; escalate restarts","max_risk_level":0},` +
	`"decision_boundary":{"escalation_rules":[{"condition":"disk above 95%","channel":"phone","priority":"critical"}]}}`

// TestStandingOrderLifecycle defines an order in conversation (confirmed by the admin), then runs it: the
// run escalates a command beyond its boundary, approval continues it, rejection aborts the next run.
func TestStandingOrderLifecycle(t *testing.T) {
	t.Parallel()
	target := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.15", Password: true})
	eng := &scriptEngine{name: agent.EngineClaudeAPI, byPrompt: map[string][]scriptStep{
		"以后每天": {{"create_standing_order", `{"name":"bad","trigger":{"type":"sometimes"},"targets":{},"agent_instructions":{"prompt":"x","max_risk_level":2}}`},
			{"create_standing_order", orderDraft}},
		"standing order SO-": {{agent.ToolRunCommand, `{"server":"web-1","command":"df -h"}`},
			{agent.ToolRunCommand, `{"server":"web-1","command":"systemctl restart nginx"}`}},
	}}
	b := setupApp(t, storetest.OpenSQLite, eng)
	_, tok := b.newTenant("orders")
	f := &invFixture{testBundle: b, tok: tok}
	r := b.do("POST", "/api/v1/inventory/credentials", tok, map[string]string{"name": "pw", "type": "ssh_password", "secret": target.Password.Reveal()})
	f.credID = r.body["id"].(string)
	f.server("web-1", target, map[string]any{"ssh_user": target.PasswordUser})
	af := &agentFixture{invFixture: f, target: target}

	// Definition: the first draft is invalid (the agent sees each bad path), the second waits for the admin.
	sid := b.do("POST", "/api/v1/agent/tasks", tok, map[string]string{"prompt": "以后每天早上8点检查 web-1 的磁盘"}).body["session_id"].(string)
	evs := af.watch(t, sid, 0, func(e agent.Event) bool { return e.Type == agent.EventApprovalRequired })
	bad := evs[indexOf(evs, agent.EventToolResult)]
	for _, p := range []string{"/trigger/type", "/targets", "/agent_instructions/max_risk_level"} {
		if !bad.IsError || !strings.Contains(bad.Output, p) {
			t.Errorf("invalid draft result lacks %s: %s", p, bad.Output)
		}
	}
	ap := evs[len(evs)-1]
	if !strings.Contains(ap.Command, `Standing order "disk guard"`) || !strings.Contains(ap.Command, "Asia/Shanghai") {
		t.Errorf("the admin is shown: %q", ap.Command)
	}
	if r := b.do("GET", "/api/v1/ops/standing-orders", tok, nil); strings.Contains(r.raw, "disk guard") {
		t.Fatal("order persisted before confirmation")
	}
	b.do("POST", "/api/v1/agent/approvals/"+ap.ApprovalID+"/approve", tok, nil)
	evs = af.watch(t, sid, ap.Seq, func(e agent.Event) bool { return e.Type == agent.EventCompleted })
	if !strings.Contains(evs[0].Output, "created SO-") {
		t.Fatalf("after confirmation: %+v", evs[0])
	}
	list := b.do("GET", "/api/v1/ops/standing-orders?status=active", tok, nil).body["items"].([]any)
	order := list[0].(map[string]any)
	id := order["id"].(string)
	if len(list) != 1 || order["defined_in_session_id"] != sid || !strings.HasPrefix(id, "SO-") {
		t.Fatalf("order: %v", order)
	}

	// Run: df -h runs; the restart is beyond L0, so the run escalates and waits.
	r = b.do("POST", "/api/v1/ops/standing-orders/"+id+"/run", tok, nil)
	if r.status != 201 || r.body["session_id"] == nil {
		t.Fatalf("run: %d %s", r.status, r.raw)
	}
	run := r.body["session_id"].(string)
	evs = af.watch(t, run, 0, func(e agent.Event) bool { return e.Type == agent.EventApprovalRequired })
	esc := evs[len(evs)-1]
	if esc.Command != "systemctl restart nginx" {
		t.Fatalf("escalation: %+v", esc)
	}
	execs := b.do("GET", "/api/v1/ops/standing-orders/"+id+"/executions", tok, nil).body["items"].([]any)
	if s := execs[0].(map[string]any)["status"]; s != "awaiting_human" {
		t.Errorf("execution while escalated: %v", s)
	}
	// An overlapping trigger is recorded as skipped, not run twice.
	if r := b.do("POST", "/api/v1/ops/standing-orders/"+id+"/run", tok, nil); r.status != 409 {
		t.Errorf("overlapping run: %d %s", r.status, r.raw)
	}
	b.do("POST", "/api/v1/ops/approvals/"+esc.ApprovalID+"/approve", tok, nil)
	af.watch(t, run, esc.Seq, func(e agent.Event) bool { return e.Type == agent.EventCompleted })
	execs = b.do("GET", "/api/v1/ops/standing-orders/"+id+"/executions", tok, nil).body["items"].([]any)
	var statuses []string
	for _, e := range execs {
		statuses = append(statuses, e.(map[string]any)["status"].(string))
	}
	if strings.Join(statuses, ",") != "skipped,completed" && strings.Join(statuses, ",") != "completed,skipped" {
		t.Errorf("executions after approval: %v", statuses)
	}

	// A rejected escalation aborts the run. It starts a moment later (every module reads the bundle's
	// clock, so the newest execution below is this run's, not the skipped one's at the same instant).
	b.now.Advance(time.Second)
	run = b.do("POST", "/api/v1/ops/standing-orders/"+id+"/run", tok, nil).body["session_id"].(string)
	evs = af.watch(t, run, 0, func(e agent.Event) bool { return e.Type == agent.EventApprovalRequired })
	if r := b.do("POST", "/api/v1/ops/approvals/"+evs[len(evs)-1].ApprovalID+"/reject", tok, map[string]string{"reason": "not at night"}); r.status != 200 {
		t.Errorf("reject: %d %s", r.status, r.raw)
	}
	if s := b.waitSessionStatus(t, tok, run, "cancelled"); s.body["status"] != "cancelled" {
		t.Errorf("rejected run's session: %v", s.raw)
	}
	// The execution follows the session's end (the decision resumes the run in the background).
	var latest map[string]any
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		latest = b.do("GET", "/api/v1/ops/standing-orders/"+id+"/executions?limit=1", tok, nil).body["items"].([]any)[0].(map[string]any)
		if latest["status"] == "aborted" || time.Now().After(deadline) {
			break
		}
	}
	if latest["status"] != "aborted" {
		t.Errorf("rejected run: %v", latest)
	}

	// Edits are audited with a diff; pause and archive follow the lifecycle; bad bodies name each path.
	if r := b.do("PATCH", "/api/v1/ops/standing-orders/"+id, tok, map[string]any{"trigger": map[string]string{"cron_expression": "30 7 * * *"}}); r.status != 200 {
		t.Errorf("patch: %d %s", r.status, r.raw)
	}
	if a := b.do("GET", "/api/v1/audit/logs?action_type=standing_order.updated", tok, nil); !strings.Contains(a.raw, `30 7 * * *`) || !strings.Contains(a.raw, `0 8 * * *`) {
		t.Errorf("diff not audited: %s", a.raw)
	}
	if r := b.do("POST", "/api/v1/ops/standing-orders/"+id+"/pause", tok, nil); r.body["status"] != "paused" {
		t.Errorf("pause: %s", r.raw)
	}
	r = b.do("POST", "/api/v1/ops/standing-orders", tok, map[string]any{"name": "x", "trigger": map[string]string{"type": "cron", "cron_expression": "61 * * * *"},
		"targets": map[string]any{}, "agent_instructions": map[string]any{"prompt": "p", "max_risk_level": 2}})
	for _, p := range []string{"/trigger/cron_expression", "/targets", "/agent_instructions/max_risk_level"} {
		if r.status != 400 || !strings.Contains(r.raw, p) {
			t.Errorf("bad order lacks %s: %d %s", p, r.status, r.raw)
		}
	}
	if r := b.do("POST", "/api/v1/ops/standing-orders/"+id+"/archive", tok, nil); r.body["status"] != "archived" {
		t.Errorf("archive: %s", r.raw)
	}
	if r := b.do("POST", "/api/v1/ops/standing-orders/"+id+"/resume", tok, nil); r.status != 409 {
		t.Errorf("resume archived: %d", r.status)
	}
}

// TestEventAndThresholdTriggers delivers an event and metric samples through the API and checks which
// orders run.
func TestEventAndThresholdTriggers(t *testing.T) {
	t.Parallel()
	f := newAgentFixture(t, nil)
	web := f.serverID(t, "web-1")
	order := func(name string, trigger map[string]any) string {
		r := f.do("POST", "/api/v1/ops/standing-orders", f.tok, map[string]any{"name": name, "trigger": trigger,
			"targets": map[string]any{"server_ids": []string{"web-1"}}, "agent_instructions": map[string]any{"prompt": "look", "max_risk_level": 0}})
		if r.status != 201 {
			t.Fatalf("%s: %d %s", name, r.status, r.raw)
		}
		return r.body["id"].(string)
	}
	onDeploy := order("after deploy", map[string]any{"type": "event", "event_type": "deployment_completed"})
	onAlert := order("on alert", map[string]any{"type": "event", "event_type": "alert_fired"})
	onDisk := order("disk watch", map[string]any{"type": "threshold",
		"threshold_condition": map[string]any{"metric_type": "disk_usage", "operator": ">=", "value": 85, "duration_seconds": 60}})
	runs := func(id string) int {
		return len(f.do("GET", "/api/v1/ops/standing-orders/"+id+"/executions", f.tok, nil).body["items"].([]any))
	}
	if r := f.do("POST", "/api/v1/ops/events", f.tok, map[string]any{"event_type": "deployment_completed", "server_id": web}); r.status != 202 {
		t.Fatalf("event: %d %s", r.status, r.raw)
	}
	if runs(onDeploy) != 1 || runs(onAlert) != 0 {
		t.Errorf("event runs: deploy %d, alert %d", runs(onDeploy), runs(onAlert))
	}
	if r := f.do("POST", "/api/v1/ops/events", f.tok, map[string]any{"event_type": "sunrise"}); r.status != 400 {
		t.Errorf("unknown event: %d", r.status)
	}
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	for i, v := range []float64{86, 90, 97} {
		f.do("POST", "/api/v1/ops/metrics", f.tok, map[string]any{"server_id": web, "metric_type": "disk_usage", "value": v,
			"at": t0.Add(time.Duration(i) * 30 * time.Second)})
	}
	if n := runs(onDisk); n != 1 {
		t.Errorf("disk held 60s at >=85%%: %d runs, want 1", n)
	}
}
