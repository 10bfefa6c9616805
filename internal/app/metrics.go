package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/jobs"
	"github.com/it0/it0/internal/monitor/alerts"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/tenant"
	"github.com/prometheus/client_golang/prometheus"
)

// appMetrics are the counters IT0's modules feed as things happen (gauges read from the database live in
// ownCollector). They exist from the start so that any module can feed them, whatever the target.
type appMetrics struct {
	verdicts         *prometheus.CounterVec   // it0_guard_verdicts_total{level}
	runs             *prometheus.CounterVec   // it0_agent_runs_total{engine,status}
	runDuration      *prometheus.HistogramVec // it0_agent_run_duration_seconds{engine}
	runCost          *prometheus.CounterVec   // it0_agent_run_cost_usd_total{engine}
	runTokens        *prometheus.CounterVec   // it0_agent_run_tokens_total{engine}
	approvalsDecided *prometheus.CounterVec   // it0_approvals_decided_total{status,level}
	escalationSteps  *prometheus.CounterVec   // it0_escalation_steps_total{channel,status}
	collectErrors    *prometheus.CounterVec   // it0_metrics_collect_errors_total{source}
}

func newAppMetrics(reg prometheus.Registerer) *appMetrics {
	m := &appMetrics{
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "it0_guard_verdicts_total",
			Help: "Commands classified by the guard before execution, by risk level (L0-L3)."}, []string{"level"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "it0_agent_runs_total",
			Help: "Agent runs that ended, by engine and the session's status after the run."}, []string{"engine", "status"}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "it0_agent_run_duration_seconds",
			Help: "Wall time of agent runs, by engine.", Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600}}, []string{"engine"}),
		runCost: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "it0_agent_run_cost_usd_total",
			Help: "Model cost of agent runs in US dollars, by engine."}, []string{"engine"}),
		runTokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "it0_agent_run_tokens_total",
			Help: "Model tokens used by agent runs, by engine."}, []string{"engine"}),
		approvalsDecided: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "it0_approvals_decided_total",
			Help: "Approvals decided, by outcome (approved, rejected, expired) and risk level."}, []string{"status", "level"}),
		escalationSteps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "it0_escalation_steps_total",
			Help: "Escalation messages sent to people, by channel and final status."}, []string{"channel", "status"}),
		collectErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "it0_metrics_collect_errors_total",
			Help: "Failed reads of IT0's own gauges at scrape time, by source (tenants, tenant, jobs)."}, []string{"source"}),
	}
	reg.MustRegister(m.verdicts, m.runs, m.runDuration, m.runCost, m.runTokens, m.approvalsDecided, m.escalationSteps, m.collectErrors)
	for _, l := range []guard.Level{guard.L0, guard.L1, guard.L2, guard.L3} {
		m.verdicts.WithLabelValues(l.String())
	}
	for _, src := range []string{"tenants", "tenant", "jobs"} {
		m.collectErrors.WithLabelValues(src)
	}
	return m
}

// countVerdicts wraps the guard so that every classification is counted by level.
func (m *appMetrics) countVerdicts(c inventory.Classifier) inventory.Classifier {
	return verdictCounter{c, m.verdicts}
}

type verdictCounter struct {
	inventory.Classifier
	verdicts *prometheus.CounterVec
}

func (v verdictCounter) Classify(ctx context.Context, command string) guard.Verdict {
	verdict := v.Classifier.Classify(ctx, command)
	v.verdicts.WithLabelValues(verdict.Level.String()).Inc()
	return verdict
}

// runEnded counts a finished agent run: its outcome, and what this run (not the whole session) took.
func (m *appMetrics) runEnded(ctx context.Context, sess *agent.Session) {
	m.runs.WithLabelValues(sess.Engine, sess.Status).Inc()
	start, ok := agent.RunStartFrom(ctx)
	if !ok {
		return
	}
	if d := sess.UpdatedAt.Sub(start.At); d >= 0 {
		m.runDuration.WithLabelValues(sess.Engine).Observe(d.Seconds())
	}
	if c := sess.CostUSD - start.CostUSD; c > 0 {
		m.runCost.WithLabelValues(sess.Engine).Add(c)
	}
	if t := sess.TokensUsed - start.TokensUsed; t > 0 {
		m.runTokens.WithLabelValues(sess.Engine).Add(float64(t))
	}
}

// approvalEvent counts approval events (consumer group "metrics": each event is counted once, on one
// replica). Counting needs nothing but the event.
func (m *appMetrics) approvalEvent(esc prometheus.Counter) approval.Handler {
	return func(_ context.Context, e approval.Event) error {
		switch {
		case e.Type == approval.EventDecided:
			m.approvalsDecided.WithLabelValues(e.Status, "L"+strconv.Itoa(e.RiskLevel)).Inc()
		case e.Type == approval.EventRequested && e.Status == approval.Pending && e.Origin == approval.OriginStandingOrder && esc != nil:
			esc.Inc()
		}
		return nil
	}
}

// gaugesMaxAge is how long a read of the gauges serves scrapes: several Prometheus servers (or a scrape
// interval shorter than this) then cost the database one read per tenant per gaugesMaxAge, not per scrape.
const gaugesMaxAge = 10 * time.Second

// ownMetricsTimeout bounds one read of the gauges.
const ownMetricsTimeout = 5 * time.Second

// registerOwnMetrics exports IT0's own state on /metrics and hooks the agent's counters. Gauges (alerts
// firing by severity, live sessions, pending approvals, job queue backlog by kind) are read from the
// database (one statement per tenant), so every replica reports the same numbers.
func (a *App) registerOwnMetrics() error {
	c := &ownCollector{a: a,
		alerts:    prometheus.NewDesc("it0_alerts_firing", "Open (firing or acknowledged) alerts by severity.", []string{"severity"}, nil),
		sessions:  prometheus.NewDesc("it0_agent_sessions", "Agent sessions now running or waiting for an approval, by status.", []string{"status"}, nil),
		approvals: prometheus.NewDesc("it0_approvals_pending", "Approvals waiting for a human.", nil, nil),
		ssh:       prometheus.NewDesc("it0_ssh_connections", "Pooled SSH connections by state (open, in_use).", []string{"state"}, nil),
		lag:       prometheus.NewDesc("it0_job_queue_lag_seconds", "Age of the oldest due job not yet started (0 when none).", nil, nil),
		depth:     prometheus.NewDesc("it0_job_queue_depth", "Jobs by kind and state: due (waiting for a worker), scheduled (in the future), running.", []string{"kind", "state"}, nil),
		age:       prometheus.NewDesc("it0_job_queue_oldest_due_seconds", "Age of the oldest due job of each kind.", []string{"kind"}, nil),
	}
	if err := a.registry.Register(c); err != nil {
		return fmt.Errorf("register monitor metrics: %w", err)
	}
	// it0_escalations_total counts approvals opened by unattended runs (escalations beyond a standing
	// order's boundary). The comm module may own the counter; if it registered one, that one counts.
	var esc prometheus.Counter = prometheus.NewCounter(prometheus.CounterOpts{Name: "it0_escalations_total", Help: "Escalations to humans from unattended runs."})
	if err := a.registry.Register(esc); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return fmt.Errorf("register it0_escalations_total: %w", err)
		}
		esc = nil // someone else counts escalations
	}
	if a.Bus != nil {
		// Ends when the bus closes (it is stopped after this module).
		a.subscribeApprovals(context.Background(), groupMetrics, a.metrics.approvalEvent(esc))
	}
	return nil
}

// ownCollector reads IT0's own gauges, at most once per gaugesMaxAge.
type ownCollector struct {
	a                                                 *App
	alerts, sessions, approvals, ssh, lag, depth, age *prometheus.Desc

	mu   sync.Mutex
	at   time.Time
	last gaugeSnapshot
}

// gaugeSnapshot is one read of the database-backed gauges.
type gaugeSnapshot struct {
	alerts, sessions map[string]int
	pending          int
	lag              time.Duration
	jobs             []jobs.KindStats
	jobsOK           bool
}

func (c *ownCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.alerts, c.sessions, c.approvals, c.ssh, c.lag, c.depth, c.age} {
		ch <- d
	}
}

func (c *ownCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.snapshot()
	for s, n := range snap.alerts {
		ch <- prometheus.MustNewConstMetric(c.alerts, prometheus.GaugeValue, float64(n), s)
	}
	for s, n := range snap.sessions {
		ch <- prometheus.MustNewConstMetric(c.sessions, prometheus.GaugeValue, float64(n), s)
	}
	if snap.alerts != nil { // the tenants could be listed
		ch <- prometheus.MustNewConstMetric(c.approvals, prometheus.GaugeValue, float64(snap.pending))
	}
	if c.a.SSH != nil {
		open, busy := c.a.SSH.Stats()
		ch <- prometheus.MustNewConstMetric(c.ssh, prometheus.GaugeValue, float64(open), "open")
		ch <- prometheus.MustNewConstMetric(c.ssh, prometheus.GaugeValue, float64(busy), "in_use")
	}
	if snap.jobsOK {
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, snap.lag.Seconds())
		for _, k := range snap.jobs {
			ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(k.Due), k.Kind, "due")
			ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(k.Scheduled), k.Kind, "scheduled")
			ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(k.Running), k.Kind, "running")
			ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, k.OldestDue.Seconds(), k.Kind)
		}
	}
}

// snapshot returns the gauges, reading them again when the last read is older than gaugesMaxAge. A failed
// read is logged and counted in it0_metrics_collect_errors_total; the gauges it could not read are left
// out of the scrape rather than reported as zero.
func (c *ownCollector) snapshot() gaugeSnapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < gaugesMaxAge {
		return c.last
	}
	ctx, cancel := context.WithTimeout(context.Background(), ownMetricsTimeout)
	defer cancel()
	a := c.a
	snap := gaugeSnapshot{alerts: map[string]int{}, sessions: map[string]int{}}
	for _, s := range alerts.Severities {
		snap.alerts[s] = 0
	}
	for _, s := range []string{agent.StatusRunning, agent.StatusAwaitingApproval} {
		snap.sessions[s] = 0
	}
	tenants, err := a.Auth.Tenants(ctx)
	if err != nil {
		a.metrics.collectErrors.WithLabelValues("tenants").Inc()
		a.log.ErrorContext(ctx, "own metrics: list tenants", slog.String("error", err.Error()))
		snap.alerts, snap.sessions = nil, nil
	}
	for _, t := range tenants {
		g, err := a.Store.Gauges(tenant.WithID(ctx, t.ID))
		if err != nil {
			a.metrics.collectErrors.WithLabelValues("tenant").Inc()
			a.log.ErrorContext(ctx, "own metrics: read gauges", slog.String("tenant_id", t.ID), slog.String("error", err.Error()))
			continue
		}
		for s, n := range g.AlertsOpen {
			snap.alerts[s] += n
		}
		for s, n := range g.SessionsLive {
			snap.sessions[s] += n
		}
		snap.pending += g.ApprovalsPending
	}
	if a.Jobs != nil {
		snap.lag, err = a.Jobs.Lag(ctx)
		if err == nil {
			snap.jobs, err = a.Jobs.Stats(ctx)
		}
		if err != nil {
			a.metrics.collectErrors.WithLabelValues("jobs").Inc()
			a.log.ErrorContext(ctx, "own metrics: read the job queue", slog.String("error", err.Error()))
		}
		snap.jobsOK = err == nil
	}
	c.at, c.last = time.Now(), snap
	return snap
}
