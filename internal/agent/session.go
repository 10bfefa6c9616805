package agent

import (
	"context"
	"time"

	"github.com/it0/it0/internal/agent/agentapi"
)

// Session statuses (agentapi): a session ends completed, failed or cancelled; it is awaiting_approval
// while paused.
const (
	StatusRunning          = agentapi.StatusRunning
	StatusAwaitingApproval = agentapi.StatusAwaitingApproval
	StatusIdle             = agentapi.StatusIdle
	StatusCompleted        = agentapi.StatusCompleted
	StatusFailed           = agentapi.StatusFailed
	StatusCancelled        = agentapi.StatusCancelled
)

// Session is a conversation between an admin and the agent (agentapi.Session).
type Session = agentapi.Session

// OriginStandingOrder marks the sessions of standing-order runs (agentapi.OriginStandingOrder).
const OriginStandingOrder = agentapi.OriginStandingOrder

// TaskRecord is one run of a session (agentapi.TaskRecord).
type TaskRecord = agentapi.TaskRecord

// Store is what the agent needs from storage; every method acts on the tenant in ctx.
type Store interface {
	RunClaims
	SessionCreate(ctx context.Context, s *Session) error
	SessionGet(ctx context.Context, id string) (*Session, error) // errs.NotFound
	SessionList(ctx context.Context, status string, limit int) ([]Session, error)
	// SessionUpdate saves s's mutable fields. When it changes the status to one that ends a run
	// (agentapi.RunEnds), it counts the run end in s.RunEnds and writes the agent.run_ended event in the
	// same transaction.
	SessionUpdate(ctx context.Context, s *Session) error
	SessionCountSince(ctx context.Context, since time.Time) (int, error)
	SessionCountActive(ctx context.Context) (int, error)
	TaskCreate(ctx context.Context, t *TaskRecord) error
	TaskFinish(ctx context.Context, id, status string, at time.Time) error
	EventAppend(ctx context.Context, e *Event) error // sets e.Seq
	EventList(ctx context.Context, sessionID string, afterSeq int64, limit int) ([]Event, error)
	SettingGet(ctx context.Context, key string) (string, error) // "" when unset
	SettingSet(ctx context.Context, key, value string) error
}
