package agent

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/ops/approval"
)

// launch.go hands runs between processes. In one process (or a replica running every target) a run starts
// where it was asked for: a goroutine of this service. In a split deployment the process that accepts the
// request (the api target, say) may not run agent sessions: it records the session and its task, claims
// the session under its own replica name, and hands the run over with a Launcher — durably, as a JobRun
// job that only a process running the agent target registers. That process takes the session over (a
// compare-and-set on its runner) and runs it. Cancel reaches it through the replicas' bus (replica.go), and
// its live events fan out to every replica's subscribers the same way.

// JobRun is the durable job that carries a run to a process running the agent target (HandleRun).
const JobRun = "agent.run"

// RunRequest is a run handed over to another process: everything launch needs, by value.
type RunRequest struct {
	SessionID string `json:"session_id"`
	TaskID    string `json:"task_id"`
	Prompt    string `json:"prompt"`
	// Answers are the decided approvals whose tool calls the run answers first (see resume).
	Answers []approval.Approval `json:"answers,omitempty"`
	// Principal is who asked for the run (a signed-in user), if anyone.
	Principal *auth.Principal `json:"principal,omitempty"`
	// Runner is the replica that claimed the session before handing it over: the one taking it over
	// must find it still there (nobody cancelled, interrupted or took the run meanwhile).
	Runner string `json:"runner"`
}

// Launcher hands a run to a process that runs agent sessions.
type Launcher interface {
	// Launch hands run r over durably: once it returns nil, a process running the agent target will run
	// it (or find it cancelled). An error means nobody will; the session is marked failed with it.
	Launch(ctx context.Context, r RunRequest) error
}

// launch starts a run of sess: here, or through the configured Launcher in a process that does not run
// agent sessions. answers are decided approvals whose tool calls the run answers first: an approved
// command runs in the run, never in the request that decided it.
func (s *Service) launch(ctx context.Context, sess *Session, task *TaskRecord, prompt string, answers []approval.Approval) {
	if s.cfg.Launcher == nil {
		s.launchHere(ctx, sess, task, prompt, answers)
		return
	}
	r := RunRequest{SessionID: sess.ID, TaskID: task.ID, Prompt: prompt, Answers: answers, Runner: s.runnerID()}
	if p, ok := auth.PrincipalFrom(ctx); ok {
		r.Principal = &p
	}
	err := s.cfg.Launcher.Launch(ctx, r)
	s.mu.Lock()
	if h := s.running[sess.ID]; h != nil && h.done == nil {
		delete(s.running, sess.ID) // resume's claim: the run is not here
	}
	s.mu.Unlock()
	if err == nil {
		return
	}
	s.log.ErrorContext(ctx, "hand the run over", slog.String("session_id", sess.ID), slog.String("error", err.Error()))
	msg := "no agent process could take the run: " + err.Error()
	sctx := context.WithoutCancel(ctx)
	s.settle(sctx, sess.ID, StatusFailed, msg)
	s.emit(sctx, sess.ID, Event{Type: EventError, Code: CodeUnavailable, Message: msg})
	s.finish(sctx, sess.ID, task.ID, StatusFailed, msg)
}

// HandleRun runs a JobRun job in the tenant in ctx: it takes the session over from the replica that handed
// it (only if that replica still holds it running) and starts the run here. A session cancelled or
// interrupted meanwhile is left alone. Arguments it cannot read are a permanent failure (errs.Invalid).
func (s *Service) HandleRun(ctx context.Context, raw json.RawMessage) error {
	var r RunRequest
	if err := json.Unmarshal(raw, &r); err != nil || r.SessionID == "" || r.TaskID == "" {
		return errs.Invalidf("args", "%s job arguments: want session_id and task_id (%v)", JobRun, err)
	}
	sess, err := s.store.SessionGet(ctx, r.SessionID)
	if errs.Is(err, errs.NotFound) {
		return nil // the tenant or the session is gone
	}
	if err != nil {
		return err
	}
	if sess.Status != StatusRunning {
		return nil // cancelled (or interrupted) before it got here
	}
	now := s.now()
	ok, err := s.store.SessionClaim(ctx, ClaimParams{SessionID: sess.ID, From: []string{StatusRunning}, FromRunner: &r.Runner,
		To: StatusRunning, Runner: s.runnerID(), Now: now})
	if err != nil {
		return err
	}
	if !ok {
		return nil // it moved on meanwhile: nothing is left to run
	}
	sess.UpdatedAt = now
	if r.Principal != nil {
		ctx = auth.WithPrincipal(ctx, *r.Principal)
	}
	s.launchHere(ctx, sess, &TaskRecord{ID: r.TaskID, SessionID: sess.ID, Prompt: r.Prompt, Status: StatusRunning}, r.Prompt, r.Answers)
	return nil
}
