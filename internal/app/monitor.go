package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/httpapi"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/monitor"
	"github.com/it0/it0/internal/monitor/nodeexporter"
	"github.com/it0/it0/internal/monitor/promapi"
	"github.com/it0/it0/internal/tenant"
	"github.com/prometheus/client_golang/prometheus"
)

// Monitoring modules: Metrics collects server metrics and evaluates alert rules on them; Monitor is the
// design's monitor target, metrics and health checks together.
const (
	Metrics = "metrics"
	Monitor = "monitor"
)

// initMetrics builds metrics and alerting and starts the collector loop. Alerts are published to
// event-triggered standing orders (alert_fired, alert_resolved); a rule's runbook is started through
// ops; every sample also feeds threshold-triggered standing orders.
func (a *App) initMetrics(ctx context.Context) (func(context.Context) error, error) {
	log := a.log.With(slog.String("component", "monitor"))
	a.Alerts = monitor.NewAlerts(monitor.AlertsConfig{Logger: a.log,
		Remediator: monitor.NewRunbookRemediator(a.Ops, a.cfg.RemediationMaxRisk).WithServerNames(a.serverName),
		CheckRunbook: func(ctx context.Context, id string) error {
			_, err := a.Ops.Runbook(ctx, id)
			return err
		},
		OnAlert: func(ctx context.Context, ev monitor.AlertEvent) {
			kind := "alert_fired"
			if ev.Status == monitor.AlertResolved {
				kind = "alert_resolved"
			}
			data, _ := json.Marshal(ev)
			if _, err := a.Orders.HandleEvent(ctx, kind, ev.ServerID, data); err != nil {
				log.ErrorContext(ctx, "deliver alert to standing orders", slog.String("event_id", ev.ID), slog.String("error", err.Error()))
			}
		}}, a.Store, a.Audit)
	a.Metrics = monitor.NewMetrics(monitor.MetricsConfig{Logger: a.log,
		Tenants: func(ctx context.Context) ([]string, error) {
			list, err := a.Auth.Tenants(ctx)
			ids := make([]string, 0, len(list))
			for _, t := range list {
				ids = append(ids, t.ID)
			}
			return ids, err
		},
		OnSamples: func(ctx context.Context, samples []monitor.Sample) {
			if _, err := a.Alerts.Evaluate(ctx, samples); err != nil {
				log.ErrorContext(ctx, "evaluate alert rules", slog.String("error", err.Error()))
			}
		},
		OnSample: func(ctx context.Context, serverID, metric string, value float64, at time.Time) {
			if _, err := a.Orders.ObserveMetric(ctx, serverID, metric, value, at); err != nil {
				log.ErrorContext(ctx, "feed threshold orders", slog.String("server_id", serverID), slog.String("error", err.Error()))
			}
		}}, a.Store, a.Inventory, nodeexporter.New(nil), promapi.New(nil), a.Audit)
	a.Agent.AddTools(monitor.NewTools(a.Alerts))
	if err := a.registerOwnMetrics(); err != nil {
		return nil, err
	}
	// The loop outlives the start-up ctx on purpose: it runs until the module stops.
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { a.Metrics.Run(lctx) })
	return func(context.Context) error { cancel(); wg.Wait(); return nil }, nil
}

// monitoring is the API's view of the module (nil when it is not running here).
func (a *App) monitoring() *httpapi.MonitoringDeps {
	if a.Metrics == nil || a.Alerts == nil {
		return nil
	}
	return &httpapi.MonitoringDeps{Metrics: a.Metrics, Alerts: a.Alerts}
}

// ownMetricsTimeout bounds one scrape's reads of the database.
const ownMetricsTimeout = 5 * time.Second

// registerOwnMetrics exports IT0's own state on /metrics: alerts firing by severity, agent sessions by
// status, pending approvals, escalations, SSH connections and job queue lag. Counts are read at scrape
// time (summed over tenants), so every replica reports the same numbers.
func (a *App) registerOwnMetrics() error {
	c := &ownCollector{a: a,
		alerts:    prometheus.NewDesc("it0_alerts_firing", "Open (firing or acknowledged) alerts by severity.", []string{"severity"}, nil),
		sessions:  prometheus.NewDesc("it0_agent_sessions", "Agent sessions by status.", []string{"status"}, nil),
		approvals: prometheus.NewDesc("it0_approvals_pending", "Approvals waiting for a human.", nil, nil),
		ssh:       prometheus.NewDesc("it0_ssh_connections", "Pooled SSH connections by state (open, in_use).", []string{"state"}, nil),
		lag:       prometheus.NewDesc("it0_job_queue_lag_seconds", "Age of the oldest due job not yet started (0 when none).", nil, nil)}
	if err := a.registry.Register(c); err != nil {
		return fmt.Errorf("register monitor metrics: %w", err)
	}
	// it0_escalations_total counts approvals opened by unattended runs (escalations beyond a standing
	// order's boundary). The comm module may own the counter; if it registered one, that one counts.
	esc := prometheus.NewCounter(prometheus.CounterOpts{Name: "it0_escalations_total", Help: "Escalations to humans from unattended runs."})
	if err := a.registry.Register(esc); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return fmt.Errorf("register it0_escalations_total: %w", err)
		}
		return nil // someone else counts escalations
	}
	a.Agent.OnApprovalRequested(func(ctx context.Context, sess *agent.Session, ap *agent.Approval) {
		if sess.Unattended() {
			esc.Inc()
		}
	})
	return nil
}

// ownCollector reads IT0's own gauges at scrape time.
type ownCollector struct {
	a                                     *App
	alerts, sessions, approvals, ssh, lag *prometheus.Desc
}

func (c *ownCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.alerts
	ch <- c.sessions
	ch <- c.approvals
	ch <- c.ssh
	ch <- c.lag
}

func (c *ownCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), ownMetricsTimeout)
	defer cancel()
	a := c.a
	alerts := map[string]int{}
	for _, s := range monitor.Severities {
		alerts[s] = 0
	}
	sessions := map[string]int{}
	for _, s := range []string{agent.StatusRunning, agent.StatusAwaitingApproval, agent.StatusCompleted, agent.StatusFailed, agent.StatusCancelled} {
		sessions[s] = 0
	}
	pending := 0
	if tenants, err := a.Auth.Tenants(ctx); err == nil {
		for _, t := range tenants {
			tctx := tenant.WithID(ctx, t.ID)
			if counts, err := a.Store.AlertEventCount(tctx); err == nil {
				for s, n := range counts {
					alerts[s] += n
				}
			}
			if byStatus, n, err := a.Store.AgentCounts(tctx); err == nil {
				for s, k := range byStatus {
					sessions[s] += k
				}
				pending += n
			}
		}
	} else {
		a.log.Warn("own metrics: list tenants", slog.String("error", err.Error()))
	}
	for s, n := range alerts {
		ch <- prometheus.MustNewConstMetric(c.alerts, prometheus.GaugeValue, float64(n), s)
	}
	for s, n := range sessions {
		ch <- prometheus.MustNewConstMetric(c.sessions, prometheus.GaugeValue, float64(n), s)
	}
	ch <- prometheus.MustNewConstMetric(c.approvals, prometheus.GaugeValue, float64(pending))
	if a.SSH != nil {
		open, busy := a.SSH.Stats()
		ch <- prometheus.MustNewConstMetric(c.ssh, prometheus.GaugeValue, float64(open), "open")
		ch <- prometheus.MustNewConstMetric(c.ssh, prometheus.GaugeValue, float64(busy), "in_use")
	}
	if a.Jobs != nil {
		if lag, err := a.Jobs.Lag(ctx); err == nil {
			ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, lag.Seconds())
		}
	}
}

// serverName is the name of server id in the tenant in ctx.
func (a *App) serverName(ctx context.Context, id string) (string, error) {
	list, err := a.Inventory.Servers(ctx, inventory.Selector{ServerIDs: []string{id}})
	if err != nil {
		return "", err
	}
	if len(list) == 0 {
		return "", errs.New(errs.NotFound, "server %s not found", id)
	}
	return list[0].Name, nil
}
