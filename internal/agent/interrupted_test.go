package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
)

// pauseEngine is an API engine in miniature, faithful to the Loop's contract on pauses: its first run calls
// run_command, which needs an approval, emits approval_required and returns the state with that call open;
// a run on that state needs the call's PendingResult (Task.CheckResume, the check behind "pending results
// but no open tool calls"), answers it and completes. hold, when set, is where the first run stops after the
// approval is opened and before approval_required (a kill before the pause).
type pauseEngine struct {
	hold func()
}

const callID = "call-1"

func (e *pauseEngine) Name() string                 { return agent.EngineClaudeAPI }
func (e *pauseEngine) Health(context.Context) error { return nil }

func (e *pauseEngine) Run(ctx context.Context, t agent.Task, emit func(agent.Event)) (agent.Outcome, error) {
	var st struct {
		Open []string `json:"open"`
	}
	if t.State != nil {
		json.Unmarshal(t.State, &st)
	}
	if err := t.CheckResume("pause", len(st.Open) > 0, st.Open); err != nil {
		return agent.Outcome{}, err
	}
	if len(st.Open) > 0 {
		p := t.PendingResults[0]
		emit(agent.Event{Type: agent.EventToolResult, ToolUseID: p.ToolUseID, Tool: p.Tool, Output: p.Result.Output, IsError: p.Result.IsError})
		emit(agent.Event{Type: agent.EventCompleted, Summary: "nginx restarted"})
		return agent.Outcome{State: json.RawMessage(`{}`), Summary: "nginx restarted"}, nil
	}
	_, err := t.Tools.Call(ctx, agent.ToolRunCommand, json.RawMessage(`{"server":"web-1","command":"systemctl restart nginx"}`))
	var ar *agent.ApprovalRequired
	if !errors.As(err, &ar) {
		return agent.Outcome{}, errors.New("run_command did not ask for an approval")
	}
	if e.hold != nil {
		e.hold()
	}
	lvl := ar.RiskLevel
	emit(agent.Event{Type: agent.EventApprovalRequired, ApprovalID: ar.ApprovalID, ToolUseID: callID, Tool: agent.ToolRunCommand,
		Command: ar.Command, RiskLevel: &lvl})
	return agent.Outcome{State: json.RawMessage(`{"open":["` + callID + `"]}`), Paused: true, TokensUsed: 10}, nil
}

// fakeFleet has one server, web-1, and counts the commands it runs.
type fakeFleet struct{ ran atomic.Int32 }

func (f *fakeFleet) Servers(context.Context, inventory.Selector) ([]inventory.Server, error) {
	return []inventory.Server{{ID: "srv-1", Name: "web-1"}}, nil
}
func (f *fakeFleet) Clusters(context.Context) ([]inventory.Cluster, error) { return nil, nil }
func (f *fakeFleet) Exec(_ context.Context, req inventory.ExecRequest, onResult func(inventory.ExecResult)) (inventory.Summary, error) {
	f.ran.Add(1)
	zero := 0
	onResult(inventory.ExecResult{ServerID: "srv-1", Server: "web-1", Status: "success", ExitCode: &zero})
	return inventory.Summary{Total: 1, OK: 1}, nil
}

type fakeTenants struct{}

func (fakeTenants) Tenant(_ context.Context, id string) (*auth.Tenant, error) {
	return &auth.Tenant{ID: id, Name: "kill"}, nil
}
func (fakeTenants) IssueToken(context.Context, string, time.Duration) (string, error) { return "", nil }
func (fakeTenants) User(_ context.Context, id string) (*auth.User, error) {
	return &auth.User{ID: id}, nil
}

// l2Guard classifies every command L2: it needs an admin's approval.
type l2Guard struct{}

func (l2Guard) Classify(context.Context, string) guard.Verdict {
	return guard.Verdict{Level: guard.L2, Reason: "restarts a service"}
}
func (l2Guard) ClassifyTargets(context.Context, string, []guard.Target) guard.Verdict {
	return guard.Verdict{Level: guard.L2, Reason: "restarts a service"}
}

// killBundle is two replicas of the agent on one database: a, whose runs the test kills, and b, the
// survivor (it counts a's runner as gone).
type killBundle struct {
	db        *store.DB
	ctx       context.Context // the tenant's
	approvals *approval.Service
	fleet     *fakeFleet
	a, b      *agent.Service
	ended     chan *agent.Session // b's run ends
	killed    chan string         // the session a run of a stopped at a kill point for
	release   chan struct{}       // closed at the end: a's stopped runs go on (and are ignored)
}

func setupKill(t *testing.T, faults func(a *agent.Service, kill func(string)), hold bool) *killBundle {
	t.Helper()
	db := storetest.OpenSQLite(t)
	tn := storetest.NewTenant(t, db, "kill")
	log, err := audit.New(db, bytes.Repeat([]byte{7}, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	kb := &killBundle{db: db, ctx: tenant.WithID(context.Background(), tn.ID), fleet: &fakeFleet{},
		approvals: approval.New(approval.Config{}, db, log), ended: make(chan *agent.Session, 10),
		killed: make(chan string, 1), release: make(chan struct{})}
	kill := func(sessionID string) { kb.killed <- sessionID; <-kb.release }
	eng := &pauseEngine{}
	if hold {
		eng.hold = func() { kill("") }
	}
	replica := func(name string) *agent.Service {
		s, err := agent.New(agent.Config{Approvals: kb.approvals}, db, []agent.Engine{eng}, kb.fleet, fakeTenants{}, log, l2Guard{}, agent.NewHub(64))
		if err != nil {
			t.Fatal(err)
		}
		s.SetRunner(name, func(_ context.Context, runner string) (bool, error) { return runner == name, nil })
		return s
	}
	kb.a, kb.b = replica("a"), replica("b")
	kb.b.OnRunEnd(func(_ context.Context, sess *agent.Session) { kb.ended <- sess })
	if faults != nil {
		faults(kb.a, kill)
	}
	t.Cleanup(func() {
		close(kb.release)
		kb.a.Close()
		kb.b.Close()
	})
	return kb
}

// start starts a run on a (a message to an idle session) and waits until it is killed.
func (kb *killBundle) start(t *testing.T) string {
	t.Helper()
	sess := &agent.Session{ID: uuid.NewString(), UserID: uuid.NewString(), Engine: agent.EngineClaudeAPI, Status: agent.StatusCompleted,
		Title: "nginx", ServerIDs: []string{}, MaxTurns: 5, MaxRiskLevel: 2, Origin: "manual", CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
	if err := kb.db.SessionCreate(kb.ctx, sess); err != nil {
		t.Fatal(err)
	}
	if _, err := kb.a.SendMessage(kb.ctx, sess.ID, "restart nginx on web-1"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-kb.killed:
	case <-time.After(30 * time.Second):
		t.Fatal("the run never reached its kill point")
	}
	return sess.ID
}

func (kb *killBundle) session(t *testing.T, id string) *agent.Session {
	t.Helper()
	s, err := kb.db.SessionGet(kb.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (kb *killBundle) approvalsOf(t *testing.T, sessionID string) []approval.Approval {
	t.Helper()
	list, err := kb.approvals.List(kb.ctx, sessionID, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("approvals of the session: %+v, want one", list)
	}
	return list
}

// decide decides approval id as an admin; errs.Conflict when it is no longer pending.
func (kb *killBundle) decide(id string) error {
	ctx := auth.WithPrincipal(kb.ctx, auth.Principal{UserID: uuid.NewString(), Role: auth.RoleAdmin})
	_, err := kb.approvals.Decide(ctx, id, approval.Decision{Approve: true, Reason: "go"})
	return err
}

// waitEnd waits for b's run of sessionID to end and returns the session as it ended.
func (kb *killBundle) waitEnd(t *testing.T, sessionID string) *agent.Session {
	t.Helper()
	for {
		select {
		case s := <-kb.ended:
			if s.ID == sessionID && s.Status != agent.StatusRunning {
				return kb.session(t, sessionID)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("the resumed run never ended: %+v", kb.session(t, sessionID))
		}
	}
}

// TestKillDuringPause kills a run (its goroutine stops for good, as with SIGKILL) at each point of its
// pause on an approval, then lets the surviving replica repair and decide: the session either resumes and
// completes (the approved command runs once), or is failed with its approval withdrawn (nobody is asked
// about a dead run); never paused on a state its resume cannot continue.
func TestKillDuringPause(t *testing.T) {
	t.Parallel()

	// Ensure a kill after the pause is stored (state and status in one write) leaves a session its
	// resume on another replica continues: the state holds the open call the approval answers.
	t.Run("AfterPauseStored", func(t *testing.T) {
		t.Parallel()
		kb := setupKill(t, func(a *agent.Service, kill func(string)) { a.SetPauseFaults(nil, kill) }, false)
		sid := kb.start(t)
		if s := kb.session(t, sid); s.Status != agent.StatusAwaitingApproval || !bytes.Contains(s.State, []byte(callID)) || s.TokensUsed != 10 {
			t.Fatalf("after the kill: status %s, state %s, tokens %d", s.Status, s.State, s.TokensUsed)
		}
		if n, err := kb.b.InterruptedRuns(kb.ctx); err != nil || n != 0 {
			t.Fatalf("a paused session was repaired: %d %v", n, err)
		}
		ap := kb.approvalsOf(t, sid)[0]
		if ap.ToolUseID != callID {
			t.Fatalf("the approval answers tool call %q, want %q", ap.ToolUseID, callID)
		}
		if err := kb.decide(ap.ID); err != nil {
			t.Fatal(err)
		}
		if err := kb.b.ResumeSession(kb.ctx, sid); err != nil { // the approval.decided event's work
			t.Fatal(err)
		}
		if s := kb.waitEnd(t, sid); s.Status != agent.StatusCompleted {
			t.Fatalf("the resumed run ended %s: %s", s.Status, s.Error)
		}
		if n := kb.fleet.ran.Load(); n != 1 {
			t.Fatalf("the approved command ran %d times, want once", n)
		}
	})

	// Ensure a kill before the pause is stored (the approval opened and linked to its tool call, the
	// session still running) fails the session and withdraws the approval: its escalation ends, and a
	// late answer is refused instead of resuming a run whose state never held the call.
	t.Run("BeforePauseStored", func(t *testing.T) {
		t.Parallel()
		kb := setupKill(t, func(a *agent.Service, kill func(string)) { a.SetPauseFaults(kill, nil) }, false)
		sid := kb.start(t)
		kb.checkWithdrawn(t, sid, callID)
	})

	// Ensure a kill inside the engine, after the tool call opened its approval and before the run
	// paused, ends the same way.
	t.Run("BeforePause", func(t *testing.T) {
		t.Parallel()
		kb := setupKill(t, nil, true)
		sid := kb.start(t)
		kb.checkWithdrawn(t, sid, "")
	})
}

// checkWithdrawn repairs the killed run of sessionID on b and checks it is failed, its one approval
// (linked to toolUseID) withdrawn and no longer decidable, and a message continues the session.
func (kb *killBundle) checkWithdrawn(t *testing.T, sid, toolUseID string) {
	t.Helper()
	if s := kb.session(t, sid); s.Status != agent.StatusRunning {
		t.Fatalf("after the kill the session is %s, want running", s.Status)
	}
	if ap := kb.approvalsOf(t, sid)[0]; ap.Status != approval.Pending || ap.ToolUseID != toolUseID {
		t.Fatalf("after the kill: approval %s, tool call %q", ap.Status, ap.ToolUseID)
	}
	if n, err := kb.b.InterruptedRuns(kb.ctx); err != nil || n != 1 {
		t.Fatalf("repaired %d runs (%v), want 1", n, err)
	}
	if s := kb.session(t, sid); s.Status != agent.StatusFailed {
		t.Fatalf("the interrupted run is %s, want failed", s.Status)
	}
	ap := kb.approvalsOf(t, sid)[0]
	if ap.Status != approval.Expired || ap.DecidedBy != approval.DecidedByInterrupted || ap.DecisionReason == "" {
		t.Fatalf("the interrupted run's approval: %s by %s (%s), want expired by %s", ap.Status, ap.DecidedBy, ap.DecisionReason, approval.DecidedByInterrupted)
	}
	if err := kb.decide(ap.ID); !errs.Is(err, errs.Conflict) {
		t.Fatalf("deciding the withdrawn approval: %v, want a conflict", err)
	}
	// A second pass (another survivor) finds nothing left to repair.
	if n, err := kb.b.InterruptedRuns(kb.ctx); err != nil || n != 0 {
		t.Fatalf("second pass repaired %d (%v)", n, err)
	}
	if err := kb.b.ResumeSession(kb.ctx, sid); err != nil { // the withdrawal's approval.decided event
		t.Fatal(err)
	}
	if s := kb.session(t, sid); s.Status != agent.StatusFailed {
		t.Fatalf("the withdrawal's event moved the session to %s", s.Status)
	}
	if n := kb.fleet.ran.Load(); n != 0 {
		t.Fatalf("the command ran %d times, want never", n)
	}
}
