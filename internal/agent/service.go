package agent

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/inventory"
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
	DefaultEngine string // used when the tenant has not chosen one; default claude_api
	MaxTurns      int    // default 30
	// Approvals opens and lists the approvals sessions pause on (approval.Service); required.
	Approvals Approvals
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
	// Launcher hands runs to the processes that run agent sessions (launch.go); nil runs them here.
	Launcher Launcher
	Now      func() time.Time
	Logger   *slog.Logger
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
	approvals  Approvals
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
	skillCache   sync.Map // sha256 of a SKILL.md's name and content → *skill.Skill
	seqs         sync.Map // session id → *eventSeq
	fallbacks    sync.Map // tenant id → the engine used while the default cannot run (enginepick.go)
	replicas     atomic.Pointer[replicaLink]
	runners      runners // this replica's name on the sessions it runs (claim.go)
	faults       faults  // test-only stops (export_test.go)
}

// faults are the points where a test stops a run as a kill would: the hook blocks the run's goroutine
// (it never writes again, like a dead process) while another Service plays the surviving replica. They
// are nil outside tests; export_test.go sets them.
type faults struct {
	beforePause func(sessionID string) // the pause's tool-call links are written, its session update is not
	afterPause  func(sessionID string) // the pause is stored, its events are not published
}

// at calls fault point fn, if set, for sessionID.
func (faults) at(fn func(sessionID string), sessionID string) {
	if fn != nil {
		fn(sessionID)
	}
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
	if cfg.Approvals == nil {
		return nil, errors.New("agent: Config.Approvals is required")
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
	s := &Service{cfg: cfg, store: store, skillStore: store, engines: m, fleet: fleet, tenants: tenants, audit: log, guard: g, hub: hub, approvals: cfg.Approvals,
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
