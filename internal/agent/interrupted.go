package agent

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/ops/approval"
)

// InterruptedRuns repairs the sessions whose run was cut off: the process (this one before a restart, or
// another replica) stopped while they ran. A run cut off while it carried out an approved command (its
// grant used, its result never handed to the engine) leaves a record that the command started with an
// unknown outcome, and the session asks a human again with a new approval for the same call. A run that
// had a decision to act on but had not used it waits for its resume (the approval.decided event, or
// here). Any other run is marked failed (interrupted) with an error event, so no client waits forever, and
// a message resumes it on any replica. Paused sessions keep waiting: their state is in the database. Runs
// of live replicas are left alone, and each interrupted run is taken over by one replica only (a
// compare-and-set on its status and runner). It returns how many runs it repaired.
func (s *Service) InterruptedRuns(ctx context.Context) (int, error) {
	owners, err := s.store.SessionRunners(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range owners {
		if s.live(o.SessionID) != nil {
			continue
		}
		if gone, err := s.gone(ctx, o); err != nil || !gone {
			if err != nil {
				return n, err
			}
			continue
		}
		// The approvals it opened and never paused on go first: nobody may be asked (an escalation calls
		// people) about a run that is gone. Before the take-over, so a kill in between leaves the run to
		// the next pass.
		if err := s.withdrawOrphans(ctx, o.SessionID); err != nil {
			return n, err
		}
		// What the run is repaired to is decided before it is taken over: the take-over's status change
		// is its run's end (the agent.run_ended event), and a follower must see the final one, not a
		// failure followed by a pause.
		cut, waiting, err := s.repairPlan(ctx, o.SessionID)
		if err != nil {
			return n, err
		}
		repair := len(cut) > 0 || len(waiting) > 0
		to := StatusFailed
		if repair {
			to = StatusAwaitingApproval
		}
		sess, won, err := s.interrupt(ctx, o, to)
		if err != nil {
			return n, err
		}
		if !won {
			continue // another replica took it over, or it moved on
		}
		n++
		if repair {
			if err := s.repairRun(ctx, sess, cut); err != nil {
				return n, err
			}
			continue
		}
		s.emit(ctx, sess.ID, Event{Type: EventError, Code: CodeEngine, Message: "the run was interrupted (the IT0 process running it stopped); send a message to continue"})
		s.runEnded(ctx, sess) // a standing order's execution is marked failed with it
	}
	return n, nil
}

// reasonInterrupted is why an interrupted run's pending approvals are withdrawn.
const reasonInterrupted = "the run was interrupted (the IT0 process running it stopped before it paused on this approval)"

// withdrawOrphans withdraws the pending approvals of session sessionID, whose run is gone: a run that
// paused on them is no longer running, so these were opened by a run that stopped before it stored its
// pause, and its state holds no tool call they could answer. Withdrawing (expired, with
// reasonInterrupted) ends their escalations; the run is failed, and a message continues the session.
// Withdrawn rather than kept for a repaired pause: the run's state (with, on a first run, its very
// prompt) was never stored, so no run could act on the answer in the context it was asked in.
func (s *Service) withdrawOrphans(ctx context.Context, sessionID string) error {
	sess, err := s.store.SessionGet(ctx, sessionID)
	if err != nil || sess.Status != StatusRunning {
		return err // it moved on (paused, ended) since it was listed: its approvals are its own
	}
	pending, err := s.approvals.List(ctx, sessionID, approval.Pending, 50)
	if err != nil {
		return err
	}
	for _, a := range pending {
		if _, err := s.approvals.Withdraw(ctx, a.ID, reasonInterrupted); err != nil && !errs.Is(err, errs.Conflict) {
			return fmt.Errorf("withdraw approval %s: %w", a.ID, err)
		}
		s.log.WarnContext(ctx, "approval withdrawn: its run was interrupted", slog.String("session_id", sessionID), slog.String("approval_id", a.ID))
	}
	return nil
}

// withdrawn reports whether a was withdrawn by withdrawOrphans: it answers nothing.
func withdrawn(a *approval.Approval) bool { return a.DecidedBy == approval.DecidedByInterrupted }

// repairPlan sorts the decided approvals of an interrupted run (see InterruptedRuns): cut are approved
// commands it carried out whose outcome the engine never saw, waiting are decisions it had not acted on.
// Both empty: the run is not repaired but failed.
func (s *Service) repairPlan(ctx context.Context, sessionID string) (cut, waiting []approval.Approval, err error) {
	sess, err := s.store.SessionGet(ctx, sessionID)
	if err != nil {
		return nil, nil, err
	}
	approvals, err := s.approvals.List(ctx, sess.ID, "", 50)
	if err != nil {
		return nil, nil, err
	}
	for _, a := range approvals {
		switch {
		case a.ToolUseID == "" || a.Status == approval.Pending || withdrawn(&a):
		case a.UsedAt == nil:
			waiting = append(waiting, a)
		case a.Status == approval.Approved && a.Tool == ToolRunCommand && sess.Engine != EngineClaudeCode:
			// (Claude Code runs an approved command itself, as a new call: its grants answer no call here.)
			cut = append(cut, a)
		}
	}
	if len(cut) > 0 {
		// Only a grant whose result the engine never saw was cut off.
		events, err := s.store.EventList(ctx, sess.ID, 0, 100000)
		if err != nil {
			return nil, nil, err
		}
		cut = slices.DeleteFunc(cut, func(a approval.Approval) bool {
			return slices.ContainsFunc(events, func(e Event) bool { return e.Type == EventToolResult && e.ToolUseID == a.ToolUseID })
		})
	}
	return cut, waiting, nil
}

// repairRun resumes an interrupted run that was answering decided approvals, now awaiting approval
// again (see InterruptedRuns): each approved command it cut off is asked again; with none, the standing
// decisions are acted on at once.
func (s *Service) repairRun(ctx context.Context, sess *Session, cut []approval.Approval) error {
	for i := range cut {
		if err := s.askAgain(ctx, sess, &cut[i]); err != nil {
			return err
		}
	}
	s.runEnded(ctx, sess) // a standing order's execution waits for a human again
	if len(cut) == 0 {
		s.kick(ctx, sess.ID) // the decisions stand: act on them now
	}
	return nil
}

// askAgain records that approved command a started but its outcome is unknown (the process stopped while
// it ran), and opens a new approval for the same tool call, so a human decides whether to run it again.
func (s *Service) askAgain(ctx context.Context, sess *Session, a *approval.Approval) error {
	msg := fmt.Sprintf("The approved command %q started at %s, then IT0 restarted before it finished: its outcome is unknown. "+
		"A human must decide whether to run it again.", clipRunes(a.Command, 200), a.UsedAt.Format(time.RFC3339))
	if _, err := s.audit.Record(ctx, audit.Record{Action: "agent.command_outcome_unknown", ResourceType: "approval", ResourceID: a.ID,
		Description: "started, outcome unknown (interrupted by a restart): " + clipRunes(a.Command, 200),
		Detail:      map[string]any{"session_id": sess.ID, "command": a.Command, "started_at": a.UsedAt, "approved_by": a.DecidedBy}}); err != nil {
		return err
	}
	s.emit(ctx, sess.ID, Event{Type: EventText, Text: msg})
	req := approvalRequest(sess, a.Tool, a.Command, a.ToolInput, guard.Verdict{Level: guard.Level(a.RiskLevel),
		Reason: "started before a restart, outcome unknown: run it again? (" + a.Reason + ")"})
	req.ToolUseID = a.ToolUseID // it answers the same call of the engine
	again, err := s.approvals.Open(ctx, req)
	if err != nil {
		return err
	}
	lvl := again.RiskLevel
	s.emit(ctx, sess.ID, Event{Type: EventApprovalRequired, ApprovalID: again.ID, ToolUseID: again.ToolUseID, Tool: again.Tool,
		Command: again.Command, RiskLevel: &lvl, Message: msg})
	return nil
}
