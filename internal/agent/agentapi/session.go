package agentapi

import (
	"encoding/json"
	"strings"
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
	// RunEnds counts the session's run ends (see RunEnds); the store counts them, with the
	// agent.run_ended event of each, when SessionUpdate or SessionClaim changes the status to one.
	RunEnds int `json:"-"`
}

// RunEnded is the session's last run end as its agent.run_ended event carries it.
func (s *Session) RunEnded() RunEnded {
	return RunEnded{TenantID: s.TenantID, SessionID: s.ID, Run: s.RunEnds, Status: s.Status, Engine: s.Engine, Origin: s.Origin,
		OriginID: s.OriginID, Summary: s.Summary, Error: s.Error, Time: s.UpdatedAt}
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

// StartParams describe a new task.
type StartParams struct {
	Prompt       string
	Engine       string
	Skill        string
	SkillArgs    string
	ServerIDs    []string
	MaxTurns     int
	MaxBudgetUSD float64
	// Bounds set by runbooks and standing orders (internal callers; the task API leaves them zero).
	MaxRiskLevel *int     // nil = 2: L1/L2 need approval
	AllowedTools []string // empty = every tool
	AutoApprove  bool
	Origin       string
	OriginID     string
}

// Validate checks p.
func (p *StartParams) Validate() error {
	var list []error
	if strings.TrimSpace(p.Prompt) == "" && p.Skill == "" {
		list = append(list, errs.Invalidf("prompt", "prompt is required (or a skill to run)"))
	}
	if len(p.Prompt) > 100_000 {
		list = append(list, errs.Invalidf("prompt", "prompt is longer than 100,000 bytes"))
	}
	if p.MaxTurns < 0 || p.MaxTurns > 200 {
		list = append(list, errs.Invalidf("max_turns", "max_turns must be from 1 to 200"))
	}
	if p.MaxRiskLevel != nil && (*p.MaxRiskLevel < 0 || *p.MaxRiskLevel > 2) {
		list = append(list, errs.Invalidf("max_risk_level", "max_risk_level must be 0, 1 or 2 (L3 never runs)"))
	}
	if p.MaxBudgetUSD < 0 || p.MaxBudgetUSD > 1000 {
		list = append(list, errs.Invalidf("max_budget_usd", "max_budget_usd must be from 0 to 1000"))
	}
	return errs.Join(list...)
}
