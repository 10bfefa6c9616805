package checks

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/inventory/sshexec"
	"github.com/it0/it0/internal/monitor"
	"github.com/it0/it0/internal/tenant"
	"github.com/prometheus/client_golang/prometheus"
)

// Store keeps checks, their results and their state transitions, in the tenant of ctx.
type Store interface {
	// CheckCreate inserts c.
	CheckCreate(ctx context.Context, c *Check) error
	// CheckGet returns check id, or errs.NotFound.
	CheckGet(ctx context.Context, id string) (*Check, error)
	// CheckList returns every check of the tenant, by name.
	CheckList(ctx context.Context) ([]Check, error)
	// CheckUpdate saves c's definition (not its state); errs.NotFound when it is gone.
	CheckUpdate(ctx context.Context, c *Check) error
	// CheckDelete removes check id with its results and transitions; errs.NotFound when it does not exist.
	CheckDelete(ctx context.Context, id string) error
	// CheckRecord saves c's state, inserts r and, when not nil, t, in one transaction. It sets their IDs.
	// errs.NotFound when the check was deleted meanwhile.
	CheckRecord(ctx context.Context, c *Check, r *Result, t *Transition) error
	// CheckResultList returns check id's latest results, newest first.
	CheckResultList(ctx context.Context, checkID string, limit int) ([]Result, error)
	// CheckTransitionList returns check id's latest transitions, newest first.
	CheckTransitionList(ctx context.Context, checkID string, limit int) ([]Transition, error)
	// CheckClaim claims a run slot of check id for the caller; false when another replica claimed it (or a
	// later slot) first, or the check is gone.
	CheckClaim(ctx context.Context, id string, slot time.Time) (bool, error)
	// CheckResultPrune deletes results checked before before and returns how many.
	CheckResultPrune(ctx context.Context, before time.Time) (int64, error)
}

// Inventory is what ssh and custom checks need from the inventory.
type Inventory interface {
	Server(ctx context.Context, id string) (*inventory.Server, error)
	Check(ctx context.Context, id string) ([]sshexec.HopResult, error)
	Exec(ctx context.Context, req inventory.ExecRequest, onResult func(inventory.ExecResult)) (inventory.Summary, error)
}

// Guard classifies custom check commands.
type Guard interface {
	Classify(ctx context.Context, command string) guard.Verdict
}

// Config tunes the health check service.
type Config struct {
	// Now is the clock: results, transitions, lateness and TLS expiry are read from it.
	Now func() time.Time
	// OnTransition is called after every state change is stored (the app publishes check_failed from it).
	// It runs on the checker's goroutine: keep it short.
	OnTransition func(ctx context.Context, c Check, t Transition)
	// RootCAs verifies HTTPS targets; nil uses the system pool.
	RootCAs *x509.CertPool
	// DisableICMP makes ping checks use their TCP fallback even where ICMP is permitted.
	DisableICMP bool
	// Registerer takes the it0_checks_* metrics; nil registers none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Service is the health check service: definitions, runs, state and history.
type Service struct {
	cfg      Config
	store    Store
	inv      Inventory
	guard    Guard
	audit    monitor.AuditRecorder
	prober   *prober
	log      *slog.Logger
	metrics  checkMetrics
	onChange func() // the scheduler's reload signal
}

// New returns the service. inv and g may be nil when the inventory does not run in this process; ssh
// and custom checks are then refused at creation and fail when run.
func New(cfg Config, store Store, inv Inventory, g Guard, log monitor.AuditRecorder) *Service {
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return time.Now().UTC() }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, store: store, inv: inv, guard: g, audit: log, log: cfg.Logger.With(slog.String("component", "checks")),
		prober: &prober{now: cfg.Now, inv: inv, rootCAs: cfg.RootCAs, noICMP: cfg.DisableICMP}, metrics: newCheckMetrics(cfg.Registerer)}
	return s
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

func (s *Service) changed() {
	if s.onChange != nil {
		s.onChange()
	}
}

// validate checks c's definition, that its server exists, and that a custom command is L0.
func (s *Service) validate(ctx context.Context, c *Check) error {
	var list []error
	if err := c.Validate(); err != nil {
		list = append(list, err)
	}
	if c.ServerID != "" {
		if s.inv == nil {
			list = append(list, errs.Invalidf("server_id", "server checks need the inventory, which does not run in this process"))
		} else if _, err := s.inv.Server(ctx, c.ServerID); errs.Is(err, errs.NotFound) {
			list = append(list, errs.Invalidf("server_id", "server_id %q names no server of this tenant", c.ServerID).
				WithHint("list servers with GET /api/v1/inventory/servers"))
		} else if err != nil {
			return err
		}
	}
	if c.Type == TypeCustom && c.Command != "" {
		if s.guard == nil {
			list = append(list, errs.Invalidf("command", "custom checks need the command guard, which does not run in this process"))
		} else if v := s.guard.Classify(ctx, c.Command); v.Level > guard.L0 {
			list = append(list, errs.Invalidf("command", "command is %s (%s): a custom check may run only read-only L0 commands", v.Level, v.Reason).
				WithHint("use a command that only reads, such as systemctl is-active nginx or test -f /var/run/app.pid"))
		}
	}
	return errs.Join(list...)
}

// Create validates c and stores it, enabled, with state unknown.
func (s *Service) Create(ctx context.Context, c *Check) error {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return err
	}
	c.ID, c.TenantID, c.Enabled = uuid.NewString(), tid, true
	if err := s.validate(ctx, c); err != nil {
		return err
	}
	c.State, c.Streak, c.StateChangedAt, c.LastCheckedAt, c.LastStatus, c.LastMessage = Unknown, 0, nil, nil, "", ""
	c.CreatedAt, c.UpdatedAt = s.now(), s.now()
	if err := s.store.CheckCreate(ctx, c); err != nil {
		return err
	}
	s.changed()
	_, err = s.audit.Record(ctx, audit.Record{Action: "check.created", ResourceType: "check", ResourceID: c.ID,
		Description: fmt.Sprintf("%s check %s on %s added", c.Type, c.Name, c.Target),
		Detail:      map[string]any{"type": c.Type, "target": c.Target, "interval_seconds": c.IntervalSeconds, "command": c.Command}})
	return err
}

// Get returns check id with its current state.
func (s *Service) Get(ctx context.Context, id string) (*Check, error) {
	return s.store.CheckGet(ctx, id)
}

// List returns every check of the tenant.
func (s *Service) List(ctx context.Context) ([]Check, error) { return s.store.CheckList(ctx) }

// Update applies a JSON merge patch to check id's definition (state and identity cannot be patched) and
// validates the result like a new check.
func (s *Service) Update(ctx context.Context, id string, patch json.RawMessage) (*Check, error) {
	old, err := s.store.CheckGet(ctx, id)
	if err != nil {
		return nil, err
	}
	c := *old
	dec := json.NewDecoder(bytes.NewReader(patch))
	if err := dec.Decode(&c); err != nil {
		return nil, errs.New(errs.Invalid, "malformed patch: %v", err)
	}
	// Only the definition may change.
	c.ID, c.TenantID, c.CreatedAt = old.ID, old.TenantID, old.CreatedAt
	c.State, c.Streak, c.StateChangedAt, c.LastCheckedAt, c.LastStatus, c.LastMessage = old.State, old.Streak, old.StateChangedAt,
		old.LastCheckedAt, old.LastStatus, old.LastMessage
	if c.Type == TypeSSH || c.Type == TypeCustom {
		// target and server_id are one field for these types: follow whichever the patch changed.
		if c.ServerID != old.ServerID && c.Target == old.Target {
			c.Target = c.ServerID
		} else if c.Target != old.Target && c.ServerID == old.ServerID {
			c.ServerID = c.Target
		}
	}
	if err := s.validate(ctx, &c); err != nil {
		return nil, err
	}
	c.UpdatedAt = s.now()
	if err := s.store.CheckUpdate(ctx, &c); err != nil {
		return nil, err
	}
	s.changed()
	_, err = s.audit.Record(ctx, audit.Record{Action: "check.updated", ResourceType: "check", ResourceID: c.ID,
		Description: "check " + c.Name + " updated", Detail: checkDiff(old, &c)})
	return &c, err
}

// checkDiff lists the definition fields that changed, before and after.
func checkDiff(a, b *Check) map[string]any {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	var ma, mb map[string]any
	json.Unmarshal(ja, &ma)
	json.Unmarshal(jb, &mb)
	out := map[string]any{}
	for k, v := range mb {
		switch k {
		case "updated_at", "state", "streak", "state_changed_at", "last_checked_at", "last_status", "last_message":
			continue
		}
		if fmt.Sprint(ma[k]) != fmt.Sprint(v) {
			out[k] = map[string]any{"before": ma[k], "after": v}
		}
	}
	for k, v := range ma {
		if _, ok := mb[k]; !ok {
			out[k] = map[string]any{"before": v, "after": nil}
		}
	}
	return out
}

// Delete removes check id with its history.
func (s *Service) Delete(ctx context.Context, id string) error {
	c, err := s.store.CheckGet(ctx, id)
	if err != nil {
		return err
	}
	if err := s.store.CheckDelete(ctx, id); err != nil {
		return err
	}
	s.changed()
	_, err = s.audit.Record(ctx, audit.Record{Action: "check.deleted", ResourceType: "check", ResourceID: id,
		Description: "check " + c.Name + " removed"})
	return err
}

// Results returns check id's latest results, newest first.
func (s *Service) Results(ctx context.Context, id string, limit int) ([]Result, error) {
	if _, err := s.store.CheckGet(ctx, id); err != nil {
		return nil, err
	}
	return s.store.CheckResultList(ctx, id, limit)
}

// Transitions returns check id's latest state changes, newest first.
func (s *Service) Transitions(ctx context.Context, id string, limit int) ([]Transition, error) {
	if _, err := s.store.CheckGet(ctx, id); err != nil {
		return nil, err
	}
	return s.store.CheckTransitionList(ctx, id, limit)
}

// Run probes c once, applies the result to c's state (see Check.observe for the retries policy), stores
// the result and any transition, and calls OnTransition for a transition. due is when the run was
// scheduled (zero for a run out of schedule): the delay is recorded as lateness. ctx carries the tenant.
//
// When ctx ends during the probe (shutdown) nothing is recorded and ctx's error is returned.
func (s *Service) Run(ctx context.Context, c *Check, due time.Time) (*Result, error) {
	raw := s.cfg.Now().UTC()
	r := &Result{CheckID: c.ID, CheckedAt: raw.Truncate(time.Microsecond)}
	if !due.IsZero() {
		late := max(0, raw.Sub(due))
		r.LatenessMS = late.Milliseconds()
		s.metrics.lateness.Observe(late.Seconds())
	}
	t0 := time.Now()
	s.prober.probe(ctx, c, r)
	r.DurationMS = time.Since(t0).Milliseconds()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	s.metrics.observe(c.Type, r.Status)
	tr := c.observe(r)
	if err := s.store.CheckRecord(ctx, c, r, tr); err != nil {
		return r, fmt.Errorf("record result of %s: %w", c, err)
	}
	if tr != nil {
		s.log.InfoContext(ctx, "check state changed", slog.String("check_id", c.ID), slog.String("check", c.Name),
			slog.String("from", string(tr.From)), slog.String("to", string(tr.To)), slog.String("message", tr.Message))
		if s.cfg.OnTransition != nil {
			s.cfg.OnTransition(ctx, *c, *tr)
		}
	}
	return r, nil
}
