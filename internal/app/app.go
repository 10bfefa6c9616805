package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/agent/anthropic"
	"github.com/it0/it0/internal/agent/claudecode"
	"github.com/it0/it0/internal/agent/openai"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/bus"
	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/httpapi"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/inventory/sshexec"
	"github.com/it0/it0/internal/jobs"
	"github.com/it0/it0/internal/monitor/alerts"
	"github.com/it0/it0/internal/monitor/checks"
	"github.com/it0/it0/internal/monitor/metrics"
	"github.com/it0/it0/internal/ops"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/outbox"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/tenant"
	"github.com/it0/it0/internal/vault"
	"github.com/it0/it0/internal/voice"
	"github.com/it0/it0/web"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Module names. The services (store … server) are built in every process that needs them: cheap,
// database-backed objects, so that any process can serve reads and writes. The deploy targets (api, agent,
// ops, monitor, comm, voice; targets.go) run the work: job kinds, bus consumer groups, background loops,
// engine runs and the HTTP edge. "all" is every deploy target: one process does everything.
const (
	Store     = "store"
	Audit     = "audit"
	Auth      = "auth"
	Vault     = "vault"
	Guard     = "guard"
	Inventory = "inventory"
	Jobs      = "jobs"
	// AgentService is the agent's sessions, engines and tools, and the approvals they pause on.
	AgentService = "agent-service"
	// OpsService is ops tasks, runbooks and standing orders.
	OpsService = "ops-service"
	// Server is the HTTP API (routes, auth middleware, WebSockets), built; Start listens.
	Server = "server"

	// Deploy targets (targets.go).
	API   = "api"
	Agent = "agent"
	Ops   = "ops"
	All   = "all"
)

// App is one IT0 process: the modules its target runs and what they built.
type App struct {
	cfg      Config
	log      *slog.Logger
	stderr   io.Writer
	mgr      *Manager
	opts     Options // test replacements (testing.go); zero in the binary
	registry *prometheus.Registry
	metrics  *appMetrics // IT0's own counters, fed by the modules

	Store     *store.DB
	Audit     *audit.Log
	Auth      *auth.Service
	Vault     *vault.Vault
	Guard     *guard.TenantRules
	Inventory *inventory.Service
	SSH       *sshexec.Executor
	Agent     *agent.Service
	Approvals *approval.Service
	Ops       *ops.Service
	Orders    *ops.Orders
	Comm      *comm.Service
	Metrics   *metrics.Service
	Alerts    *alerts.Service
	Checks    *checks.Service
	Voice     *voice.Service
	Jobs      *jobs.Runner
	API       *httpapi.Server
	Bus       bus.Bus
	Relay     *outbox.Relay

	replicaID    string
	replicaCheck *replicaCheck
	targetsCheck *targetsCheck // PostgreSQL only
	// targets are the deploy targets this process runs (all of them for "all"; none for a tool target
	// such as "bus").
	targets map[string]bool
	// jobKinds are the job kinds this process's targets registered on its runner, which claims them once
	// jobsStarted (wake.go reads them while later targets still register theirs).
	kindsMu     sync.Mutex
	jobKinds    []string
	jobsStarted bool

	listener net.Listener
	// Addr is the address the API listens on, once started.
	Addr string
	// MetricsAddr is the address /metrics listens on when IT0_METRICS_ADDR is set, once started.
	MetricsAddr string
	// Version is reported by /healthz and the OpenAPI document.
	Version string
}

// New builds the module graph for cfg. Nothing starts until Run.
func New(cfg Config, log *slog.Logger, stderr io.Writer) *App {
	a := &App{cfg: cfg, log: log, stderr: stderr, mgr: NewManager(), registry: prometheus.NewRegistry(), replicaID: replicaName(),
		targets: runTargets(cfg.Target)}
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.metrics = newAppMetrics(a.registry)
	a.mgr.Register(Store, a.initStore)
	a.mgr.Register(Audit, a.initAudit, Store)
	a.mgr.Register(Auth, a.initAuth, Store, Audit)
	a.mgr.Register(Vault, a.initVault, Store)
	a.mgr.Register(Guard, a.initGuard, Store)
	a.mgr.Register(Inventory, a.initInventory, Store, Audit, Auth, Vault, Guard)
	a.mgr.Register(Jobs, a.initJobs)
	a.mgr.Register(Bus, a.initBus, Store)
	a.mgr.Register(AgentService, a.withRunner(a.initAgent), Store, Audit, Auth, Inventory, Guard, Jobs, Bus)
	a.mgr.Register(Replicas, a.initReplicas, Bus, AgentService)
	a.mgr.Register(CommService, a.initComm, Store, Audit, Auth, AgentService, Jobs)
	a.mgr.Register(OpsService, a.initOps, Store, Audit, AgentService, Inventory, CommService, Bus)
	a.mgr.Register(Metrics, a.initMetrics, Store, Audit, Auth, Inventory, AgentService, OpsService, Jobs)
	a.mgr.Register(Checks, a.initChecks, Store, Audit, Auth, Inventory, Guard, OpsService)
	a.mgr.Register(VoiceService, a.initVoice, AgentService, CommService, Audit)
	a.mgr.Register(Server, a.initAPI, Auth, Audit, Inventory, AgentService, OpsService, Metrics, Checks, VoiceService, Replicas)
	a.registerTargets()
	return a
}

// ListTargets writes every module with its dependencies, and what each deploy target runs.
func (a *App) ListTargets(w io.Writer) {
	for _, n := range a.mgr.Names() {
		fmt.Fprintf(w, "%s\n", n)
		for _, d := range a.mgr.Deps(n) {
			fmt.Fprintf(w, "  ↳ %s\n", d)
		}
		if work, ok := targetWork[n]; ok {
			fmt.Fprintf(w, "  runs: %s\n", work)
		}
	}
}

// Start starts the target's modules, then the work they registered (the job runner and the repair
// loops) and the HTTP listener, and returns a func that stops them all, the listener first.
func (a *App) Start(ctx context.Context) (func(context.Context) error, error) {
	if err := checkTarget(a.cfg); err != nil && !a.opts.PartTarget {
		return nil, err
	}
	stopModules, err := a.mgr.Start(ctx, strings.Split(a.cfg.Target, ","))
	if err != nil {
		return nil, err
	}
	stops := []func(context.Context) error{stopModules}
	stopAll := func(ctx context.Context) error {
		var list []error
		for i := len(stops) - 1; i >= 0; i-- {
			list = append(list, stops[i](ctx))
		}
		return errors.Join(list...)
	}
	for _, start := range []func(context.Context) (func(context.Context) error, error){a.startWork, a.listen} {
		stop, err := start(ctx)
		if err != nil {
			return nil, errors.Join(err, stopAll(context.WithoutCancel(ctx)))
		}
		stops = append(stops, stop)
	}
	return stopAll, nil
}

// Run starts the modules and serves until ctx ends, then shuts down gracefully.
func (a *App) Run(ctx context.Context) error {
	stop, err := a.Start(ctx)
	if err != nil {
		return err
	}
	<-ctx.Done()
	a.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	return stop(sctx)
}

func (a *App) initStore(ctx context.Context) (func(context.Context) error, error) {
	if db := a.opts.Store; db != nil { // a test's store: its owner closes it
		a.Store = db
		return nil, db.MigrateAll(ctx)
	}
	db, err := store.Open(ctx, store.Config{DataDir: a.cfg.DataDir, DatabaseURL: a.cfg.DatabaseURL, Logger: a.log})
	if err != nil {
		return nil, err
	}
	if err := db.MigrateAll(ctx); err != nil {
		db.Close()
		return nil, err
	}
	a.Store = db
	return func(context.Context) error { return db.Close() }, nil
}

func (a *App) initAudit(ctx context.Context) (func(context.Context) error, error) {
	l, err := audit.New(a.Store, []byte(a.cfg.AuditKey), a.opts.Now)
	if err != nil {
		return nil, err
	}
	a.Audit = l
	// Detached from the start-up ctx on purpose: the loop lives until the module is stopped.
	return a.logAuditHeads(context.WithoutCancel(ctx)), nil
}

func (a *App) initAuth(ctx context.Context) (func(context.Context) error, error) {
	limits, stop, err := a.loginLimits() // limits.go
	if err != nil {
		return nil, err
	}
	svc, err := auth.New(auth.Config{JWTSecret: []byte(a.cfg.JWTSecret), TokenTTL: a.cfg.TokenTTL, Argon2: a.opts.Argon2, Now: a.opts.Now, Limits: limits}, a.Store, a.Audit)
	if err != nil {
		return nil, err
	}
	a.Auth = svc
	res, err := svc.Bootstrap(ctx, a.cfg.BootstrapEmail, a.cfg.BootstrapPass)
	if err != nil {
		return nil, err
	}
	if res.Created {
		a.log.Info("created default tenant and admin", slog.String("tenant_id", res.Tenant.ID), slog.String("email", res.Admin.Email))
		if res.GeneratedPassword != "" {
			// Printed once, to the terminal only, never to the log: the log may be shipped elsewhere.
			fmt.Fprintf(a.stderr, "\n  IT0 admin created: %s\n  password (shown once): %s\n  set IT0_BOOTSTRAP_ADMIN_PASSWORD to choose it yourself\n\n",
				res.Admin.Email, res.GeneratedPassword)
		}
	}
	return stop, nil
}

func (a *App) initVault(ctx context.Context) (func(context.Context) error, error) {
	cfg, err := VaultConfig(a.cfg.VaultMasterKey, a.cfg.VaultPrevKeys)
	if err != nil {
		return nil, err
	}
	v, err := vault.New(cfg, a.Store)
	if err != nil {
		return nil, err
	}
	// Fail closed at start: a wrong master key must stop the server, not surface on the first SSH command.
	if err := v.Verify(ctx); err != nil {
		return nil, fmt.Errorf("vault: %w (is IT0_VAULT_MASTER_KEY the key the credentials were sealed with?)", err)
	}
	a.Vault = v
	return nil, nil
}

// VaultConfig parses the master key and the comma-separated previous keys.
func VaultConfig(current, previous string) (vault.Config, error) {
	mk, err := vault.ParseMasterKey(current)
	if err != nil {
		return vault.Config{}, fmt.Errorf("IT0_VAULT_MASTER_KEY: %w", err)
	}
	cfg := vault.Config{MasterKey: mk}
	for i, p := range strings.Split(previous, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		k, err := vault.ParseMasterKey(p)
		if err != nil {
			return vault.Config{}, fmt.Errorf("IT0_VAULT_PREVIOUS_KEYS entry %d: %w", i+1, err)
		}
		cfg.PreviousMasterKeys = append(cfg.PreviousMasterKeys, k)
	}
	return cfg, nil
}

func (a *App) initGuard(context.Context) (func(context.Context) error, error) {
	c, err := guard.Default()
	if err != nil {
		return nil, fmt.Errorf("load risk patterns: %w", err)
	}
	a.Guard = guard.NewTenantRules(c, func(ctx context.Context) ([]byte, error) {
		v, err := a.Store.SettingGet(ctx, agent.RiskRulesSetting)
		return []byte(v), err
	}, 0)
	return nil, nil
}

func (a *App) initInventory(context.Context) (func(context.Context) error, error) {
	var inv *inventory.Service
	// The executor's host key callbacks go to the inventory, which is built with the executor: the
	// closures break the cycle.
	a.SSH = sshexec.New(sshexec.Config{Logger: a.log,
		OnHostKeyLearned:  func(id, key string) { inv.OnHostKeyLearned(id, key) },
		OnHostKeyMismatch: func(id, want, got string) { inv.OnHostKeyMismatch(id, want, got) }})
	inv = inventory.New(inventory.Config{Logger: a.log, Now: a.opts.Now}, a.Store, a.Vault, a.Audit, a.Auth, a.metrics.countVerdicts(a.Guard), a.SSH)
	a.Inventory = inv
	return func(context.Context) error { return a.SSH.Close() }, nil
}

func (a *App) initAgent(ctx context.Context) (func(context.Context) error, error) {
	bin, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the it0 binary: %w", err)
	}
	engines := []agent.Engine{
		claudecode.New(claudecode.Config{Path: a.cfg.ClaudePath, Model: a.cfg.ClaudeModel, Logger: a.log}),
		anthropic.New(anthropic.Config{APIKey: anthropic.APIKey(a.cfg.AnthropicKey), Model: a.cfg.ClaudeModel,
			BaseURL: a.cfg.AnthropicBaseURL, Logger: a.log}),
		openai.New(openai.Config{BaseURL: a.cfg.OpenAIBaseURL, APIKey: openai.APIKey(a.cfg.OpenAIKey), Model: a.cfg.OpenAIModel,
			Logger: a.log}),
	}
	// Approvals belong to ops (internal/ops/approval); the agent opens them and pauses on them, so they are
	// built here, with the agent. Their timeouts are the sweeper's jobs (registered in initOps).
	a.Approvals = approval.New(approval.Config{Schedule: a.schedule, Notify: a.notifyOutbox, Logger: a.log, Now: a.opts.Now}, a.Store, a.Audit)
	a.Agent, err = agent.New(agent.Config{DefaultEngine: a.cfg.DefaultEngine, Logger: a.log, Workspace: a.workspace(bin), RiskRules: a.riskRules(),
		PromptHint: ops.PromptHint, Approvals: a.Approvals, Now: a.opts.Now,
		ServicePrincipal: func(ctx context.Context) (string, error) { return servicePrincipal(ctx, a.Auth) },
		// Orders are built after the agent (they start its sessions); sessions run only once both exist.
		StandingOrders: func(ctx context.Context, locale string) (string, error) { return a.Orders.PromptSection(ctx, locale) },
		SkillsRoot:     a.SkillsDir,
		Launcher:       a.launcher()},
		a.Store, a.engines(engines), a.Inventory, a.Auth, a.Audit, a.Guard, agent.NewHub(0))
	if err != nil {
		return nil, err
	}
	a.Agent.OnRunEnd(func(ctx context.Context, s *agent.Session) { // its agent.run_ended event waits in the outbox
		a.notifyOutbox(tenant.WithID(ctx, s.TenantID))
	})
	return func(context.Context) error { a.Agent.Close(); return nil }, nil
}

func (a *App) initOps(ctx context.Context) (func(context.Context) error, error) {
	a.Ops = ops.New(a.Store, a.Agent, a.Audit, a.opts.Now)
	a.Orders = ops.NewOrders(a.Store, a.Agent, a.Inventory, a.Audit, jobs.CheckCron, a.opts.Now)
	a.Agent.AddTools(a.Orders)
	// In process, the execution follows its session before the run's event goes out; the run's
	// agent.run_ended event (the ops target's subscription, targets.go) is the path a crash cannot lose.
	a.Agent.OnRunEnd(a.Orders.OnSessionEnd)
	a.Orders.SetApprovals(a.Approvals)
	a.Orders.SetScheduler(jobs.NextCron, a.schedule)
	a.Orders.SetReports(a.notifier(), a.Auth.TenantLocale, a.log)
	a.Orders.SetNotify(a.notifyOutbox) // a run's report waits in the outbox (standing_order.executed)
	a.Orders.SetPeople(a.personName)
	// The job handlers and the approval events' subscriptions are the targets' work (targets.go): they
	// start once every service is wired.
	return nil, nil
}

// inTenant runs a job handler in the job's tenant, as the system.
func inTenant(h jobs.Handler) jobs.Handler {
	return func(ctx context.Context, j *jobs.Job) error {
		ctx = audit.WithActor(tenant.WithID(ctx, j.TenantID), audit.Actor{Type: audit.ActorSystem, ID: "scheduler"})
		return h(ctx, j)
	}
}

func (a *App) initJobs(ctx context.Context) (func(context.Context) error, error) {
	db, dialect, err := jobs.OpenDB(ctx, a.cfg.DataDir, a.cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	r, err := jobs.New(ctx, jobs.Config{DB: db, Dialect: dialect, Logger: a.log, Now: a.opts.Now})
	if err != nil {
		db.Close()
		return nil, err
	}
	a.Jobs = r
	return func(ctx context.Context) error { return errors.Join(r.Stop(ctx), db.Close()) }, nil
}

// schedule enqueues durable work for the tenant in ctx (services are wired before the runner exists).
func (a *App) schedule(ctx context.Context, kind string, args any, at time.Time, key string) error {
	if f := a.opts.BeforeSchedule; f != nil {
		if err := f(ctx, kind); err != nil {
			return err
		}
	}
	if err := a.Jobs.Schedule(ctx, kind, args, at, key); err != nil {
		return err
	}
	a.wakeOthers(ctx, kind, at)
	return nil
}

// workspaceDir is tenant tid's Claude Code workspace.
func (a *App) workspaceDir(tid string) string { return filepath.Join(a.cfg.DataDir, "workspaces", tid) }

// workspace prepares a Claude Code session's directory under <data-dir>/workspaces/<tenant>, with the
// PreToolUse hook and the MCP server pointing back at this process, and a token for the session's user.
func (a *App) workspace(bin string) func(ctx context.Context, sess *agent.Session) (string, []string, error) {
	return func(ctx context.Context, sess *agent.Session) (string, []string, error) {
		dir := a.workspaceDir(sess.TenantID)
		if err := claudecode.PrepareWorkspace(dir, claudecode.Workspace{HookCommand: bin + " hook pre-tool-use", MCPCommand: bin}); err != nil {
			return "", nil, err
		}
		tok, err := a.Auth.IssueToken(ctx, sess.UserID, 2*time.Hour)
		if err != nil {
			return "", nil, err
		}
		url := a.cfg.PublicURL
		if url == "" {
			url = "http://" + a.Addr
		}
		env := []string{"IT0_URL=" + url, "IT0_TOKEN=" + tok, "IT0_SESSION_ID=" + sess.ID}
		// The hook judges L0 locally with the shipped rules; a tenant's own rules live on the server.
		if rules, err := a.Store.SettingGet(ctx, agent.RiskRulesSetting); err != nil {
			return "", nil, err
		} else if rules != "" {
			env = append(env, "IT0_HOOK_ALWAYS_ASK=1")
		}
		return dir, env, nil
	}
}

// initAPI builds the HTTP API; Start listens once the targets' work has started (listen).
func (a *App) initAPI(context.Context) (func(context.Context) error, error) {
	a.API = httpapi.New(httpapi.Deps{Auth: a.Auth, Audit: a.Audit, Inventory: a.Inventory, Agent: a.Agent, Approvals: a.Approvals, Ops: a.Ops, Orders: a.Orders, Comm: a.Comm, WeCom: a.wecomCallback(), Monitoring: a.monitoring(), Checks: a.Checks, Voice: a.Voice, Registry: a.registry, Logger: a.log,
		Version: a.Version, TrustProxy: a.cfg.TrustProxy, Console: web.Dist(), MetricsElsewhere: a.cfg.MetricsAddr != "", Ready: a.readyChecks()})
	return nil, nil
}

// listen serves the API (through the edge of this process's targets, targets.go) and, with
// IT0_METRICS_ADDR, /metrics. A process that built no API (a tool target such as "bus") listens on nothing.
func (a *App) listen(ctx context.Context) (func(context.Context) error, error) {
	if a.API == nil {
		return func(context.Context) error { return nil }, nil
	}
	stopMetrics, err := a.serveMetrics()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("listen on %s: %w", a.cfg.Addr, err), stopMetrics(ctx))
	}
	a.listener = ln
	a.Addr = ln.Addr().String()
	srv := &http.Server{Handler: a.edge(a.API.Handler()), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	a.log.Info("listening", slog.String("addr", a.Addr), slog.String("storage", string(a.Store.Dialect())), slog.String("replica", a.replicaID),
		slog.String("targets", strings.Join(a.targetList(), ",")))
	return func(ctx context.Context) error {
		err := errors.Join(srv.Shutdown(ctx), stopMetrics(ctx))
		if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		return err
	}, nil
}

// agentJobResult maps an agent job's result to the runner's: bad arguments fail it for good.
func agentJobResult(err error) error {
	if errs.Is(err, errs.Invalid) {
		return jobs.Permanent(err)
	}
	return err
}

// approvalJobResult maps a sweeper job's result to the runner's: the periodic sweep runs again later.
func approvalJobResult(err error) error {
	var again *approval.ErrRunAgain
	if errors.As(err, &again) {
		return jobs.Snooze(again.After)
	}
	return err
}
