package agent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/agent/agentapi"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/inventory"
)

// StartParams describe a new task (agentapi.StartParams).
type StartParams = agentapi.StartParams

// StartTask opens a session and starts its first run in the background.
func (s *Service) StartTask(ctx context.Context, p StartParams) (*Session, *TaskRecord, error) {
	if err := p.Validate(); err != nil {
		return nil, nil, err
	}
	name, t, _, err := s.activeEngine(ctx)
	if err != nil {
		return nil, nil, err
	}
	if p.Engine != "" {
		name = p.Engine
	}
	if !contains(t.AllowedEngines, name) {
		return nil, nil, errs.New(errs.Forbidden, "engine %s is not allowed for this tenant", name)
	}
	if _, err := s.engine(ctx, name); err != nil {
		return nil, nil, err
	}
	if len(p.ServerIDs) > 0 {
		found, err := s.fleet.Servers(ctx, inventory.Selector{ServerIDs: p.ServerIDs})
		if err != nil {
			return nil, nil, err
		}
		if len(found) != len(p.ServerIDs) {
			return nil, nil, errs.Invalidf("server_ids", "%d of the server ids do not exist", len(p.ServerIDs)-len(found))
		}
	}
	now := s.now()
	day := now.Truncate(24 * time.Hour)
	if n, err := s.store.SessionCountSince(ctx, day); err != nil {
		return nil, nil, err
	} else if n >= t.MaxSessionsPerDay {
		return nil, nil, errs.New(errs.QuotaExceeded, "quota max_sessions_per_day reached (%d of %d)", n, t.MaxSessionsPerDay).
			WithHint("wait until tomorrow (UTC) or move the tenant to a larger plan")
	}
	if n, err := s.store.SessionCountActive(ctx); err != nil {
		return nil, nil, err
	} else if limit := s.cfg.ConcurrentSessions[t.Plan]; limit > 0 && n >= limit {
		return nil, nil, &errs.Error{Code: errs.RateLimited, Message: fmt.Sprintf("%d sessions are running; the %s plan allows %d at once", n, t.Plan, limit),
			Hint: "wait for one to finish or cancel one", RetryAfter: 10 * time.Second}
	}
	p2, _ := auth.PrincipalFrom(ctx)
	startedBy := "user"
	if p2.UserID == "" && s.cfg.ServicePrincipal != nil {
		// Started by the system (an alert, an event, a schedule): the tenant's service principal runs it.
		if p2.UserID, err = s.cfg.ServicePrincipal(ctx); err != nil {
			return nil, nil, fmt.Errorf("service principal: %w", err)
		}
		startedBy = "service_principal"
	}
	maxTurns := p.MaxTurns
	if maxTurns == 0 {
		maxTurns = s.cfg.MaxTurns
	}
	title := strings.TrimSpace(p.Prompt)
	if len(title) > 80 {
		title = clipRunes(title, 80)
	}
	maxRisk := int(guard.L2)
	if p.MaxRiskLevel != nil {
		maxRisk = *p.MaxRiskLevel
	}
	sess := &Session{ID: uuid.NewString(), UserID: p2.UserID, Engine: name, Status: StatusRunning, Title: title, Skill: p.Skill,
		ServerIDs: p.ServerIDs, MaxTurns: maxTurns, MaxBudgetUSD: p.MaxBudgetUSD, MaxRiskLevel: maxRisk, AllowedTools: p.AllowedTools,
		AutoApprove: p.AutoApprove, Origin: p.Origin, OriginID: p.OriginID, CreatedAt: now, UpdatedAt: now}
	if sess.ServerIDs == nil {
		sess.ServerIDs = []string{}
	}
	if err := s.store.SessionCreate(ctx, sess); err != nil {
		return nil, nil, err
	}
	if err := s.claim(ctx, sess, StatusRunning); err != nil { // names this replica its runner
		return nil, nil, err
	}
	task := &TaskRecord{ID: uuid.NewString(), SessionID: sess.ID, Prompt: p.Prompt, Status: StatusRunning, CreatedAt: now}
	if err := s.store.TaskCreate(ctx, task); err != nil {
		return nil, nil, err
	}
	if _, err := s.audit.Record(ctx, audit.Record{Action: "agent.task_started", ResourceType: "session", ResourceID: sess.ID,
		Description: "task started on " + name + ": " + clipRunes(title, 200), Detail: map[string]any{"engine": name, "task_id": task.ID, "skill": p.Skill,
			"user_id": sess.UserID, "started_by": startedBy, "origin": p.Origin}}); err != nil {
		return nil, nil, err
	}
	prompt := p.Prompt
	if s.cfg.PromptHint != nil && p.Origin == "" {
		prompt += s.cfg.PromptHint(p.Prompt)
	}
	if p.Skill != "" {
		if prompt, err = s.invokeSkill(ctx, sess, p.Skill, p.SkillArgs, p.Prompt); err != nil {
			s.settle(ctx, sess.ID, StatusFailed, err.Error())
			return nil, nil, err
		}
	}
	s.launch(ctx, sess, task, prompt, nil)
	return sess, task, nil
}

func clipRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// SendMessage continues a session with a new message from the admin.
func (s *Service) SendMessage(ctx context.Context, sessionID, text string) (*TaskRecord, error) {
	if strings.TrimSpace(text) == "" || len(text) > 100_000 {
		return nil, errs.Invalidf("message", "message is required (at most 100,000 bytes)")
	}
	// The previous run may have emitted its last event and still be recording its end.
	if h := s.live(sessionID); h != nil {
		s.waitStopped(h)
	}
	sess, err := s.store.SessionGet(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	switch sess.Status {
	case StatusRunning:
		return nil, errs.New(errs.Conflict, "the session is still running").WithHint("wait for it to finish, or cancel it")
	case StatusAwaitingApproval:
		return nil, errs.New(errs.Conflict, "the session is waiting for an approval").WithHint("approve or reject it first")
	case StatusCancelled:
		return nil, errs.New(errs.Conflict, "the session was cancelled").WithHint("start a new task")
	}
	// A compare-and-set: the same message sent to two replicas continues the session once.
	if err := s.claim(ctx, sess, StatusIdle, StatusCompleted, StatusFailed); err != nil {
		return nil, err
	}
	task := &TaskRecord{ID: uuid.NewString(), SessionID: sess.ID, Prompt: text, Status: StatusRunning, CreatedAt: s.now()}
	if err := s.store.TaskCreate(ctx, task); err != nil {
		return nil, err
	}
	if s.cfg.PromptHint != nil {
		text += s.cfg.PromptHint(text)
	}
	s.launch(ctx, sess, task, text, nil)
	return task, nil
}

// Cancel stops a session's run; a paused session is cancelled at once.
func (s *Service) Cancel(ctx context.Context, sessionID string) (*Session, error) {
	sess, err := s.store.SessionGet(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	if sess.Ended() {
		return nil, errs.New(errs.Conflict, "the session already ended (%s)", sess.Status)
	}
	if h := s.live(sessionID); h != nil {
		h.cancel()
		s.waitStopped(h)
	} else if sess.Status == StatusRunning {
		s.cancelRemote(ctx, sessionID) // it runs on another replica
	}
	// Whether it was paused, idle, or its run just stopped: it ends here.
	sess, err = s.store.SessionGet(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	if sess.Status != StatusCancelled {
		sess.Status, sess.UpdatedAt = StatusCancelled, s.now()
		if err := s.store.SessionUpdate(ctx, sess); err != nil {
			return nil, err
		}
		s.emit(ctx, sess.ID, Event{Type: EventError, Code: CodeCancelled, Message: "cancelled by the user"})
		s.runEnded(ctx, sess)
	}
	_, err = s.audit.Record(ctx, audit.Record{Action: "agent.session_cancelled", ResourceType: "session", ResourceID: sessionID,
		Description: "session cancelled"})
	return sess, err
}

// Session returns session id.
func (s *Service) Session(ctx context.Context, id string) (*Session, error) {
	return s.store.SessionGet(ctx, id)
}

// Sessions lists recent sessions.
func (s *Service) Sessions(ctx context.Context, status string, limit int) ([]Session, error) {
	return s.store.SessionList(ctx, status, limit)
}

// Events returns a session's events after seq (for replay).
func (s *Service) Events(ctx context.Context, sessionID string, after int64, limit int) ([]Event, error) {
	if _, err := s.store.SessionGet(ctx, sessionID); err != nil {
		return nil, err
	}
	return s.store.EventList(ctx, sessionID, after, limit)
}
