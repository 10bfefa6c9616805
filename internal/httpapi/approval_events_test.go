package httpapi

import (
	"strings"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/store/storetest"
)

// TestApprovalEventsRedelivered: the bus delivers at least once, so every subscriber of approval events
// must be idempotent. Handing comm the approval.requested event of an escalation again starts no second
// chain and sends nothing twice; handing the agent and comm the approval.decided event again resumes the
// session once and finishes the escalation once.
func TestApprovalEventsRedelivered(t *testing.T) {
	t.Parallel()
	f := newCommFixture(t, storetest.OpenSQLite)
	cs := f.comm.cur.Load()
	sid, id := f.escalate(t, "critical: standing order SO-test")
	requested := approval.Event{Type: approval.EventRequested, TenantID: f.tid, ApprovalID: id, SessionID: sid,
		Status: approval.Pending, Origin: approval.OriginStandingOrder}
	f.due(t) // the first step is sent
	sent := len(f.messages(t, id))
	if sent == 0 {
		t.Fatal("the first step sent nothing")
	}
	for range 2 {
		if err := cs.OnApprovalEvent(f.ctx(), requested); err != nil {
			t.Fatal(err)
		}
	}
	f.due(t)
	if n := len(f.messages(t, id)); n != sent {
		t.Errorf("after the event was handed out again: %d messages, want %d", n, sent)
	}
	started := f.do("GET", "/api/v1/audit/logs?action_type=escalation.started", f.tok, nil)
	if n := strings.Count(started.raw, `"resource_id":"`+id+`"`); n != 1 {
		t.Errorf("escalation.started %d times: %s", n, started.raw)
	}

	// An admin approves through the API; the decided event is then handed out twice more.
	if r := f.do("POST", "/api/v1/agent/approvals/"+id+"/approve", f.tok, nil); r.status != 200 {
		t.Fatalf("approve: %d %s", r.status, r.raw)
	}
	f.waitSession(t, sid, func(s *agent.Session) bool { return s.Status == agent.StatusCompleted })
	// The run's completed event is stored after its status: wait for it before counting.
	deadline := time.Now().Add(30 * time.Second)
	for completedEvents(t, f, sid) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	f.settleEvents()
	decided := approval.Event{Type: approval.EventDecided, TenantID: f.tid, ApprovalID: id, SessionID: sid, Status: approval.Approved}
	for range 2 {
		if err := f.agentSvc.Load().OnApprovalEvent(f.ctx(), decided); err != nil {
			t.Fatal(err)
		}
		if err := cs.OnApprovalEvent(f.ctx(), decided); err != nil {
			t.Fatal(err)
		}
	}
	if s := f.waitSession(t, sid, func(s *agent.Session) bool { return true }); s.Status != agent.StatusCompleted {
		t.Errorf("session after the decision was handed out again: %s", s.Status)
	}
	if completed := completedEvents(t, f, sid); completed != 1 {
		t.Errorf("the session ran to completion %d times, want once", completed)
	}
	if e := f.do("GET", "/api/v1/comm/escalations/"+id, f.tok, nil); e.body["status"] != "answered" || e.body["answered_channel"] != "api" {
		t.Errorf("escalation: %s", e.raw)
	}
	if n := len(f.messages(t, id)); n != sent {
		t.Errorf("the decision sent %d more messages", n-sent)
	}
}

// completedEvents counts the completed events stored for session sid.
func completedEvents(t *testing.T, f *commFixture, sid string) int {
	t.Helper()
	evs, err := f.agentSvc.Load().Events(f.ctx(), sid, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Type == agent.EventCompleted {
			n++
		}
	}
	return n
}
