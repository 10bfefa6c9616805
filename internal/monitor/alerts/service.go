package alerts

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/monitor"
	"github.com/it0/it0/internal/tenant"
)

// Remediator starts a rule's runbook for a fired alert. It returns the ops task and agent session it
// started; an error says why it did not (a disabled runbook, one whose risk level is beyond what may run
// unattended), and is recorded on the event.
type Remediator interface {
	Remediate(ctx context.Context, runbookID string, ev *Event) (taskID, sessionID string, err error)
	// Resolved records on the remediation task that its alert resolved, and how.
	Resolved(ctx context.Context, taskID, resolution string) error
}

// Config configures alerting.
type Config struct {
	// Now is the clock (default time.Now in UTC); tests control it.
	Now func() time.Time
	// RuleCacheTTL is how long a tenant's rules are reused between evaluations before they are read
	// again (default 15s). Changes made through this Service take effect at once.
	RuleCacheTTL time.Duration
	Logger       *slog.Logger
	// OnAlert is called after an event fires (Status firing) and after it resolves (Status resolved).
	OnAlert func(ctx context.Context, ev Event)
	// Remediator starts linked runbooks; nil leaves runbooks alone.
	Remediator Remediator
	// CheckRunbook, when set, vets a rule's runbook_id (errs.NotFound when there is no such runbook).
	CheckRunbook func(ctx context.Context, id string) error
}

// Service manages alert rules and evaluates them on metric samples.
type Service struct {
	cfg   Config
	store Store
	audit monitor.AuditRecorder
	log   *slog.Logger

	mu      sync.Mutex
	tenants map[string]*tenantAlerts
}

// tenantAlerts is one tenant's evaluation state. mu serialises its evaluations.
type tenantAlerts struct {
	mu       sync.Mutex
	byMetric map[string][]*compiledRule
	loadedAt time.Time
	states   map[stateKey]*State     // nil until loaded
	worst    map[stateKey]worstValue // scratch of Evaluate, reused across passes
}

type compiledRule struct {
	Rule
	targets map[string]bool // nil: every server
}

type stateKey struct{ rule, server string }

// New returns alerting over store.
func New(cfg Config, store Store, log monitor.AuditRecorder) *Service {
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return time.Now().UTC() }
	}
	if cfg.RuleCacheTTL == 0 {
		cfg.RuleCacheTTL = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, store: store, audit: log, log: cfg.Logger.With(slog.String("component", "alerts")), tenants: map[string]*tenantAlerts{}}
}

func (a *Service) now() time.Time { return a.cfg.Now().UTC().Truncate(time.Microsecond) }

func (a *Service) tenantState(ctx context.Context) (*tenantAlerts, error) {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.tenants[tid]
	if !ok {
		t = &tenantAlerts{}
		a.tenants[tid] = t
	}
	return t, nil
}

// invalidate makes the next evaluation of the tenant in ctx read its rules again.
func (a *Service) invalidate(ctx context.Context) {
	if t, err := a.tenantState(ctx); err == nil {
		t.mu.Lock()
		t.loadedAt = time.Time{}
		t.mu.Unlock()
	}
}

// validateRule checks r and the runbook it names.
func (a *Service) validateRule(ctx context.Context, r *Rule) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if r.RunbookID != "" && a.cfg.CheckRunbook != nil {
		if err := a.cfg.CheckRunbook(ctx, r.RunbookID); errs.Is(err, errs.NotFound) {
			return errs.Invalidf("runbook_id", "runbook %s does not exist (list them with GET /api/v1/ops/runbooks)", r.RunbookID)
		} else if err != nil {
			return err
		}
	}
	return nil
}

// CreateRule validates and stores r.
func (a *Service) CreateRule(ctx context.Context, r *Rule) error {
	if err := a.validateRule(ctx, r); err != nil {
		return err
	}
	tid, _ := tenant.ID(ctx)
	r.ID, r.TenantID, r.CreatedAt, r.UpdatedAt = uuid.NewString(), tid, a.now(), a.now()
	if err := a.store.AlertRuleCreate(ctx, r); err != nil {
		return err
	}
	a.invalidate(ctx)
	return a.record(ctx, "alert_rule.created", "alert_rule", r.ID, "alert rule "+r.Name+" created", ruleDetail(r))
}

func ruleDetail(r *Rule) map[string]any {
	return map[string]any{"metric_type": r.Metric, "operator": r.Condition.Operator, "threshold": r.Condition.Threshold,
		"duration_seconds": r.Condition.DurationSeconds, "severity": r.Severity, "runbook_id": r.RunbookID, "active": r.Active,
		"target_servers": len(r.TargetServers)}
}

// Rule returns rule id.
func (a *Service) Rule(ctx context.Context, id string) (*Rule, error) {
	return a.store.AlertRuleGet(ctx, id)
}

// Rules lists the tenant's rules.
func (a *Service) Rules(ctx context.Context) ([]Rule, error) { return a.store.AlertRuleList(ctx) }

// UpdateRule saves a changed rule. Deactivating a rule resolves its open alerts.
func (a *Service) UpdateRule(ctx context.Context, r *Rule) error {
	if err := a.validateRule(ctx, r); err != nil {
		return err
	}
	r.UpdatedAt = a.now()
	if err := a.store.AlertRuleUpdate(ctx, r); err != nil {
		return err
	}
	a.invalidate(ctx)
	if err := a.record(ctx, "alert_rule.updated", "alert_rule", r.ID, "alert rule "+r.Name+" updated", ruleDetail(r)); err != nil {
		return err
	}
	if !r.Active {
		return a.closeRule(ctx, r.ID, "rule deactivated")
	}
	return nil
}

// DeleteRule removes a rule and resolves its open alerts.
func (a *Service) DeleteRule(ctx context.Context, id string) error {
	r, err := a.store.AlertRuleGet(ctx, id)
	if err != nil {
		return err
	}
	if err := a.closeRule(ctx, id, "rule deleted"); err != nil {
		return err
	}
	if err := a.store.AlertRuleDelete(ctx, id); err != nil {
		return err
	}
	a.invalidate(ctx)
	return a.record(ctx, "alert_rule.deleted", "alert_rule", id, "alert rule "+r.Name+" deleted", nil)
}

// closeRule resolves every open event of a rule that stops being evaluated and forgets its states.
func (a *Service) closeRule(ctx context.Context, ruleID, why string) error {
	t, err := a.tenantState(ctx)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.states {
		if k.rule == ruleID {
			delete(t.states, k)
		}
	}
	for _, status := range []string{Firing, Acknowledged} {
		open, err := a.store.AlertEventList(ctx, Filter{RuleID: ruleID, Status: status, Limit: 100000})
		if err != nil {
			return err
		}
		for i := range open {
			if err := a.resolveEvent(ctx, &open[i], open[i].LastValue, why); err != nil {
				return err
			}
			if err := a.store.AlertStateDelete(ctx, ruleID, open[i].ServerID); err != nil {
				return err
			}
		}
	}
	return nil
}

// Events lists alert events, newest first.
func (a *Service) Events(ctx context.Context, f Filter) ([]Event, error) {
	if f.Status != "" && !slices.Contains(Statuses, f.Status) {
		return nil, errs.Invalidf("status", "status %q is not one of %s", f.Status, strings.Join(Statuses, ", "))
	}
	if f.Severity != "" && !slices.Contains(Severities, f.Severity) {
		return nil, errs.Invalidf("severity", "severity %q is not one of %s", f.Severity, strings.Join(Severities, ", "))
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	return a.store.AlertEventList(ctx, f)
}

// Event returns alert event id.
func (a *Service) Event(ctx context.Context, id string) (*Event, error) {
	return a.store.AlertEventGet(ctx, id)
}

// Acknowledge marks a firing alert as taken by the actor in ctx. A resolved or already acknowledged
// alert is errs.Conflict.
func (a *Service) Acknowledge(ctx context.Context, id string) (*Event, error) {
	t, err := a.tenantState(ctx)
	if err != nil {
		return nil, err
	}
	// Under the tenant's lock, so an evaluation resolving the same event cannot interleave.
	t.mu.Lock()
	defer t.mu.Unlock()
	ev, err := a.store.AlertEventGet(ctx, id)
	if err != nil {
		return nil, err
	}
	if ev.Status != Firing {
		return nil, errs.New(errs.Conflict, "alert %s is %s; only a firing alert can be acknowledged", id, ev.Status)
	}
	at := a.now()
	actor := audit.ActorFrom(ctx)
	ev.Status, ev.AcknowledgedAt, ev.AcknowledgedBy = Acknowledged, &at, actor.ID
	if err := a.store.AlertEventUpdate(ctx, ev); err != nil {
		return nil, err
	}
	return ev, a.record(ctx, "alert.acknowledged", "alert_event", ev.ID, ev.RuleName+" on "+ev.ServerID+" acknowledged",
		map[string]any{"rule_id": ev.RuleID, "server_id": ev.ServerID})
}

// FiringCounts counts the tenant's open alerts by severity.
func (a *Service) FiringCounts(ctx context.Context) (map[string]int, error) {
	return a.store.AlertEventCount(ctx)
}

func (a *Service) record(ctx context.Context, action, typ, id, desc string, detail map[string]any) error {
	_, err := a.audit.Record(ctx, audit.Record{Action: action, ResourceType: typ, ResourceID: id, Description: desc, Detail: detail})
	return err
}

// load refreshes t's rules and states when they are older than RuleCacheTTL. Re-reading the states lets
// replicas that evaluate different rounds of the same servers see each other's transitions (what one
// misses within a TTL is absorbed: a second firing adopts the open event, a second resolve finds it
// resolved). Called with t.mu held.
func (a *Service) load(ctx context.Context, t *tenantAlerts, now time.Time) error {
	if t.states != nil && !t.loadedAt.IsZero() && now.Sub(t.loadedAt) < a.cfg.RuleCacheTTL && now.After(t.loadedAt.Add(-time.Second)) {
		return nil
	}
	list, err := a.store.AlertStateList(ctx)
	if err != nil {
		return err
	}
	t.states = make(map[stateKey]*State, len(list))
	for i := range list {
		t.states[stateKey{list[i].RuleID, list[i].ServerID}] = &list[i]
	}
	rules, err := a.store.AlertRuleList(ctx)
	if err != nil {
		return err
	}
	t.byMetric = map[string][]*compiledRule{}
	for i := range rules {
		r := &rules[i]
		if !r.Active {
			continue
		}
		c := &compiledRule{Rule: *r}
		if len(r.TargetServers) > 0 {
			c.targets = make(map[string]bool, len(r.TargetServers))
			for _, s := range r.TargetServers {
				c.targets[s] = true
			}
		}
		t.byMetric[r.Metric] = append(t.byMetric[r.Metric], c)
	}
	t.loadedAt = now
	return nil
}

// verdict is the worst value of one rule on one server in an evaluation.
type verdict struct {
	rule  *compiledRule
	value float64
	label string
}

// Evaluate runs every active rule of the tenant in ctx over samples (a collection's samples of one or
// many servers), applying the transitions: pending and cleared states are persisted, firing opens an
// event (then OnAlert and the runbook), resolution closes it. A rule judges the worst of a server's
// series (the fullest mount for disk_usage > 90). It returns the events that fired and resolved.
func (a *Service) Evaluate(ctx context.Context, samples []monitor.Sample) ([]Event, error) {
	if len(samples) == 0 {
		return nil, nil
	}
	t, err := a.tenantState(ctx)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := a.now()
	if err := a.load(ctx, t, now); err != nil {
		return nil, err
	}
	if t.worst == nil {
		t.worst = make(map[stateKey]worstValue, len(samples))
	}
	clear(t.worst)
	worst := worstValues(t, samples, t.worst)
	var changed []Event
	for k, v := range worst {
		at := v.at
		st := t.states[k]
		switch step(v.rule.Condition, st, v.value, at) {
		case evalStay:
		case evalPend:
			st = &State{RuleID: k.rule, ServerID: k.server, Since: at, Value: v.value}
			if err := a.store.AlertStatePut(ctx, st); err != nil {
				return changed, err
			}
			t.states[k] = st
		case evalClear:
			if err := a.store.AlertStateDelete(ctx, k.rule, k.server); err != nil {
				return changed, err
			}
			delete(t.states, k)
		case evalFire:
			if st == nil {
				st = &State{RuleID: k.rule, ServerID: k.server, Since: at, Value: v.value}
			}
			ev, err := a.fire(ctx, &v.rule.Rule, st, v.value, v.label, at)
			if err != nil {
				return changed, err
			}
			t.states[k] = st
			changed = append(changed, *ev)
		case evalResolve:
			ev, err := a.store.AlertEventGet(ctx, st.EventID)
			if err != nil && !errs.Is(err, errs.NotFound) {
				return changed, err
			}
			if ev != nil && ev.ResolvedAt == nil {
				if err := a.resolveEvent(ctx, ev, v.value, ""); err != nil {
					return changed, err
				}
				changed = append(changed, *ev)
			}
			if err := a.store.AlertStateDelete(ctx, k.rule, k.server); err != nil {
				return changed, err
			}
			delete(t.states, k)
		}
	}
	return changed, nil
}

type worstValue struct {
	verdict
	at time.Time
}

// worstValues picks, for each rule and server in samples, the value furthest into the rule's condition.
func worstValues(t *tenantAlerts, samples []monitor.Sample, out map[stateKey]worstValue) map[stateKey]worstValue {
	for i := range samples {
		s := &samples[i]
		for _, r := range t.byMetric[s.Metric] {
			if r.targets != nil && !r.targets[s.ServerID] {
				continue
			}
			k := stateKey{r.ID, s.ServerID}
			if cur, ok := out[k]; ok && !r.Condition.worse(s.Value, cur.value) {
				if s.At.After(cur.at) {
					cur.at = s.At
					out[k] = cur
				}
				continue
			}
			out[k] = worstValue{verdict{rule: r, value: s.Value, label: s.Label}, s.At}
		}
	}
	return out
}

// fire opens the event of a rule on a server (adopting an open one left by a crash between the insert and
// the state write), persists the firing state, audits, publishes and starts the runbook once.
func (a *Service) fire(ctx context.Context, r *Rule, st *State, value float64, label string, at time.Time) (*Event, error) {
	tid, _ := tenant.ID(ctx)
	ev := &Event{ID: uuid.NewString(), TenantID: tid, RuleID: r.ID, RuleName: r.Name, ServerID: st.ServerID, Metric: r.Metric, Label: label,
		Severity: r.Severity, Status: Firing, Value: value, LastValue: value, Operator: r.Condition.Operator, Threshold: r.Condition.Threshold,
		PendingSince: st.Since, FiredAt: at, RunbookID: r.RunbookID}
	ev.Message = fmt.Sprintf("%s: %s %s %g (value %g) for %ds", r.Name, r.Metric, r.Condition.Operator, r.Condition.Threshold, value, r.Condition.DurationSeconds)
	if label != "" {
		ev.Message += " on " + label
	}
	err := a.store.AlertEventOpen(ctx, ev)
	if errs.Is(err, errs.Conflict) {
		open, lerr := a.store.AlertEventList(ctx, Filter{RuleID: r.ID, ServerID: st.ServerID, Limit: 10})
		if lerr != nil {
			return nil, lerr
		}
		for i := range open {
			if open[i].ResolvedAt == nil {
				st.EventID = open[i].ID
				return &open[i], a.store.AlertStatePut(ctx, st)
			}
		}
		return nil, err
	} else if err != nil {
		return nil, err
	}
	st.EventID = ev.ID
	if err := a.store.AlertStatePut(ctx, st); err != nil {
		return nil, err
	}
	if err := a.record(ctx, "alert.fired", "alert_event", ev.ID, ev.Message, map[string]any{"rule_id": r.ID, "server_id": ev.ServerID,
		"value": value, "severity": r.Severity, "pending_since": st.Since}); err != nil {
		return nil, err
	}
	if r.RunbookID != "" && a.cfg.Remediator != nil {
		a.remediate(ctx, ev)
	}
	if a.cfg.OnAlert != nil {
		a.cfg.OnAlert(ctx, *ev)
	}
	return ev, nil
}

// remediate starts the rule's runbook for ev and records the run (or why it did not start) on the event.
// It runs once per firing: only fire calls it, right after the event was created.
func (a *Service) remediate(ctx context.Context, ev *Event) {
	taskID, sessID, err := a.cfg.Remediator.Remediate(ctx, ev.RunbookID, ev)
	ev.RemediationTaskID, ev.RemediationSessID = taskID, sessID
	action, desc := "alert.remediation_started", "runbook started for "+ev.RuleName
	if err != nil {
		ev.RemediationError = err.Error()
		action, desc = "alert.remediation_failed", "runbook not started for "+ev.RuleName+": "+err.Error()
		a.log.WarnContext(ctx, "remediation not started", slog.String("event_id", ev.ID), slog.String("error", err.Error()))
	}
	if uerr := a.store.AlertEventUpdate(ctx, ev); uerr != nil {
		a.log.ErrorContext(ctx, "record remediation", slog.String("event_id", ev.ID), slog.String("error", uerr.Error()))
	}
	if aerr := a.record(ctx, action, "alert_event", ev.ID, desc, map[string]any{"runbook_id": ev.RunbookID, "task_id": taskID,
		"session_id": sessID}); aerr != nil {
		a.log.ErrorContext(ctx, "audit remediation", slog.String("event_id", ev.ID), slog.String("error", aerr.Error()))
	}
}

// resolveEvent closes ev with the value that ended it; why overrides the description of how it ended.
func (a *Service) resolveEvent(ctx context.Context, ev *Event, value float64, why string) error {
	at := a.now()
	ev.Status, ev.ResolvedAt, ev.LastValue = Resolved, &at, value
	switch {
	case why != "":
		ev.Resolution = why
	case ev.RemediationTaskID != "":
		ev.Resolution = fmt.Sprintf("resolved %s after remediation task %s started (value %g)", at.Sub(ev.FiredAt).Round(time.Second), ev.RemediationTaskID, value)
	default:
		ev.Resolution = fmt.Sprintf("resolved after %s (value %g)", at.Sub(ev.FiredAt).Round(time.Second), value)
	}
	if err := a.store.AlertEventUpdate(ctx, ev); err != nil {
		return err
	}
	if err := a.record(ctx, "alert.resolved", "alert_event", ev.ID, ev.RuleName+" on "+ev.ServerID+": "+ev.Resolution,
		map[string]any{"rule_id": ev.RuleID, "server_id": ev.ServerID, "value": value, "remediation_task_id": ev.RemediationTaskID}); err != nil {
		return err
	}
	if ev.RemediationTaskID != "" && a.cfg.Remediator != nil {
		if err := a.cfg.Remediator.Resolved(ctx, ev.RemediationTaskID, ev.Resolution); err != nil {
			a.log.ErrorContext(ctx, "record the resolution on the remediation task", slog.String("task_id", ev.RemediationTaskID), slog.String("error", err.Error()))
		}
	}
	if a.cfg.OnAlert != nil {
		a.cfg.OnAlert(ctx, *ev)
	}
	return nil
}
