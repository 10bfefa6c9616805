package approval

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/guard"
)

// AuditLog records what happens to approvals. Entry, Sum and HeadMAC let the store append the sweeper's
// entries in the transaction that decides the approvals (audit.Log implements it).
type AuditLog interface {
	Record(ctx context.Context, r audit.Record) (*audit.Entry, error)
	AuditBatch
}

// AuditBatch builds and seals audit entries a store appends itself (audit.Log).
type AuditBatch interface {
	// Entry returns r as the log would append it in the tenant in ctx, not yet sealed.
	Entry(ctx context.Context, r audit.Record) (*audit.Entry, error)
	// Sum is an entry's chain MAC after prev.
	Sum(prev []byte, e *audit.Entry) []byte
	// HeadMAC is the MAC of chain's head at seq.
	HeadMAC(chain string, seq int64, hash []byte) []byte
}

// Config tunes the approval service; zero fields take defaults.
type Config struct {
	L1Timeout time.Duration // how long an L1 confirmation stays open; default 5 min
	L2Timeout time.Duration // how long an L2 approval stays open; default 30 min
	// UnattendedTimeout is how long an approval of an unattended run (a standing order's escalation) stays
	// open before it is rejected — never auto-approved: nobody chose to go beyond the boundary. Default 1 h,
	// long enough for the whole escalation chain.
	UnattendedTimeout time.Duration
	// Schedule enqueues durable work (the sweeps); nil means approvals are decided only by Sweep calls.
	Schedule func(ctx context.Context, kind string, args any, at time.Time, uniqueKey string) error
	// Notify is called after a change wrote events to the outbox (the relay publishes them at once rather
	// than at its next poll); nil = nothing.
	Notify func(ctx context.Context)
	// SweepBatch bounds the approvals one sweep transaction decides (default 20,000); a sweep goes on with
	// another transaction while one decides that many.
	SweepBatch int
	// TickEvery is how often the periodic sweep of a tenant runs (default 1 min): the safety net that decides
	// an overdue approval whose own trigger was never queued (a crash between the approval's commit and
	// the trigger's enqueue, in another database).
	TickEvery time.Duration
	Now       func() time.Time
	Logger    *slog.Logger
}

// SetDefaults fills zero fields with their defaults.
func (c *Config) SetDefaults() {
	if c.L1Timeout <= 0 {
		c.L1Timeout = 5 * time.Minute
	}
	if c.L2Timeout <= 0 {
		c.L2Timeout = 30 * time.Minute
	}
	if c.UnattendedTimeout <= 0 {
		c.UnattendedTimeout = time.Hour
	}
	if c.SweepBatch <= 0 {
		c.SweepBatch = 20_000
	}
	if c.TickEvery <= 0 {
		c.TickEvery = time.Minute
	}
	if c.Now == nil {
		c.Now = func() time.Time { return time.Now().UTC() }
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Service opens, decides and expires approvals.
type Service struct {
	cfg   Config
	store Store
	audit AuditLog
	log   *slog.Logger
}

// New returns a Service.
func New(cfg Config, store Store, log AuditLog) *Service {
	cfg.SetDefaults()
	return &Service{cfg: cfg, store: store, audit: log, log: cfg.Logger.With(slog.String("component", "approval"))}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

func (s *Service) notify(ctx context.Context) {
	if s.cfg.Notify != nil {
		s.cfg.Notify(ctx)
	}
}

// Request describes the approval a session's tool call needs.
type Request struct {
	SessionID string
	// Origin, OriginID and UserID are the session's (see Approval).
	Origin, OriginID, UserID string
	Tool                     string
	// Command is what the human reads and decides on; a grant is bound to it exactly.
	Command string
	Input   json.RawMessage
	Level   guard.Level
	Reason  string
	// ToolUseID is the engine's tool call the approval answers, when already known.
	ToolUseID string
}

// Build returns a pending approval for r, open for the timeout of its level (or of unattended runs), not
// yet stored.
func (s *Service) Build(ctx context.Context, r Request) (*Approval, error) {
	a := &Approval{ID: uuid.NewString(), SessionID: r.SessionID, Command: r.Command, RiskLevel: int(r.Level), Reason: r.Reason,
		Tool: r.Tool, ToolUseID: r.ToolUseID, ToolInput: r.Input, Status: Pending, Origin: r.Origin, OriginID: r.OriginID,
		UserID: r.UserID, RequestedBy: "agent:" + r.SessionID}
	ttl, err := s.ttl(ctx, r.Level, a.Unattended())
	if err != nil {
		return nil, err
	}
	now := s.now()
	a.CreatedAt, a.ExpiresAt = now, now.Add(ttl)
	return a, nil
}

// Open records a pending approval for r, or returns the one already pending for the same tool and command
// in the session, so a retrying model does not flood the admins. Its approval.requested event is written
// with it; its timeout is the sweeper's.
func (s *Service) Open(ctx context.Context, r Request) (*Approval, error) {
	pending, err := s.store.ApprovalList(ctx, r.SessionID, Pending, 50)
	if err != nil {
		return nil, err
	}
	for i := range pending {
		if pending[i].Command == r.Command && pending[i].Tool == r.Tool {
			return &pending[i], nil
		}
	}
	a, err := s.Build(ctx, r)
	if err != nil {
		return nil, err
	}
	if err := s.store.ApprovalCreate(ctx, a); err != nil {
		return nil, err
	}
	s.notify(ctx)
	s.trigger(ctx, a.ExpiresAt)
	if _, err := s.audit.Record(ctx, audit.Record{Action: "approval.requested", ResourceType: "approval", ResourceID: a.ID,
		Description: fmt.Sprintf("L%d approval requested: %s", a.RiskLevel, clip(a.Command, 200)),
		Detail:      map[string]any{"session_id": a.SessionID, "command": a.Command, "risk_level": a.RiskLevel, "reason": a.Reason}}); err != nil {
		return nil, err
	}
	return a, nil
}

// AutoApprove records an approval for r that is decided (by, as label says) and used at once: the session's
// own bounds allowed the command ahead of time. Nobody is asked, so nobody is notified.
func (s *Service) AutoApprove(ctx context.Context, r Request, by, label string, maxRiskLevel int) (*Approval, error) {
	a, err := s.Build(ctx, r)
	if err != nil {
		return nil, err
	}
	if err := a.Decide(true, by, "auto-approved by "+label, s.now()); err != nil {
		return nil, err
	}
	a.UsedAt = a.DecidedAt // decided and used in one write: it answers this call only
	if err := s.store.ApprovalCreate(ctx, a); err != nil {
		return nil, err
	}
	s.notify(ctx)
	_, err = s.audit.Record(ctx, audit.Record{Action: "approval.auto_approved", ResourceType: "approval", ResourceID: a.ID,
		Description: fmt.Sprintf("L%d auto-approved by %s: %s", a.RiskLevel, label, clip(a.Command, 200)),
		Detail:      map[string]any{"session_id": a.SessionID, "command": a.Command, "approved_by": by, "max_risk_level": maxRiskLevel}})
	return a, err
}

// Decision is a person's answer to an approval.
type Decision struct {
	Approve bool
	Reason  string
	// Via is the channel it came through: ViaAPI (default) or a comm channel.
	Via string
}

// Decide applies d to approval id as the principal in ctx. L2 needs the approve permission (admins); L1 may
// be confirmed by operators. The approval.decided event is written with the decision; the session resumes
// from it (the agent subscribes).
func (s *Service) Decide(ctx context.Context, id string, d Decision) (*Approval, error) {
	a, err := s.store.ApprovalGet(ctx, id)
	if err != nil {
		return nil, err
	}
	p, _ := auth.PrincipalFrom(ctx)
	if a.RiskLevel >= int(guard.L2) && !p.Can(auth.PermApprove) {
		return nil, errs.New(errs.Forbidden, "an L%d command needs an admin's approval", a.RiskLevel)
	}
	if !p.Can(auth.PermApproveL1) {
		return nil, errs.New(errs.Forbidden, "your role (%s) cannot decide approvals", p.Role)
	}
	by := p.UserID
	if by == "" {
		by = audit.ActorFrom(ctx).ID
	}
	if err := a.Decide(d.Approve, by, d.Reason, s.now()); err != nil {
		return nil, err
	}
	a.DecidedVia = d.Via
	if a.DecidedVia == "" {
		a.DecidedVia = ViaAPI
	}
	if err := s.store.ApprovalDecide(ctx, a); err != nil {
		return nil, err
	}
	s.notify(ctx)
	if _, err := s.audit.Record(ctx, audit.Record{Action: "approval." + a.Status, ResourceType: "approval", ResourceID: a.ID,
		Description: fmt.Sprintf("%s L%d: %s", a.Status, a.RiskLevel, clip(a.Command, 200)),
		Detail:      map[string]any{"session_id": a.SessionID, "reason": d.Reason, "command": a.Command, "via": a.DecidedVia}}); err != nil {
		return nil, err
	}
	return a, nil
}

// Withdraw ends pending approval id without a human decision: the run that asked for it is gone and will
// never read an answer (see agent.Service.InterruptedRuns). It is recorded as expired by
// DecidedByInterrupted with reason, and its approval.decided event closes its escalation. errs.Conflict
// when it is no longer pending.
func (s *Service) Withdraw(ctx context.Context, id, reason string) (*Approval, error) {
	a, err := s.store.ApprovalGet(ctx, id)
	if err != nil {
		return nil, err
	}
	if a.Status != Pending {
		return nil, errs.New(errs.Conflict, "approval %s is already %s", a.ID, a.Status)
	}
	now := s.now()
	a.Status, a.DecidedBy, a.DecisionReason, a.DecidedAt = Expired, DecidedByInterrupted, reason, &now
	if err := s.store.ApprovalDecide(ctx, a); err != nil {
		return nil, err
	}
	s.notify(ctx)
	if _, err := s.audit.Record(ctx, audit.Record{Action: "approval.withdrawn", ResourceType: "approval", ResourceID: a.ID,
		Description: fmt.Sprintf("withdrawn L%d: %s", a.RiskLevel, clip(a.Command, 200)),
		Detail:      map[string]any{"session_id": a.SessionID, "reason": reason, "command": a.Command}}); err != nil {
		return nil, err
	}
	return a, nil
}

// Get returns approval id (errs.NotFound).
func (s *Service) Get(ctx context.Context, id string) (*Approval, error) {
	return s.store.ApprovalGet(ctx, id)
}

// List lists approvals, optionally of one session and one status ("all" or "" for any); an unknown status
// is errs.Invalid, never an empty list.
func (s *Service) List(ctx context.Context, sessionID, status string, limit int) ([]Approval, error) {
	if status == "all" {
		status = ""
	}
	if status != "" && !slices.Contains(Statuses, status) {
		return nil, errs.Invalidf("status", "status %q is not one of %s, all", status, strings.Join(Statuses, ", "))
	}
	return s.store.ApprovalList(ctx, sessionID, status, limit)
}

// Use marks decided approval id used (errs.Conflict when it was used already or is pending).
func (s *Service) Use(ctx context.Context, id string) error {
	return s.store.ApprovalUse(ctx, id, s.now())
}

// SetToolUse records which engine tool call approval id answers.
func (s *Service) SetToolUse(ctx context.Context, id, toolUseID string) error {
	return s.store.ApprovalSetToolUse(ctx, id, toolUseID)
}

// Tenant settings of approval timeouts, in seconds.
const (
	SettingL1Timeout = "approval_timeout_l1_seconds"
	SettingL2Timeout = "approval_timeout_l2_seconds"
	// SettingUnattendedTimeout bounds approvals of unattended runs (escalations), whatever their level.
	SettingUnattendedTimeout = "approval_timeout_unattended_seconds"
)

// ttl is how long an approval of level stays open: the tenant's setting, else the default.
func (s *Service) ttl(ctx context.Context, level guard.Level, unattended bool) (time.Duration, error) {
	key, def := SettingL2Timeout, s.cfg.L2Timeout
	switch {
	case unattended:
		key, def = SettingUnattendedTimeout, s.cfg.UnattendedTimeout
	case level <= guard.L1:
		key, def = SettingL1Timeout, s.cfg.L1Timeout
	}
	return s.settingDuration(ctx, key, def)
}

// settingDuration reads a tenant setting in seconds, else def.
func (s *Service) settingDuration(ctx context.Context, key string, def time.Duration) (time.Duration, error) {
	v, err := s.store.SettingGet(ctx, key)
	if err != nil || v == "" {
		return def, err
	}
	secs, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || secs <= 0 {
		return def, nil
	}
	return time.Duration(secs) * time.Second, nil
}

// Timeouts are how long approvals stay open: interactive L1 (then approved) and L2 (then rejected), and
// any approval of an unattended run (then rejected).
type Timeouts struct {
	L1, L2, Unattended time.Duration
}

// SetTimeouts sets the tenant's approval timeouts (a zero field keeps the current one).
func (s *Service) SetTimeouts(ctx context.Context, t Timeouts) error {
	for _, f := range []struct {
		key string
		d   time.Duration
	}{{SettingL1Timeout, t.L1}, {SettingL2Timeout, t.L2}, {SettingUnattendedTimeout, t.Unattended}} {
		if f.d == 0 {
			continue
		}
		if f.d < 10*time.Second || f.d > 7*24*time.Hour {
			return errs.Invalidf(f.key, "%s must be from 10 to 604800 seconds", f.key)
		}
	}
	for _, f := range []struct {
		key string
		d   time.Duration
	}{{SettingL1Timeout, t.L1}, {SettingL2Timeout, t.L2}, {SettingUnattendedTimeout, t.Unattended}} {
		if f.d == 0 {
			continue
		}
		if err := s.store.SettingSet(ctx, f.key, strconv.Itoa(int(f.d.Seconds()))); err != nil {
			return err
		}
	}
	_, err := s.audit.Record(ctx, audit.Record{Action: "approval.timeouts_changed", ResourceType: "tenant",
		Description: "approval timeouts changed", Detail: map[string]any{"l1_seconds": int(t.L1.Seconds()), "l2_seconds": int(t.L2.Seconds()),
			"unattended_seconds": int(t.Unattended.Seconds())}})
	return err
}

// Timeouts returns the tenant's current approval timeouts.
func (s *Service) Timeouts(ctx context.Context) (t Timeouts, err error) {
	if t.L1, err = s.ttl(ctx, guard.L1, false); err != nil {
		return t, err
	}
	if t.L2, err = s.ttl(ctx, guard.L2, false); err != nil {
		return t, err
	}
	t.Unattended, err = s.ttl(ctx, guard.L2, true)
	return t, err
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
