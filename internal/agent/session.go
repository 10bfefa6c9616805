package agent

import (
	"context"
	"encoding/json"
	"time"

	"github.com/it0/it0/internal/errs"
)

// Session statuses. A session ends completed, failed or cancelled; it is awaiting_approval while paused.
const (
	StatusRunning          = "running"
	StatusAwaitingApproval = "awaiting_approval"
	StatusIdle             = "idle" // a run finished; the session may be continued with a message
	StatusCompleted        = "completed"
	StatusFailed           = "failed"
	StatusCancelled        = "cancelled"
)

// Session is a conversation between an admin and the agent: one engine, its state, and its event stream.
type Session struct {
	ID        string   `json:"id"`
	TenantID  string   `json:"tenant_id"`
	UserID    string   `json:"user_id"`
	Engine    string   `json:"engine"`
	Status    string   `json:"status"`
	Title     string   `json:"title"`
	Skill     string   `json:"skill,omitempty"`
	ServerIDs []string `json:"server_ids"`
	MaxTurns  int      `json:"max_turns"`
	// MaxRiskLevel caps what the session may run: commands above it are refused outright (no approval).
	// 2 for admin sessions; runbooks and standing orders set lower caps.
	MaxRiskLevel int      `json:"max_risk_level"`
	AllowedTools []string `json:"allowed_tools"`
	// AutoApprove decides the session's approvals at once, up to MaxRiskLevel (a runbook in emergency mode).
	AutoApprove  bool            `json:"auto_approve"`
	Origin       string          `json:"origin"`    // manual, runbook or standing_order
	OriginID     string          `json:"origin_id"` // the runbook or standing order id
	MaxBudgetUSD float64         `json:"max_budget_usd"`
	TokensUsed   int             `json:"tokens_used"`
	CostUSD      float64         `json:"cost_usd"`
	Summary      string          `json:"summary,omitempty"`
	Error        string          `json:"error,omitempty"`
	State        json.RawMessage `json:"-"` // the engine's Outcome.State
	LastSeq      int64           `json:"last_seq"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
}

// OriginStandingOrder marks the sessions of standing-order runs: nobody is watching them.
const OriginStandingOrder = "standing_order"

// Unattended reports whether nobody is watching the session (a standing order's run): its approvals are
// escalations, and a refusal or a timeout stops it.
func (s *Session) Unattended() bool { return s.Origin == OriginStandingOrder }

// Ended reports whether the session can no longer run. Completed and failed sessions end a run, but a
// new message continues them; only a cancelled session is closed for good.
func (s *Session) Ended() bool { return s.Status == StatusCancelled }

// TaskRecord is one run of a session: its first prompt or a later message.
type TaskRecord struct {
	ID         string     `json:"id"`
	TenantID   string     `json:"tenant_id"`
	SessionID  string     `json:"session_id"`
	Prompt     string     `json:"prompt"`
	Status     string     `json:"status"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// Approval statuses.
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalRejected = "rejected"
	ApprovalExpired  = "expired"
)

// Approval is a human decision a risky command waits for. A grant is single-use and bound to the session
// and the exact command.
type Approval struct {
	ID             string          `json:"id"`
	TenantID       string          `json:"tenant_id"`
	SessionID      string          `json:"session_id"`
	Command        string          `json:"command"`
	RiskLevel      int             `json:"risk_level"`
	Reason         string          `json:"reason"`
	Tool           string          `json:"tool"`
	ToolUseID      string          `json:"tool_use_id,omitempty"`
	ToolInput      json.RawMessage `json:"tool_input,omitempty"`
	Status         string          `json:"status"`
	RequestedBy    string          `json:"requested_by"`
	DecidedBy      string          `json:"decided_by,omitempty"`
	DecisionReason string          `json:"decision_reason,omitempty"`
	DecidedAt      *time.Time      `json:"decided_at,omitempty"`
	UsedAt         *time.Time      `json:"used_at,omitempty"`
	ExpiresAt      time.Time       `json:"expires_at"`
	CreatedAt      time.Time       `json:"created_at"`
}

// Decide applies a decision to a pending approval. It is the approval state machine: only a pending,
// unexpired approval can be decided, once.
func (a *Approval) Decide(approve bool, by, reason string, now time.Time) error {
	if a.Status != ApprovalPending {
		return errs.New(errs.Conflict, "approval %s is already %s", a.ID, a.Status)
	}
	if !now.Before(a.ExpiresAt) {
		return errs.New(errs.Conflict, "approval %s expired at %s", a.ID, a.ExpiresAt.Format(time.RFC3339))
	}
	a.Status = ApprovalRejected
	if approve {
		a.Status = ApprovalApproved
	}
	a.DecidedBy, a.DecisionReason, a.DecidedAt = by, reason, &now
	return nil
}

// decidedByTimeout is DecidedBy of an approval its timeout decided.
const decidedByTimeout = "system:timeout"

// Expire applies the timeout of a pending approval at now: an L1 confirmation is approved (the default is
// to proceed with a low-risk change), anything riskier — and anything an unattended run asked for, which is
// beyond its boundary by definition — is rejected. It reports whether it changed a.
func (a *Approval) Expire(now time.Time, unattended bool) bool {
	if a.Status != ApprovalPending || now.Before(a.ExpiresAt) {
		return false
	}
	a.Status, a.DecidedBy, a.DecidedAt = ApprovalExpired, decidedByTimeout, &now
	a.DecisionReason = "no decision before the timeout: rejected"
	if a.RiskLevel <= 1 && !unattended {
		a.Status, a.DecisionReason = ApprovalApproved, "no decision before the timeout: auto-approved (L1)"
	}
	return true
}

// Store is what the agent needs from storage; every method acts on the tenant in ctx.
type Store interface {
	RunClaims
	SessionCreate(ctx context.Context, s *Session) error
	SessionGet(ctx context.Context, id string) (*Session, error) // errs.NotFound
	SessionList(ctx context.Context, status string, limit int) ([]Session, error)
	SessionUpdate(ctx context.Context, s *Session) error
	SessionCountSince(ctx context.Context, since time.Time) (int, error)
	SessionCountActive(ctx context.Context) (int, error)
	TaskCreate(ctx context.Context, t *TaskRecord) error
	TaskFinish(ctx context.Context, id, status string, at time.Time) error
	EventAppend(ctx context.Context, e *Event) error // sets e.Seq
	EventList(ctx context.Context, sessionID string, afterSeq int64, limit int) ([]Event, error)
	ApprovalCreate(ctx context.Context, a *Approval) error
	ApprovalGet(ctx context.Context, id string) (*Approval, error) // errs.NotFound
	ApprovalList(ctx context.Context, sessionID, status string, limit int) ([]Approval, error)
	// ApprovalDecide stores a decision made by Approval.Decide, only if the row is still pending
	// (errs.Conflict otherwise): two deciders cannot both win.
	ApprovalDecide(ctx context.Context, a *Approval) error
	// ApprovalSetToolUse records which tool call of the engine an approval answers.
	ApprovalSetToolUse(ctx context.Context, id, toolUseID string) error
	// ApprovalUse marks a decided approval used (a grant consumed, or its answer handed to the engine);
	// errs.Conflict if it was used already or is still pending. This is what makes grants single-use.
	ApprovalUse(ctx context.Context, id string, at time.Time) error
	SettingGet(ctx context.Context, key string) (string, error) // "" when unset
	SettingSet(ctx context.Context, key, value string) error
}
