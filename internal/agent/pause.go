package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/ops/approval"
)

// pause.go is the agent's side of approvals: a tool call that needs a human opens an approval (the
// approval service in internal/ops/approval owns it), the session pauses, and when the approval is
// decided (the approval.decided event, OnApprovalEvent) the session resumes and the run answers the call.

// Approvals is what the agent needs of the approval service (approval.Service).
type Approvals interface {
	// Open records a pending approval, or returns the one already pending for the same call.
	Open(ctx context.Context, r approval.Request) (*approval.Approval, error)
	// AutoApprove records an approval decided and used at once (the session's bounds allowed it).
	AutoApprove(ctx context.Context, r approval.Request, by, label string, maxRiskLevel int) (*approval.Approval, error)
	List(ctx context.Context, sessionID, status string, limit int) ([]approval.Approval, error)
	// Use marks a decided approval used; errs.Conflict when used already or still pending.
	Use(ctx context.Context, id string) error
	SetToolUse(ctx context.Context, id, toolUseID string) error
	// Withdraw ends a pending approval whose run is gone (expired, decided by the system, with reason);
	// errs.Conflict when it is no longer pending.
	Withdraw(ctx context.Context, id, reason string) (*approval.Approval, error)
}

// approvalRequest is the request of an approval for a tool call of sess.
func approvalRequest(sess *Session, tool, command string, input json.RawMessage, v guard.Verdict) approval.Request {
	return approval.Request{SessionID: sess.ID, Origin: sess.Origin, OriginID: sess.OriginID, UserID: sess.UserID, Tool: tool,
		Command: command, Input: input, Level: v.Level, Reason: v.Reason}
}

// openApproval opens (or finds) the pending approval of a tool call of session sessionID.
func (s *Service) openApproval(ctx context.Context, sessionID, tool, command string, input json.RawMessage, v guard.Verdict) (*approval.Approval, error) {
	sess, err := s.store.SessionGet(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	return s.approvals.Open(ctx, approvalRequest(sess, tool, command, input, v))
}

// OnApprovalEvent is the agent's subscription to approval events (consumer group "agent"): a decided
// approval lets its session go on — or stops an unattended one a refusal ended (see resume). It is
// idempotent: a session that is not paused, or still waits on another approval, is left alone.
func (s *Service) OnApprovalEvent(ctx context.Context, e approval.Event) error {
	if e.Type != approval.EventDecided || e.SessionID == "" {
		return nil
	}
	ctx = audit.WithActor(ctx, audit.Actor{Type: audit.ActorSystem, ID: "approval:" + e.ApprovalID})
	return s.ResumeSession(ctx, e.SessionID)
}

// JobResume is the durable job that continued a session after a decision in earlier versions; jobs still
// queued resume their session (the approval.decided event does it now).
const JobResume = "session.resume"

// JobKinds are the durable jobs the agent runs; HandleJob runs them.
var JobKinds = []string{JobResume}

// HandleJob runs one of the agent's durable jobs for the tenant in ctx. Arguments it cannot read are a
// permanent failure (errs.Invalid).
func (s *Service) HandleJob(ctx context.Context, kind string, raw json.RawMessage) error {
	var args struct {
		SessionID string `json:"session_id"`
	}
	if err := json.Unmarshal(raw, &args); err != nil {
		return errs.Invalidf("args", "%s job arguments: %v", kind, err)
	}
	switch kind {
	case JobResume:
		return s.ResumeSession(ctx, args.SessionID)
	}
	return errs.Invalidf("kind", "the agent has no job %q", kind)
}

// ResumeSession continues a paused session once all its approvals are decided, or stops an unattended one
// that a refusal ended. It is safe to run more than once: a session that is not paused, or still waits on
// an approval, is left alone; if the session's run has not returned yet, the run resumes it when it does.
func (s *Service) ResumeSession(ctx context.Context, sessionID string) error {
	s.mu.Lock()
	if _, live := s.running[sessionID]; live {
		s.resumeWanted[sessionID] = true
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	return s.resume(ctx, sessionID)
}

// ResumeDecided resumes every paused session of the tenant in ctx whose approvals are all decided: the
// repair pass for a decision whose event was lost with the process (the in-process bus keeps nothing
// across a restart). It returns how many paused sessions it looked at.
func (s *Service) ResumeDecided(ctx context.Context) (int, error) {
	list, err := s.store.SessionList(ctx, StatusAwaitingApproval, 1000)
	if err != nil {
		return 0, err
	}
	for i := range list {
		if err := s.ResumeSession(ctx, list[i].ID); err != nil {
			return i, fmt.Errorf("resume session %s: %w", list[i].ID, err)
		}
	}
	return len(list), nil
}

// useGrant consumes an approved, unused grant for exactly command in the session. It reports whether one
// was found (and is now used).
func (s *Service) useGrant(ctx context.Context, sessionID, command string) (bool, error) {
	approved, err := s.approvals.List(ctx, sessionID, approval.Approved, 50)
	if err != nil {
		return false, err
	}
	for _, a := range approved {
		if a.Command != command || a.UsedAt != nil {
			continue
		}
		switch err := s.approvals.Use(ctx, a.ID); {
		case err == nil:
			return true, nil
		case errs.Is(err, errs.Conflict):
			continue // used by a concurrent caller
		default:
			return false, err
		}
	}
	return false, nil
}

// kick resumes a session in the background, in the service's lifetime, keeping ctx's tenant, actor and
// principal but not its cancellation.
func (s *Service) kick(ctx context.Context, sessionID string) {
	bctx := context.WithoutCancel(ctx)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if s.ctx.Err() != nil {
			return // shutting down: the repair pass resumes it after the restart
		}
		if err := s.ResumeSession(bctx, sessionID); err != nil {
			s.log.ErrorContext(bctx, "resume after a decision", slog.String("session_id", sessionID), slog.String("error", err.Error()))
		}
	}()
}

// resume starts the run that answers a paused session's decided approvals. It claims the session in
// running first, so two deciders (or a decider and the ending run) cannot both resume it.
func (s *Service) resume(ctx context.Context, sessionID string) error {
	s.mu.Lock()
	if _, live := s.running[sessionID]; live {
		s.mu.Unlock()
		return nil
	}
	s.running[sessionID] = &runHandle{cancel: func() {}} // the claim; launch replaces it
	s.mu.Unlock()
	launched := false
	defer func() {
		if !launched {
			s.mu.Lock()
			delete(s.running, sessionID)
			s.mu.Unlock()
		}
	}()
	sess, err := s.store.SessionGet(ctx, sessionID)
	if errs.Is(err, errs.NotFound) {
		return nil // the tenant or the session is gone
	}
	if err != nil || sess.Status != StatusAwaitingApproval {
		return err
	}
	decided, err := s.approvals.List(ctx, sess.ID, "", 50)
	if err != nil {
		return err
	}
	for i := range decided {
		d := &decided[i]
		if d.Status == approval.Pending {
			return nil // still waiting on another decision
		}
		if withdrawn(d) {
			continue // its run was interrupted before it paused: it answers nothing
		}
		if sess.Unattended() && d.Status != approval.Approved && d.UsedAt == nil {
			// An unattended run whose escalation was refused (or timed out) stops there: nobody is in the
			// loop to steer it elsewhere.
			if _, err := s.Cancel(ctx, sess.ID); err != nil && !errs.Is(err, errs.Conflict) {
				return err
			}
			return nil
		}
	}
	if err := s.claim(ctx, sess, StatusAwaitingApproval); errs.Is(err, errs.Conflict) {
		return nil // another replica resumed it
	} else if err != nil {
		return err
	}
	task := &TaskRecord{ID: uuid.NewString(), SessionID: sess.ID, Prompt: "(resumed after approval)", Status: StatusRunning, CreatedAt: s.now()}
	if err := s.store.TaskCreate(ctx, task); err != nil {
		return err
	}
	// Every approval decided since the pause and not yet answered answers one open tool call (in the run).
	var answers []approval.Approval
	var notes []string
	for i := len(decided) - 1; i >= 0; i-- { // oldest first
		d := &decided[i]
		if d.Status == approval.Pending || d.UsedAt != nil || withdrawn(d) {
			continue
		}
		if sess.Engine == EngineClaudeCode {
			// Claude Code re-runs the command itself; the hook then finds and uses the grant.
			notes = append(notes, claudeResumeNote(d))
			if d.Status != approval.Approved {
				s.approvals.Use(ctx, d.ID)
			}
			continue
		}
		if d.ToolUseID == "" {
			continue
		}
		answers = append(answers, *d)
	}
	launched = true
	s.launch(ctx, sess, task, strings.Join(notes, "\n"), answers)
	return nil
}

func claudeResumeNote(a *approval.Approval) string {
	if a.Status == approval.Approved {
		return fmt.Sprintf("Approval %s was granted: run exactly this command again now, once: %s", a.ID, a.Command)
	}
	return fmt.Sprintf("Approval %s was %s (%s): do not run %q; tell the admin what you would do instead.", a.ID, a.Status, a.DecisionReason, a.Command)
}

// resultFor runs an approved command exactly once (marking the grant used first, so a crash between the
// two can never run it twice) or explains a rejection, as the tool result the model will read.
func (s *Service) resultFor(ctx context.Context, sess *Session, a *approval.Approval) ToolResult {
	if err := s.approvals.Use(ctx, a.ID); err != nil {
		return ToolResult{IsError: true, Output: "the approval could not be used: " + err.Error()}
	}
	if a.Status != approval.Approved {
		return ToolResult{IsError: true, Output: fmt.Sprintf("The command was not approved (%s by %s: %q). Do not run it; propose a safer alternative or stop.",
			a.Status, a.DecidedBy, a.DecisionReason)}
	}
	if a.Tool != ToolRunCommand {
		for _, p := range s.toolProviders() {
			if res, handled := p.Approved(ctx, sess, a); handled {
				return res
			}
		}
		return ToolResult{IsError: true, Output: "no tool can carry out approved " + a.Tool}
	}
	var in runCommandInput
	if err := json.Unmarshal(a.ToolInput, &in); err != nil {
		return ToolResult{IsError: true, Output: "approved tool input is unreadable: " + err.Error()}
	}
	ctx = audit.WithAuthority(s.revealContext(ctx, a), fmt.Sprintf("approval %s (L%d) approved by %s", a.ID, a.RiskLevel, a.DecidedBy))
	return s.execTool(ctx, sess.ID, in, guard.Level(a.RiskLevel))
}
