package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/agent/agentapi"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/tenant"
)

// Execution statuses.
const (
	ExecRunning       = "running"
	ExecCompleted     = "completed"
	ExecFailed        = "failed"
	ExecAwaitingHuman = "awaiting_human"
	ExecAborted       = "aborted" // a human rejected the escalation
	ExecSkipped       = "skipped" // the trigger fired while a run was still going
)

// Execution is one run of a standing order.
type Execution struct {
	ID             string          `json:"id"`
	TenantID       string          `json:"tenant_id"`
	OrderID        string          `json:"order_id"`
	Status         string          `json:"status"`
	TriggerType    string          `json:"trigger_type"`
	TriggerContext json.RawMessage `json:"trigger_context"`
	SessionID      string          `json:"session_id,omitempty"`
	Summary        string          `json:"summary,omitempty"`
	ActionsTaken   json.RawMessage `json:"actions_taken"`
	Error          string          `json:"error,omitempty"`
	Escalation     json.RawMessage `json:"escalation,omitempty"`
	HumanResponse  json.RawMessage `json:"human_response,omitempty"`
	StartedAt      time.Time       `json:"started_at"`
	FinishedAt     *time.Time      `json:"finished_at,omitempty"`
	// TriggerKey names the domain event that started the execution (empty otherwise): the store keeps
	// one execution per order and key, so a redelivered event starts nothing more.
	TriggerKey string `json:"-"`
}

// ErrTriggered is returned by OrderStore.ExecutionCreate when the order already has an execution with
// the same TriggerKey (the event was handled before).
var ErrTriggered = errors.New("the standing order was already triggered by this event")

// OrderStore is what standing orders need from storage.
type OrderStore interface {
	StandingOrderCreate(ctx context.Context, o *StandingOrder) error // assigns the SO-YYYYMMDD-NNN id
	StandingOrderGet(ctx context.Context, id string) (*StandingOrder, error)
	StandingOrderList(ctx context.Context, status string) ([]StandingOrder, error)
	StandingOrderUpdate(ctx context.Context, o *StandingOrder) error
	// ExecutionCreate inserts e: errs.Conflict when a run of the order is open (and e is running),
	// ErrTriggered when the order has an execution with e's TriggerKey.
	ExecutionCreate(ctx context.Context, e *Execution) error
	ExecutionUpdate(ctx context.Context, e *Execution) error
	// ExecutionMirror is ExecutionUpdate of a run end of the execution's session: it updates (and appends
	// p.Audit and writes p.Executed's event, in the same transaction) only if the execution has not mirrored run end p.Run or a later
	// one, and reports whether it did.
	ExecutionMirror(ctx context.Context, p MirrorParams) (bool, error)
	ExecutionGet(ctx context.Context, id string) (*Execution, error)
	ExecutionList(ctx context.Context, orderID, status string, limit int) ([]Execution, error)
	SettingGet(ctx context.Context, key string) (string, error)
	SettingSet(ctx context.Context, key, value string) error
	// ThresholdUpdate runs f on the stored threshold state of order orderID on server serverID (zero
	// when none) and saves what f leaves, in one transaction that holds the row: replicas judging samples
	// of the same order and server take turns.
	ThresholdUpdate(ctx context.Context, orderID, serverID string, f func(*ThresholdState)) error
}

// MirrorParams is a run end of a session mirrored onto its standing-order execution.
type MirrorParams struct {
	// Execution is the execution as the run end leaves it.
	Execution *Execution
	// Run is the session's run end (agentapi.RunEnded.Run).
	Run int
	// Executed, when set, is written to the outbox (StreamEvents, EventExecuted) in the transaction of
	// the update, so the run's report cannot be lost to a crash after it.
	Executed *Executed
	// Audit, when set, is the run's audit entry (AuditBatch.Entry), appended and sealed with Seal in the
	// transaction of the update, so the execution is never updated without its record nor recorded twice.
	Audit *audit.Entry
	Seal  AuditBatch
}

// AuditBatch builds and seals audit entries that a store appends itself, in the transaction of the change
// they record (audit.Log). An AuditLog that is one too makes a run end's update and record atomic.
type AuditBatch interface {
	Entry(ctx context.Context, r audit.Record) (*audit.Entry, error)
	Sum(prev []byte, e *audit.Entry) []byte
	HeadMAC(chain string, seq int64, hash []byte) []byte
}

// Fleet resolves an order's targets to servers.
type Fleet interface {
	Servers(ctx context.Context, sel inventory.Selector) ([]inventory.Server, error)
	CommandRecords(ctx context.Context, serverID, sessionID string, limit int) ([]inventory.CommandRecord, error)
}

// Orders runs standing orders: their definition (API and agent tools) and their executions.
type Orders struct {
	store     OrderStore
	agent     OrderAgent
	fleet     Fleet
	audit     AuditLog
	checkCron func(expr, tz string) error
	nextCron  func(expr, tz string, after time.Time) (time.Time, error)
	schedule  func(ctx context.Context, kind string, args any, at time.Time, uniqueKey string) error
	now       func() time.Time

	notifier  Notifier
	people    func(ctx context.Context, userID string) string
	approvals ApprovalLister // who approved what in a run (reports); nil = nobody named
	locale    func(ctx context.Context) string
	log       *slog.Logger
	notify    func(ctx context.Context) // asks the outbox relay to publish now (after a change wrote events); nil = its next poll
}

// SetNotify makes the orders call notify after a change wrote domain events (the outbox relay's Notify),
// so they go out at once rather than at the relay's next poll.
func (s *Orders) SetNotify(notify func(ctx context.Context)) { s.notify = notify }

// JobCron is the durable job that fires one cron occurrence of a standing order.
const JobCron = "standing_order.cron"

// SetScheduler connects the orders to durable jobs: nextCron computes occurrences, schedule enqueues a job
// (deduplicated by uniqueKey). Without it cron triggers do not fire.
func (s *Orders) SetScheduler(nextCron func(expr, tz string, after time.Time) (time.Time, error),
	schedule func(ctx context.Context, kind string, args any, at time.Time, uniqueKey string) error) {
	s.nextCron, s.schedule = nextCron, schedule
}

// cronArgs are a cron job's arguments.
type cronArgs struct {
	OrderID    string    `json:"order_id"`
	Occurrence time.Time `json:"occurrence"`
}

// ensureNext schedules the next occurrence after after of a cron order, once (the job key names the
// occurrence, so calling it again, or from a retried job, adds nothing).
func (s *Orders) ensureNext(ctx context.Context, o *StandingOrder, after time.Time) error {
	if s.schedule == nil || o.Trigger.Type != "cron" || o.Status != "active" {
		return nil
	}
	next, err := s.nextCron(o.Trigger.CronExpression, o.Trigger.Timezone, after)
	if err != nil {
		return err
	}
	if o.ValidUntil != nil && !next.Before(*o.ValidUntil) {
		return nil
	}
	return s.schedule(ctx, JobCron, cronArgs{OrderID: o.ID, Occurrence: next}, next,
		"so-cron:"+o.ID+":"+next.UTC().Format(time.RFC3339))
}

// EnsureSchedules makes sure every active cron order of the tenant in ctx has its next occurrence queued,
// and the daily digest when any order is active (at startup, and after a restore). Missed occurrences are
// not replayed here: their jobs are already in the queue and run once, promptly, when the runner starts.
func (s *Orders) EnsureSchedules(ctx context.Context) error {
	list, err := s.store.StandingOrderList(ctx, "active")
	if err != nil {
		return err
	}
	for i := range list {
		if err := s.ensureNext(ctx, &list[i], s.now()); err != nil {
			return fmt.Errorf("schedule %s: %w", list[i].ID, err)
		}
	}
	if len(list) == 0 {
		return nil
	}
	if err := s.EnsureDigest(ctx); err != nil {
		return fmt.Errorf("daily digest: %w", err)
	}
	return nil
}

// HandleCron fires one occurrence of a cron order (the JobCron handler). It first queues the next
// occurrence after the later of now and this one, so a run that was missed while IT0 was down runs once
// on restart and the schedule then continues in the future (several missed occurrences run once in
// total). An occurrence that no longer belongs to the order's schedule (it was edited, paused or
// archived) is dropped.
func (s *Orders) HandleCron(ctx context.Context, raw json.RawMessage) error {
	var a cronArgs
	if err := json.Unmarshal(raw, &a); err != nil {
		return err
	}
	o, err := s.store.StandingOrderGet(ctx, a.OrderID)
	if errs.Is(err, errs.NotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if o.Status != "active" || o.Trigger.Type != "cron" {
		return nil
	}
	if want, err := s.nextCron(o.Trigger.CronExpression, o.Trigger.Timezone, a.Occurrence.Add(-time.Second)); err != nil || !want.Equal(a.Occurrence) {
		return nil // the schedule changed; its new chain was queued by the change
	}
	after := a.Occurrence
	if now := s.now(); now.After(after) {
		after = now
	}
	if err := s.ensureNext(ctx, o, after); err != nil {
		return err
	}
	if !o.Active(s.now()) {
		return nil
	}
	trig, _ := json.Marshal(map[string]any{"occurrence": a.Occurrence, "timezone": o.Trigger.Timezone})
	_, err = s.Trigger(ctx, o.ID, "cron", trig)
	if errs.Is(err, errs.Conflict) {
		return nil
	}
	return err
}

// OrderAgent is what standing orders need from the agent.
type OrderAgent interface {
	StartTask(ctx context.Context, p agentapi.StartParams) (*agentapi.Session, *agentapi.TaskRecord, error)
	Session(ctx context.Context, id string) (*agentapi.Session, error)
	RequestApproval(ctx context.Context, sess *agentapi.Session, tool, summary string, input json.RawMessage, level guard.Level, reason string) (*approval.Approval, error)
	UseGrant(ctx context.Context, sessionID, summary string) (bool, error)
}

// NewOrders returns the standing-order service. checkCron validates a cron expression in a time zone.
func NewOrders(store OrderStore, a OrderAgent, fleet Fleet, log AuditLog, checkCron func(expr, tz string) error, now func() time.Time) *Orders {
	if now == nil {
		now = func() time.Time { return time.Now().UTC() }
	}
	return &Orders{store: store, agent: a, fleet: fleet, audit: log, checkCron: checkCron, now: now}
}

func (s *Orders) validate(o *StandingOrder) error {
	return o.Validate(ValidateParams{CheckCron: s.checkCron, Now: s.now()})
}

// Create validates and stores a new order (definedIn is the session it was defined in, if any).
func (s *Orders) Create(ctx context.Context, o *StandingOrder, definedIn string) error {
	if err := s.validate(o); err != nil {
		return err
	}
	now := s.now().Truncate(time.Microsecond)
	o.CreatedAt, o.UpdatedAt, o.DefinedInSessionID, o.LastModifiedInSessionID = now, now, definedIn, definedIn
	o.CreatedBy = actorName(ctx)
	if err := s.store.StandingOrderCreate(ctx, o); err != nil {
		return err
	}
	if err := s.ensureNext(ctx, o, s.now()); err != nil {
		return err
	}
	if err := s.EnsureDigest(ctx); err != nil && s.log != nil {
		s.log.WarnContext(ctx, "schedule the daily digest", slog.String("error", err.Error()))
	}
	_, err := s.audit.Record(ctx, audit.Record{Action: "standing_order.created", ResourceType: "standing_order", ResourceID: o.ID,
		Description: "standing order " + o.ID + " " + o.Name, Detail: map[string]any{"order": o}})
	return err
}

func actorName(ctx context.Context) string {
	a := audit.ActorFrom(ctx)
	return a.Type + ":" + a.ID
}

// Get returns order id.
func (s *Orders) Get(ctx context.Context, id string) (*StandingOrder, error) {
	return s.store.StandingOrderGet(ctx, id)
}

// List returns orders, optionally with one status.
func (s *Orders) List(ctx context.Context, status string) ([]StandingOrder, error) {
	if status != "" && !contains(OrderStatuses, status) {
		return nil, errs.Invalidf("status", "status %q is not one of %s", status, strings.Join(OrderStatuses, ", "))
	}
	return s.store.StandingOrderList(ctx, status)
}

func contains(l []string, v string) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// Update applies patch (a JSON object of the fields to change, as in the create body) to order id and
// audits the change with a before/after diff. modifiedIn is the session that changed it, if any.
func (s *Orders) Update(ctx context.Context, id string, patch json.RawMessage, modifiedIn string) (*StandingOrder, error) {
	o, err := s.store.StandingOrderGet(ctx, id)
	if err != nil {
		return nil, err
	}
	before, _ := json.Marshal(o)
	merged, err := mergePatch(before, patch)
	if err != nil {
		return nil, errs.Invalidf("body", "the change is not a JSON object: %v", err)
	}
	var next StandingOrder
	if err := json.Unmarshal(merged, &next); err != nil {
		return nil, errs.Invalidf("body", "the changed order does not fit the schema: %v", err)
	}
	// What identifies and dates the order is not the caller's to change.
	next.ID, next.TenantID, next.CreatedAt, next.CreatedBy, next.DefinedInSessionID = o.ID, o.TenantID, o.CreatedAt, o.CreatedBy, o.DefinedInSessionID
	if err := s.validate(&next); err != nil {
		return nil, err
	}
	next.UpdatedAt = s.now().Truncate(time.Microsecond)
	if modifiedIn != "" {
		next.LastModifiedInSessionID = modifiedIn
	}
	if err := s.store.StandingOrderUpdate(ctx, &next); err != nil {
		return nil, err
	}
	if err := s.ensureNext(ctx, &next, s.now()); err != nil {
		return nil, err
	}
	after, _ := json.Marshal(next)
	_, err = s.audit.Record(ctx, audit.Record{Action: "standing_order.updated", ResourceType: "standing_order", ResourceID: id,
		Description: "standing order " + id + " changed", Detail: map[string]any{"diff": diff(before, after), "session_id": modifiedIn}})
	return &next, err
}

// mergePatch applies an RFC 7386 JSON merge patch.
func mergePatch(doc, patch json.RawMessage) (json.RawMessage, error) {
	var d, p map[string]any
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(patch, &p); err != nil {
		return nil, err
	}
	merge(d, p)
	return json.Marshal(d)
}

func merge(d, p map[string]any) {
	for k, v := range p {
		if v == nil {
			delete(d, k)
			continue
		}
		if pm, ok := v.(map[string]any); ok {
			if dm, ok := d[k].(map[string]any); ok {
				merge(dm, pm)
				continue
			}
		}
		d[k] = v
	}
}

// diff lists the top-level fields that changed, with their before and after values.
func diff(before, after json.RawMessage) map[string]any {
	var b, a map[string]json.RawMessage
	json.Unmarshal(before, &b)
	json.Unmarshal(after, &a)
	out := map[string]any{}
	for k, v := range a {
		if k == "updated_at" || k == "last_modified_in_session_id" {
			continue
		}
		if string(b[k]) != string(v) {
			out[k] = map[string]json.RawMessage{"before": b[k], "after": v}
		}
	}
	return out
}

// SetStatus pauses, resumes or archives order id.
func (s *Orders) SetStatus(ctx context.Context, id, status string) (*StandingOrder, error) {
	o, err := s.store.StandingOrderGet(ctx, id)
	if err != nil {
		return nil, err
	}
	if o.Status == "archived" && status != "archived" {
		return nil, errs.New(errs.Conflict, "standing order %s is archived", id).WithHint("create a new order")
	}
	old := o.Status
	o.Status, o.UpdatedAt = status, s.now().Truncate(time.Microsecond)
	if err := s.store.StandingOrderUpdate(ctx, o); err != nil {
		return nil, err
	}
	if err := s.ensureNext(ctx, o, s.now()); err != nil {
		return nil, err
	}
	_, err = s.audit.Record(ctx, audit.Record{Action: "standing_order." + status, ResourceType: "standing_order", ResourceID: id,
		Description: fmt.Sprintf("standing order %s: %s → %s", id, old, status)})
	return o, err
}

// Executions lists runs of order id.
func (s *Orders) Executions(ctx context.Context, id string, limit int) ([]Execution, error) {
	if _, err := s.store.StandingOrderGet(ctx, id); err != nil {
		return nil, err
	}
	return s.store.ExecutionList(ctx, id, "", limit)
}

// Trigger starts a run of order id for trigger (cron, event, threshold or manual) with its context. A
// trigger that fires while a run is open is recorded as skipped, not doubled. It returns the execution.
func (s *Orders) Trigger(ctx context.Context, id, trigger string, triggerCtx json.RawMessage) (*Execution, error) {
	return s.trigger(ctx, id, trigger, triggerCtx, "")
}

// trigger is Trigger for the event named key (empty: no event): it returns ErrTriggered, and starts
// nothing, when key already started (or skipped) an execution of the order.
func (s *Orders) trigger(ctx context.Context, id, trigger string, triggerCtx json.RawMessage, key string) (*Execution, error) {
	o, err := s.store.StandingOrderGet(ctx, id)
	if err != nil {
		return nil, err
	}
	now := s.now().Truncate(time.Microsecond)
	if trigger != "manual" && !o.Active(now) {
		return nil, errs.New(errs.Conflict, "standing order %s is not active (%s)", id, o.Status)
	}
	e := &Execution{ID: uuid.NewString(), OrderID: o.ID, Status: ExecRunning, TriggerType: trigger, TriggerContext: triggerCtx, StartedAt: now,
		TriggerKey: key}
	if err := s.store.ExecutionCreate(ctx, e); errs.Is(err, errs.Conflict) {
		e.Status, e.Error, e.FinishedAt = ExecSkipped, err.Error(), &now
		if err := s.store.ExecutionCreate(ctx, e); err != nil {
			return nil, err
		}
		_, err = s.audit.Record(ctx, audit.Record{Action: "standing_order.run_skipped", ResourceType: "standing_order", ResourceID: id,
			Description: "trigger skipped: a run is still going", Detail: map[string]any{"execution_id": e.ID, "trigger": trigger}})
		return e, err
	} else if err != nil {
		return nil, err
	}
	servers, err := s.targetServers(ctx, o)
	if err == nil {
		lvl := o.AgentInstructions.MaxRiskLevel
		var sess *agentapi.Session
		sess, _, err = s.agent.StartTask(ctx, agentapi.StartParams{Prompt: runPrompt(o, trigger, triggerCtx), ServerIDs: servers,
			MaxTurns: o.AgentInstructions.MaxTurns, MaxBudgetUSD: o.AgentInstructions.MaxBudgetUSD, MaxRiskLevel: &lvl,
			Origin: agentapi.OriginStandingOrder, OriginID: e.ID})
		if err == nil {
			e.SessionID = sess.ID
		}
	}
	if err != nil {
		e.Status, e.Error, e.FinishedAt = ExecFailed, err.Error(), &now
	}
	if uerr := s.store.ExecutionUpdate(ctx, e); uerr != nil {
		return nil, uerr
	}
	_, aerr := s.audit.Record(ctx, audit.Record{Action: "standing_order.run_started", ResourceType: "standing_order", ResourceID: id,
		Description: "run " + e.Status + " (" + trigger + ")", Detail: map[string]any{"execution_id": e.ID, "session_id": e.SessionID, "error": e.Error}})
	if aerr != nil {
		return nil, aerr
	}
	return e, nil
}

// targetServers resolves an order's targets to server ids (every filter must hold).
func (s *Orders) targetServers(ctx context.Context, o *StandingOrder) ([]string, error) {
	t := o.Targets
	all, err := s.fleet.Servers(ctx, inventory.Selector{})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, srv := range all {
		if len(t.ServerIDs) > 0 && !contains(t.ServerIDs, srv.ID) && !contains(t.ServerIDs, srv.Name) {
			continue
		}
		if len(t.ClusterIDs) > 0 && !contains(t.ClusterIDs, srv.ClusterID) {
			continue
		}
		if len(t.EnvironmentFilter) > 0 && !contains(t.EnvironmentFilter, srv.Environment) {
			continue
		}
		if !(inventory.Selector{Tags: t.TagFilter, All: true}).Match(&srv) {
			continue
		}
		ids = append(ids, srv.ID)
	}
	if len(ids) == 0 {
		return nil, errs.New(errs.NotFound, "no server matches the targets of %s", o.ID)
	}
	return ids, nil
}

// runPrompt is what the agent is told on each run: the instructions, the boundary, how to escalate.
func runPrompt(o *StandingOrder, trigger string, triggerCtx json.RawMessage) string {
	var b strings.Builder
	fmt.Fprintf(&b, "You are carrying out standing order %s (%s), triggered by %s", o.ID, o.Name, trigger)
	if len(triggerCtx) > 2 {
		fmt.Fprintf(&b, " with %s", triggerCtx)
	}
	fmt.Fprintf(&b, ". Nobody is watching this run.\n\nInstructions:\n%s\n\nDecision boundary: commands up to L%d run without a human "+
		"(IT0 records them as approved by this order); anything riskier pauses the run and is escalated to a human.",
		o.AgentInstructions.Prompt, o.AgentInstructions.MaxRiskLevel)
	if len(o.DecisionBoundary.AllowedActions) > 0 {
		fmt.Fprintf(&b, " Allowed actions: %s.", strings.Join(o.DecisionBoundary.AllowedActions, "; "))
	}
	if len(o.DecisionBoundary.EscalateConditions) > 0 {
		fmt.Fprintf(&b, " Escalate when: %s.", strings.Join(o.DecisionBoundary.EscalateConditions, "; "))
	}
	for i, r := range o.DecisionBoundary.EscalationRules {
		fmt.Fprintf(&b, "\nEscalation rule %d: when %s, escalate (%s, via %s) with report_escalation rule \"%d\".", i+1, r.Condition, r.Priority, r.Channel, i+1)
	}
	b.WriteString("\nWhen something is beyond this boundary, call report_escalation with what you found, on which server, what you propose " +
		"and the rule that applies, and stop; " +
		"a human will approve, reject or instruct. Finish with a short summary of what you checked and did; say \"nothing to do\" when all was fine.")
	return b.String()
}

// OnSessionEnd mirrors a standing-order session's run end onto its execution, in process: the agent
// calls it when a run of any session ends, before the run's event goes out, so a client that reacts to
// the event reads the execution as it now is. The run's agent.run_ended event (OnRunEnded) is the
// durable path, which a crash or a split deployment cannot lose; whichever comes first mirrors the run
// end, and the other finds it done.
func (s *Orders) OnSessionEnd(ctx context.Context, sess *agentapi.Session) {
	if err := s.OnRunEnded(ctx, sess.RunEnded()); err != nil && s.log != nil {
		// The event is still on its way: it tries again.
		s.log.WarnContext(ctx, "mirror a run end onto its execution", slog.String("session_id", sess.ID), slog.String("error", err.Error()))
	}
}

// OnRunEnded mirrors the run end r of a standing-order session onto its execution, and audits it and
// writes its standing_order.executed event, which reports it (the ops module's subscription to
// agent.run_ended); run ends of other sessions are ignored. It is idempotent: the execution remembers the
// last run end it mirrored, and only the call that moves it past that one updates, audits (in the same
// transaction, when the audit log is an AuditBatch) and writes the event (in the same transaction), so a
// redelivered event or an older one arriving late changes nothing. An error (the store) leaves the event
// to be handed out again.
func (s *Orders) OnRunEnded(ctx context.Context, r agentapi.RunEnded) error {
	if r.Origin != agentapi.OriginStandingOrder || r.Run <= 0 {
		return nil
	}
	e, err := s.store.ExecutionGet(ctx, r.OriginID)
	if errs.Is(err, errs.NotFound) {
		return nil // not an execution of this tenant (deleted with its order): nothing to follow
	}
	if err != nil {
		return fmt.Errorf("get execution %s: %w", r.OriginID, err)
	}
	now := s.now().Truncate(time.Microsecond)
	switch r.Status {
	case agentapi.StatusAwaitingApproval:
		e.Status = ExecAwaitingHuman
	case agentapi.StatusCompleted:
		e.Status, e.FinishedAt = ExecCompleted, &now
		if strings.Contains(r.Summary, "ESCALATION_REQUIRED") {
			e.Status, e.FinishedAt = ExecAwaitingHuman, nil
			e.Escalation, _ = json.Marshal(map[string]string{"reason": "the agent reported ESCALATION_REQUIRED", "summary": r.Summary})
		}
	case agentapi.StatusCancelled:
		e.Status, e.FinishedAt = ExecAborted, &now
	case agentapi.StatusFailed:
		e.Status, e.Error, e.FinishedAt = ExecFailed, r.Error, &now
	default:
		return nil
	}
	e.Summary = r.Summary
	actions, acted := s.actionsOf(ctx, r.SessionID)
	if actions != nil {
		e.ActionsTaken, _ = json.Marshal(actions)
	}
	kind := reportKind(e, acted)
	approvers := s.approvers(ctx, r.SessionID)
	rec := audit.Record{Action: "standing_order.run_" + e.Status, ResourceType: "standing_order", ResourceID: e.OrderID,
		Description: "run " + e.Status, Detail: map[string]any{"execution_id": e.ID, "session_id": r.SessionID, "summary": r.Summary, "report": kind,
			"approved_by": approvers}}
	p := MirrorParams{Execution: e, Run: r.Run, Executed: &Executed{Execution: e, Run: r.Run, Report: kind, ApprovedBy: approvers}}
	batch, atomic := s.audit.(AuditBatch)
	if atomic {
		if p.Audit, err = batch.Entry(ctx, rec); err != nil {
			return err
		}
		p.Seal = batch
	}
	won, err := s.store.ExecutionMirror(ctx, p)
	if err != nil {
		return fmt.Errorf("update execution %s: %w", e.ID, err)
	}
	if !won {
		return nil // this run end (or a later one) was mirrored already
	}
	if !atomic {
		s.audit.Record(ctx, rec)
	}
	// The report is not sent from here: its standing_order.executed event, committed with the update,
	// reaches the reports subscription (OnExecuted) even if this process dies now.
	if s.notify != nil {
		s.notify(ctx)
	}
	return nil
}

// OriginName names the standing order behind a run's session (its SO- id), so what the run does inside
// the order's boundary is recorded as approved by that order; "" for other sessions.
func (s *Orders) OriginName(ctx context.Context, sess *agentapi.Session) string {
	if !sess.Unattended() {
		return ""
	}
	e, err := s.store.ExecutionGet(ctx, sess.OriginID)
	if err != nil {
		return ""
	}
	return e.OrderID
}

// tenantOf is the tenant in ctx.
func tenantOf(ctx context.Context) string {
	id, _ := tenant.ID(ctx)
	return id
}

// PromptSection renders the tenant's active standing orders for the system prompt.
func (s *Orders) PromptSection(ctx context.Context, locale string) (string, error) {
	list, err := s.store.StandingOrderList(ctx, "active")
	if err != nil || len(list) == 0 {
		return "", err
	}
	var b strings.Builder
	for _, o := range list {
		fmt.Fprintf(&b, "- %s: %s\n", o.ID, o.Summary())
	}
	return b.String(), nil
}

// PromptHint tells the agent how to turn a message that describes a recurring duty into a standing order.
func PromptHint(message string) string {
	ok, cues := DetectIntent(message)
	if !ok {
		return ""
	}
	return fmt.Sprintf("\n\n[IT0: this message describes a recurring duty (%s). Propose a standing order with create_standing_order "+
		"following its schema; summarise it for the admin, who confirms it. Max risk level 0 or 1.]", strings.Join(cues, ", "))
}

func errInvalidEvent(t string) error {
	return errs.Invalidf("event_type", "event_type %q is not one of %s", t, strings.Join(EventTypes, ", "))
}
