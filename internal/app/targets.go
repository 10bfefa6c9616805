package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/jobs"
	"github.com/it0/it0/internal/monitor"
	"github.com/it0/it0/internal/ops"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/tenant"
)

// targets.go is the split: what each deploy target runs. Every process builds the services it needs (they
// are database-backed objects: any process can serve a read or a write), but only the processes running a
// target do its work — the job kinds registered on its runner (the runner claims only those), its bus
// consumer groups, its background loops and its share of the HTTP edge. A process running "all" runs
// every target, which is the single process of the embedded default.

// targetWork says what each deploy target runs (-list-targets, docs/architecture.md).
var targetWork = map[string]string{
	API: "the HTTP/WebSocket edge: the REST API, /ws/agent, /ws/comm and the console (auth, inventory, reads and writes of every module); " +
		"runs it hands to the agent target as agent.run jobs",
	Agent: "agent sessions: engine runs (jobs agent.run, session.resume), resumes after approval decisions (events, group agent), " +
		"interrupted-run and decided-session repair; serves its runs' callbacks (Claude Code hook and MCP tools)",
	Ops:     "approval timeouts (the approval sweeper's jobs), standing orders' cron ticks and daily digests (jobs), their schedules",
	Monitor: "metric collectors and alert evaluation, the health check scheduler, IT0's gauges and approval counters on /metrics (events, group metrics)",
	Comm:    "escalation steps and message retries (jobs), escalations on approval events (group comm)",
	Voice:   "voice sessions and streams (/api/v1/voice/*, /ws/voice, /api/v1/twilio/media) and their speech pipelines",
	All:     "every target, in one process",
}

// registerTargets adds the deploy targets to the module graph: each runs its work on the services.
func (a *App) registerTargets() {
	a.mgr.Register(API, nil, Server)
	a.mgr.Register(Agent, a.initAgentWork, Server)
	a.mgr.Register(Ops, a.initOpsWork, Server)
	a.mgr.Register(Monitor, a.initMonitorWork, Server)
	a.mgr.Register(Comm, a.initCommWork, Server)
	a.mgr.Register(Voice, nil, Server)
	a.mgr.Register(All, nil, API, Agent, Ops, Monitor, Comm, Voice)
}

// runTargets returns the deploy targets target names ("all" is all of them). Other names (modules such as
// "bus", for tests and operators) run no target's work.
func runTargets(target string) map[string]bool {
	m := map[string]bool{}
	for _, t := range strings.Split(target, ",") {
		switch t = strings.TrimSpace(t); {
		case t == All:
			for _, d := range deployTargets {
				m[d] = true
			}
		case slices.Contains(deployTargets, t):
			m[t] = true
		}
	}
	return m
}

// runs reports whether this process runs deploy target t.
func (a *App) runs(t string) bool { return a.targets[t] }

// targetList lists the deploy targets this process runs, in their usual order.
func (a *App) targetList() []string {
	var list []string
	for _, t := range deployTargets {
		if a.runs(t) {
			list = append(list, t)
		}
	}
	return list
}

// runsJobs reports whether a target of this process has durable jobs (its runner then claims them).
func (a *App) runsJobs() bool { return a.runs(Agent) || a.runs(Ops) || a.runs(Comm) }

// launcher is how the agent service starts runs: here when this process runs the agent target, else
// handed over to one that does, as an agent.run job.
func (a *App) launcher() agent.Launcher {
	if a.runs(Agent) {
		return nil
	}
	return jobLauncher{a}
}

// jobLauncher hands runs over as durable agent.run jobs, one pending per session.
type jobLauncher struct{ a *App }

// Launch implements agent.Launcher.
func (l jobLauncher) Launch(ctx context.Context, r agent.RunRequest) error {
	return l.a.schedule(ctx, agent.JobRun, r, time.Time{}, agent.JobRun+":"+r.SessionID)
}

// register registers job kind on this process's runner.
func (a *App) register(kind string, h jobs.Handler) {
	a.Jobs.Register(kind, inTenant(h))
	a.kindsMu.Lock()
	a.jobKinds = append(a.jobKinds, kind)
	a.kindsMu.Unlock()
}

// initAgentWork runs agent sessions here: the jobs that carry runs and resumes, the resumes after
// approval decisions, and the sessions interrupted by a process that stopped.
func (a *App) initAgentWork(ctx context.Context) (func(context.Context) error, error) {
	a.register(agent.JobRun, func(ctx context.Context, j *jobs.Job) error { return agentJobResult(a.Agent.HandleRun(ctx, j.Args)) })
	for _, kind := range agent.JobKinds {
		a.register(kind, func(ctx context.Context, j *jobs.Job) error {
			return agentJobResult(a.Agent.HandleJob(ctx, j.Kind, j.Args))
		})
	}
	// A decided approval resumes its session. The subscription starts once every service is wired: an
	// event taken earlier would resume a session without its tools.
	stop := a.subscribeApprovals(ctx, groupAgent, a.Agent.OnApprovalEvent)
	tenants, err := a.Auth.Tenants(ctx)
	if err != nil {
		return nil, errors.Join(err, stop(ctx))
	}
	for _, t := range tenants {
		// Runs that were going when the process stopped cannot continue: say so in each session, once
		// every run-end hook is wired (a standing order's execution is marked failed and reported).
		if err := a.interruptedRuns(tenant.WithID(ctx, t.ID), t.ID); err != nil {
			return nil, errors.Join(fmt.Errorf("mark interrupted sessions of %s: %w", t.Slug, err), stop(ctx))
		}
	}
	return stop, nil
}

// initOpsWork runs the approval sweeper and the standing orders' schedules here.
func (a *App) initOpsWork(ctx context.Context) (func(context.Context) error, error) {
	for _, kind := range approval.JobKinds {
		a.register(kind, func(ctx context.Context, j *jobs.Job) error {
			return approvalJobResult(a.Approvals.HandleJob(ctx, j.Kind))
		})
	}
	a.register(ops.JobCron, func(ctx context.Context, j *jobs.Job) error { return a.Orders.HandleCron(ctx, j.Args) })
	a.register(ops.JobDigest, func(ctx context.Context, j *jobs.Job) error { return a.Orders.HandleDigest(ctx, j.Args) })
	tenants, err := a.Auth.Tenants(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range tenants {
		if err := a.Orders.EnsureSchedules(tenant.WithID(ctx, t.ID)); err != nil {
			return nil, fmt.Errorf("schedules of %s: %w", t.Slug, err)
		}
	}
	// A standing order's execution follows its session's run ends (agent.run_ended, group ops): in the
	// process running the session this mirrors what the in-process hook already did, and elsewhere it is
	// the only path; OnRunEnded is idempotent.
	stopRuns := a.subscribeRuns(ctx, groupOps, a.Orders.OnRunEnded)
	// Checks going down and alerts firing or resolving trigger event-triggered orders (events.monitor,
	// group ops); OnMonitorEvent is idempotent.
	stopMonitor := a.subscribeMonitor(ctx, groupOps, a.Orders.OnMonitorEvent)
	// Metric samples feed threshold-triggered orders (monitor.samples, group ops); their state is stored
	// per order and server, and a firing is keyed, so any ops replica may judge any batch.
	stopSamples := a.subscribe(ctx, "monitor-samples", groupOps, func(ctx context.Context) error {
		return monitor.ConsumeSamples(ctx, a.Bus, groupOps, a.replicaID, a.log, func(ctx context.Context, samples []monitor.Sample) error {
			_, err := a.Orders.ObserveSamples(ctx, samples)
			return err
		})
	})
	// A run's report goes out from its standing_order.executed event (events.orders, group reports),
	// written with the execution's update, so a crash cannot lose it; comm sends each report once.
	stopReports := a.subscribeExecuted(ctx, groupReports, a.Orders.OnExecuted)
	return func(ctx context.Context) error {
		err := stopReports(ctx)
		err = errors.Join(err, stopSamples(ctx), stopMonitor(ctx))
		return errors.Join(err, stopRuns(ctx))
	}, nil
}

// initMonitorWork runs the metric collectors (which evaluate the alert rules), the health check
// scheduler and IT0's own gauges here.
func (a *App) initMonitorWork(ctx context.Context) (func(context.Context) error, error) {
	if err := a.registerOwnMetrics(); err != nil {
		return nil, err
	}
	sched := a.checkScheduler()
	if !a.loops() {
		return nil, nil
	}
	// The loops outlive the start-up ctx on purpose: they run until the module stops.
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { a.Metrics.Run(lctx) })
	wg.Go(func() { sched.Run(lctx) })
	return func(context.Context) error { cancel(); wg.Wait(); return nil }, nil
}

// initCommWork runs the escalation chains here: their steps and retries, and the approval events that
// start and end them (a new approval escalates, a decided one ends its escalation).
func (a *App) initCommWork(ctx context.Context) (func(context.Context) error, error) {
	a.register(comm.JobStep, func(ctx context.Context, j *jobs.Job) error {
		var args struct {
			ApprovalID string `json:"approval_id"`
			Step       int    `json:"step"`
		}
		if err := json.Unmarshal(j.Args, &args); err != nil {
			return jobs.Permanent(err)
		}
		return a.Comm.RunStep(ctx, args.ApprovalID, args.Step)
	})
	a.register(comm.JobRetry, func(ctx context.Context, j *jobs.Job) error {
		var args struct {
			MessageID string `json:"message_id"`
		}
		if err := json.Unmarshal(j.Args, &args); err != nil {
			return jobs.Permanent(err)
		}
		return a.Comm.Retry(ctx, args.MessageID)
	})
	return a.subscribeApprovals(ctx, groupComm, a.Comm.OnApprovalEvent), nil
}

// startWork starts what the targets registered: the repair pass, the job runner and the repair loops.
// A process whose targets have no durable jobs (api, monitor, voice) starts no runner.
func (a *App) startWork(ctx context.Context) (func(context.Context) error, error) {
	if a.Jobs == nil || !a.runsJobs() {
		return func(context.Context) error { return nil }, nil
	}
	if err := a.repairApprovals(ctx); err != nil {
		return nil, fmt.Errorf("repair approval timeouts: %w", err)
	}
	if !a.loops() {
		return func(context.Context) error { return nil }, nil
	}
	if err := a.Jobs.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, err
	}
	a.kindsMu.Lock()
	a.jobsStarted = true
	kinds := strings.Join(a.jobKinds, ",")
	a.kindsMu.Unlock()
	a.log.Info("job runner started", slog.String("kinds", kinds))
	stopWakes := func() {}
	if a.cfg.RedisURL != "" { // other processes queue work for this one (wake.go)
		// Detached from the start-up ctx on purpose: the subscription lives until the work stops.
		stop, err := a.listenWakes(context.WithoutCancel(ctx))
		if err != nil {
			return nil, fmt.Errorf("listen for job wake-ups: %w", err)
		}
		stopWakes = stop
	}
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	go a.repairLoop(rctx)
	if a.runs(Agent) {
		go a.interruptLoop(rctx)
	}
	return func(context.Context) error { stop(); stopWakes(); return nil }, nil
}

// Paths of the HTTP edge that a target other than api serves. Every process answers /healthz, /readyz
// and /metrics (probes and scrapes reach each one). The voice target serves the voice API as well as the
// streams: whether voice works (its engines) and its sessions are its own.
var (
	voicePaths    = []string{"/ws/voice", "/api/v1/twilio/media"}
	voicePrefix   = "/api/v1/voice/"
	callbackPaths = []string{"/api/v1/agent/hook/", "/api/v1/agent/tools"} // a Claude Code run's hook and MCP tools
	everyProcess  = []string{"/healthz", "/readyz", "/metrics"}
)

// servedBy returns the deploy targets that serve path (nil: every process).
func servedBy(path string) []string {
	switch {
	case slices.Contains(everyProcess, path):
		return nil
	case slices.Contains(voicePaths, path), strings.HasPrefix(path, voicePrefix):
		return []string{Voice}
	}
	for _, p := range callbackPaths {
		if strings.HasPrefix(path, p) {
			return []string{API, Agent}
		}
	}
	return []string{API}
}

// edge serves only the paths of this process's targets. Any other path is answered at once with a JSON
// error naming the target that serves it, so a misrouted client learns where to go instead of hanging.
func (a *App) edge(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		by := servedBy(r.URL.Path)
		if by == nil || slices.ContainsFunc(by, a.runs) {
			h.ServeHTTP(w, r)
			return
		}
		here := strings.Join(a.targetList(), ",")
		if here == "" {
			here = "none"
		}
		body := map[string]any{"error": map[string]string{"code": "unavailable",
			"message": fmt.Sprintf("%s is served by the %s target; this process runs %s", r.URL.Path, strings.Join(by, " or "), here),
			"hint":    fmt.Sprintf("send it to a process started with -target=%s (in Kubernetes the Ingress routes it; see deploy/k8s)", by[0])}}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(body)
		a.log.DebugContext(r.Context(), "path of another target", slog.String("path", r.URL.Path), slog.String("target", by[0]))
	})
}
