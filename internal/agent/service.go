package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/logging"
	"github.com/it0/it0/internal/tenant"
)

// Fleet is what the agent needs from the inventory: run guarded commands and look servers up.
type Fleet interface {
	Exec(ctx context.Context, req inventory.ExecRequest, onResult func(inventory.ExecResult)) (inventory.Summary, error)
	Servers(ctx context.Context, sel inventory.Selector) ([]inventory.Server, error)
	Clusters(ctx context.Context) ([]inventory.Cluster, error)
}

// Tenants tells the agent about the tenant in ctx and issues tokens for engine processes.
type Tenants interface {
	Tenant(ctx context.Context, id string) (*auth.Tenant, error)
	IssueToken(ctx context.Context, userID string, ttl time.Duration) (string, error)
	// User is user id of the tenant in ctx (who decided an approval).
	User(ctx context.Context, id string) (*auth.User, error)
}

// AuditLog records what the agent does.
type AuditLog interface {
	Record(ctx context.Context, r audit.Record) (*audit.Entry, error)
}

// Classifier is the command guard.
type Classifier interface {
	Classify(ctx context.Context, command string) guard.Verdict
	// ClassifyTargets also weighs the servers the command runs on (blast radius).
	ClassifyTargets(ctx context.Context, command string, targets []guard.Target) guard.Verdict
}

// Config tunes the agent service.
type Config struct {
	DefaultEngine string        // used when the tenant has not chosen one; default claude_api
	MaxTurns      int           // default 30
	L1Timeout     time.Duration // how long an L1 confirmation stays open; default 5 min
	L2Timeout     time.Duration // how long an L2 approval stays open; default 30 min
	// UnattendedTimeout is how long an approval of an unattended run (a standing order's escalation) stays
	// open before it is rejected — never auto-approved: nobody chose to go beyond the boundary. Default 1 h,
	// long enough for the whole escalation chain.
	UnattendedTimeout time.Duration
	// ConcurrentSessions bounds running sessions per tenant by plan.
	ConcurrentSessions map[auth.Plan]int
	// Workspace prepares a Claude Code session's working directory and environment (settings with the
	// PreToolUse hook, the MCP config, the tenant's skills). Nil disables the Claude Code engine.
	Workspace func(ctx context.Context, sess *Session) (dir string, env []string, err error)
	// RiskRules validates and forgets tenants' guard overrides (the risk-rules API); nil disables the API.
	RiskRules interface {
		Check(yaml []byte) error
		Forget(tenantID string)
	}
	// Schedule enqueues durable work (approval timeouts); nil means approvals never time out.
	Schedule func(ctx context.Context, kind string, args any, at time.Time, uniqueKey string) error
	// PromptHint returns text to append to an admin's message (the standing-order intent hint); nil = none.
	PromptHint func(message string) string
	// ServicePrincipal returns the user id of the tenant's service principal: the identity of sessions the
	// system starts with nobody signed in (alerts, events, schedules), so they run on every engine (the
	// Claude Code workspace issues the session a token as its user). Nil leaves such sessions userless.
	ServicePrincipal func(ctx context.Context) (string, error)
	// StandingOrders renders the tenant's active standing orders for the system prompt; nil = none.
	StandingOrders func(ctx context.Context, locale string) (string, error)
	// SkillsRoot is the directory of a tenant's skills (the workspace's .claude/skills); nil keeps skills in
	// the database only.
	SkillsRoot func(tenantID string) string
	Now        func() time.Time
	Logger     *slog.Logger
}

// Service runs agent sessions.
type Service struct {
	cfg        Config
	store      Store
	skillStore SkillStore
	engines    map[string]Engine
	fleet      Fleet
	tenants    Tenants
	audit      AuditLog
	guard      Classifier
	hub        *Hub
	prompts    *PromptBuilder
	log        *slog.Logger

	// ctx outlives requests: a session keeps running after the request that started it returns.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards running and resumeWanted. A session has at most one run at a time: running holds it (or a
	// claim while a resume is being prepared), and a decision that arrives during a run is remembered in
	// resumeWanted and acted on when the run ends.
	mu           sync.Mutex
	running      map[string]*runHandle // session id → its current run
	resumeWanted map[string]bool
	providers    []ToolProvider
	endHooks     []func(ctx context.Context, sess *Session)
	askHooks     []func(ctx context.Context, sess *Session, a *Approval)
	doneHooks    []func(ctx context.Context, a *Approval)
	skillCache   sync.Map // sha256 of a SKILL.md's name and content → *skill.Skill
	seqs         sync.Map // session id → *eventSeq
	fallbacks    sync.Map // tenant id → the engine used while the default cannot run (enginepick.go)
	replicas     atomic.Pointer[replicaLink]
	runners      runners // this replica's name on the sessions it runs (claim.go)
}

// OnApprovalDecided registers fn to be called after each approval is decided, by a person or by its
// timeout (before its session resumes). fn must not block.
func (s *Service) OnApprovalDecided(fn func(ctx context.Context, a *Approval)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doneHooks = append(s.doneHooks, fn)
}

func (s *Service) approvalDecided(ctx context.Context, a *Approval) {
	s.mu.Lock()
	hooks := append([]func(context.Context, *Approval){}, s.doneHooks...)
	s.mu.Unlock()
	for _, fn := range hooks {
		fn(ctx, a)
	}
}

// OnApprovalRequested registers fn to be called after each new approval is opened (the comm module starts
// its escalation chain from it). fn must not block: it runs in the session's run.
func (s *Service) OnApprovalRequested(fn func(ctx context.Context, sess *Session, a *Approval)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.askHooks = append(s.askHooks, fn)
}

// OnRunEnd registers fn to be called after every run of a session ends (completed, failed, cancelled or
// paused), with the session as stored. Standing orders use it to follow their executions.
func (s *Service) OnRunEnd(fn func(ctx context.Context, sess *Session)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endHooks = append(s.endHooks, fn)
}

func (s *Service) runEnded(ctx context.Context, sess *Session) {
	s.mu.Lock()
	hooks := append([]func(context.Context, *Session){}, s.endHooks...)
	s.mu.Unlock()
	for _, fn := range hooks {
		fn(ctx, sess)
	}
}

// runHandle is one live run of a session.
type runHandle struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the run has recorded its end
}

// New returns a Service; Close stops every running session.
func New(cfg Config, store interface {
	Store
	SkillStore
}, engines []Engine, fleet Fleet, tenants Tenants, log AuditLog, g Classifier, hub *Hub) (*Service, error) {
	if cfg.DefaultEngine == "" {
		cfg.DefaultEngine = EngineClaudeAPI
	}
	if cfg.MaxTurns <= 0 {
		cfg.MaxTurns = 30
	}
	if cfg.L1Timeout <= 0 {
		cfg.L1Timeout = 5 * time.Minute
	}
	if cfg.UnattendedTimeout <= 0 {
		cfg.UnattendedTimeout = time.Hour
	}
	if cfg.L2Timeout <= 0 {
		cfg.L2Timeout = 30 * time.Minute
	}
	if cfg.ConcurrentSessions == nil {
		cfg.ConcurrentSessions = map[auth.Plan]int{auth.PlanFree: 2, auth.PlanPro: 10, auth.PlanEnterprise: 50}
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return time.Now().UTC() }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := map[string]Engine{}
	for _, e := range engines {
		m[e.Name()] = e
	}
	s := &Service{cfg: cfg, store: store, skillStore: store, engines: m, fleet: fleet, tenants: tenants, audit: log, guard: g, hub: hub,
		log: cfg.Logger.With(slog.String("component", "agent")), running: map[string]*runHandle{}, resumeWanted: map[string]bool{}}
	prompts, err := NewPromptBuilder(PromptSources{Fleet: fleet, Tenants: tenants, Skills: s.skillPrompt, StandingOrders: cfg.StandingOrders})
	if err != nil {
		return nil, err
	}
	s.prompts = prompts
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Close cancels running sessions and waits for them to record how they ended.
func (s *Service) Close() {
	s.cancel()
	s.wg.Wait()
}

// Hub is where live events are published.
func (s *Service) Hub() *Hub { return s.hub }

func (s *Service) now() time.Time { return s.cfg.Now().Truncate(time.Microsecond) }

// EngineInfo describes an engine for GET /engines.
type EngineInfo struct {
	Name    string `json:"name"`
	Healthy bool   `json:"healthy"`
	Error   string `json:"error,omitempty"`
	Active  bool   `json:"active"`
	Allowed bool   `json:"allowed"`
	// Note says why the active engine is not the configured default, when it is not.
	Note string `json:"note,omitempty"`
}

// Engines lists every engine with its health, and which one the tenant in ctx uses.
func (s *Service) Engines(ctx context.Context) ([]EngineInfo, error) {
	active, t, note, err := s.activeEngine(ctx)
	if err != nil {
		return nil, err
	}
	var out []EngineInfo
	for _, name := range engineOrder {
		info := EngineInfo{Name: name, Active: name == active, Allowed: contains(t.AllowedEngines, name)}
		if info.Active {
			info.Note = note
		}
		if _, ok := s.engines[name]; !ok {
			info.Error = "not built into this process"
		} else if err := s.engineHealth(ctx, name); err != nil {
			info.Error = err.Error()
		} else {
			info.Healthy = true
		}
		out = append(out, info)
	}
	return out, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

const engineSetting = "active_engine"

// activeEngine returns the engine new sessions of the tenant in ctx use: its choice, else the default
// (or, while that cannot run, another one: note says which and why).
func (s *Service) activeEngine(ctx context.Context) (name string, t *auth.Tenant, note string, err error) {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return "", nil, "", err
	}
	t, err = s.tenants.Tenant(ctx, tid)
	if err != nil {
		return "", nil, "", err
	}
	name, err = s.store.SettingGet(ctx, engineSetting)
	if err != nil {
		return "", nil, "", err
	}
	if name == "" {
		name, note = s.defaultEngine(ctx, t)
	}
	return name, t, note, nil
}

// SetEngine switches the tenant's engine at run time (new sessions use it).
func (s *Service) SetEngine(ctx context.Context, name string) error {
	old, t, _, err := s.activeEngine(ctx)
	if err != nil {
		return err
	}
	if _, ok := s.engines[name]; !ok && name != EngineClaudeCode && name != EngineClaudeAPI && name != EngineOpenAI {
		return errs.Invalidf("engine", "engine %q is not one of %s, %s, %s", name, EngineClaudeCode, EngineClaudeAPI, EngineOpenAI)
	}
	if !contains(t.AllowedEngines, name) {
		return errs.New(errs.Forbidden, "engine %s is not allowed for this tenant (allowed: %s)", name, strings.Join(t.AllowedEngines, ", "))
	}
	if err := s.store.SettingSet(ctx, engineSetting, name); err != nil {
		return err
	}
	_, err = s.audit.Record(ctx, audit.Record{Action: "agent.engine_switched", ResourceType: "tenant", ResourceID: t.ID,
		Description: fmt.Sprintf("engine %s → %s", old, name), Detail: map[string]string{"before": old, "after": name}})
	return err
}

// engine returns a usable engine by name, or an error naming what to configure.
func (s *Service) engine(ctx context.Context, name string) (Engine, error) {
	e, ok := s.engines[name]
	if !ok {
		return nil, errs.New(errs.Unavailable, "engine %s is not available in this process", name)
	}
	if err := s.engineHealth(ctx, name); err != nil {
		return nil, (&errs.Error{Code: errs.Unavailable, Message: "engine " + name + " is unavailable: " + err.Error()}).
			WithHint("configure it (see .env.example) or switch engines with POST /api/v1/agent/engine")
	}
	return e, nil
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

func (s *Service) live(sessionID string) *runHandle {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running[sessionID]
}

// waitStopped waits (boundedly) for run h to record its end.
func (s *Service) waitStopped(h *runHandle) bool {
	if h.done == nil {
		return false
	}
	select {
	case <-h.done:
		return true
	case <-time.After(30 * time.Second):
		return false
	}
}

// eventSeq numbers one session's events in this process.
type eventSeq struct {
	mu     sync.Mutex
	last   int64
	loaded bool // last is the stored last_seq (or what this process stored since)
	dead   bool // forgotten: get a new one
}

// emit numbers e as the next event of its session, publishes it, then stores it before returning, so live
// subscribers never wait on the database and the store still holds every event, in order, before the run
// goes on. A persistence failure is logged: the run goes on, and the client has seen the live event.
func (s *Service) emit(ctx context.Context, sessionID string, e Event) Event {
	e.SessionID = sessionID
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	sctx := context.WithoutCancel(ctx)
	for {
		v, _ := s.seqs.LoadOrStore(sessionID, &eventSeq{})
		seq := v.(*eventSeq)
		seq.mu.Lock()
		if seq.dead {
			seq.mu.Unlock()
			continue
		}
		if !seq.loaded {
			if sess, err := s.store.SessionGet(sctx, sessionID); err == nil {
				seq.last, seq.loaded = sess.LastSeq, true
			}
		}
		if seq.loaded {
			seq.last++
			e.Seq = seq.last
			s.hub.Publish(e)
		}
		err := s.store.EventAppend(sctx, &e) // numbers e itself when the session could not be read
		if err != nil {
			seq.loaded = false // e.g. another process wrote to this session: read the number again
			s.log.ErrorContext(ctx, "store event", slog.String("session_id", sessionID), slog.String("error", err.Error()))
		} else if !seq.loaded {
			s.hub.Publish(e)
		}
		seq.mu.Unlock()
		return e
	}
}

// Settle returns once every event of the session already published is also stored (a subscriber that
// then reads the store misses nothing published before it subscribed).
func (s *Service) Settle(sessionID string) {
	if v, ok := s.seqs.Load(sessionID); ok {
		seq := v.(*eventSeq)
		seq.mu.Lock()
		seq.mu.Unlock() //nolint:staticcheck // waiting for the emit in flight is the point
	}
}

// forgetSeq drops a session's event numbering once its run has ended (the next emit reads it again).
func (s *Service) forgetSeq(sessionID string) {
	v, ok := s.seqs.Load(sessionID)
	if !ok {
		return
	}
	seq := v.(*eventSeq)
	seq.mu.Lock()
	seq.dead = true
	s.seqs.Delete(sessionID)
	seq.mu.Unlock()
}

// launch starts a run of sess in the background. The run's context descends from the service, not from
// the request, so it survives the request and is cancelled by Cancel or Close.
// answers are decided approvals whose tool calls the run answers first: an approved command runs here, in
// the run, never in the request that decided it.
func (s *Service) launch(ctx context.Context, sess *Session, task *TaskRecord, prompt string, answers []Approval) {
	tid, _ := tenant.ID(ctx)
	runCtx, cancel := context.WithCancel(withRunStart(logging.WithSessionID(tenant.WithID(audit.WithActor(s.ctx, audit.Actor{Type: audit.ActorAgent, ID: sess.ID}), tid), sess.ID), sess, s.now()))
	if p, ok := auth.PrincipalFrom(ctx); ok {
		runCtx = auth.WithPrincipal(runCtx, p)
	}
	h := &runHandle{cancel: cancel, done: make(chan struct{})}
	s.mu.Lock()
	s.running[sess.ID] = h
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.run(runCtx, sess, task, prompt, answers)
		s.forgetSeq(sess.ID)
		cancel()
		s.mu.Lock()
		if s.running[sess.ID] == h {
			delete(s.running, sess.ID)
		}
		close(h.done)
		want := s.resumeWanted[sess.ID]
		delete(s.resumeWanted, sess.ID)
		s.mu.Unlock()
		if want && s.ctx.Err() == nil {
			// runCtx is cancelled by now; keep its tenant and actor, not its cancellation.
			if err := s.resume(context.WithoutCancel(runCtx), sess.ID); err != nil {
				s.log.Error("resume after approval", slog.String("session_id", sess.ID), slog.String("error", err.Error()))
			}
		}
	}()
}

// run drives one engine run to its end and records the outcome.
func (s *Service) run(ctx context.Context, sess *Session, task *TaskRecord, prompt string, answers []Approval) {
	status, errMsg := StatusFailed, ""
	defer func() {
		if p := recover(); p != nil {
			s.log.ErrorContext(ctx, "engine panic", slog.Any("panic", p), slog.String("session_id", sess.ID))
			s.emit(ctx, sess.ID, Event{Type: EventError, Code: CodeEngine, Message: "internal error in the engine"})
			status, errMsg = StatusFailed, "internal error in the engine"
		}
		s.finish(ctx, sess.ID, task.ID, status, errMsg)
	}()
	eng, err := s.engine(ctx, sess.Engine)
	if err != nil {
		s.emit(ctx, sess.ID, Event{Type: EventError, Code: CodeUnavailable, Message: err.Error()})
		errMsg = err.Error()
		return
	}
	system, err := s.prompts.Build(ctx, sess)
	if err != nil {
		s.emit(ctx, sess.ID, Event{Type: EventError, Code: CodeEngine, Message: "build system prompt: " + err.Error()})
		errMsg = err.Error()
		return
	}
	var pending []PendingResult
	for i := range answers {
		d := &answers[i]
		pending = append(pending, PendingResult{ToolUseID: d.ToolUseID, Tool: d.Tool, Result: s.resultFor(ctx, sess, d)})
	}
	t := Task{SessionID: sess.ID, Prompt: prompt, SystemPrompt: system, MaxTurns: sess.MaxTurns, MaxBudgetUSD: sess.MaxBudgetUSD,
		AllowedTools: sess.AllowedTools,
		Tools:        &sessionTools{svc: s, sessionID: sess.ID}, State: sess.State, PendingResults: pending}
	if eng.Name() == EngineClaudeCode {
		if s.cfg.Workspace == nil {
			err = errs.New(errs.Unavailable, "no workspace configured for Claude Code")
		} else {
			t.WorkDir, t.Env, err = s.cfg.Workspace(ctx, sess)
		}
		if err != nil {
			s.emit(ctx, sess.ID, Event{Type: EventError, Code: CodeEngine, Message: "prepare workspace: " + err.Error()})
			errMsg = err.Error()
			return
		}
	}
	var last Event
	sawCompleted := false
	out, err := eng.Run(ctx, t, func(e Event) {
		switch e.Type {
		case EventApprovalRequired:
			s.pausing(ctx, sess.ID, e)
		case EventCompleted:
			s.settleCompleted(ctx, sess.ID, e)
			sawCompleted = true
		case EventError:
			s.settle(ctx, sess.ID, StatusFailed, e.Message)
		}
		last = s.emit(ctx, sess.ID, e)
	})
	switch {
	case err != nil:
		msg := err.Error()
		if last.Type != EventError {
			s.emit(ctx, sess.ID, Event{Type: EventError, Code: CodeEngine, Message: msg})
		}
		errMsg = msg
	case out.Paused:
		// Recorded as paused before its event went out: a shutdown right after it must not turn the
		// waiting session into a cancelled one (Cancel marks a paused session cancelled itself).
		status = StatusAwaitingApproval
	case ctx.Err() != nil:
		status, errMsg = StatusCancelled, "cancelled"
	case last.Type == EventError:
		errMsg = last.Message
	default:
		status = StatusCompleted
	}
	if sawCompleted { // its tokens, cost and summary are recorded already
		out.TokensUsed, out.CostUSD, out.Summary = 0, 0, ""
	}
	s.finishOutcome(ctx, sess.ID, out)
}

// settle records a run's end status before its final event is published, so a client that reacts to the
// event reads the matching status. finish confirms it when the run returns.
func (s *Service) settle(ctx context.Context, sessionID, status, msg string) {
	sctx := context.WithoutCancel(ctx)
	sess, err := s.store.SessionGet(sctx, sessionID)
	if err == nil && sess.Status == StatusRunning {
		sess.Status, sess.Error, sess.UpdatedAt = status, msg, s.now()
		err = s.store.SessionUpdate(sctx, sess)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "settle session", slog.String("error", err.Error()))
	}
}

// settleCompleted records a completed run, with its summary, tokens and cost, before the completed event
// is published.
func (s *Service) settleCompleted(ctx context.Context, sessionID string, e Event) {
	sctx := context.WithoutCancel(ctx)
	sess, err := s.store.SessionGet(sctx, sessionID)
	if err == nil {
		if sess.Status == StatusRunning {
			sess.Status = StatusCompleted
		}
		sess.Summary, sess.Error, sess.UpdatedAt = e.Summary, "", s.now()
		sess.TokensUsed += e.TokensUsed
		sess.CostUSD += e.CostUSD
		err = s.store.SessionUpdate(sctx, sess)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "settle session", slog.String("error", err.Error()))
		return
	}
	s.runEnded(sctx, sess) // before the event goes out, so whoever reacts to it sees the consequences
}

// pausing records, before the approval_required event is published, that the session now waits, and
// which engine tool call the approval answers. A client that reacts to the event sees the new status.
func (s *Service) pausing(ctx context.Context, sessionID string, e Event) {
	if e.ApprovalID != "" && e.ToolUseID != "" {
		if err := s.store.ApprovalSetToolUse(ctx, e.ApprovalID, e.ToolUseID); err != nil {
			s.log.ErrorContext(ctx, "link approval to tool call", slog.String("error", err.Error()))
		}
	}
	sess, err := s.store.SessionGet(ctx, sessionID)
	if err == nil && sess.Status == StatusRunning {
		sess.Status, sess.UpdatedAt = StatusAwaitingApproval, s.now()
		err = s.store.SessionUpdate(ctx, sess)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "mark session paused", slog.String("error", err.Error()))
		return
	}
	s.runEnded(ctx, sess)
}

// finishOutcome stores what a run returned (its state, tokens, summary).
func (s *Service) finishOutcome(ctx context.Context, sessionID string, out Outcome) {
	sctx := context.WithoutCancel(ctx)
	sess, err := s.store.SessionGet(sctx, sessionID)
	if err != nil {
		return
	}
	if out.State != nil {
		sess.State = out.State
	}
	sess.TokensUsed += out.TokensUsed
	sess.CostUSD += out.CostUSD
	if out.Summary != "" {
		sess.Summary = out.Summary
	}
	sess.UpdatedAt = s.now()
	if err := s.store.SessionUpdate(sctx, sess); err != nil {
		s.log.ErrorContext(ctx, "store session outcome", slog.String("error", err.Error()))
	}
}

// finish records the session's and the task's final status.
func (s *Service) finish(ctx context.Context, sessionID, taskID, status, errMsg string) {
	sctx := context.WithoutCancel(ctx)
	sess, err := s.store.SessionGet(sctx, sessionID)
	if err != nil {
		s.log.ErrorContext(ctx, "finish session", slog.String("error", err.Error()))
		return
	}
	if sess.Status == StatusCancelled {
		status = StatusCancelled
	}
	sess.Status, sess.Error, sess.UpdatedAt = status, errMsg, s.now()
	if err := s.store.SessionUpdate(sctx, sess); err != nil {
		s.log.ErrorContext(ctx, "finish session", slog.String("error", err.Error()))
	}
	if err := s.store.TaskFinish(sctx, taskID, status, s.now()); err != nil {
		s.log.ErrorContext(ctx, "finish task", slog.String("error", err.Error()))
	}
	s.runEnded(sctx, sess)
	if status != StatusAwaitingApproval {
		s.audit.Record(sctx, audit.Record{Action: "agent.task_" + status, ResourceType: "session", ResourceID: sessionID,
			Description: "task " + status, Detail: map[string]any{"task_id": taskID, "error": errMsg, "tokens_used": sess.TokensUsed, "cost_usd": sess.CostUSD}})
	}
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

// ApprovalStatuses are the statuses an approval list may filter on ("all", or empty, for every one).
var ApprovalStatuses = []string{ApprovalPending, ApprovalApproved, ApprovalRejected, ApprovalExpired}

// Approvals lists approvals, optionally of one session and one status ("all" or "" for any); an unknown
// status is errs.Invalid, never an empty list.
func (s *Service) Approvals(ctx context.Context, sessionID, status string, limit int) ([]Approval, error) {
	if status == "all" {
		status = ""
	}
	if status != "" && !contains(ApprovalStatuses, status) {
		return nil, errs.Invalidf("status", "status %q is not one of %s, all", status, strings.Join(ApprovalStatuses, ", "))
	}
	return s.store.ApprovalList(ctx, sessionID, status, limit)
}

// Approval returns approval id.
func (s *Service) Approval(ctx context.Context, id string) (*Approval, error) {
	return s.store.ApprovalGet(ctx, id)
}

// openApproval records a pending approval for command in a session, or returns the one already pending for
// the same command, so a retrying model does not flood the admins.
func (s *Service) openApproval(ctx context.Context, sessionID, tool, command string, input json.RawMessage, v guard.Verdict) (*Approval, error) {
	pending, err := s.store.ApprovalList(ctx, sessionID, ApprovalPending, 50)
	if err != nil {
		return nil, err
	}
	for i := range pending {
		if pending[i].Command == command && pending[i].Tool == tool {
			return &pending[i], nil
		}
	}
	sess, err := s.store.SessionGet(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	a, err := s.newApproval(ctx, sess, tool, command, input, v)
	if err != nil {
		return nil, err
	}
	if err := s.store.ApprovalCreate(ctx, a); err != nil {
		return nil, err
	}
	return a, s.requested(ctx, sess, a)
}

// requested follows a stored new approval: it schedules its timeout, audits the request and tells the
// hooks (comm escalates or notifies).
func (s *Service) requested(ctx context.Context, sess *Session, a *Approval) error {
	if s.cfg.Schedule != nil {
		if err := s.cfg.Schedule(ctx, JobExpireApproval, map[string]string{"approval_id": a.ID}, a.ExpiresAt, "approval:"+a.ID); err != nil {
			return fmt.Errorf("schedule approval timeout: %w", err)
		}
	}
	if _, err := s.audit.Record(ctx, audit.Record{Action: "approval.requested", ResourceType: "approval", ResourceID: a.ID,
		Description: fmt.Sprintf("L%d approval requested: %s", a.RiskLevel, clipRunes(a.Command, 200)),
		Detail:      map[string]any{"session_id": sess.ID, "command": a.Command, "risk_level": a.RiskLevel, "reason": a.Reason}}); err != nil {
		return err
	}
	s.mu.Lock()
	hooks := append([]func(context.Context, *Session, *Approval){}, s.askHooks...)
	s.mu.Unlock()
	for _, fn := range hooks {
		fn(ctx, sess, a)
	}
	return nil
}

// newApproval is a pending approval of command in sess, open for the timeout of its level (or of
// unattended runs), not yet stored.
func (s *Service) newApproval(ctx context.Context, sess *Session, tool, command string, input json.RawMessage, v guard.Verdict) (*Approval, error) {
	ttl, err := s.approvalTTL(ctx, v.Level)
	if sess.Unattended() {
		ttl, err = s.settingDuration(ctx, SettingUnattendedTimeout, s.cfg.UnattendedTimeout)
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	return &Approval{ID: uuid.NewString(), SessionID: sess.ID, Command: command, RiskLevel: int(v.Level), Reason: v.Reason, Tool: tool,
		ToolInput: input, Status: ApprovalPending, RequestedBy: "agent:" + sess.ID, ExpiresAt: now.Add(ttl), CreatedAt: now}, nil
}

// JobExpireApproval is the durable job that applies an approval's timeout.
const JobExpireApproval = "approval.expire"

// Tenant settings of approval timeouts, in seconds.
const (
	SettingL1Timeout = "approval_timeout_l1_seconds"
	SettingL2Timeout = "approval_timeout_l2_seconds"
	// SettingUnattendedTimeout bounds approvals of unattended runs (escalations), whatever their level.
	SettingUnattendedTimeout = "approval_timeout_unattended_seconds"
)

// approvalTTL is how long an approval of level stays open: the tenant's setting, else the default.
func (s *Service) approvalTTL(ctx context.Context, level guard.Level) (time.Duration, error) {
	key, def := SettingL2Timeout, s.cfg.L2Timeout
	if level <= guard.L1 {
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
	var secs int
	if _, err := fmt.Sscan(v, &secs); err != nil || secs <= 0 {
		return def, nil
	}
	return time.Duration(secs) * time.Second, nil
}

// Timeouts are how long approvals stay open: interactive L1 (then approved) and L2 (then rejected), and
// any approval of an unattended run (then rejected).
type Timeouts struct {
	L1, L2, Unattended time.Duration
}

// SetApprovalTimeouts sets the tenant's approval timeouts (a zero field keeps the current one).
func (s *Service) SetApprovalTimeouts(ctx context.Context, t Timeouts) error {
	for key, d := range map[string]time.Duration{SettingL1Timeout: t.L1, SettingL2Timeout: t.L2, SettingUnattendedTimeout: t.Unattended} {
		if d == 0 {
			continue
		}
		if d < 10*time.Second || d > 7*24*time.Hour {
			return errs.Invalidf(key, "%s must be from 10 to 604800 seconds", key)
		}
		if err := s.store.SettingSet(ctx, key, fmt.Sprint(int(d.Seconds()))); err != nil {
			return err
		}
	}
	_, err := s.audit.Record(ctx, audit.Record{Action: "approval.timeouts_changed", ResourceType: "tenant",
		Description: "approval timeouts changed", Detail: map[string]any{"l1_seconds": int(t.L1.Seconds()), "l2_seconds": int(t.L2.Seconds()),
			"unattended_seconds": int(t.Unattended.Seconds())}})
	return err
}

// ApprovalTimeouts returns the tenant's current approval timeouts.
func (s *Service) ApprovalTimeouts(ctx context.Context) (t Timeouts, err error) {
	if t.L1, err = s.approvalTTL(ctx, guard.L1); err != nil {
		return t, err
	}
	if t.L2, err = s.approvalTTL(ctx, guard.L2); err != nil {
		return t, err
	}
	t.Unattended, err = s.settingDuration(ctx, SettingUnattendedTimeout, s.cfg.UnattendedTimeout)
	return t, err
}

// ExpireApproval applies approval id's timeout if it is still pending and due (the job's handler; safe to
// run more than once), then lets its session go on or stop as a decision would.
func (s *Service) ExpireApproval(ctx context.Context, id string) error {
	a, err := s.store.ApprovalGet(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return nil // the tenant or the approval is gone: nothing to do
	}
	if err != nil {
		return err
	}
	// Only an L1's outcome depends on who is watching (auto-approved unless the run is unattended).
	unattended := false
	if a.RiskLevel <= int(guard.L1) {
		sess, err := s.store.SessionGet(ctx, a.SessionID)
		if err != nil && !errs.Is(err, errs.NotFound) {
			return err
		}
		unattended = sess != nil && sess.Unattended()
	}
	if a.Status != ApprovalPending {
		if a.DecidedBy == decidedByTimeout {
			return s.ResumeSession(ctx, a.SessionID) // the second run of the job
		}
		return nil // a person decided, and that resumed the session
	}
	if !a.Expire(s.now(), unattended) {
		return nil
	}
	if err := s.store.ApprovalDecide(ctx, a); errs.Is(err, errs.Conflict) {
		return nil // a human decided in the meantime
	} else if err != nil {
		return err
	}
	if _, err := s.audit.Record(audit.WithActor(ctx, audit.Actor{Type: audit.ActorSystem, ID: "timeout"}), audit.Record{
		Action: "approval.timed_out", ResourceType: "approval", ResourceID: a.ID,
		Description: fmt.Sprintf("L%d approval timed out: %s", a.RiskLevel, a.Status),
		Detail:      map[string]any{"session_id": a.SessionID, "command": a.Command, "status": a.Status}}); err != nil {
		return err
	}
	s.approvalDecided(ctx, a)
	if s.cfg.Schedule == nil {
		return s.ResumeSession(ctx, a.SessionID)
	}
	// The decision is made and recorded; the session goes on (or, unattended and refused, stops) when the
	// job runs again, behind every job due now: when many approvals expire at once, all are decided on
	// time first. A crash in between still resumes the session (the job is still queued).
	return ErrRunAgain
}

// ErrRunAgain is what an agent job returns when it has more to do once every job due now has run: the
// job runner runs it again then (jobs.Snooze(0)).
var ErrRunAgain = errors.New("run the job again after the jobs due now")

// JobKinds are the durable jobs the agent schedules; HandleJob runs them.
var JobKinds = []string{JobExpireApproval, JobResume}

// HandleJob runs one of the agent's durable jobs for the tenant in ctx. Arguments it cannot read are a
// permanent failure (errs.Invalid).
func (s *Service) HandleJob(ctx context.Context, kind string, raw json.RawMessage) error {
	var args struct {
		ApprovalID string `json:"approval_id"`
		SessionID  string `json:"session_id"`
	}
	if err := json.Unmarshal(raw, &args); err != nil {
		return errs.Invalidf("args", "%s job arguments: %v", kind, err)
	}
	switch kind {
	case JobExpireApproval:
		return s.ExpireApproval(ctx, args.ApprovalID)
	case JobResume:
		return s.ResumeSession(ctx, args.SessionID)
	}
	return errs.Invalidf("kind", "the agent has no job %q", kind)
}

// ResumeSession continues a paused session once all its approvals are decided, or stops an unattended one
// that a refusal ended. It is safe to run more than once: a session that is not paused, or still waits on
// an approval, is left alone; if the session's run has not returned yet, the run resumes it when it does.
func (s *Service) ResumeSession(ctx context.Context, sessionID string) error {
	s.mu.Lock()
	if _, live := s.running[sessionID]; live {
		s.resumeWanted[sessionID] = true
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	return s.resume(ctx, sessionID)
}

// useGrant consumes an approved, unused grant for exactly command in the session. It reports whether one
// was found (and is now used).
func (s *Service) useGrant(ctx context.Context, sessionID, command string) (bool, error) {
	approved, err := s.store.ApprovalList(ctx, sessionID, ApprovalApproved, 50)
	if err != nil {
		return false, err
	}
	for _, a := range approved {
		if a.Command != command || a.UsedAt != nil {
			continue
		}
		switch err := s.store.ApprovalUse(ctx, a.ID, s.now()); {
		case err == nil:
			return true, nil
		case errs.Is(err, errs.Conflict):
			continue // used by a concurrent caller
		default:
			return false, err
		}
	}
	return false, nil
}

// Decide approves or rejects approval id and resumes the session that waits on it. L2 needs the approve
// permission (admins); L1 may be confirmed by operators.
func (s *Service) Decide(ctx context.Context, id string, approve bool, reason string) (*Approval, error) {
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
	if err := a.Decide(approve, by, reason, s.now()); err != nil {
		return nil, err
	}
	if err := s.store.ApprovalDecide(ctx, a); err != nil {
		return nil, err
	}
	if _, err := s.audit.Record(ctx, audit.Record{Action: "approval." + a.Status, ResourceType: "approval", ResourceID: a.ID,
		Description: fmt.Sprintf("%s L%d: %s", a.Status, a.RiskLevel, clipRunes(a.Command, 200)),
		Detail:      map[string]any{"session_id": a.SessionID, "reason": reason, "command": a.Command}}); err != nil {
		return nil, err
	}
	s.approvalDecided(ctx, a)
	return a, s.resumeLater(ctx, a) // an unattended run it refuses stops there (see resume)
}

// JobResume is the durable job that continues a session after a decision.
const JobResume = "session.resume"

// resumeLater is all a decision's request does after recording it: it queues the session's resume as a
// durable job (a crash before the resume ran still resumes the session) and starts it at once in the
// background, detached from the request, whose end (a provider hanging up a webhook) must not cut off
// an approved command. The job then finds the session resumed and does nothing.
func (s *Service) resumeLater(ctx context.Context, a *Approval) error {
	if s.cfg.Schedule != nil {
		if err := s.cfg.Schedule(ctx, JobResume, map[string]string{"session_id": a.SessionID}, s.now(), "resume:"+a.ID); err != nil {
			return fmt.Errorf("schedule the resume: %w", err)
		}
	}
	s.kick(ctx, a.SessionID)
	return nil
}

// kick resumes a session in the background, in the service's lifetime, keeping ctx's tenant, actor and
// principal but not its cancellation.
func (s *Service) kick(ctx context.Context, sessionID string) {
	bctx := context.WithoutCancel(ctx)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if s.ctx.Err() != nil {
			return // shutting down: the job resumes it after the restart
		}
		if err := s.ResumeSession(bctx, sessionID); err != nil {
			s.log.ErrorContext(bctx, "resume after a decision", slog.String("session_id", sessionID), slog.String("error", err.Error()))
		}
	}()
}

// resume starts the run that answers a paused session's decided approvals. It claims the session in
// running first, so two deciders (or a decider and the ending run) cannot both resume it.
func (s *Service) resume(ctx context.Context, sessionID string) error {
	s.mu.Lock()
	if _, live := s.running[sessionID]; live {
		s.mu.Unlock()
		return nil
	}
	s.running[sessionID] = &runHandle{cancel: func() {}} // the claim; launch replaces it
	s.mu.Unlock()
	launched := false
	defer func() {
		if !launched {
			s.mu.Lock()
			delete(s.running, sessionID)
			s.mu.Unlock()
		}
	}()
	sess, err := s.store.SessionGet(ctx, sessionID)
	if errs.Is(err, errs.NotFound) {
		return nil // the tenant or the session is gone
	}
	if err != nil || sess.Status != StatusAwaitingApproval {
		return err
	}
	decided, err := s.store.ApprovalList(ctx, sess.ID, "", 50)
	if err != nil {
		return err
	}
	for _, d := range decided {
		if d.Status == ApprovalPending {
			return nil // still waiting on another decision
		}
		if sess.Unattended() && d.Status != ApprovalApproved && d.UsedAt == nil {
			// An unattended run whose escalation was refused (or timed out) stops there: nobody is in the
			// loop to steer it elsewhere.
			if _, err := s.Cancel(ctx, sess.ID); err != nil && !errs.Is(err, errs.Conflict) {
				return err
			}
			return nil
		}
	}
	if err := s.claim(ctx, sess, StatusAwaitingApproval); errs.Is(err, errs.Conflict) {
		return nil // another replica resumed it
	} else if err != nil {
		return err
	}
	task := &TaskRecord{ID: uuid.NewString(), SessionID: sess.ID, Prompt: "(resumed after approval)", Status: StatusRunning, CreatedAt: s.now()}
	if err := s.store.TaskCreate(ctx, task); err != nil {
		return err
	}
	// Every approval decided since the pause and not yet answered answers one open tool call (in the run).
	var answers []Approval
	var notes []string
	for i := len(decided) - 1; i >= 0; i-- { // oldest first
		d := &decided[i]
		if d.Status == ApprovalPending || d.UsedAt != nil {
			continue
		}
		if sess.Engine == EngineClaudeCode {
			// Claude Code re-runs the command itself; the hook then finds and uses the grant.
			notes = append(notes, claudeResumeNote(d))
			if d.Status != ApprovalApproved {
				s.store.ApprovalUse(ctx, d.ID, s.now())
			}
			continue
		}
		if d.ToolUseID == "" {
			continue
		}
		answers = append(answers, *d)
	}
	launched = true
	s.launch(ctx, sess, task, strings.Join(notes, "\n"), answers)
	return nil
}

func claudeResumeNote(a *Approval) string {
	if a.Status == ApprovalApproved {
		return fmt.Sprintf("Approval %s was granted: run exactly this command again now, once: %s", a.ID, a.Command)
	}
	return fmt.Sprintf("Approval %s was %s (%s): do not run %q; tell the admin what you would do instead.", a.ID, a.Status, a.DecisionReason, a.Command)
}

// resultFor runs an approved command exactly once (marking the grant used first, so a crash between the
// two can never run it twice) or explains a rejection, as the tool result the model will read.
func (s *Service) resultFor(ctx context.Context, sess *Session, a *Approval) ToolResult {
	if err := s.store.ApprovalUse(ctx, a.ID, s.now()); err != nil {
		return ToolResult{IsError: true, Output: "the approval could not be used: " + err.Error()}
	}
	if a.Status != ApprovalApproved {
		return ToolResult{IsError: true, Output: fmt.Sprintf("The command was not approved (%s by %s: %q). Do not run it; propose a safer alternative or stop.",
			a.Status, a.DecidedBy, a.DecisionReason)}
	}
	if a.Tool != ToolRunCommand {
		for _, p := range s.toolProviders() {
			if res, handled := p.Approved(ctx, sess, a); handled {
				return res
			}
		}
		return ToolResult{IsError: true, Output: "no tool can carry out approved " + a.Tool}
	}
	var in runCommandInput
	if err := json.Unmarshal(a.ToolInput, &in); err != nil {
		return ToolResult{IsError: true, Output: "approved tool input is unreadable: " + err.Error()}
	}
	ctx = audit.WithAuthority(s.revealContext(ctx, a), fmt.Sprintf("approval %s (L%d) approved by %s", a.ID, a.RiskLevel, a.DecidedBy))
	return s.execTool(ctx, sess.ID, in, guard.Level(a.RiskLevel))
}

// InterruptedRuns repairs the sessions whose run was cut off: the process (this one before a restart, or
// another replica) stopped while they ran. A run cut off while it carried out an approved command (its
// grant used, its result never handed to the engine) leaves a record that the command started with an
// unknown outcome, and the session asks a human again with a new approval for the same call. A run that
// had a decision to act on but had not used it waits for its resume (the durable job, or here). Any other
// run is marked failed (interrupted) with an error event, so no client waits forever, and a message
// resumes it on any replica. Paused sessions keep waiting: their state is in the database. Runs of live
// replicas are left alone, and each interrupted run is taken over by one replica only (a compare-and-set
// on its status and runner). It returns how many runs it repaired.
func (s *Service) InterruptedRuns(ctx context.Context) (int, error) {
	owners, err := s.store.SessionRunners(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range owners {
		if s.live(o.SessionID) != nil {
			continue
		}
		if gone, err := s.gone(ctx, o); err != nil || !gone {
			if err != nil {
				return n, err
			}
			continue
		}
		sess, won, err := s.interrupt(ctx, o)
		if err != nil {
			return n, err
		}
		if !won {
			continue // another replica took it over, or it moved on
		}
		n++
		repaired, err := s.repairRun(ctx, sess)
		if err != nil {
			return n, err
		}
		if repaired {
			continue
		}
		s.emit(ctx, sess.ID, Event{Type: EventError, Code: CodeEngine, Message: "the run was interrupted (the IT0 process running it stopped); send a message to continue"})
		s.runEnded(ctx, sess) // a standing order's execution is marked failed with it
	}
	return n, nil
}

// repairRun handles an interrupted run that was answering decided approvals (see InterruptedRuns). It
// reports whether it did.
func (s *Service) repairRun(ctx context.Context, sess *Session) (bool, error) {
	approvals, err := s.store.ApprovalList(ctx, sess.ID, "", 50)
	if err != nil {
		return false, err
	}
	var cut, waiting []Approval
	for _, a := range approvals {
		switch {
		case a.ToolUseID == "" || a.Status == ApprovalPending:
		case a.UsedAt == nil:
			waiting = append(waiting, a)
		case a.Status == ApprovalApproved && a.Tool == ToolRunCommand && sess.Engine != EngineClaudeCode:
			// (Claude Code runs an approved command itself, as a new call: its grants answer no call here.)
			cut = append(cut, a)
		}
	}
	if len(cut) > 0 {
		// Only a grant whose result the engine never saw was cut off.
		events, err := s.store.EventList(ctx, sess.ID, 0, 100000)
		if err != nil {
			return false, err
		}
		cut = slices.DeleteFunc(cut, func(a Approval) bool {
			return slices.ContainsFunc(events, func(e Event) bool { return e.Type == EventToolResult && e.ToolUseID == a.ToolUseID })
		})
	}
	if len(cut) == 0 && len(waiting) == 0 {
		return false, nil
	}
	sess.Status, sess.UpdatedAt = StatusAwaitingApproval, s.now()
	if err := s.store.SessionUpdate(ctx, sess); err != nil {
		return false, err
	}
	for i := range cut {
		if err := s.askAgain(ctx, sess, &cut[i]); err != nil {
			return false, err
		}
	}
	s.runEnded(ctx, sess) // a standing order's execution waits for a human again
	if len(cut) == 0 {
		s.kick(ctx, sess.ID) // the decisions stand: act on them now
	}
	return true, nil
}

// askAgain records that approved command a started but its outcome is unknown (the process stopped while
// it ran), and opens a new approval for the same tool call, so a human decides whether to run it again.
func (s *Service) askAgain(ctx context.Context, sess *Session, a *Approval) error {
	msg := fmt.Sprintf("The approved command %q started at %s, then IT0 restarted before it finished: its outcome is unknown. "+
		"A human must decide whether to run it again.", clipRunes(a.Command, 200), a.UsedAt.Format(time.RFC3339))
	if _, err := s.audit.Record(ctx, audit.Record{Action: "agent.command_outcome_unknown", ResourceType: "approval", ResourceID: a.ID,
		Description: "started, outcome unknown (interrupted by a restart): " + clipRunes(a.Command, 200),
		Detail:      map[string]any{"session_id": sess.ID, "command": a.Command, "started_at": a.UsedAt, "approved_by": a.DecidedBy}}); err != nil {
		return err
	}
	s.emit(ctx, sess.ID, Event{Type: EventText, Text: msg})
	again, err := s.newApproval(ctx, sess, a.Tool, a.Command, a.ToolInput, guard.Verdict{Level: guard.Level(a.RiskLevel),
		Reason: "started before a restart, outcome unknown: run it again? (" + a.Reason + ")"})
	if err != nil {
		return err
	}
	again.ToolUseID = a.ToolUseID // it answers the same call of the engine
	if err := s.store.ApprovalCreate(ctx, again); err != nil {
		return err
	}
	if err := s.requested(ctx, sess, again); err != nil {
		return err
	}
	lvl := again.RiskLevel
	s.emit(ctx, sess.ID, Event{Type: EventApprovalRequired, ApprovalID: again.ID, ToolUseID: again.ToolUseID, Tool: again.Tool,
		Command: again.Command, RiskLevel: &lvl, Message: msg})
	return nil
}
