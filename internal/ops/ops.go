// Package ops owns operations work: ops tasks, runbooks and the approval queue, and (next) standing orders
// that run unattended. It starts agent sessions through the small Agent interface it declares.
package ops

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/google/uuid"
	"github.com/it0/it0/internal/agent/agentapi"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/tenant"
	opsconfig "github.com/it0/it0/ops-config"
)

// Task types and statuses of the original design.
var (
	TaskTypes      = []string{"inspection", "deployment", "rollback", "scaling", "recovery"}
	TaskPriorities = []string{"low", "normal", "high", "critical"}
	TriggerTypes   = []string{"manual", "alert", "schedule"}
)

// Task is an ops task: a unit of work the agent carries out in a session.
type Task struct {
	ID            string   `json:"id"`
	TenantID      string   `json:"tenant_id"`
	Type          string   `json:"type"`
	Title         string   `json:"title"`
	Description   string   `json:"description"`
	Status        string   `json:"status"`
	Priority      string   `json:"priority"`
	TargetServers []string `json:"target_server_ids"`
	SessionID     string   `json:"session_id,omitempty"`
	RunbookID     string   `json:"runbook_id,omitempty"`
	ResultSummary string   `json:"result_summary,omitempty"`
	// Resolution is what became of the problem the task was started for (an alert resolved after its run).
	Resolution string     `json:"resolution,omitempty"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// Runbook is a reusable, bounded procedure for the agent.
type Runbook struct {
	ID             string    `json:"id"`
	TenantID       string    `json:"tenant_id"`
	Name           string    `json:"name" yaml:"name"`
	Description    string    `json:"description" yaml:"description"`
	PromptTemplate string    `json:"prompt_template" yaml:"prompt_template"`
	AllowedTools   []string  `json:"allowed_tools" yaml:"allowed_tools"`
	MaxRiskLevel   int       `json:"max_risk_level" yaml:"max_risk_level"`
	AutoApprove    bool      `json:"auto_approve" yaml:"auto_approve"`
	TriggerType    string    `json:"trigger_type" yaml:"trigger_type"`
	Enabled        bool      `json:"enabled" yaml:"enabled"`
	Source         string    `json:"source"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

var runbookName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// Validate checks r, naming each bad field.
func (r *Runbook) Validate() error {
	var list []error
	if !runbookName.MatchString(r.Name) {
		list = append(list, errs.Invalidf("name", "name %q must be 1 to 63 lowercase letters, digits or dashes", r.Name))
	}
	if strings.TrimSpace(r.PromptTemplate) == "" || len(r.PromptTemplate) > 64<<10 {
		list = append(list, errs.Invalidf("prompt_template", "prompt_template is required (at most 64 KiB)"))
	} else if _, err := template.New("rb").Option("missingkey=zero").Parse(r.PromptTemplate); err != nil {
		list = append(list, errs.Invalidf("prompt_template", "prompt_template does not parse: %v", err))
	}
	if r.MaxRiskLevel < 0 || r.MaxRiskLevel > 2 {
		list = append(list, errs.Invalidf("max_risk_level", "max_risk_level must be 0, 1 or 2 (L3 never runs)"))
	}
	if r.TriggerType == "" {
		r.TriggerType = "manual"
	}
	if !slices.Contains(TriggerTypes, r.TriggerType) {
		list = append(list, errs.Invalidf("trigger_type", "trigger_type %q is not one of %s", r.TriggerType, strings.Join(TriggerTypes, ", ")))
	}
	for _, t := range r.AllowedTools {
		if !slices.Contains(knownTools, t) {
			list = append(list, errs.Invalidf("allowed_tools", "unknown tool %q (tools: %s)", t, strings.Join(knownTools, ", ")))
		}
	}
	if r.AllowedTools == nil {
		r.AllowedTools = []string{}
	}
	return errs.Join(list...)
}

var knownTools = []string{agentapi.ToolRunCommand, agentapi.ToolReadFile, agentapi.ToolListServers, agentapi.ToolDescribeServer,
	agentapi.ToolListClusters, agentapi.ToolDescribeCluster}

// Render fills the prompt template with vars; a missing variable renders empty.
func (r *Runbook) Render(vars map[string]string) (string, error) {
	t, err := template.New(r.Name).Option("missingkey=zero").Parse(r.PromptTemplate)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, vars); err != nil {
		return "", errs.Invalidf("variables", "render runbook %s: %v", r.Name, err)
	}
	return strings.ReplaceAll(b.String(), "<no value>", ""), nil
}

// Store is what ops needs from storage; every method acts on the tenant in ctx.
type Store interface {
	OpsTaskCreate(ctx context.Context, t *Task) error
	OpsTaskGet(ctx context.Context, id string) (*Task, error) // errs.NotFound
	OpsTaskList(ctx context.Context, status, typ string, limit int) ([]Task, error)
	OpsTaskUpdate(ctx context.Context, t *Task) error
	RunbookPut(ctx context.Context, r *Runbook) error            // insert or replace by id; errs.Conflict on a duplicate name
	RunbookGet(ctx context.Context, id string) (*Runbook, error) // by id or name; errs.NotFound
	RunbookList(ctx context.Context) ([]Runbook, error)
	RunbookDelete(ctx context.Context, id string) error
	SettingGet(ctx context.Context, key string) (string, error)
	SettingSet(ctx context.Context, key, value string) error
}

// Agent is what ops needs from the agent: start bounded sessions, read them, decide approvals.
type Agent interface {
	StartTask(ctx context.Context, p agentapi.StartParams) (*agentapi.Session, *agentapi.TaskRecord, error)
	Session(ctx context.Context, id string) (*agentapi.Session, error)
	Cancel(ctx context.Context, sessionID string) (*agentapi.Session, error)
}

// AuditLog records what ops does.
type AuditLog interface {
	Record(ctx context.Context, r audit.Record) (*audit.Entry, error)
}

// Service is the ops module.
type Service struct {
	store Store
	agent Agent
	audit AuditLog
	now   func() time.Time
}

// New returns a Service.
func New(store Store, a Agent, log AuditLog, now func() time.Time) *Service {
	if now == nil {
		now = func() time.Time { return time.Now().UTC() }
	}
	return &Service{store: store, agent: a, audit: log, now: now}
}

// CreateTaskParams describe an ops task. The agent's prompt is the description, or the runbook's.
type CreateTaskParams struct {
	Type, Title, Description, Priority string
	ServerIDs                          []string
	RunbookID                          string
	Variables                          map[string]string
}

// CreateTask records an ops task and starts the agent on it.
func (s *Service) CreateTask(ctx context.Context, p CreateTaskParams) (*Task, error) {
	var list []error
	if p.Type == "" {
		p.Type = "inspection"
	}
	if p.Priority == "" {
		p.Priority = "normal"
	}
	if !slices.Contains(TaskTypes, p.Type) {
		list = append(list, errs.Invalidf("type", "type %q is not one of %s", p.Type, strings.Join(TaskTypes, ", ")))
	}
	if !slices.Contains(TaskPriorities, p.Priority) {
		list = append(list, errs.Invalidf("priority", "priority %q is not one of %s", p.Priority, strings.Join(TaskPriorities, ", ")))
	}
	if strings.TrimSpace(p.Title) == "" || len(p.Title) > 200 {
		list = append(list, errs.Invalidf("title", "title is required (at most 200 characters)"))
	}
	if p.RunbookID == "" && strings.TrimSpace(p.Description) == "" {
		list = append(list, errs.Invalidf("description", "description is required: it tells the agent what to do (or give a runbook_id)"))
	}
	if err := errs.Join(list...); err != nil {
		return nil, err
	}
	sp := agentapi.StartParams{Prompt: p.Description, ServerIDs: p.ServerIDs, Origin: "ops_task"}
	if p.RunbookID != "" {
		rb, err := s.store.RunbookGet(ctx, p.RunbookID)
		if err != nil {
			return nil, err
		}
		if sp, err = s.runbookParams(rb, p.Variables, p.ServerIDs, p.Description); err != nil {
			return nil, err
		}
		p.RunbookID = rb.ID
	}
	tid, _ := tenant.ID(ctx)
	pr := actorName(ctx)
	now := s.now()
	t := &Task{ID: uuid.NewString(), TenantID: tid, Type: p.Type, Title: p.Title, Description: p.Description, Status: "running",
		Priority: p.Priority, TargetServers: nonNil(p.ServerIDs), RunbookID: p.RunbookID, CreatedBy: pr, CreatedAt: now, UpdatedAt: now}
	if sp.OriginID == "" {
		sp.OriginID = t.ID
	}
	sess, _, err := s.agent.StartTask(ctx, sp)
	if err != nil {
		return nil, err
	}
	t.SessionID = sess.ID
	if err := s.store.OpsTaskCreate(ctx, t); err != nil {
		return nil, err
	}
	_, err = s.audit.Record(ctx, audit.Record{Action: "ops.task_created", ResourceType: "ops_task", ResourceID: t.ID,
		Description: fmt.Sprintf("%s task %q (%s)", t.Type, t.Title, t.Priority), Detail: map[string]any{"session_id": sess.ID, "runbook_id": t.RunbookID}})
	return t, err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// runbookParams renders a runbook into bounded agent parameters.
func (s *Service) runbookParams(rb *Runbook, vars map[string]string, servers []string, extra string) (agentapi.StartParams, error) {
	if !rb.Enabled {
		return agentapi.StartParams{}, errs.New(errs.Conflict, "runbook %s is disabled", rb.Name)
	}
	prompt, err := rb.Render(vars)
	if err != nil {
		return agentapi.StartParams{}, err
	}
	if extra = strings.TrimSpace(extra); extra != "" {
		prompt += "\n\n" + extra
	}
	lvl := rb.MaxRiskLevel
	return agentapi.StartParams{Prompt: prompt, ServerIDs: servers, MaxRiskLevel: &lvl, AllowedTools: rb.AllowedTools,
		AutoApprove: rb.AutoApprove, Origin: "runbook", OriginID: rb.ID}, nil
}

// Task returns ops task id with its status brought up to date from its session.
func (s *Service) Task(ctx context.Context, id string) (*Task, error) {
	t, err := s.store.OpsTaskGet(ctx, id)
	if err != nil {
		return nil, err
	}
	return t, s.refresh(ctx, t)
}

// Tasks lists ops tasks.
func (s *Service) Tasks(ctx context.Context, status, typ string, limit int) ([]Task, error) {
	list, err := s.store.OpsTaskList(ctx, "", typ, limit)
	if err != nil {
		return nil, err
	}
	out := list[:0]
	for i := range list {
		if err := s.refresh(ctx, &list[i]); err != nil {
			return nil, err
		}
		if status == "" || list[i].Status == status {
			out = append(out, list[i])
		}
	}
	return out, nil
}

// refresh mirrors the session's outcome onto a task that is still open.
func (s *Service) refresh(ctx context.Context, t *Task) error {
	if t.SessionID == "" || t.FinishedAt != nil {
		return nil
	}
	sess, err := s.agent.Session(ctx, t.SessionID)
	if err != nil {
		return err
	}
	status := t.Status
	switch sess.Status {
	case agentapi.StatusCompleted:
		status = "completed"
	case agentapi.StatusFailed:
		status = "failed"
	case agentapi.StatusCancelled:
		status = "cancelled"
	case agentapi.StatusAwaitingApproval:
		status = "awaiting_approval"
	case agentapi.StatusRunning:
		status = "running"
	}
	if status == t.Status && sess.Summary == t.ResultSummary {
		return nil
	}
	t.Status, t.ResultSummary, t.UpdatedAt = status, sess.Summary, s.now()
	if status == "completed" || status == "failed" || status == "cancelled" {
		at := s.now()
		t.FinishedAt = &at
	}
	return s.store.OpsTaskUpdate(ctx, t)
}

// RecordResolution notes on task id what became of the problem it was started for (monitoring calls it when
// the alert that started a runbook resolves).
func (s *Service) RecordResolution(ctx context.Context, id, resolution string) error {
	t, err := s.Task(ctx, id)
	if err != nil {
		return err
	}
	t.Resolution, t.UpdatedAt = resolution, s.now()
	if err := s.store.OpsTaskUpdate(ctx, t); err != nil {
		return err
	}
	_, err = s.audit.Record(ctx, audit.Record{Action: "ops_task.resolved", ResourceType: "ops_task", ResourceID: id, Description: resolution})
	return err
}

// CancelTask cancels an ops task and its session.
func (s *Service) CancelTask(ctx context.Context, id string) (*Task, error) {
	t, err := s.Task(ctx, id)
	if err != nil {
		return nil, err
	}
	if t.FinishedAt != nil {
		return nil, errs.New(errs.Conflict, "task %s already ended (%s)", id, t.Status)
	}
	if _, err := s.agent.Cancel(ctx, t.SessionID); err != nil && !errs.Is(err, errs.Conflict) {
		return nil, err
	}
	at := s.now()
	t.Status, t.FinishedAt, t.UpdatedAt = "cancelled", &at, at
	if err := s.store.OpsTaskUpdate(ctx, t); err != nil {
		return nil, err
	}
	_, err = s.audit.Record(ctx, audit.Record{Action: "ops.task_cancelled", ResourceType: "ops_task", ResourceID: id, Description: "task cancelled"})
	return t, err
}

const runbooksSeeded = "runbooks_seeded"

// ensureRunbooks seeds the shipped runbooks into the tenant the first time its runbooks are used.
func (s *Service) ensureRunbooks(ctx context.Context) error {
	done, err := s.store.SettingGet(ctx, runbooksSeeded)
	if err != nil || done != "" {
		return err
	}
	shipped, err := ShippedRunbooks()
	if err != nil {
		return err
	}
	tid, _ := tenant.ID(ctx)
	for i := range shipped {
		r := shipped[i]
		r.ID, r.TenantID, r.Source, r.CreatedAt, r.UpdatedAt = uuid.NewString(), tid, "shipped", s.now(), s.now()
		if err := s.store.RunbookPut(ctx, &r); err != nil && !errs.Is(err, errs.Conflict) {
			return err
		}
	}
	return s.store.SettingSet(ctx, runbooksSeeded, s.now().Format(time.RFC3339))
}

// ShippedRunbooks parses ops-config/runbooks/*.yaml.
func ShippedRunbooks() ([]Runbook, error) {
	files, err := fs.Glob(opsconfig.Runbooks, "runbooks/*.yaml")
	if err != nil {
		return nil, err
	}
	var out []Runbook
	for _, f := range files {
		b, err := fs.ReadFile(opsconfig.Runbooks, f)
		if err != nil {
			return nil, err
		}
		r := Runbook{Enabled: true}
		if err := yaml.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("runbook %s: %w", f, err)
		}
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("runbook %s: %w", f, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Runbooks lists the tenant's runbooks.
func (s *Service) Runbooks(ctx context.Context) ([]Runbook, error) {
	if err := s.ensureRunbooks(ctx); err != nil {
		return nil, err
	}
	return s.store.RunbookList(ctx)
}

// Runbook returns runbook id (or name).
func (s *Service) Runbook(ctx context.Context, id string) (*Runbook, error) {
	if err := s.ensureRunbooks(ctx); err != nil {
		return nil, err
	}
	return s.store.RunbookGet(ctx, id)
}

// SaveRunbook creates (r.ID empty) or replaces a runbook.
func (s *Service) SaveRunbook(ctx context.Context, r *Runbook) error {
	if err := s.ensureRunbooks(ctx); err != nil {
		return err
	}
	if err := r.Validate(); err != nil {
		return err
	}
	tid, _ := tenant.ID(ctx)
	action := "runbook.updated"
	if r.ID == "" {
		r.ID, r.CreatedAt, r.Source, action = uuid.NewString(), s.now(), "custom", "runbook.created"
	}
	r.TenantID, r.UpdatedAt = tid, s.now()
	if err := s.store.RunbookPut(ctx, r); err != nil {
		return err
	}
	_, err := s.audit.Record(ctx, audit.Record{Action: action, ResourceType: "runbook", ResourceID: r.ID,
		Description: action + " " + r.Name, Detail: map[string]any{"max_risk_level": r.MaxRiskLevel, "auto_approve": r.AutoApprove}})
	return err
}

// DeleteRunbook removes a runbook.
func (s *Service) DeleteRunbook(ctx context.Context, id string) error {
	r, err := s.store.RunbookGet(ctx, id)
	if err != nil {
		return err
	}
	if err := s.store.RunbookDelete(ctx, r.ID); err != nil {
		return err
	}
	_, err = s.audit.Record(ctx, audit.Record{Action: "runbook.deleted", ResourceType: "runbook", ResourceID: r.ID, Description: "runbook " + r.Name + " deleted"})
	return err
}

// RunRunbook starts an ops task that follows runbook id with vars.
func (s *Service) RunRunbook(ctx context.Context, id string, vars map[string]string, servers []string) (*Task, error) {
	rb, err := s.Runbook(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.CreateTask(ctx, CreateTaskParams{Type: "recovery", Title: "runbook " + rb.Name, RunbookID: rb.ID, Variables: vars, ServerIDs: servers})
}
