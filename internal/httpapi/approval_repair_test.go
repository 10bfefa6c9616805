package httpapi

import (
	"context"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/tenant"
)

// TestApprovalTimeoutWithoutTrigger: an approval's precise timeout trigger is queued after the approval is
// saved, in another database. A crash (here: a failing job database) between the two leaves no trigger at
// all; the approval is still decided at its timeout, by the tenant's periodic sweep, which reads the
// approvals themselves and was queued independently of any approval (at startup, as internal/app's repair
// pass does). The decision then resumes the session, which sees the rejection.
func TestApprovalTimeoutWithoutTrigger(t *testing.T) {
	t.Parallel()
	eng := &scriptEngine{name: agent.EngineClaudeAPI, byPrompt: map[string][]scriptStep{
		"L2": {{agent.ToolRunCommand, `{"server":"web-1","command":"apt-get install -y nginx"}`}},
	}}
	f := newAgentFixtureWith(t, appKnobs{engines: []agent.Engine{eng}, manual: true}) // the sweep runs at RunDue
	ctx := context.Background()
	due := func() {
		t.Helper()
		if _, err := f.jobs.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tid := f.tenantOf(f.tok)
	if err := f.approvals.EnsureTick(tenant.WithID(ctx, tid)); err != nil { // startup
		t.Fatal(err)
	}
	due()

	f.failSched.Store(2) // both enqueues after the approval's insert fail: its trigger, and the tick check
	sid := f.do("POST", "/api/v1/agent/tasks", f.tok, map[string]string{"prompt": "L2 install"}).body["session_id"].(string)
	f.watch(t, sid, 0, func(e agent.Event) bool { return e.Type == agent.EventApprovalRequired || e.Type == agent.EventError })
	list := f.do("GET", "/api/v1/agent/approvals?status=pending&session_id="+sid, f.tok, nil)
	items, _ := list.body["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("pending approvals after the failed enqueue: %s", list.raw)
	}
	id := items[0].(map[string]any)["id"].(string)
	if n := f.failSched.Load(); n > 0 {
		t.Fatalf("%d injected failures unused: the approval did not try to queue its trigger", n)
	}

	// Before its timeout, the tick decides nothing.
	f.now.Advance(29 * time.Minute)
	due()
	if a := f.do("GET", "/api/v1/agent/approvals/"+id, f.tok, nil); a.body["status"] != "pending" {
		t.Fatalf("decided before its timeout: %s", a.raw)
	}
	f.now.Advance(2 * time.Minute)
	due()
	a := f.do("GET", "/api/v1/agent/approvals/"+id, f.tok, nil)
	if a.body["status"] != "expired" || a.body["decided_by"] != "system:timeout" {
		t.Fatalf("after the timeout: %s", a.raw)
	}
	// The decision reaches the session through its event: the run answers the call with the refusal.
	evs := f.watch(t, sid, 0, func(e agent.Event) bool { return e.Type == agent.EventCompleted || e.Type == agent.EventError })
	if last := evs[len(evs)-1]; last.Type != agent.EventCompleted {
		t.Fatalf("session after the timeout: %+v", last)
	}
}
