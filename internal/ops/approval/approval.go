// Package approval is the approval aggregate: a human decision a risky command of an agent session waits
// for. It owns the approval's state machine (pending → approved, rejected or expired, once), the timeouts
// per risk level, the sweeper that decides every overdue approval of a tenant in one transaction, and the
// approval.requested / approval.decided events, written in the transaction of the change they report.
//
// It is a leaf: it imports neither the agent nor the ops services, so the agent (which pauses a session on
// an approval and resumes it on approval.decided), comm (which escalates on approval.requested), voice and
// the HTTP API all import it.
package approval

import (
	"context"
	"encoding/json"
	"time"

	"github.com/it0/it0/internal/errs"
)

// Statuses of an approval.
const (
	Pending  = "pending"
	Approved = "approved"
	Rejected = "rejected"
	Expired  = "expired"
)

// Statuses are the statuses an approval list may filter on.
var Statuses = []string{Pending, Approved, Rejected, Expired}

// OriginStandingOrder is the Origin of approvals asked for by a standing order's run: nobody watches such a
// run, so its approvals are escalations.
const OriginStandingOrder = "standing_order"

// DecidedByTimeout is DecidedBy of an approval its timeout decided.
const DecidedByTimeout = "system:timeout"

// DecidedByInterrupted is DecidedBy of an approval withdrawn because the run that asked for it stopped
// before it paused (Service.Withdraw).
const DecidedByInterrupted = "system:interrupted"

// ViaAPI is DecidedVia of a decision made through the approvals API (the console, the app).
const ViaAPI = "api"

// Approval is a human decision a risky command waits for. A grant is single-use and bound to the session
// and the exact command.
type Approval struct {
	ID        string          `json:"id"`
	TenantID  string          `json:"tenant_id"`
	SessionID string          `json:"session_id"`
	Command   string          `json:"command"`
	RiskLevel int             `json:"risk_level"`
	Reason    string          `json:"reason"`
	Tool      string          `json:"tool"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	ToolInput json.RawMessage `json:"tool_input,omitempty"`
	Status    string          `json:"status"`
	// Origin and OriginID are the session's: what started it (a standing order's run, a runbook…).
	Origin   string `json:"origin,omitempty"`
	OriginID string `json:"origin_id,omitempty"`
	// UserID is the user the session runs for: an interactive approval is pushed to them.
	UserID         string `json:"user_id,omitempty"`
	RequestedBy    string `json:"requested_by"`
	DecidedBy      string `json:"decided_by,omitempty"`
	DecisionReason string `json:"decision_reason,omitempty"`
	// DecidedVia is the channel of the decision: ViaAPI, a comm channel (telegram, sms…), or "" for a
	// timeout or an automatic decision.
	DecidedVia string     `json:"decided_via,omitempty"`
	DecidedAt  *time.Time `json:"decided_at,omitempty"`
	UsedAt     *time.Time `json:"used_at,omitempty"`
	ExpiresAt  time.Time  `json:"expires_at"`
	CreatedAt  time.Time  `json:"created_at"`
}

// Unattended reports whether nobody watches the run that asked (a standing order's): the approval is an
// escalation, and its timeout rejects it whatever its level.
func (a *Approval) Unattended() bool { return a.Origin == OriginStandingOrder }

// Decide applies a decision to a pending approval. It is the approval state machine: only a pending,
// unexpired approval can be decided, once.
func (a *Approval) Decide(approve bool, by, reason string, now time.Time) error {
	if a.Status != Pending {
		return errs.New(errs.Conflict, "approval %s is already %s", a.ID, a.Status)
	}
	if !now.Before(a.ExpiresAt) {
		return errs.New(errs.Conflict, "approval %s expired at %s", a.ID, a.ExpiresAt.Format(time.RFC3339))
	}
	a.Status = Rejected
	if approve {
		a.Status = Approved
	}
	a.DecidedBy, a.DecisionReason, a.DecidedAt = by, reason, &now
	return nil
}

// Reasons a timeout records (DecisionReason).
const (
	ReasonTimeoutRejected = "no decision before the timeout: rejected"
	ReasonTimeoutApproved = "no decision before the timeout: auto-approved (L1)"
)

// Expire applies the timeout of a pending approval at now: an L1 confirmation is approved (the default is
// to proceed with a low-risk change), anything riskier — and anything an unattended run asked for, which is
// beyond its boundary by definition — is rejected (status expired). It reports whether it changed a. The
// sweeper applies the same rule in SQL (Store.ApprovalExpireDue); TestExpireRule keeps them together.
func (a *Approval) Expire(now time.Time) bool {
	if a.Status != Pending || now.Before(a.ExpiresAt) {
		return false
	}
	a.Status, a.DecidedBy, a.DecidedAt = Expired, DecidedByTimeout, &now
	a.DecisionReason = ReasonTimeoutRejected
	if a.RiskLevel <= 1 && !a.Unattended() {
		a.Status, a.DecisionReason = Approved, ReasonTimeoutApproved
	}
	return true
}

// ExpireParams is what Store.ApprovalExpireDue needs to decide overdue approvals.
type ExpireParams struct {
	// Now is the sweep's instant: approvals with expires_at <= Now are decided, with DecidedAt = Now.
	Now time.Time
	// Limit bounds one transaction; the sweeper calls again while a call decides Limit approvals.
	Limit int
	// Audit is appended for each decided approval, in the same transaction (audit.Log.Batch).
	Audit AuditBatch
}

// Store is what approvals need from storage; every method acts on the tenant in ctx.
type Store interface {
	// ApprovalCreate inserts a, with its approval.requested event, in one transaction.
	ApprovalCreate(ctx context.Context, a *Approval) error
	// ApprovalGet returns approval id; errs.NotFound if there is none.
	ApprovalGet(ctx context.Context, id string) (*Approval, error)
	// ApprovalList returns approvals, newest first, optionally of one session and one status.
	ApprovalList(ctx context.Context, sessionID, status string, limit int) ([]Approval, error)
	// ApprovalDecide stores a decision made by Approval.Decide or Expire, with its approval.decided event,
	// only if the row is still pending (errs.Conflict otherwise): two deciders cannot both win.
	ApprovalDecide(ctx context.Context, a *Approval) error
	// ApprovalExpireDue decides every pending approval due at p.Now (up to p.Limit) by the timeout rule of
	// Approval.Expire in one transaction, with one audit entry and one approval.decided event each, and
	// returns them.
	ApprovalExpireDue(ctx context.Context, p ExpireParams) ([]Approval, error)
	// ApprovalNextExpiry returns the earliest expires_at of a pending approval, or false when none waits.
	ApprovalNextExpiry(ctx context.Context) (time.Time, bool, error)
	// ApprovalSetToolUse records which tool call of the engine an approval answers.
	ApprovalSetToolUse(ctx context.Context, id, toolUseID string) error
	// ApprovalUse marks a decided approval used (a grant consumed, or its answer handed to the engine);
	// errs.Conflict if it was used already or is still pending. This is what makes grants single-use.
	ApprovalUse(ctx context.Context, id string, at time.Time) error
	SettingGet(ctx context.Context, key string) (string, error) // "" when unset
	SettingSet(ctx context.Context, key, value string) error
}
