package agent

import (
	"context"
	"log/slog"
	"time"

	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/logging"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/tenant"
)

func (s *Service) live(sessionID string) *runHandle {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running[sessionID]
}

// waitStopped waits (boundedly) for run h to record its end.
func (s *Service) waitStopped(h *runHandle) bool {
	if h.done == nil {
		return false
	}
	select {
	case <-h.done:
		return true
	case <-time.After(30 * time.Second):
		return false
	}
}

// launchHere starts a run of sess in the background, in this process (launch.go decides where runs go).
// The run's context descends from the service, not from the request, so it survives the request and is
// cancelled by Cancel or Close.
func (s *Service) launchHere(ctx context.Context, sess *Session, task *TaskRecord, prompt string, answers []approval.Approval) {
	tid, _ := tenant.ID(ctx)
	runCtx, cancel := context.WithCancel(withRunStart(logging.WithSessionID(tenant.WithID(audit.WithActor(s.ctx, audit.Actor{Type: audit.ActorAgent, ID: sess.ID}), tid), sess.ID), sess, s.now()))
	if p, ok := auth.PrincipalFrom(ctx); ok {
		runCtx = auth.WithPrincipal(runCtx, p)
	}
	h := &runHandle{cancel: cancel, done: make(chan struct{})}
	s.mu.Lock()
	s.running[sess.ID] = h
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.run(runCtx, sess, task, prompt, answers)
		s.forgetSeq(sess.ID)
		cancel()
		s.mu.Lock()
		if s.running[sess.ID] == h {
			delete(s.running, sess.ID)
		}
		close(h.done)
		want := s.resumeWanted[sess.ID]
		delete(s.resumeWanted, sess.ID)
		s.mu.Unlock()
		if want && s.ctx.Err() == nil {
			// runCtx is cancelled by now; keep its tenant and actor, not its cancellation.
			if err := s.resume(context.WithoutCancel(runCtx), sess.ID); err != nil {
				s.log.Error("resume after approval", slog.String("session_id", sess.ID), slog.String("error", err.Error()))
			}
		}
	}()
}

// run drives one engine run to its end and records the outcome.
func (s *Service) run(ctx context.Context, sess *Session, task *TaskRecord, prompt string, answers []approval.Approval) {
	status, errMsg := StatusFailed, ""
	defer func() {
		if p := recover(); p != nil {
			s.log.ErrorContext(ctx, "engine panic", slog.Any("panic", p), slog.String("session_id", sess.ID))
			s.emit(ctx, sess.ID, Event{Type: EventError, Code: CodeEngine, Message: "internal error in the engine"})
			status, errMsg = StatusFailed, "internal error in the engine"
		}
		s.finish(ctx, sess.ID, task.ID, status, errMsg)
	}()
	eng, err := s.engine(ctx, sess.Engine)
	if err != nil {
		s.emit(ctx, sess.ID, Event{Type: EventError, Code: CodeUnavailable, Message: err.Error()})
		errMsg = err.Error()
		return
	}
	system, err := s.prompts.Build(ctx, sess)
	if err != nil {
		s.emit(ctx, sess.ID, Event{Type: EventError, Code: CodeEngine, Message: "build system prompt: " + err.Error()})
		errMsg = err.Error()
		return
	}
	var pending []PendingResult
	for i := range answers {
		d := &answers[i]
		pending = append(pending, PendingResult{ToolUseID: d.ToolUseID, Tool: d.Tool, Result: s.resultFor(ctx, sess, d)})
	}
	t := Task{SessionID: sess.ID, Prompt: prompt, SystemPrompt: system, MaxTurns: sess.MaxTurns, MaxBudgetUSD: sess.MaxBudgetUSD,
		AllowedTools: sess.AllowedTools,
		Tools:        &sessionTools{svc: s, sessionID: sess.ID}, State: sess.State, PendingResults: pending}
	if eng.Name() == EngineClaudeCode {
		if s.cfg.Workspace == nil {
			err = errs.New(errs.Unavailable, "no workspace configured for Claude Code")
		} else {
			t.WorkDir, t.Env, err = s.cfg.Workspace(ctx, sess)
		}
		if err != nil {
			s.emit(ctx, sess.ID, Event{Type: EventError, Code: CodeEngine, Message: "prepare workspace: " + err.Error()})
			errMsg = err.Error()
			return
		}
	}
	var last Event
	var pauses []Event // held back until the pause is recorded with the run's state (see paused)
	sawCompleted := false
	out, err := eng.Run(ctx, t, func(e Event) {
		switch e.Type {
		case EventApprovalRequired:
			pauses = append(pauses, e)
			return
		case EventCompleted:
			s.settleCompleted(ctx, sess.ID, e)
			sawCompleted = true
		case EventError:
			s.settle(ctx, sess.ID, StatusFailed, e.Message)
		}
		last = s.emit(ctx, sess.ID, e)
	})
	if err == nil && out.Paused && len(pauses) > 0 {
		// Recorded as paused, with the state that holds the open tool calls, before its events go out: a
		// shutdown right after must not turn the waiting session into a cancelled one (Cancel marks a paused
		// session cancelled itself), and a kill at any point leaves either a running session (the repair
		// pass fails it and withdraws its approvals) or a paused one its resume can continue.
		stored := s.paused(ctx, sess.ID, out, pauses)
		for _, e := range pauses {
			s.emit(ctx, sess.ID, e)
		}
		status = StatusAwaitingApproval
		if !stored {
			s.finishOutcome(ctx, sess.ID, out)
		}
		return
	}
	for _, e := range pauses { // an engine that did not pause after all: its events go out as they are
		last = s.emit(ctx, sess.ID, e)
	}
	switch {
	case err != nil:
		msg := err.Error()
		if last.Type != EventError {
			s.emit(ctx, sess.ID, Event{Type: EventError, Code: CodeEngine, Message: msg})
		}
		errMsg = msg
	case out.Paused:
		status = StatusAwaitingApproval
	case ctx.Err() != nil:
		status, errMsg = StatusCancelled, "cancelled"
	case last.Type == EventError:
		errMsg = last.Message
	default:
		status = StatusCompleted
	}
	if sawCompleted { // its tokens, cost and summary are recorded already
		out.TokensUsed, out.CostUSD, out.Summary = 0, 0, ""
	}
	s.finishOutcome(ctx, sess.ID, out)
}

// settle records a run's end status before its final event is published, so a client that reacts to the
// event reads the matching status. finish confirms it when the run returns.
func (s *Service) settle(ctx context.Context, sessionID, status, msg string) {
	sctx := context.WithoutCancel(ctx)
	sess, err := s.store.SessionGet(sctx, sessionID)
	if err == nil && sess.Status == StatusRunning {
		sess.Status, sess.Error, sess.UpdatedAt = status, msg, s.now()
		err = s.store.SessionUpdate(sctx, sess)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "settle session", slog.String("error", err.Error()))
	}
}

// settleCompleted records a completed run, with its summary, tokens and cost, before the completed event
// is published.
func (s *Service) settleCompleted(ctx context.Context, sessionID string, e Event) {
	sctx := context.WithoutCancel(ctx)
	sess, err := s.store.SessionGet(sctx, sessionID)
	if err == nil {
		if sess.Status == StatusRunning {
			sess.Status = StatusCompleted
		}
		sess.Summary, sess.Error, sess.UpdatedAt = e.Summary, "", s.now()
		sess.TokensUsed += e.TokensUsed
		sess.CostUSD += e.CostUSD
		err = s.store.SessionUpdate(sctx, sess)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "settle session", slog.String("error", err.Error()))
		return
	}
	s.runEnded(sctx, sess) // before the event goes out, so whoever reacts to it sees the consequences
}

// paused records that the run of sessionID paused on the approvals of events (its approval_required
// events), before they are published: which engine tool call each approval answers, then in one session
// update the run's outcome (the state holding those open calls, tokens, cost) and the status
// awaiting_approval. A client that reacts to the events sees the new status, and a resume reads the state
// the pause needs. It reports whether the outcome is stored.
func (s *Service) paused(ctx context.Context, sessionID string, out Outcome, events []Event) bool {
	sctx := context.WithoutCancel(ctx) // the pause is recorded even when a shutdown cancelled the run
	for _, e := range events {
		if e.ApprovalID != "" && e.ToolUseID != "" {
			if err := s.approvals.SetToolUse(sctx, e.ApprovalID, e.ToolUseID); err != nil {
				s.log.ErrorContext(ctx, "link approval to tool call", slog.String("error", err.Error()))
			}
		}
	}
	s.faults.at(s.faults.beforePause, sessionID)
	sess, err := s.store.SessionGet(sctx, sessionID)
	if err != nil {
		s.log.ErrorContext(ctx, "mark session paused", slog.String("error", err.Error()))
		return false
	}
	applyOutcome(sess, out)
	if sess.Status == StatusRunning {
		sess.Status = StatusAwaitingApproval
	}
	sess.UpdatedAt = s.now()
	if err := s.store.SessionUpdate(sctx, sess); err != nil {
		s.log.ErrorContext(ctx, "mark session paused", slog.String("error", err.Error()))
		return false
	}
	s.faults.at(s.faults.afterPause, sessionID)
	if sess.Status == StatusAwaitingApproval {
		s.runEnded(sctx, sess)
	}
	return true
}

// finishOutcome stores what a run returned (its state, tokens, summary).
func (s *Service) finishOutcome(ctx context.Context, sessionID string, out Outcome) {
	sctx := context.WithoutCancel(ctx)
	sess, err := s.store.SessionGet(sctx, sessionID)
	if err != nil {
		return
	}
	applyOutcome(sess, out)
	sess.UpdatedAt = s.now()
	if err := s.store.SessionUpdate(sctx, sess); err != nil {
		s.log.ErrorContext(ctx, "store session outcome", slog.String("error", err.Error()))
	}
}

// applyOutcome adds what a run returned to sess: its engine state, tokens, cost and summary.
func applyOutcome(sess *Session, out Outcome) {
	if out.State != nil {
		sess.State = out.State
	}
	sess.TokensUsed += out.TokensUsed
	sess.CostUSD += out.CostUSD
	if out.Summary != "" {
		sess.Summary = out.Summary
	}
}

// finish records the session's and the task's final status.
func (s *Service) finish(ctx context.Context, sessionID, taskID, status, errMsg string) {
	sctx := context.WithoutCancel(ctx)
	sess, err := s.store.SessionGet(sctx, sessionID)
	if err != nil {
		s.log.ErrorContext(ctx, "finish session", slog.String("error", err.Error()))
		return
	}
	if sess.Status == StatusCancelled {
		status = StatusCancelled
	}
	sess.Status, sess.Error, sess.UpdatedAt = status, errMsg, s.now()
	if err := s.store.SessionUpdate(sctx, sess); err != nil {
		s.log.ErrorContext(ctx, "finish session", slog.String("error", err.Error()))
	}
	if err := s.store.TaskFinish(sctx, taskID, status, s.now()); err != nil {
		s.log.ErrorContext(ctx, "finish task", slog.String("error", err.Error()))
	}
	s.runEnded(sctx, sess)
	if status != StatusAwaitingApproval {
		s.audit.Record(sctx, audit.Record{Action: "agent.task_" + status, ResourceType: "session", ResourceID: sessionID,
			Description: "task " + status, Detail: map[string]any{"task_id": taskID, "error": errMsg, "tokens_used": sess.TokensUsed, "cost_usd": sess.CostUSD}})
	}
}
