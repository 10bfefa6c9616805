package httpapi

import (
	"context"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/tenant"
)

// TestApprovalTimeoutRepair: the timeout job of an approval is queued after the approval is saved, in
// another database. When that enqueue fails (a crash in between), the approval would stay pending for
// ever; the repair pass queues it again and the timeout fires at its moment.
func TestApprovalTimeoutRepair(t *testing.T) {
	t.Parallel()
	f := newAgentFixture(t, nil)
	eng := &scriptEngine{name: agent.EngineClaudeAPI, byPrompt: map[string][]scriptStep{
		"L2": {{agent.ToolRunCommand, `{"server":"web-1","command":"apt-get install -y nginx"}`}},
	}}
	svc := newAgentService(t, f.testBundle, eng)
	f.serve(svc)
	ctx := context.Background()
	due := func() {
		t.Helper()
		if _, err := f.jobs.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
	}

	f.failSched.Store(1) // the enqueue right after the approval's insert fails
	sid := f.do("POST", "/api/v1/agent/tasks", f.tok, map[string]string{"prompt": "L2 install"}).body["session_id"].(string)
	f.watch(t, sid, 0, func(e agent.Event) bool { return e.Type == agent.EventError || e.Type == agent.EventCompleted })
	list := f.do("GET", "/api/v1/agent/approvals?status=pending&session_id="+sid, f.tok, nil)
	items, _ := list.body["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("pending approvals after the failed enqueue: %s", list.raw)
	}
	id := items[0].(map[string]any)["id"].(string)
	tctx := tenant.WithID(ctx, items[0].(map[string]any)["tenant_id"].(string))

	// Without the repair, nothing ever decides it.
	f.now.Advance(31 * time.Minute)
	due()
	if a := f.do("GET", "/api/v1/agent/approvals/"+id, f.tok, nil); a.body["status"] != "pending" {
		t.Fatalf("decided without a timeout job: %s", a.raw)
	}

	n, err := svc.EnsureApprovalTimeouts(tctx)
	if err != nil || n != 1 {
		t.Fatalf("repair: %d, %v", n, err)
	}
	due()
	a := f.do("GET", "/api/v1/agent/approvals/"+id, f.tok, nil)
	if a.body["status"] != "expired" || a.body["decided_by"] != "system:timeout" {
		t.Fatalf("after the repair pass: %s", a.raw)
	}
	// A second pass finds nothing pending and queues nothing.
	if n, err := svc.EnsureApprovalTimeouts(tctx); err != nil || n != 0 {
		t.Fatalf("second repair: %d, %v", n, err)
	}
}
