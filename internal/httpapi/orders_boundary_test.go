package httpapi

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/inventory/sshtest"
	"github.com/it0/it0/internal/ops"
	"github.com/it0/it0/internal/store/storetest"
)

// noticeLog records the notices of standing-order runs.
type noticeLog struct {
	mu   sync.Mutex
	list []ops.Notice
	// added is closed (and replaced) when a notice arrives.
	added chan struct{}
}

func (n *noticeLog) Notify(_ context.Context, x ops.Notice) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.list = append(n.list, x)
	if n.added != nil {
		close(n.added)
	}
	n.added = make(chan struct{})
	return nil
}

// report waits for the report of execution id (reports go out from the run's standing_order.executed
// event, after the execution changed) and returns it.
func (n *noticeLog) report(t *testing.T, id string) ops.Notice {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		n.mu.Lock()
		for _, x := range n.list {
			if x.Key == "so-report:"+id {
				n.mu.Unlock()
				return x
			}
		}
		if n.added == nil {
			n.added = make(chan struct{})
		}
		added := n.added
		n.mu.Unlock()
		select {
		case <-added:
		case <-timeout:
			t.Fatalf("no report of execution %s: %+v", id, n.all())
		}
	}
}

func (n *noticeLog) all() []ops.Notice {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]ops.Notice(nil), n.list...)
}

// orderFixture is a tenant with one server (a real sshd, logged into as the current user, so the test can
// look at the files a run changes), the scripted engine and a record of the reports.
type orderFixture struct {
	*agentFixture
	notices *noticeLog
}

func newOrderFixture(t *testing.T, eng *scriptEngine, more ...func(*appKnobs)) *orderFixture {
	t.Helper()
	target := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.17"})
	k := appKnobs{engines: []agent.Engine{eng}}
	for _, m := range more {
		m(&k)
	}
	b := setupAppWith(t, storetest.OpenSQLite, k)
	notices := &noticeLog{}
	b.notifier = notices // the app's notifier hands the reports to it from now on
	_, tok := b.newTenant("boundary")
	f := &invFixture{testBundle: b, tok: tok}
	r := b.do("POST", "/api/v1/inventory/credentials", tok, map[string]string{"name": "key", "type": "ssh_key", "secret": target.UserKey.Reveal()})
	if r.status != 201 {
		t.Fatalf("credential: %d %s", r.status, r.raw)
	}
	f.credID = r.body["id"].(string)
	f.server("web-1", target, nil)
	return &orderFixture{agentFixture: &agentFixture{invFixture: f, target: target}, notices: notices}
}

// run starts order id by hand and waits until its execution leaves running; it returns the execution.
func (f *orderFixture) run(t *testing.T, id string) map[string]any {
	t.Helper()
	r := f.do("POST", "/api/v1/ops/standing-orders/"+id+"/run", f.tok, nil)
	if r.status != 201 {
		t.Fatalf("run: %d %s", r.status, r.raw)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		e := f.do("GET", "/api/v1/ops/standing-orders/"+id+"/executions?limit=1", f.tok, nil).body["items"].([]any)[0].(map[string]any)
		if e["status"] != ops.ExecRunning {
			return e
		}
		if time.Now().After(deadline) {
			sid, _ := e["session_id"].(string)
			t.Fatalf("execution still running: %v\nsession: %s\nevents: %s", e, f.do("GET", "/api/v1/agent/sessions/"+sid, f.tok, nil).raw,
				f.do("GET", "/api/v1/agent/sessions/"+sid+"/events", f.tok, nil).raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStandingOrderActsInsideBoundary: an order with max_risk_level 1 deletes week-old logs on a real
// server on its own — no approval waits, no escalation starts — the approval is recorded as given by the
// order, and the run is reported as having acted.
func TestStandingOrderActsInsideBoundary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old := time.Now().Add(-10 * 24 * time.Hour)
	for name, mtime := range map[string]time.Time{"old.log": old, "fresh.log": time.Now(), "old.txt": old} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	cleanup := "find " + dir + " -name '*.log' -mtime +7 -delete"
	eng := &scriptEngine{name: agent.EngineClaudeAPI, byPrompt: map[string][]scriptStep{
		"standing order SO-": {{agent.ToolRunCommand, `{"server":"web-1","command":"df -h"}`},
			{agent.ToolRunCommand, `{"server":"web-1","command":` + jsonString(cleanup) + `}`}},
	}}
	f := newOrderFixture(t, eng)
	r := f.do("POST", "/api/v1/ops/standing-orders", f.tok, map[string]any{"name": "log cleanup",
		"trigger": map[string]string{"type": "manual"}, "targets": map[string]any{"server_ids": []string{"web-1"}},
		"agent_instructions": map[string]any{"prompt": "delete application logs older than 7 days", "max_risk_level": 1}})
	if r.status != 201 {
		t.Fatalf("order: %d %s", r.status, r.raw)
	}
	id := r.body["id"].(string)

	e := f.run(t, id)
	if e["status"] != ops.ExecCompleted {
		t.Fatalf("execution: %v", e)
	}
	for name, want := range map[string]bool{"old.log": false, "fresh.log": true, "old.txt": true} {
		if _, err := os.Stat(filepath.Join(dir, name)); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", name, err == nil, want)
		}
	}
	sid := e["session_id"].(string)
	items := f.do("GET", "/api/v1/agent/approvals?status=approved&session_id="+sid, f.tok, nil).body["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("approvals of the run: %v", items)
	}
	a := items[0].(map[string]any)
	if a["command"] != cleanup || a["decided_by"] != "standing_order:"+id || a["used_at"] == nil ||
		!strings.Contains(a["decision_reason"].(string), "auto-approved by standing order "+id) {
		t.Errorf("the approval must be the order's: %v", a)
	}
	if p := f.do("GET", "/api/v1/agent/approvals?status=pending", f.tok, nil).body["items"].([]any); len(p) != 0 {
		t.Errorf("an approval waits: %v", p)
	}
	au := f.do("GET", "/api/v1/audit/logs?action_type=approval.auto_approved", f.tok, nil)
	if !strings.Contains(au.raw, "L1 auto-approved by standing order "+id) {
		t.Errorf("auto-approval not audited: %s", au.raw)
	}
	if esc := f.do("GET", "/api/v1/comm/escalations", f.tok, nil); strings.Contains(esc.raw, sid) {
		t.Errorf("an escalation started: %s", esc.raw)
	}
	recs := f.do("GET", "/api/v1/inventory/command-records?session_id="+sid, f.tok, nil).body["items"].([]any)
	if len(recs) != 2 {
		t.Errorf("command records: %v", recs)
	}
	report := f.notices.report(t, e["id"].(string))
	if !strings.Contains(report.Subject, id+" log cleanup") || !strings.Contains(report.Body, cleanup) ||
		!strings.Contains(report.Subject, "已自动处理") {
		t.Errorf("report: %+v", report)
	}
}

// TestReportNamesApprover: an order with max_risk_level 0 escalates the same cleanup; the admin approves
// it; the report says who approved it instead of "acted on its own".
func TestReportNamesApprover(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cleanup := "find " + dir + " -name '*.log' -mtime +7 -delete"
	eng := &scriptEngine{name: agent.EngineClaudeAPI, byPrompt: map[string][]scriptStep{
		"standing order SO-": {{agent.ToolRunCommand, `{"server":"web-1","command":` + jsonString(cleanup) + `}`}},
	}}
	f := newOrderFixture(t, eng)
	r := f.do("POST", "/api/v1/ops/standing-orders", f.tok, map[string]any{"name": "log cleanup",
		"trigger": map[string]string{"type": "manual"}, "targets": map[string]any{"server_ids": []string{"web-1"}},
		"agent_instructions": map[string]any{"prompt": "delete application logs older than 7 days", "max_risk_level": 0}})
	if r.status != 201 {
		t.Fatalf("order: %d %s", r.status, r.raw)
	}
	id := r.body["id"].(string)
	e := f.run(t, id)
	if e["status"] != ops.ExecAwaitingHuman {
		t.Fatalf("execution: %v", e)
	}
	items := f.do("GET", "/api/v1/agent/approvals?status=pending", f.tok, nil).body["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("pending: %v", items)
	}
	if r := f.do("POST", "/api/v1/agent/approvals/"+items[0].(map[string]any)["id"].(string)+"/approve", f.tok, nil); r.status != 200 {
		t.Fatalf("approve: %d %s", r.status, r.raw)
	}
	f.waitSessionStatus(t, f.tok, e["session_id"].(string), "completed")
	report := f.notices.report(t, e["id"].(string))
	// The report names people by their name (the tenant admin's defaults to its email's local part).
	me := f.do("GET", "/api/v1/auth/me", f.tok, nil).body["user"].(map[string]any)
	if me["name"] != "admin" {
		t.Fatalf("approver's name: %v", me)
	}
	if !strings.Contains(report.Subject, "经 admin 批准") || strings.Contains(report.Subject, "自动") {
		t.Errorf("report: %+v", report)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// waitSessionStatus polls session sid until it has status (a decision resumes or stops a session in the
// background), for at most 10 seconds; it returns the last reply.
func (b *testBundle) waitSessionStatus(t *testing.T, tok, sid, status string) response {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := b.do("GET", "/api/v1/agent/sessions/"+sid, tok, nil)
		if r.body["status"] == status || time.Now().After(deadline) {
			return r
		}
		time.Sleep(10 * time.Millisecond)
	}
}
